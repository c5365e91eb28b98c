"""A simulated source: deterministic readings at a configurable rate, no hardware.

Values are a function of the device name, the channel and the sample number
only, so two runs produce the same values (times are the wall clock at sampling).

Profiles (``kind``):

* ``meter``  — a three-phase energy meter: import energy (kWh, monotonic), active
  power (W) and voltage (V).
* ``sensor`` — a factory sensor: temperature (Cel), relative humidity (%RH) and
  vibration (m/s2).
"""
from edgeledger.agent import errors

# Per profile, one line per channel: "channel unit base swing step", where the value swings
# around base by up to swing and step is added per sample (monotonic counters). Kept as
# text and parsed for the configured profile only: a table of tuples of boxed floats costs
# ~2 KB of a board's heap (docs/firmware.md §5), these two strings ~0.2 KB.
PROFILES = {
    "meter": "energy_import kWh 1000 0 0.01\npower W 2300 400 0\nvoltage_l1 V 230 3 0",
    "sensor": "temperature Cel 21.5 4 0\nhumidity %RH 45 10 0\nvibration m/s2 0.2 0.15 0",
}


def profile(kind, channels=None):
    """``[(channel, unit, base, swing, step), ...]`` of ``kind``, the first ``channels``."""
    rows = []
    for line in PROFILES[kind].split("\n")[: channels or None]:
        channel, unit, base, swing, step = line.split()
        rows.append((channel, unit, float(base), float(swing), float(step)))
    return rows


class SimulatedSource:
    """``poll(now)`` returns one SenML record per channel of the profile.

    Raises ConfigError for an unknown ``kind`` or a non-positive ``interval_s``.
    """

    def __init__(self, name="sim", kind="meter", interval_s=1.0, seed=None, channels=None):
        if kind not in PROFILES or not interval_s > 0:
            raise errors.ConfigError("simulated source: kind must be one of %s and interval_s > 0, got "
                              "%r, %r" % (sorted(PROFILES), kind, interval_s))
        self.name = name
        self.kind = kind
        self.interval_s = interval_s
        self.profile = profile(kind, channels)
        self.seed = seed if seed is not None else sum(ord(c) * (i + 1) for i, c in enumerate(name))
        self.sample = 0
        self.counters = {"polls": 0}

    def poll(self, now):
        k = self.sample
        self.sample += 1
        self.counters["polls"] += 1
        out = []
        i = 0
        for channel, unit, base, swing, step in self.profile:
            # deterministic value in [-1, 1] from the seed, the channel and the sample number
            x = ((self.seed + i) * 1103515245 + k * 2654435761 + 12345) & 0x7FFFFFFF
            tri = (k % 64) / 32.0 - 1.0  # slow triangle wave
            wave = 0.7 * (1.0 - 2.0 * abs(tri)) + 0.3 * (x / 0x7FFFFFFF * 2.0 - 1.0)
            out.append({0: self.name + "/" + channel, 1: unit,
                        2: round(base + step * k + swing * wave, 3), 6: now})
            i += 1
        return out


def from_config(cfg):
    return SimulatedSource(cfg.get("name", "sim"), cfg.get("kind", "meter"),
                           float(cfg.get("interval_s", 1.0)), cfg.get("seed"), cfg.get("channels"))

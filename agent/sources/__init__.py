"""Field-bus sources: objects the agent loop polls for SenML records.

Interface of a source::

    src.name          # str, used for status records and logs
    src.interval_s    # float, seconds between polls
    src.counters      # dict of int counters (bad_frames, timeouts, ...)
    src.poll(now)     # -> list of SenML record dicts (RFC 8428 CBOR labels:
                      #    0 name, 1 unit, 2 value, 3 string value, 6 time)
                      #    `now` is wall-clock unix seconds; raises SourceError
    src.close()

The field-bus sources are also sans-IO state machines that never wait for a meter
(the agent core drives them from its loop, so one slow meter never stalls another)::

    src.begin(mono, wall)  # start a reading cycle; records are stamped `wall`
    src.step(mono)         # take what has arrived, handle timers; None while reading,
                           #   then the cycle's records; raises SourceError
    src.wake_at()          # monotonic time the next step is needed

``poll`` runs one such cycle to its end (``run_cycle``), sleeping between steps: the
blocking form, for callers that do nothing else meanwhile.

``from_config(cfg)`` builds a source from a TOML-style dict whose ``type``
selects a row of SOURCE_TYPES. Each row names the module whose
``from_config(cfg)`` builds the source; modules are imported only when used,
so a board carries only the buses it has.
"""
from edgeledger.agent.errors import AgentError, ConfigError, SourceError  # noqa: F401 (re-export)

# type name -> module with a from_config(cfg) function.
SOURCE_TYPES = {
    "simulated": "edgeledger.agent.simulated",
    "modbus": "edgeledger.agent.sources.modbus",
    "modbus_tcp": "edgeledger.agent.sources.modbus_tcp",
    "iec62056": "edgeledger.agent.sources.iec62056",
    "dsmr": "edgeledger.agent.sources.dsmr",
}


# While a reply is arriving, a stepped source is read at least this often: a whole
# Modbus ADU (256 B) or a burst of a DSMR telegram fits a UART's receive buffer in
# that time (256 B take 22 ms at 115200 baud; the DSMR source asks for a larger buffer).
BUSY_POLL_S = 0.02


def run_cycle(src, wall):
    """One whole reading cycle of a stepped source, sleeping (``src.sleep``) between
    steps; returns its records. Raises SourceError."""
    src.begin(src.clock(), wall)
    while True:
        records = src.step(src.clock())
        if records is not None:
            return records
        wait = src.wake_at() - src.clock()
        if wait > 0:
            src.sleep(wait)


def _load(path):
    mod = __import__(path)
    for part in path.split(".")[1:]:
        mod = getattr(mod, part)
    return mod


def from_config(cfg, **overrides):
    """Build a source from ``cfg`` (a dict with at least ``type``).

    ``overrides`` are passed to the source's factory (tests pass ``port=`` a
    ready transport and ``clock=``/``sleep=`` fakes). Raises ConfigError for an
    unknown type or a bad value.
    """
    kind = cfg.get("type")
    if kind not in SOURCE_TYPES:
        raise ConfigError(
            "source type must be one of %s, found %r" % (", ".join(sorted(SOURCE_TYPES)), kind)
        )
    mod = _load(SOURCE_TYPES[kind])
    if overrides:
        return mod.from_config(cfg, **overrides)
    return mod.from_config(cfg)

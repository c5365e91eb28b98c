"""Field-bus sources: objects the agent loop polls for SenML records.

Interface of a source::

    src.name          # str, used for status records and logs
    src.interval_s    # float, seconds between polls
    src.counters      # dict of int counters (bad_frames, timeouts, ...)
    src.poll(now)     # -> list of SenML record dicts (RFC 8428 CBOR labels:
                      #    0 name, 1 unit, 2 value, 3 string value, 6 time)
                      #    `now` is wall-clock unix seconds; raises SourceError
    src.close()

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
    "iec62056": "edgeledger.agent.sources.iec62056",
    "dsmr": "edgeledger.agent.sources.dsmr",
}


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

"""Gateway configuration: ``gateway.toml``, read through one typed schema (schema.py).

::

    gateway_id = "gw-1"
    store = "var/gateway.db"          # relative paths are relative to this file
    broker = "mqtt://127.0.0.1:1883"
    sites = ["+"]                     # site ids this gateway owns ("+" = all)
    durability = "power_loss"         # acks only after an fsync'd commit (the default);
                                      # "process_crash_only": NOT durable across a power cut

    [mqtt] [batch] [ledger] [chain] [ratelimit] [quarantine] [upkeep] [log] [metrics] [web]

docs/operators.md shows every key; schema.py holds each key's type and default.
``load(path)`` and ``resolve(parsed, base)`` return a ``GatewayConfig`` (frozen
dataclasses, one per section) or raise ConfigError naming the file, the key, what was
expected and what was found.
"""
import dataclasses
import os
import tomllib
import types
import typing
from typing import Any

from edgeledger.gateway.config.schema import (
    DURABILITY,
    SECTIONS,
    BatchConfig,
    ChainConfig,
    GatewayConfig,
    LedgerConfig,
    LogConfig,
    MetricsConfig,
    MqttConfig,
    QuarantineConfig,
    RateLimitConfig,
    UpkeepConfig,
    WebConfig,
)
from edgeledger.gateway.errors import ConfigError

_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list of strings"}


def load(path: str) -> GatewayConfig:
    """Read a gateway.toml. Raises ConfigError naming the file and the problem."""
    try:
        with open(path, "rb") as f:
            parsed = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("cannot read gateway config %s: %s" % (path, e)) from e
    try:
        return resolve(parsed, os.path.dirname(os.path.abspath(path)))
    except ConfigError as e:
        raise ConfigError("%s: %s" % (path, e)) from e


def resolve(parsed: dict[str, Any], base: str) -> GatewayConfig:
    """The GatewayConfig of a parsed gateway.toml whose relative paths are relative to
    ``base``. Raises ConfigError."""
    parsed = dict(parsed)
    if "durability" not in parsed and "synchronous" in parsed:
        # the older key: FULL or NORMAL, said as the durability it gives
        legacy = _value(GatewayConfig, _field(GatewayConfig, "synchronous"), parsed["synchronous"], "", base)
        parsed["durability"] = dict((v, k) for k, v in DURABILITY.items())[legacy]
    sections = {}
    for name, cls in SECTIONS.items():
        raw = parsed.pop(name, None) or {}
        if not isinstance(raw, dict):
            raise ConfigError("gateway config: [%s] must be a table, found %r" % (name, raw))
        sections[name] = _section(cls, raw, name, base)
    return _section(GatewayConfig, parsed, "", base, sections)


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _section(cls: type, raw: dict[str, Any], section: str, base: str, extra: dict[str, Any] | None = None) -> Any:
    values = dict(extra or {})
    for f in dataclasses.fields(cls):
        if f.name in raw and f.name not in values:
            values[f.name] = _value(cls, f, raw[f.name], section, base)
        elif f.metadata.get("path") and isinstance(f.default, str):  # a default file name is relative too
            values[f.name] = os.path.join(base, f.default)
    return cls(**values)


def _value(cls: type, f: dataclasses.Field, value: Any, section: str, base: str) -> Any:
    """``value`` checked against field ``f``'s type and metadata; a path made absolute."""
    where = "gateway config: %s%s" % ("[%s] " % section if section else "", f.name)
    kind = typing.get_type_hints(cls)[f.name]
    optional = typing.get_origin(kind) in (typing.Union, types.UnionType)
    if optional:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    kind = typing.get_origin(kind) or kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is list:
        ok = ok and all(isinstance(v, str) for v in value)
    if not ok:
        raise ConfigError("%s: expected %s, found %r" % (where, _NAMES.get(kind, kind.__name__), value))
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError("%s: expected %s, found %r" % (where, " or ".join(repr(c) for c in meta["choices"]), value))
    if "minimum" in meta and value < meta["minimum"]:
        raise ConfigError("%s: expected at least %r, found %r" % (where, meta["minimum"], value))
    if "maximum" in meta and value > meta["maximum"]:
        raise ConfigError("%s: expected at most %r, found %r" % (where, meta["maximum"], value))
    if meta.get("nonempty") and not value:
        raise ConfigError("%s: expected a non-empty list, found %r" % (where, value))
    if meta.get("path"):
        value = os.path.join(base, value)
    return value


def secret_files(cfg: GatewayConfig) -> list[tuple[str, str]]:
    """[(key, path)] of the files ``cfg`` names that must be private to their owner (the
    schema's ``secret`` keys), e.g. ("ledger.keystore_file", "/etc/edgeledger/gw.json")."""
    out = []
    for name, cls in SECTIONS.items():
        section = getattr(cfg, name)
        for f in dataclasses.fields(cls):
            path = getattr(section, f.name)
            if f.metadata.get("secret") and path:
                out.append(("%s.%s" % (name, f.name), path))
    return out


__all__ = [
    "BatchConfig", "ChainConfig", "ConfigError", "GatewayConfig", "LedgerConfig", "LogConfig", "MetricsConfig",
    "MqttConfig", "QuarantineConfig", "RateLimitConfig", "UpkeepConfig", "WebConfig", "load", "resolve",
    "secret_files",
]

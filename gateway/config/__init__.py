"""Gateway configuration: ``gateway.toml``, read through one typed schema (schema.py).

::

    gateway_id = "gw-1"
    store = "var/gateway.db"          # relative paths are relative to this file
    broker = "mqtt://127.0.0.1:1883"
    sites = ["+"]                     # site ids this gateway owns ("+" = all)
    durability = "power_loss"         # acks only after an fsync'd commit (the default);
                                      # "process_crash_only": NOT durable across a power cut

    [ledger]                          # required: backend = "jsonrpc", "embedded" or "none"
    [mqtt] [batch] [chain] [ratelimit] [quarantine] [upkeep] [log] [metrics] [web]

docs/configuration.md shows every key; schema.py holds each key's type and default.
``load(path)`` and ``resolve(parsed, base)`` return a ``GatewayConfig`` (frozen
dataclasses, one per section) or raise ConfigError naming the file, the key, what was
expected and what was found. The file is read strictly: a key or section the schema does
not know is an error naming the nearest one it does know (difflib), so that a misspelt
``[ledgr]`` or ``max_age`` never leaves a default silently in force.
"""
import dataclasses
import difflib
import os
import re
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
from edgeledger.protocols import broker_url

_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list of strings"}


def load(path: str) -> GatewayConfig:
    """Read a gateway.toml. Raises ConfigError naming the file and the problem."""
    try:
        with open(path, "rb") as f:
            parsed = tomllib.load(f)
    except OSError as e:
        raise ConfigError("cannot read gateway config %s: %s" % (path, e.strerror or e)) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("%s: not valid TOML: %s" % (path, e)) from e
    except UnicodeDecodeError as e:
        raise ConfigError("%s: not a TOML file (TOML is UTF-8 text): %s" % (path, e)) from e
    return resolve(parsed, os.path.dirname(os.path.abspath(path)), path)


def resolve(parsed: dict[str, Any], base: str, source: str = "gateway config") -> GatewayConfig:
    """The GatewayConfig of a parsed gateway.toml whose relative paths are relative to
    ``base``. Raises ConfigError, its message starting with ``source`` (the file's name):
    a key or section the schema does not know (with the nearest known name), a value of
    the wrong type or out of range, no ``[ledger]`` section (the chain is never chosen
    silently), or ``mqtt://`` with TLS files in ``[mqtt]``."""
    try:
        return _resolve(dict(parsed), base)
    except ConfigError as e:
        raise ConfigError("%s: %s" % (source, e)) from None


def _resolve(parsed: dict[str, Any], base: str) -> GatewayConfig:
    _refuse_unknown(parsed)
    if not isinstance(parsed.get("ledger"), dict):
        raise ConfigError('no [ledger] section: say where batches are anchored, e.g. [ledger] backend = "jsonrpc" '
                          'with url and contract, or backend = "embedded" (an in-process chain for trials) '
                          'or "none"')
    if "durability" not in parsed and "synchronous" in parsed:
        # the older key: FULL or NORMAL, said as the durability it gives
        legacy = _value(GatewayConfig, _field(GatewayConfig, "synchronous"), parsed["synchronous"], "", base)
        parsed["durability"] = dict((v, k) for k, v in DURABILITY.items())[legacy]
    sections = {}
    for name, cls in SECTIONS.items():
        raw = parsed.pop(name, None) or {}
        if not isinstance(raw, dict):
            raise ConfigError("[%s] must be a table, found %r" % (name, raw))
        sections[name] = _section(cls, raw, name, base)
    cfg: GatewayConfig = _section(GatewayConfig, parsed, "", base, sections)
    _check_broker(cfg)
    return cfg


def _keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in SECTIONS]


def _refuse_unknown(parsed: dict[str, Any]) -> None:
    """ConfigError for the first key or section the schema does not know, naming the known
    one it most likely meant (difflib), or the section a known key belongs in."""
    for name in sorted(parsed):
        if name in SECTIONS:
            if isinstance(parsed[name], dict):
                unknown = sorted(set(parsed[name]) - set(_keys(SECTIONS[name])))
                if unknown and unknown[0] in _keys(GatewayConfig):
                    raise ConfigError("%r is a top-level key, found in [%s]: move it above the first [section]"
                                      % (unknown[0], name))
                if unknown:
                    raise ConfigError("unknown key %r in [%s]%s" % (unknown[0], name, _nearest(
                        unknown[0], _keys(SECTIONS[name]), "; did you mean %s?")))
            continue
        if name in _keys(GatewayConfig):
            continue
        if isinstance(parsed[name], dict):
            raise ConfigError("unknown section [%s]%s" % (name, _nearest(name, ["[%s]" % n for n in SECTIONS],
                                                                               "; did you mean %s?")))
        owners = [s for s, cls in SECTIONS.items() if name in _keys(cls)]
        if owners:
            raise ConfigError("unknown top-level key %r: it belongs in [%s]" % (name, owners[0]))
        raise ConfigError("unknown key %r%s" % (name, _nearest(name, _keys(GatewayConfig) + [
            "[%s] %s" % (s, k) for s, cls in SECTIONS.items() for k in _keys(cls)], "; did you mean %s?")))


def _nearest(name: str, known: list[str], template: str) -> str:
    """``template`` filled with the known name closest to ``name`` (a key in a section is
    written "[section] key"), or "" when none is close."""
    bare = dict((k.rpartition(" ")[2], k) for k in reversed(known))
    close = difflib.get_close_matches(name, list(bare), n=1, cutoff=0.6)
    return template % bare[close[0]] if close else ""


def _check_broker(cfg: GatewayConfig) -> None:
    """The broker URL parses, and TLS files are given only with ``mqtts://``."""
    try:
        tls, _host, _port = broker_url.parse(cfg.broker)
    except ValueError as e:
        raise ConfigError("broker: %s" % e) from None
    if not tls:
        named = [k for k in ("ca_file", "cert_file", "key_file") if getattr(cfg.mqtt, k)]
        if named:
            raise ConfigError("broker %r is plain MQTT but [mqtt] names %s: write mqtts://%s to use TLS"
                              % (cfg.broker, " and ".join(named), cfg.broker.partition("://")[2]))


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _section(cls: type, raw: dict[str, Any], section: str, base: str, extra: dict[str, Any] | None = None) -> Any:
    values = dict(extra or {})
    for f in dataclasses.fields(cls):
        if f.name in raw and f.name not in values:
            values[f.name] = _value(cls, f, raw[f.name], section, base)
        elif f.metadata.get("required") and f.name not in values:
            raise ConfigError("[%s] needs %s (%s)" % (section, f.name, f.metadata["doc"]))
        elif f.metadata.get("path") and isinstance(f.default, str):  # a default file name is relative too
            values[f.name] = os.path.join(base, f.default)
    return cls(**values)


def _value(cls: type, f: dataclasses.Field, value: Any, section: str, base: str) -> Any:
    """``value`` checked against field ``f``'s type and metadata; a path made absolute."""
    where = "%s%s" % ("[%s] " % section if section else "", f.name)
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
    if "pattern" in meta and not re.fullmatch(meta["pattern"][0], value):
        raise ConfigError("%s: expected %s, found %r" % (where, meta["pattern"][1], value))
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

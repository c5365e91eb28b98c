"""Gateway configuration: ``gateway.toml``.

::

    gateway_id = "gw-1"
    store = "var/gateway.db"          # relative paths are relative to this file
    broker = "mqtt://127.0.0.1:1883"
    sites = ["+"]                     # site ids this gateway owns ("+" = all)
    durability = "power_loss"         # acks only after an fsync'd commit (the default);
                                      # "process_crash_only": NOT durable across a power cut
    max_message_bytes = 65536
    clock_skew_s = 604800

    [mqtt]                            # optional broker credentials
    username = "gateway"
    password_file = "gateway.pass"
    ca_file = "ca.pem"

    [batch]
    max_size = 10000                  # readings per Merkle batch
    max_age_s = 10.0                  # close a batch this long after its first reading

    [ledger]
    backend = "embedded"              # "embedded" (py-evm), "jsonrpc" or "none"
    url = "http://127.0.0.1:8545"
    confirmations = 2
    finality = 64                     # blocks after which an anchored batch is final

    [chain]
    accept_restarts = true            # a chain restart a device declares is accepted at once
                                      # (false: it waits for `edgeledger device accept-gap`)
"""
import os
import tomllib

from edgeledger.gateway.errors import ConfigError

# synchronous pragma per ``durability``: what a commit survives.
DURABILITY = {"power_loss": "FULL", "process_crash_only": "NORMAL"}
DEFAULTS = {
    "gateway_id": "gw-1",
    "store": "var/gateway.db",
    "broker": "mqtt://127.0.0.1:1883",
    "sites": ["+"],
    "durability": "power_loss",
    "max_message_bytes": 65536,
    "clock_skew_s": 7 * 86400.0,
}
PATH_KEYS = ("store",)


def load(path):
    """Read a gateway.toml; raises ConfigError naming the file and the problem."""
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("cannot read gateway config %s: %s" % (path, e))
    return resolve(cfg, os.path.dirname(os.path.abspath(path)))


def resolve(cfg, base):
    out = dict(DEFAULTS)
    out.update(cfg)
    for key in PATH_KEYS:
        out[key] = os.path.join(base, out[key])
    for section in ("mqtt", "ledger", "batch"):
        sec = dict(out.get(section) or {})
        for k, v in list(sec.items()):
            if k.endswith("_file") and isinstance(v, str):
                sec[k] = os.path.join(base, v)
        out[section] = sec
    if not isinstance(out["sites"], list) or not out["sites"]:
        raise ConfigError("gateway config: sites must be a non-empty list, got %r" % (out["sites"],))
    out.setdefault("client_id", "el-gw-" + out["gateway_id"])
    out["synchronous"] = synchronous_for(cfg)
    return out


def synchronous_for(cfg):
    """SQLite's synchronous pragma for a gateway.toml's ``durability`` (or the older
    ``synchronous`` key). Raises ConfigError for an unknown value."""
    if "durability" in cfg:
        value = cfg["durability"]
        if value not in DURABILITY:
            raise ConfigError("gateway config: durability must be %s, got %r"
                              % (" or ".join(repr(k) for k in DURABILITY), value))
        return DURABILITY[value]
    legacy = cfg.get("synchronous", DURABILITY[DEFAULTS["durability"]])
    if legacy not in DURABILITY.values():
        raise ConfigError("gateway config: synchronous must be \"FULL\" or \"NORMAL\" (better: durability = "
                          "\"power_loss\"), got %r" % (legacy,))
    return legacy

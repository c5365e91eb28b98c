"""Gateway configuration: ``gateway.toml``.

::

    gateway_id = "gw-1"
    store = "var/gateway.db"          # relative paths are relative to this file
    broker = "mqtt://127.0.0.1:1883"
    sites = ["+"]                     # site ids this gateway owns ("+" = all)
    synchronous = "NORMAL"            # or "FULL": commits survive power loss, slower
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
"""
import os
import tomllib

from edgeledger.gateway.errors import ConfigError

DEFAULTS = {
    "gateway_id": "gw-1",
    "store": "var/gateway.db",
    "broker": "mqtt://127.0.0.1:1883",
    "sites": ["+"],
    "synchronous": "NORMAL",
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
    return out

"""One-time start-up of the board agent: config, key, outbox, sources, MQTT client.

``main.start`` imports this module, calls ``prepare`` and then drops it (and
the modules only it uses: topics, the key-file parser) from ``sys.modules``
before the loop runs, so that its bytecode does not sit in the heap for the
life of the device. Nothing that outlives ``prepare`` may be an instance of a
class defined here. The config keys are listed in ``main.py``.

Order matters for the heap's high-water mark: the key is loaded first (an
Ed25519 or P-256 key derives its public key, which needs a few KB of scratch
for big-integer arithmetic), while few modules are loaded yet; the outbox,
the agent core and the MQTT client are imported after it.
"""
import gc
import json
import sys

from edgeledger.agent import port
from edgeledger.agent import errors

# The longest the network may hold the loop (connect, TLS handshake, a stalled write):
# half a second keeps a 1 Hz meter on time. Configurable as max_block_ms.
DEFAULT_MAX_BLOCK_MS = 500
DEFAULT_MAX_BACKOFF_S = 10.0
# In-flight end-to-end window on a board: 64 record seqs, no record bytes held.
DEFAULT_WINDOW = 64
# Records per signed message at most. One pack per poll: a poll's records (18 for an
# SDM630, ~30 for a DSMR 5 telegram) are signed together, while the pack being built
# stays small in RAM (64 records of ~30 B encoded).
DEFAULT_PACK_SIZE = 64
# Modules only start-up uses: dropped from sys.modules when they are done.
STARTUP_MODULES = ("edgeledger.firmware.startup", "edgeledger.firmware.tls",
                   "edgeledger.firmware.network_up", "edgeledger.agent.recovery")


def forget(*names):
    """Drop modules from sys.modules and their parent package, so the GC can free them."""
    for name in names:
        sys.modules.pop(name, None)
        pkg, _, attr = name.rpartition(".")
        parent = sys.modules.get(pkg)
        if parent is not None and hasattr(parent, attr):
            delattr(parent, attr)


def parse_broker_url(url):
    """(tls, host, port) of ``mqtt://host[:port]`` / ``mqtts://...`` (protocols/broker_url.py).
    Raises ConfigError."""
    from edgeledger.protocols import broker_url

    try:
        return broker_url.parse(url)
    except ValueError as e:
        raise errors.ConfigError(str(e))


def load_config(path):
    """The config.json dict. Raises ConfigError."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise errors.ConfigError("cannot read device config %s: %s" % (path, e))
    for key in ("device", "site", "key_file", "sources"):
        if key not in cfg:
            raise errors.ConfigError("device config %s: missing %r" % (path, key))
    return cfg


def source_config(board, profile, cfg):
    """The source config with its bus's port and pins filled in. Raises ConfigError."""
    bus = cfg.get("bus")
    if bus is None:
        return cfg
    buses = profile.get("buses") or {}
    if bus not in buses:
        raise errors.ConfigError("source %r names bus %r; board %s has %s"
                          % (cfg.get("name"), bus, board.name, sorted(buses) or "none"))
    merged = dict(buses[bus])
    merged.update(cfg)
    return merged


def make_source(cfg, board, profile):
    cfg = source_config(board, profile, cfg)
    if cfg.get("type") == "simulated":
        from edgeledger.agent import simulated

        return simulated.from_config(cfg)
    try:
        from edgeledger.agent import sources
    except ImportError:
        raise errors.ConfigError("source type %r: this image (board %s) has no field-bus sources"
                          % (cfg.get("type"), board.name))
    return sources.from_config(cfg)


def load_signer(cfg):
    """The device's signer from its key file. Raises ConfigError, OSError, KeyFileError."""
    from edgeledger.agent.key_file import load_key_file

    signer = load_key_file(cfg["key_file"])
    load_key_file = None
    forget("edgeledger.agent.key_file")
    if signer.device not in (None, cfg["device"]):
        raise errors.ConfigError("key file %s belongs to %r, config says device %r"
                          % (cfg["key_file"], signer.device, cfg["device"]))
    return signer


def build(cfg, board, profile, signer=None):
    """The AgentCore for ``cfg``. Raises ConfigError, OSError, KeyFileError."""
    from edgeledger.agent.core import AgentCore
    from edgeledger.agent.outbox import Outbox, check_sizes
    from edgeledger.agent.crypto import sha256

    if signer is None:
        signer = load_signer(cfg)
    state = cfg.get("state_dir", "state")
    port.makedirs(state)
    ob = dict(profile.get("outbox") or {})
    ob.update(cfg.get("outbox") or {})
    max_bytes, segment_bytes = int(ob.get("max_bytes", 262144)), int(ob.get("segment_bytes", 16384))
    check_sizes(max_bytes, segment_bytes)  # a bound that would stall the board for good: refused
    outbox = Outbox(state + "/outbox", max_bytes=max_bytes, segment_bytes=segment_bytes,
                    policy=ob.get("policy", "drop_new"), hash_fn=sha256,
                    flush_interval_s=float(ob.get("flush_interval_s", 0)))
    srcs = [make_source(s, board, profile) for s in cfg["sources"]]
    # The boot counter this boot will use; written to flash only before the first seal
    # (a boot that fails at start does not rewrite it: no flash wear in a boot loop).
    return AgentCore(cfg["device"], signer, outbox, srcs, sha256, epoch=read_epoch(state) + 1,
                     epoch_dir=state,
                     pack_size=int(cfg.get("pack_size", DEFAULT_PACK_SIZE)),
                     pack_age_s=float(cfg.get("pack_age_s", 0.0)),
                     window=int(cfg.get("window", DEFAULT_WINDOW)),
                     resend_after_s=float(cfg.get("resend_after_s", 5.0)),
                     max_seq=cfg.get("until_seq"))


def read_epoch(state_dir):
    """The boot counter in ``state_dir/epoch`` (0 if none), without writing it."""
    try:
        with open(state_dir + "/epoch") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def ssl_context(tls):
    """An ssl.SSLContext for the broker (``tls.py``). Raises ConfigError."""
    from edgeledger.firmware import tls as tls_module

    return tls_module.ssl_context(tls)


def client_settings(cfg, epoch):
    """(MQTTClient arguments, its last will, (readings, ack, birth) topics). Raises ConfigError.

    The client itself is made by ``main.start`` after start-up is dropped: the
    MQTT module is the largest one the loop keeps, so it is not imported while
    start-up's code is still in the heap.
    """
    from edgeledger.protocols import session, topics

    tls, host, port_ = parse_broker_url(cfg.get("broker", "mqtt://127.0.0.1:1883"))
    tls_cfg = cfg.get("tls") or {}
    ctx = ssl_context(tls_cfg) if tls or tls_cfg else None  # a TLS context costs heap
    device, site = cfg["device"], cfg["site"]
    args = ("el-dev-" + device, host, port_, cfg.get("username"), cfg.get("password"),
            int(cfg.get("keepalive", 30)), ctx, tls_cfg.get("server_hostname"),
            int(cfg.get("max_block_ms", DEFAULT_MAX_BLOCK_MS)) / 1000.0)
    will = (topics.death(site, device), session.encode_death(epoch), True, 1)
    names = (topics.readings(site, device), topics.ack(site, device), topics.birth(site, device))
    topics = None
    forget("edgeledger.protocols.topics")
    return args, will, names


def prepare(cfg_path="config.json", board=None, profile_path="board.json"):
    """What ``main.start`` needs: (core, client arguments, last will, topic names,
    ``main.run`` keyword arguments); see ``client_settings``.

    Drops start-up's modules (this one included) from ``sys.modules`` before it
    returns. Raises ConfigError, OSError, KeyFileError.
    """
    from edgeledger.firmware import board as boards

    profile = boards.read_profile(profile_path)
    if board is None:
        board = boards.Board(profile)
    cfg = load_config(cfg_path)
    signer = load_signer(cfg)
    gc.collect()
    core = build(cfg, board, profile, signer)
    args, will, names = client_settings(cfg, core.epoch)
    if board.network.get("kind", "host") != "host":
        from edgeledger.firmware import network_up

        network_up.network_start(board, cfg)
    forget(*STARTUP_MODULES)
    return core, args, will, names, {
        "max_backoff_s": float(cfg.get("max_backoff_s", DEFAULT_MAX_BACKOFF_S)),
        "drain_timeout_s": float(cfg.get("drain_timeout_s", 120)),
        "tls": args[6] is not None,
        "watchdog_s": float(cfg.get("watchdog_s", board.watchdog_s))}

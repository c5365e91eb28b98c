# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""One-time start-up of the board agent: config, key, outbox, sources, MQTT client.

``main.start`` imports this module, calls ``prepare`` and then drops it (and
the modules only it uses: topics, the key-file parser) from ``sys.modules``
before the loop runs, so that its bytecode does not sit in the heap for the
life of the device. Nothing that outlives ``prepare`` may be an instance of a
class defined here. The config keys, their types and defaults are the table of
``agent/config.py``, shared with the Linux agent; ``main.py`` shows a config.json.

Order matters for the heap's high-water mark: the key is loaded first (an
Ed25519 or P-256 key derives its public key, which needs a few KB of scratch
for big-integer arithmetic), while few modules are loaded yet; the outbox,
the agent core and the MQTT client are imported after it.
"""
import gc
import json
import sys

from edgeledger.agent import errors, port

# Modules only start-up uses: dropped from sys.modules when they are done.
STARTUP_MODULES = ("edgeledger.firmware.startup", "edgeledger.firmware.tls",
                   "edgeledger.firmware.network_up", "edgeledger.agent.recovery",
                   "edgeledger.agent.config", "edgeledger.protocols.broker_url",
                   "edgeledger.protocols.key_file", "edgeledger.protocols.hashes")


def forget(*names):
    """Drop modules from sys.modules and their parent package, so the GC can free them."""
    for name in names:
        sys.modules.pop(name, None)
        pkg, _, attr = name.rpartition(".")
        parent = sys.modules.get(pkg)
        if parent is not None and hasattr(parent, attr):
            delattr(parent, attr)


def load_config(path, profile=None):
    """(settings, chain digest, broker) of config.json: the settings with every key of
    ``agent/config.py`` present (the board's defaults, the outbox's over the board
    profile's), types checked; the chain hash's digest function; the broker's (tls, host,
    port). ``agent/config.py`` is dropped before this returns: its key tables are start-up's
    largest objects (~5 KB on the 64-bit port), and the key, the outbox and the core are
    made after. Raises ConfigError."""
    from edgeledger.agent import config

    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise errors.ConfigError("cannot read device config %s: %s" % (path, e))
    cfg = config.agent_settings(cfg, True, "device config %s" % path, (profile or {}).get("outbox") or {})
    out = cfg, config.chain_digest(cfg["chain_hash"]), config.broker(cfg["broker"])
    config = None
    forget("edgeledger.agent.config")
    return out


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


def build(cfg, board, profile, signer, digest):
    """The AgentCore for ``cfg``, its chain hashed with ``digest``. Raises ConfigError,
    OSError."""
    from edgeledger.agent.core import AgentCore
    from edgeledger.agent.outbox import Outbox, check_sizes

    state = cfg["state_dir"]
    port.makedirs(state)
    ob = cfg["outbox"]
    check_sizes(ob["max_bytes"], ob["segment_bytes"])  # a bound that would stall the board for good: refused
    outbox = Outbox(state + "/outbox", max_bytes=ob["max_bytes"], segment_bytes=ob["segment_bytes"],
                    policy=ob["policy"], hash_fn=digest, flush_interval_s=ob["flush_interval_s"])
    srcs = [make_source(s, board, profile) for s in cfg["sources"]]
    content_key = None
    if cfg["content_key_file"]:  # every board can: AES on cryptolib or pure, SM4 pure
        from edgeledger.agent.content_key import load_content_key

        content_key = load_content_key(cfg["content_key_file"])
    # The boot counter this boot will use; written to flash only before the first seal
    # (a boot that fails at start does not rewrite it: no flash wear in a boot loop).
    return AgentCore(cfg["device"], signer, outbox, srcs, digest, epoch=read_epoch(state) + 1,
                     epoch_dir=state, pack_size=cfg["pack_size"], pack_age_s=cfg["pack_age_s"],
                     window=cfg["window"], resend_after_s=cfg["resend_after_s"], max_seq=cfg["until_seq"],
                     send_rate=cfg["send_rate"], content_key=content_key)


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


def client_settings(cfg, epoch, broker):
    """(MQTTClient arguments, its last will, (readings, ack, birth) topics) for ``broker``,
    (tls, host, port). Raises ConfigError.

    The client itself is made by ``main.start`` after start-up is dropped: the
    MQTT module is the largest one the loop keeps, so it is not imported while
    start-up's code is still in the heap.
    """
    from edgeledger.protocols import session, topics

    tls, host, port_ = broker
    tls_cfg = cfg["tls"] or {}
    ctx = ssl_context(tls_cfg) if tls or tls_cfg else None  # a TLS context costs heap
    device, site = cfg["device"], cfg["site"]
    args = ("el-dev-" + device, host, port_, cfg["username"], cfg["password"], cfg["keepalive"], ctx,
            tls_cfg.get("server_hostname"), cfg["max_block_ms"] / 1000.0)
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
    cfg, digest, broker = load_config(cfg_path, profile)
    signer = load_signer(cfg)
    gc.collect()
    core = build(cfg, board, profile, signer, digest)
    args, will, names = client_settings(cfg, core.epoch, broker)
    if board.network.get("kind", "host") != "host":
        from edgeledger.firmware import network_up

        network_up.network_start(board, cfg)
    forget(*STARTUP_MODULES)
    return core, args, will, names, {
        "max_backoff_s": cfg["max_backoff_s"],
        "drain_timeout_s": cfg["drain_timeout_s"],
        "tls": args[6] is not None,
        "watchdog_s": cfg["watchdog_s"] or board.watchdog_s}

"""The agent on a Linux device: ``edgeledger agent run --config agent.toml``.

Reads the TOML config, opens the outbox, bumps the boot epoch, starts the paho
link and runs the agent core until stopped (SIGTERM/SIGINT) or, for bounded
runs, until ``--until-seq`` messages are sealed and acknowledged.

Config (every key but ``device``, ``site``, ``key_file`` and ``sources`` has a default)::

    device = "meter-01"
    site = "plant-a"
    key_file = "meter-01.key"
    state_dir = "var/meter-01"        # outbox and epoch live here
    broker = "mqtt://127.0.0.1:1883"
    pack_size = 1000                  # records per signed message at most
    pack_age_s = 0.0                  # seal a pack when its oldest record is this old
    window = 256                      # messages in flight beyond the last end-to-end ack
    resend_after_s = 5.0
    send_rate = 500.0                 # messages/s at most, catching up included (0: unpaced)

    [outbox]
    max_bytes = 67108864
    segment_bytes = 262144
    policy = "drop_new"

    [[sources]]
    type = "simulated"
    kind = "meter"
    interval_s = 1.0
"""
import os
import signal
import time
import tomllib

from edgeledger.agent import port, sources
from edgeledger.agent.core import DEFAULT_SEND_RATE, AgentCore
from edgeledger.agent.errors import ConfigError
from edgeledger.agent.mqtt_paho import PahoLink
from edgeledger.agent.outbox import Outbox, next_epoch
from edgeledger.agent.signer import load_key_file
from edgeledger.firmware import crypto
from edgeledger.protocols import session

VERSION = "edgeledger-agent/0.1 (linux)"
IDLE_SLEEP_S = 0.005  # loop sleep when nothing is due: bounds ack latency, costs ~nothing


def load_config(path):
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("cannot read agent config %s: %s" % (path, e))
    for key in ("device", "site", "key_file", "sources"):
        if key not in cfg:
            raise ConfigError("agent config %s: missing %r" % (path, key))
    base = os.path.dirname(os.path.abspath(path))
    cfg["key_file"] = os.path.join(base, cfg["key_file"])
    cfg["state_dir"] = os.path.join(base, cfg.get("state_dir", "var/" + cfg["device"]))
    # credentials sit next to the config in a provisioned bundle (gateway/provision.py)
    if cfg.get("password_file"):
        cfg["password_file"] = os.path.join(base, cfg["password_file"])
    tls = cfg.get("tls") or {}
    for k in ("ca_file", "cert_file", "key_file"):
        if tls.get(k):
            tls[k] = os.path.join(base, tls[k])
    return cfg


def build(cfg, until_seq=None):
    signer = load_key_file(cfg["key_file"])
    if signer.device not in (None, cfg["device"]):
        raise ConfigError("key file %s belongs to %r, config says device %r"
                          % (cfg["key_file"], signer.device, cfg["device"]))
    port.makedirs(cfg["state_dir"])
    ob = cfg.get("outbox", {})
    outbox = Outbox(os.path.join(cfg["state_dir"], "outbox"),
                    max_bytes=int(ob.get("max_bytes", 64 * 1024 * 1024)),
                    segment_bytes=int(ob.get("segment_bytes", 256 * 1024)),
                    policy=ob.get("policy", "drop_new"), hash_fn=crypto.sha256)
    epoch = next_epoch(cfg["state_dir"])
    srcs = [sources.from_config(s) for s in cfg["sources"]]
    core = AgentCore(cfg["device"], signer, outbox, srcs, crypto.sha256, epoch=epoch,
                     pack_size=int(cfg.get("pack_size", 1000)),
                     pack_age_s=float(cfg.get("pack_age_s", 0.0)),
                     window=int(cfg.get("window", 256)),
                     resend_after_s=float(cfg.get("resend_after_s", 5.0)), max_seq=until_seq,
                     send_rate=float(cfg.get("send_rate", DEFAULT_SEND_RATE)))
    return core


def run(cfg, until_seq=None, drain_timeout_s=120.0, log=print):
    """Run until signalled, or until ``until_seq`` is sealed and acked. Returns an exit code."""
    core = build(cfg, until_seq)
    outbox = core.outbox

    def birth():
        return session.encode_birth(VERSION, core.signer.kid, outbox.head_seq, core.epoch,
                                    dict(core.counters, **outbox.counters))

    tls = cfg.get("tls", {})
    password = None
    if cfg.get("password_file"):
        with open(cfg["password_file"]) as f:
            password = f.read().strip()
    link = PahoLink(cfg.get("broker", "mqtt://127.0.0.1:1883"), cfg["site"], cfg["device"],
                    core.epoch, birth, username=cfg.get("username"), password=password,
                    ca_file=tls.get("ca_file"), cert_file=tls.get("cert_file"),
                    key_file=tls.get("key_file"))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append("TERM"))
    signal.signal(signal.SIGINT, lambda *a: stop.append("INT"))
    link.start()
    log("agent %s: epoch %d, outbox head %d, acked %d" % (cfg["device"], core.epoch,
                                                          outbox.head_seq, outbox.acked))
    seen_connects = 0
    drain_deadline = None
    try:
        while not stop:
            now = port.monotonic()
            core.tick(now, time.time())
            while link.acks:
                core.on_ack(link.acks.popleft(), now)
            if link.connected:
                if link.connects != seen_connects:
                    seen_connects = link.connects
                    core.on_connect(now)
                for seq, data in core.to_send(now, limit=256):
                    if not link.publish(data):
                        break
                    core.sent(seq)
            if core.done_sealing():
                if core.drained():
                    log("agent %s: sealed and acked up to seq %d" % (cfg["device"], outbox.head_seq))
                    return 0
                if drain_deadline is None:
                    drain_deadline = now + drain_timeout_s
                elif now > drain_deadline:
                    log("agent %s: %d records still unacked after %.0f s"
                        % (cfg["device"], outbox.pending_count(), drain_timeout_s))
                    return 3
            due = core.next_due()
            time.sleep(max(0.0, min(IDLE_SLEEP_S, (due - now) if due is not None else IDLE_SLEEP_S)))
        return 0
    finally:
        link.stop()
        outbox.close()

"""The agent on a MicroPython board: the counterpart of ``agent/linux.py``.

The image's top-level ``main.py`` calls ``start()``, which reads ``config.json``
and ``board.json`` from the current folder and loops::

    tick      sample due sources, seal and sign packs, persist them (outbox)
    service   reconnect when due (bounded by max_block_ms), read acks, keepalive
    ack       the gateway's end-to-end ack frees outbox records
    publish   records from the outbox, QoS 1, within the in-flight windows
    sleep     until the next source is due (at most IDLE_SLEEP_S)

The link never stalls sampling for longer than ``max_block_ms``: every socket
operation has that timeout, and while the broker is away the loop keeps
sampling into the outbox and retries with exponential backoff.

config.json::

    {"device": "meter-01", "site": "plant-a", "key_file": "meter-01.key",
     "broker": "mqtt://192.168.1.10:1883",        (mqtts:// for TLS)
     "tls": {"ca_file": "ca.pem", "cert_file": "dev.crt", "key_file": "dev.key",
             "server_hostname": "broker.plant-a"},   (all optional)
     "username": "meter-01", "password": "...",    (optional)
     "wifi": {"ssid": "...", "password": "..."},   (boards with "network": wlan)
     "state_dir": "state", "outbox": {"max_bytes": 262144, "segment_bytes": 16384},
     "sources": [{"type": "simulated", "kind": "meter", "interval_s": 1.0},
                 {"type": "modbus", "bus": "rs485", "devices": [...]}],
     "pack_size": 1, "pack_age_s": 0.0, "window": 64, "resend_after_s": 5.0,
     "keepalive": 30, "max_block_ms": 500, "max_backoff_s": 10.0,
     "until_seq": null, "drain_timeout_s": 120}
"""
import gc
import json
import os
import sys

from edgeledger.agent import port, simulated
from edgeledger.agent.core import AgentCore
from edgeledger.agent.errors import ConfigError
from edgeledger.agent.outbox import Outbox
from edgeledger.agent.signer import load_key_file
from edgeledger.firmware import board as boards
from edgeledger.firmware import crypto, mqtt
from edgeledger.protocols import session, topics

VERSION = "edgeledger-agent/0.1 (micropython)"
# Loop sleep when nothing is due: bounds ack and publish latency at a few ms.
IDLE_SLEEP_S = 0.005
# The longest the network may hold the loop (connect, TLS handshake, a stalled write):
# half a second keeps a 1 Hz meter on time. Configurable as max_block_ms.
DEFAULT_MAX_BLOCK_MS = 500
# Records read from the outbox per loop turn: each is in RAM until written to the socket.
SEND_BATCH = 4
# Reconnect backoff: doubles from MIN to MAX after every failed attempt.
MIN_BACKOFF_S = 0.2
DEFAULT_MAX_BACKOFF_S = 10.0
# In-flight end-to-end window on a board: 64 record seqs, no record bytes held.
DEFAULT_WINDOW = 64


def parse_broker_url(url):
    """(tls, host, port) of ``mqtt://host[:port]`` / ``mqtts://...``. Raises ConfigError."""
    for scheme, tls, default in (("mqtt://", False, 1883), ("mqtts://", True, 8883)):
        if url.startswith(scheme):
            rest = url[len(scheme):].rstrip("/")
            host, _, p = rest.partition(":")
            try:
                return tls, host or "127.0.0.1", int(p) if p else default
            except ValueError:
                break
    raise ConfigError("broker must be mqtt://host:port or mqtts://host:port, found %r" % (url,))


def load_config(path):
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError("cannot read device config %s: %s" % (path, e))
    for key in ("device", "site", "key_file", "sources"):
        if key not in cfg:
            raise ConfigError("device config %s: missing %r" % (path, key))
    return cfg


def next_epoch(state_dir):
    """Increment and persist the boot counter (write a new file, then rename)."""
    path = state_dir + "/epoch"
    try:
        with open(path) as f:
            epoch = int(f.read().strip() or 0) + 1
    except (OSError, ValueError):
        epoch = 1
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("%d\n" % epoch)
        port.fsync(f)
    try:
        os.rename(tmp, path)
    except OSError:  # FAT will not rename over an existing file
        os.remove(path)
        os.rename(tmp, path)
    return epoch


def make_source(cfg, board):
    cfg = board.source_config(cfg)
    if cfg.get("type") == "simulated":
        return simulated.from_config(cfg)
    try:
        from edgeledger.agent import sources
    except ImportError:
        raise ConfigError("source type %r: this image (board %s) has no field-bus sources"
                          % (cfg.get("type"), board.name))
    return sources.from_config(cfg)


def build(cfg, board):
    """The AgentCore for ``cfg``. Raises ConfigError, OSError, KeyFileError."""
    signer = load_key_file(cfg["key_file"])
    if signer.device not in (None, cfg["device"]):
        raise ConfigError("key file %s belongs to %r, config says device %r"
                          % (cfg["key_file"], signer.device, cfg["device"]))
    state = cfg.get("state_dir", "state")
    port.makedirs(state)
    ob = dict(board.outbox_defaults())
    ob.update(cfg.get("outbox") or {})
    outbox = Outbox(state + "/outbox", max_bytes=int(ob.get("max_bytes", 262144)),
                    segment_bytes=int(ob.get("segment_bytes", 16384)),
                    policy=ob.get("policy", "drop_new"), hash_fn=crypto.sha256)
    epoch = next_epoch(state)
    srcs = [make_source(s, board) for s in cfg["sources"]]
    return AgentCore(cfg["device"], signer, outbox, srcs, crypto.sha256, epoch=epoch,
                     pack_size=int(cfg.get("pack_size", 1)),
                     pack_age_s=float(cfg.get("pack_age_s", 0.0)),
                     window=int(cfg.get("window", DEFAULT_WINDOW)),
                     resend_after_s=float(cfg.get("resend_after_s", 5.0)),
                     max_seq=cfg.get("until_seq"))


def ssl_context(tls):
    """An ssl.SSLContext verifying the broker against ``ca_file`` (and presenting
    ``cert_file``/``key_file`` for mutual TLS). Raises ConfigError."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if tls.get("ca_file"):
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=tls["ca_file"])
        elif not tls.get("insecure"):
            raise ConfigError("TLS needs tls.ca_file (or tls.insecure = true for a lab broker)")
        else:
            ctx.verify_mode = ssl.CERT_NONE
            ctx.check_hostname = False
        if tls.get("cert_file"):
            ctx.load_cert_chain(tls["cert_file"], tls["key_file"])
    except (OSError, ValueError) as e:
        raise ConfigError("TLS files: %s" % (e,))
    return ctx


class Link:
    """The MQTT session of one device: connect with backoff, birth, ack subscription."""

    def __init__(self, cfg, core, log=print):
        tls, host, port_ = parse_broker_url(cfg.get("broker", "mqtt://127.0.0.1:1883"))
        tls_cfg = cfg.get("tls") or {}
        ctx = ssl_context(tls_cfg) if tls or tls_cfg else None
        max_block_s = int(cfg.get("max_block_ms", DEFAULT_MAX_BLOCK_MS)) / 1000.0
        device, site = cfg["device"], cfg["site"]
        self.core = core
        self.log = log
        self.client = mqtt.MQTTClient("el-dev-" + device, host, port_, cfg.get("username"),
                                      cfg.get("password"), int(cfg.get("keepalive", 30)), ctx,
                                      tls_cfg.get("server_hostname"), timeout_s=max_block_s)
        self.client.set_last_will(topics.death(site, device), session.encode_death(core.epoch),
                                  retain=True, qos=1)
        self.client.on_message = self._on_message
        self.readings = topics.readings(site, device)
        self.ack_topic = topics.ack(site, device)
        self.birth_topic = topics.birth(site, device)
        self.max_backoff_s = float(cfg.get("max_backoff_s", DEFAULT_MAX_BACKOFF_S))
        self.backoff_s = MIN_BACKOFF_S
        self.retry_at = 0.0
        self.ack = None  # highest end-to-end ack received and not yet applied
        self.connects = 0
        self.counters = {"connects": 0, "connect_failures": 0, "link_drops": 0}

    @property
    def connected(self):
        return self.client.sock is not None

    def birth(self):
        c = {}
        for counters in (self.core.counters, self.core.outbox.counters, self.counters):
            for k in counters:
                c[k] = counters[k]
        return session.encode_birth(VERSION, self.core.signer.kid, self.core.outbox.head_seq,
                                    self.core.epoch, c)

    def _on_message(self, topic, payload, retained):
        if topic != self.ack_topic:
            return
        try:
            seq = session.decode_ack(payload)
        except ValueError:
            return  # not our gateway's format; its next ack will do
        if self.ack is None or seq > self.ack:
            self.ack = seq

    def service(self, now, network_ready):
        """Reconnect when due, else read what arrived; blocks at most max_block_ms per step."""
        c = self.client
        if c.sock is None:
            if now < self.retry_at or not network_ready:
                return
            try:
                c.connect()
                c.subscribe(self.ack_topic, 1)
                c.publish(self.birth_topic, self.birth(), retain=True, qos=1)
            except (mqtt.MqttError, OSError) as e:
                self.counters["connect_failures"] += 1
                if self.counters["connect_failures"] & (self.counters["connect_failures"] - 1) == 0:
                    self.log("link: connect failed %d times (%s)"  # logs 1, 2, 4, 8, ... failures
                             % (self.counters["connect_failures"], e))
                self._down(now, e)
                return
            self.connects += 1
            self.counters["connects"] += 1
            self.backoff_s = MIN_BACKOFF_S
            self.log("link: connected to %s:%d" % (c.server, c.port))
            return
        try:
            c.poll()
        except (mqtt.MqttError, OSError) as e:
            self.counters["link_drops"] += 1
            self.log("link: lost (%s)" % (e,))
            self._down(now, e)

    def _down(self, now, err):
        self.client.close()
        self.retry_at = now + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, self.max_backoff_s)

    def room(self):
        c = self.client
        return c.max_inflight - c.inflight() if c.sock is not None else 0

    def publish(self, data, now):
        try:
            self.client.publish(self.readings, data, qos=1)
            return True
        except (mqtt.MqttError, OSError) as e:
            self.counters["link_drops"] += 1
            self.log("link: lost while publishing (%s)" % (e,))
            self._down(now, e)
            return False


def run(cfg_path="config.json", board=None, log=print):
    """Run the agent; returns an exit code (only bounded runs with until_seq return)."""
    board = board or boards.load()
    cfg = load_config(cfg_path)
    core = build(cfg, board)
    link = Link(cfg, core, log)
    board.network_start(cfg)
    outbox = core.outbox
    log("agent %s on %s: epoch %d, outbox head %d, acked %d"
        % (cfg["device"], board.name, core.epoch, outbox.head_seq, outbox.acked))
    drain_timeout_s = float(cfg.get("drain_timeout_s", 120))
    seen_connects = 0
    drain_deadline = None
    while True:
        now = port.monotonic()
        if board.clock_valid(now):
            core.tick(now, board.wall_time())
        link.service(now, board.network_ready())
        if link.ack is not None:
            core.on_ack(link.ack, now)
            link.ack = None
        busy = False
        if link.connected:
            if link.connects != seen_connects:
                seen_connects = link.connects
                core.on_connect(now)
            room = link.room()
            if room > 0:
                for seq, data in core.to_send(now, min(room, SEND_BATCH)):
                    if not link.publish(data, now):
                        break
                    core.sent(seq)
                    busy = True
        if core.done_sealing():
            if core.drained():
                log("agent %s: sealed and acked up to seq %d (connects %d)"
                    % (cfg["device"], outbox.head_seq, link.connects))
                link.client.disconnect()
                outbox.close()
                return 0
            if drain_deadline is None:
                drain_deadline = now + drain_timeout_s
            elif now > drain_deadline:
                log("agent %s: %d records still unacked after %d s"
                    % (cfg["device"], outbox.pending_count(), drain_timeout_s))
                outbox.close()
                return 3
        gc.collect()
        if not busy:
            due = core.next_due()
            wait = IDLE_SLEEP_S if due is None else min(IDLE_SLEEP_S, due - port.monotonic())
            if wait > 0:
                port.sleep(wait)


def start():
    """Entry point of the image's main.py."""
    board = None
    try:
        board = boards.load()
        code = run(board=board)
    except ConfigError as e:
        print("edgeledger: %s" % (e,))
        code = 2
    except Exception as e:  # a crash must not leave a field device dead: reset it
        if hasattr(sys, "print_exception"):
            sys.print_exception(e)
        else:
            print(repr(e))
        code = 1
        if board is not None:
            board.restart()
    sys.exit(code)

"""The agent on a Linux device: ``edgeledger agent run --config agent.toml``.

Reads the TOML config, takes the state directory's lock, opens the outbox, bumps
the boot epoch, starts the paho link and runs the agent core until stopped
(SIGTERM/SIGINT) or, for bounded runs, until ``--until-seq`` messages are sealed
and acknowledged.

* **One agent per state directory.** ``state_dir/agent.lock`` is held (``flock``)
  for the agent's life; a second agent on the same directory exits at once with a
  ConfigError naming the holder's pid, before it touches the outbox: two agents
  would sign two histories for one device (a fork the gateway quarantines).
* **Key rotation without a restart.** The key file is looked at every
  KEY_CHECK_S (and at once on SIGHUP); when it changed and holds a valid key of
  this device, new packs are signed with it from the next one on, and a new birth
  names the new kid. Packs already signed stay as they are: the gateway judges
  each by its own time, and the old key signs validly until the end of the
  rotation overlap. A key file that does not parse (half copied) is tried again
  at the next check; the old key stays in use meanwhile.
* The ``[outbox]`` sizes are checked against each other (``outbox.check_sizes``).

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
    max_bytes = 67108864              # >= segment_bytes + 65552 (a largest record)
    segment_bytes = 262144
    policy = "drop_new"

    [[sources]]
    type = "simulated"
    kind = "meter"
    interval_s = 1.0
"""
import fcntl
import os
import signal
import time
import tomllib

from edgeledger.agent import port, sources
from edgeledger.agent.core import DEFAULT_SEND_RATE, AgentCore
from edgeledger.agent.crypto import sha256
from edgeledger.agent.errors import ConfigError
from edgeledger.agent.mqtt_paho import PahoLink
from edgeledger.agent.outbox import Outbox, check_sizes, next_epoch
from edgeledger.agent.key_file import load_key_file
from edgeledger.protocols import session
from edgeledger.protocols.errors import ProtocolError

VERSION = "edgeledger-agent/0.1 (linux)"
IDLE_SLEEP_S = 0.005  # loop sleep when nothing is due: bounds ack latency, costs ~nothing
# How often the key file is looked at for a rotation: one stat(); a rotation overlap is
# minutes to days, so a second is plenty.
KEY_CHECK_S = 1.0
LOCK_FILE = "agent.lock"
DEFAULT_OUTBOX_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_OUTBOX_SEGMENT_BYTES = 256 * 1024


class StateLock:
    """An exclusive ``flock`` on ``state_dir/agent.lock``, held until ``release``.
    Raises ConfigError if another process holds it."""

    def __init__(self, state_dir):
        port.makedirs(state_dir)
        self.path = os.path.join(state_dir, LOCK_FILE)
        self._f = open(self.path, "a+")
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.seek(0)
            holder = self._f.read().strip() or "?"
            self._f.close()
            raise ConfigError("another agent (pid %s) runs on state directory %s: two agents on one state "
                              "directory would sign two histories for one device" % (holder, state_dir))
        self._f.seek(0)
        self._f.truncate()
        self._f.write("%d\n" % os.getpid())
        self._f.flush()

    def release(self):
        if self._f is not None:
            self._f.close()  # closing the descriptor releases the flock
            self._f = None


class KeyWatch:
    """Notices a replaced key file (rotation) and loads the new key."""

    def __init__(self, path, device, now):
        self.path, self.device = path, device
        self._seen = self._stat()
        self._next = now + KEY_CHECK_S
        self.failed = None  # the last load error, said once

    def _stat(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check(self, now, force=False):
        """A new signer if the key file changed and holds a valid key of this device, else None."""
        if not force and now < self._next:
            return None
        self._next = now + KEY_CHECK_S
        seen = self._stat()
        if seen is None or (seen == self._seen and not force):
            return None
        try:
            signer = load_key_file(self.path)
            if signer.device not in (None, self.device):
                raise ConfigError("key file %s belongs to %r, not %r" % (self.path, signer.device, self.device))
        except (OSError, ValueError, ProtocolError, ConfigError) as e:
            self.failed = e  # keep the old key; look again at the next check
            return None
        self._seen = seen
        self.failed = None
        return signer


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
    max_bytes = int(ob.get("max_bytes", DEFAULT_OUTBOX_MAX_BYTES))
    segment_bytes = int(ob.get("segment_bytes", DEFAULT_OUTBOX_SEGMENT_BYTES))
    check_sizes(max_bytes, segment_bytes)
    outbox = Outbox(os.path.join(cfg["state_dir"], "outbox"), max_bytes=max_bytes, segment_bytes=segment_bytes,
                    policy=ob.get("policy", "drop_new"), hash_fn=sha256)
    epoch = next_epoch(cfg["state_dir"])
    srcs = [sources.from_config(s) for s in cfg["sources"]]
    core = AgentCore(cfg["device"], signer, outbox, srcs, sha256, epoch=epoch,
                     pack_size=int(cfg.get("pack_size", 1000)),
                     pack_age_s=float(cfg.get("pack_age_s", 0.0)),
                     window=int(cfg.get("window", 256)),
                     resend_after_s=float(cfg.get("resend_after_s", 5.0)), max_seq=until_seq,
                     send_rate=float(cfg.get("send_rate", DEFAULT_SEND_RATE)))
    return core


def _say(text):
    print(text, flush=True)  # a line at once, also when stdout is a file


def run(cfg, until_seq=None, drain_timeout_s=120.0, log=_say):
    """Run until signalled, or until ``until_seq`` is sealed and acked. Returns an exit code.
    Raises ConfigError (another agent holds the state directory, a bad config)."""
    lock = StateLock(cfg["state_dir"])
    try:
        return _run(cfg, until_seq, drain_timeout_s, log)
    finally:
        lock.release()


def _run(cfg, until_seq, drain_timeout_s, log):
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
    reload_now = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append("TERM"))
    signal.signal(signal.SIGINT, lambda *a: stop.append("INT"))
    signal.signal(signal.SIGHUP, lambda *a: reload_now.append("HUP"))
    keys = KeyWatch(cfg["key_file"], cfg["device"], port.monotonic())
    core.counters["key_reloads"] = 0
    link.start()
    log("agent %s: epoch %d, outbox head %d, acked %d" % (cfg["device"], core.epoch,
                                                          outbox.head_seq, outbox.acked))
    seen_connects = 0
    drain_deadline = None
    try:
        while not stop:
            now = port.monotonic()
            fresh = keys.check(now, force=bool(reload_now))
            if reload_now and keys.failed is not None:
                log("agent %s: key file %s not loaded, keeping key %s: %s"
                    % (cfg["device"], cfg["key_file"], core.signer.kid.hex(), keys.failed))
            del reload_now[:]
            if fresh is not None and fresh.kid != core.signer.kid:
                log("agent %s: key file changed: signing with key %s from seq %d on (was %s)"
                    % (cfg["device"], fresh.kid.hex(), outbox.head_seq + 1, core.signer.kid.hex()))
                core.signer = fresh
                core.counters["key_reloads"] += 1
                if link.connected:
                    link.publish_birth()
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

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

Config (every key but ``device``, ``site``, ``key_file`` and ``sources`` has a default; the
keys, their types and defaults are the table of ``agent/config.py``, shared with the board)::

    device = "meter-01"
    site = "plant-a"
    key_file = "meter-01.key"
    content_key_file = "owner.ckey"   # optional: encrypt every pack for the data owner
    state_dir = "var/meter-01"        # outbox and epoch live here
    broker = "mqtt://127.0.0.1:1883"
    pack_size = 1000                  # records per signed message at most
    pack_age_s = 0.0                  # seal a pack when its oldest record is this old
    window = 256                      # messages in flight beyond the last end-to-end ack
    resend_after_s = 5.0
    send_rate = 500.0                 # messages/s at most, catching up included (0: unpaced)
    log_level = "warning"             # -v / -q on the command line win
    summary_s = 300.0                 # a summary line on stderr this often (0: never)

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
import logging
import os
import signal
import time
import tomllib
from typing import Callable, TextIO

from edgeledger.agent import config, port, sources
from edgeledger.agent.content_key import load_content_key
from edgeledger.agent.core import AgentCore
from edgeledger.agent.errors import ConfigError
from edgeledger.agent.key_file import load_key_file
from edgeledger.agent.mqtt_paho import PahoLink
from edgeledger.agent.outbox import Outbox, check_sizes, next_epoch
from edgeledger.agent.signer import KeySigner
from edgeledger.protocols.errors import ProtocolError
from edgeledger.protocols.repeats import Repeats, repeated

VERSION = "edgeledger-agent/0.1 (linux)"
IDLE_SLEEP_S = 0.005  # loop sleep when nothing is due: bounds ack latency, costs ~nothing
# How often the key file is looked at for a rotation: one stat(); a rotation overlap is
# minutes to days, so a second is plenty.
KEY_CHECK_S = 1.0
LOCK_FILE = "agent.lock"
console = logging.getLogger("edgeledger.agent")
summary_log = logging.getLogger("edgeledger.summary")  # shown at every level but -q (gateway/observe/logs.py)


class StateLock:
    """An exclusive ``flock`` on ``state_dir/agent.lock``, held until ``release``.
    Raises ConfigError if another process holds it."""

    def __init__(self, state_dir: str) -> None:
        port.makedirs(state_dir)
        self.path = os.path.join(state_dir, LOCK_FILE)
        self._f: TextIO | None = open(self.path, "a+")
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.seek(0)
            holder = self._f.read().strip() or "?"
            self._f.close()
            raise ConfigError("another agent (pid %s) runs on state directory %s: two agents on one state "
                              "directory would sign two histories for one device" % (holder, state_dir)) from None
        self._f.seek(0)
        self._f.truncate()
        self._f.write("%d\n" % os.getpid())
        self._f.flush()

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing the descriptor releases the flock
            self._f = None


class KeyWatch:
    """Notices a replaced key file (rotation) and loads the new key."""

    def __init__(self, path: str, device: str, now: float) -> None:
        self.path, self.device = path, device
        self._seen = self._stat()
        self._next = now + KEY_CHECK_S
        self.failed: Exception | None = None  # the last load error, said once

    def _stat(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check(self, now: float, force: bool = False) -> KeySigner | None:
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


class Console:
    """What the agent says on stderr while it runs: a failing source (the first failure at
    once, the same one again less and less often with a count, protocols/repeats.py), and a
    summary line every ``summary_s`` (0: never)."""

    def __init__(self, cfg: dict, now: float) -> None:
        self.device = cfg["device"]
        self.every = cfg["summary_s"]
        self._next = now + self.every if self.every else None
        self._errors_seen = 0
        self._quiet = Repeats()

    def tick(self, core: AgentCore, link: PahoLink, now: float) -> None:
        errors = core.counters["source_errors"]
        if errors != self._errors_seen and core.source_error is not None:
            self._errors_seen = errors
            name, text = core.source_error
            unsaid = self._quiet.say((name, text), now)
            if unsaid is not None:
                console.warning("agent %s: source %s failed: %s (signed as a %s/status record)%s",
                                self.device, name, text, name, repeated(unsaid))
        if self._next is not None and now >= self._next:
            self._next = now + self.every
            summary_log.info("%s", self.summary(core, link))

    def summary(self, core: AgentCore, link: PahoLink) -> str:
        c, ob = core.counters, core.outbox
        return ("agent %s: sealed %d, acked up to seq %d of %d, outbox %d pending, published %d, resends %d, "
                "source errors %d, outbox refused %d, broker %s"
                % (self.device, c["sealed"], ob.acked, ob.head_seq, ob.pending_count(), c["published"],
                   c["resends"], c["source_errors"], c["outbox_refused"],
                   "connected" if link.connected else "NOT connected"))


def load_config(path: str) -> dict:
    """The agent's settings from the TOML file ``path``: every key of ``agent/config.py``
    present (defaults filled in, types checked), file names made absolute against the
    config's folder. Raises ConfigError."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError("cannot read agent config %s: %s" % (path, e)) from e
    cfg = config.agent_settings(raw, False, "agent config %s" % path)
    base = os.path.dirname(os.path.abspath(path))
    cfg["key_file"] = os.path.join(base, cfg["key_file"])
    if cfg["content_key_file"]:
        cfg["content_key_file"] = os.path.join(base, cfg["content_key_file"])
    cfg["state_dir"] = os.path.join(base, cfg["state_dir"] or "var/" + cfg["device"])
    # credentials sit next to the config in a provisioned bundle (gateway/provision.py)
    if cfg["password_file"]:
        cfg["password_file"] = os.path.join(base, cfg["password_file"])
    tls = cfg["tls"] = dict(cfg["tls"] or {})
    for k in ("ca_file", "cert_file", "key_file"):
        if tls.get(k):
            tls[k] = os.path.join(base, tls[k])
    return cfg


def build(cfg: dict, until_seq: int | None = None) -> AgentCore:
    """The agent core of ``cfg`` (``load_config``'s settings). Raises ConfigError,
    OSError, KeyFileError (a device or content key file)."""
    signer = load_key_file(cfg["key_file"])
    if signer.device not in (None, cfg["device"]):
        raise ConfigError("key file %s belongs to %r, config says device %r"
                          % (cfg["key_file"], signer.device, cfg["device"]))
    port.makedirs(cfg["state_dir"])
    ob = cfg["outbox"]
    check_sizes(ob["max_bytes"], ob["segment_bytes"])
    digest = config.chain_digest(cfg["chain_hash"])
    outbox = Outbox(os.path.join(cfg["state_dir"], "outbox"), max_bytes=ob["max_bytes"],
                    segment_bytes=ob["segment_bytes"], policy=ob["policy"], hash_fn=digest,
                    flush_interval_s=ob["flush_interval_s"])
    srcs = [sources.from_config(s) for s in cfg["sources"]]
    content_key = load_content_key(cfg["content_key_file"]) if cfg["content_key_file"] else None
    return AgentCore(cfg["device"], signer, outbox, srcs, digest, epoch=next_epoch(cfg["state_dir"]),
                     pack_size=cfg["pack_size"], pack_age_s=cfg["pack_age_s"], window=cfg["window"],
                     resend_after_s=cfg["resend_after_s"], max_seq=until_seq, send_rate=cfg["send_rate"],
                     content_key=content_key)


def _say(text: str) -> None:
    print(text, flush=True)  # a line at once, also when stdout is a file


def run(cfg: dict, until_seq: int | None = None, drain_timeout_s: float = 120.0,
        log: Callable[[str], None] = _say) -> int:
    """Run until signalled, or until ``until_seq`` is sealed and acked. Returns an exit code.
    Raises ConfigError (another agent holds the state directory, a bad config)."""
    lock = StateLock(cfg["state_dir"])
    try:
        return _run(cfg, until_seq, drain_timeout_s, log)
    finally:
        lock.release()


def _link(cfg: dict, core: AgentCore) -> PahoLink:
    password = None
    if cfg["password_file"]:
        with open(cfg["password_file"]) as f:
            password = f.read().strip()
    tls = cfg["tls"]
    return PahoLink(cfg["broker"], cfg["site"], cfg["device"], core.epoch, lambda: core.birth(VERSION),
                    username=cfg["username"], password=password, ca_file=tls.get("ca_file"),
                    cert_file=tls.get("cert_file"), key_file=tls.get("key_file"), keepalive=cfg["keepalive"],
                    max_backoff_s=cfg["max_backoff_s"])


class _Signals:
    """SIGTERM/SIGINT ask the loop to stop, SIGHUP to look at the key file now."""

    def __init__(self) -> None:
        self.stop: list[str] = []
        self.reload: list[str] = []
        signal.signal(signal.SIGTERM, lambda *a: self.stop.append("TERM"))
        signal.signal(signal.SIGINT, lambda *a: self.stop.append("INT"))
        signal.signal(signal.SIGHUP, lambda *a: self.reload.append("HUP"))


def _rotate_key(cfg: dict, core: AgentCore, link: PahoLink, keys: KeyWatch, force: bool, now: float,
                log: Callable[[str], None]) -> None:
    """Sign with a replaced key file's key from the next pack on (module docstring)."""
    fresh = keys.check(now, force=force)
    if force and keys.failed is not None:
        log("agent %s: key file %s not loaded, keeping key %s: %s"
            % (cfg["device"], cfg["key_file"], core.signer.kid.hex(), keys.failed))
    if fresh is not None and fresh.kid != core.signer.kid:
        log("agent %s: key file changed: signing with key %s from seq %d on (was %s)"
            % (cfg["device"], fresh.kid.hex(), core.outbox.head_seq + 1, core.signer.kid.hex()))
        core.signer = fresh
        core.counters["key_reloads"] += 1
        if link.connected:
            link.publish_birth()


def _drained(cfg: dict, core: AgentCore, now: float, deadline: list, drain_timeout_s: float,
             log: Callable[[str], None]) -> int | None:
    """The exit code once a bounded run is done: 0 when every sealed record is acked, 3 when
    some are not after ``drain_timeout_s``; None while it goes on. ``deadline`` is a
    one-item list holding the drain deadline, None until sealing ends."""
    if not core.done_sealing():
        return None
    if core.drained():
        log("agent %s: sealed and acked up to seq %d" % (cfg["device"], core.outbox.head_seq))
        return 0
    if deadline[0] is None:
        deadline[0] = now + drain_timeout_s
    elif now > deadline[0]:
        log("agent %s: %d records still unacked after %.0f s"
            % (cfg["device"], core.outbox.pending_count(), drain_timeout_s))
        return 3
    return None


def _run(cfg: dict, until_seq: int | None, drain_timeout_s: float, log: Callable[[str], None]) -> int:
    core = build(cfg, until_seq)
    outbox = core.outbox
    link = _link(cfg, core)
    signals = _Signals()
    keys = KeyWatch(cfg["key_file"], cfg["device"], port.monotonic())
    shown = Console(cfg, port.monotonic())
    core.counters["key_reloads"] = 0
    link.start()
    log("agent %s: epoch %d, outbox head %d, acked %d" % (cfg["device"], core.epoch,
                                                          outbox.head_seq, outbox.acked))
    deadline: list = [None]
    try:
        while not signals.stop:
            now = port.monotonic()
            _rotate_key(cfg, core, link, keys, bool(signals.reload), now, log)
            del signals.reload[:]
            core.step(now, time.time(), link)
            shown.tick(core, link, now)
            code = _drained(cfg, core, now, deadline, drain_timeout_s, log)
            if code is not None:
                return code
            due = core.next_due()
            time.sleep(max(0.0, min(IDLE_SLEEP_S, (due - now) if due is not None else IDLE_SLEEP_S)))
        return 0
    finally:
        link.stop()
        outbox.close()

"""The agent on a MicroPython board: the counterpart of ``agent/linux.py``.

The image's top-level ``main.py`` calls ``start()``. Start-up (``startup.py``:
read ``config.json``, ``board.json`` and the key file, recover the outbox,
build the agent core and the MQTT client) runs once and is then dropped from
the heap; this module keeps only the loop::

    feed      the watchdog (machine.WDT; a recording shim on the unix port)
    tick      sample due sources, step the field-bus ones (never waiting for a meter),
              seal and sign packs, persist them (outbox)
    link      reconnect when due (bounded by max_block_ms; TLS only once the clock
              is valid), else read acks, keepalive
    ack       the gateway's end-to-end ack frees outbox records
    publish   records from the outbox, QoS 1, within the in-flight windows
    collect   after a tick that signed (its big-integer garbage) and before a connect,
              else only when less than GC_LOW_WATER bytes are free
    sleep     until the next source, step, reconnect, keepalive or resend is due, or
              the broker sends something (select.poll on the socket); at most half
              the watchdog timeout

The link never stalls sampling for longer than ``max_block_ms``: every socket
operation (name lookup included) has that timeout, and while the broker is away
the loop keeps sampling into the outbox and retries with exponential backoff. A
turn that runs out of memory is counted and skipped; only a lasting shortage
resets the board.

config.json::

    {"device": "meter-01", "site": "plant-a", "key_file": "meter-01.key",
     "broker": "mqtt://192.168.1.10:1883",        (mqtts:// for TLS)
     "tls": {"ca_file": "ca.pem", "cert_file": "dev.crt", "key_file": "dev.key",
             "server_hostname": "broker.plant-a"},   (all optional)
     "username": "meter-01", "password": "...",    (optional)
     "wifi": {"ssid": "...", "password": "..."},   (boards with "network": wlan)
     "state_dir": "state", "outbox": {"max_bytes": 262144, "segment_bytes": 16384,
                                     "flush_interval_s": 30},
     "sources": [{"type": "simulated", "kind": "meter", "interval_s": 1.0},
                 {"type": "modbus", "bus": "rs485", "devices": [...]}],
     "pack_size": 64, "pack_age_s": 0.0, "window": 64, "resend_after_s": 5.0,
     "keepalive": 30, "max_block_ms": 500, "max_backoff_s": 10.0, "watchdog_s": 8,
     "until_seq": null, "drain_timeout_s": 120}
"""
import gc
import sys

from edgeledger.agent import errors, port
from edgeledger.firmware import board as boards

VERSION = "edgeledger-agent/0.1 (micropython)"
# Records read from the outbox per loop turn: each is in RAM until written to the socket.
SEND_BATCH = 4
# Reconnect backoff: doubles from MIN_BACKOFF_S to max_backoff_s after every failed attempt.
MIN_BACKOFF_S = 0.2
# A collection runs after a turn that leaves less than this free: twice what one turn's
# short-lived objects need at most (a signature's big integers, ~3 KB, and a message's
# buffers, ~1 KB; docs/firmware.md "What the heap needs"). The GC also runs by itself
# when an allocation finds no room.
GC_LOW_WATER = 8192
# Turns in a row that may run out of memory before the loop gives up (``start`` then
# resets the board): a few, so a transient peak (a long pack, fragmentation) passes.
MAX_MEMORY_ERRORS = 8


class Link:
    """The board's MQTT client as ``AgentCore.step`` sees a link. ``service`` is the turn's
    I/O: after a tick that signed, a collection; then a connect when one is due (network up,
    for TLS a valid clock, the backoff over), else reading what arrived. Acks arrive through
    ``on_message`` (the highest is kept). (Its names reuse ones the board already holds:
    every new name is a permanent qstr, see agent/config.py.) A read or publish that fails closes the client and
    is counted; ``counters`` (connects, connect_failures, link_drops, memory_errors) ride in
    the birth message; ``retry_at``/``backoff_s`` pace reconnects."""

    def __init__(self, client, names, core, board, tls, max_backoff_s, log):
        self.client = client
        self.topics = names  # readings, ack, birth
        self.core, self.board, self.tls, self.log = core, board, tls, log
        self.max_backoff_s = max_backoff_s
        self.ack = None  # highest end-to-end ack received and not yet applied
        self.connects = 0
        self.error = None
        self.counters = {"connects": 0, "connect_failures": 0, "link_drops": 0, "memory_errors": 0}
        self.retry_at = 0.0
        self.backoff_s = MIN_BACKOFF_S
        client.on_message = self.on_message

    @property
    def connected(self):
        return self.client.sock is not None

    def on_message(self, topic, payload, retained):
        if topic == self.topics[1]:
            from edgeledger.protocols import session

            try:
                seq = session.decode_ack(payload)
            except ValueError:
                return  # not our gateway's format; its next ack will do
            if self.ack is None or seq > self.ack:
                self.ack = seq

    def take_acks(self):
        seq, self.ack = self.ack, None
        return () if seq is None else (seq,)

    def room(self):
        """Readings to hand the client this turn: its free QoS 1 window, SEND_BATCH at most."""
        if self.client.sock is None:
            return 0
        return min(self.client.max_inflight - self.client.inflight(), SEND_BATCH)

    def publish(self, data):
        from edgeledger.firmware.mqtt import MqttError

        try:
            self.client.publish(self.topics[0], data, qos=1)
        except (MqttError, OSError) as e:
            self.error = e
            self.client.close()
            return False
        return True

    def connect(self):
        """Connect, subscribe to the acks and publish the birth (retained). Raises MqttError,
        OSError."""
        gc.collect()  # a connect needs room for the socket, TLS and its packets
        client = self.client
        client.connect()
        client.subscribe(self.topics[1], 1)
        client.publish(self.topics[2], self.core.birth(VERSION, self.counters), retain=True, qos=1)
        self.counters["connects"] += 1
        self.connects += 1
        self.backoff_s = MIN_BACKOFF_S
        self.log("link: connected to %s:%d" % (client.server, client.port))

    def service(self, now, sealed):
        """The turn's I/O (class docstring). A failure is counted and retried after the backoff."""
        from edgeledger.firmware.mqtt import MqttError

        if sealed:
            gc.collect()  # signing left big-integer garbage: clear it before the link
        if self.client.sock is not None:
            try:
                self.client.poll()
            except (MqttError, OSError) as e:
                self.error = e
            self.check(now)
        elif now >= self.retry_at and self.board.network_ready() and (not self.tls or self.board.clock_valid(now)):
            try:
                self.connect()
            except (MqttError, OSError) as e:
                c = self.counters
                n = c["connect_failures"] = c["connect_failures"] + 1
                if n & (n - 1) == 0:  # logs 1, 2, 4, 8, ... failures
                    self.log("link: connect failed %d times (%s)" % (n, e))
                self.lost(now)

    def check(self, now):
        """After a read or a publish failed: count the drop, say so, back off."""
        if self.error is not None:
            self.counters["link_drops"] += 1
            self.log("link: lost (%s)" % (self.error,))
            self.error = None
            self.lost(now)

    def lost(self, now):
        """Close the link and retry after the backoff, which doubles up to max_backoff_s."""
        self.client.close()
        self.retry_at = now + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, self.max_backoff_s)


def _sleep(core, link, idle_max_s, poller):
    """Sleep until a source, a step, a reconnect, the keepalive or a resend is due, or the
    broker sends something (select.poll on the socket), at most ``idle_max_s``. Returns the
    poller, kept for the socket it watches."""
    client = link.client
    wait = idle_max_s
    due = core.next_due()
    now = port.monotonic()
    if due is not None:
        wait = min(wait, due - now)
    sock = client.sock
    if sock is None:
        wait = min(wait, link.retry_at - now)
    else:
        wait = min(wait, core.resend_after_s, client.keepalive / 2 if client.keepalive else wait)
    if wait > 0 and sock is None:
        port.sleep(wait + 0.001)  # whole milliseconds: never wake just before the time
    elif wait > 0:  # wake early when the broker sends (an ack)
        if poller is None or poller[0] is not sock:
            import select

            poller = (sock, select.poll())
            poller[1].register(sock, select.POLLIN)
        poller[1].poll(int(wait * 1000) + 1)
    return poller


def _finished(core, link, now, drain, log):
    """The exit code of a bounded run (until_seq) once it is over, else None: 0 when every
    sealed record is acked, 3 when some are not by the drain deadline. ``drain`` is
    [deadline or None, drain_timeout_s]."""
    if not core.done_sealing():
        return None
    outbox = core.outbox
    if core.drained():
        log("agent %s: sealed and acked up to seq %d (connects %d)"
            % (core.device_id, outbox.head_seq, link.counters["connects"]))
        link.client.disconnect()
        outbox.close()
        return 0
    if drain[0] is None:
        drain[0] = now + drain[1]
    elif now > drain[0]:
        log("agent %s: %d records still unacked after %d s" % (core.device_id, outbox.pending_count(), drain[1]))
        outbox.close()
        return 3
    return None


def loop(board, core, client, names, max_backoff_s=10.0, drain_timeout_s=120.0, log=print,
         tls=False, feed=None, idle_max_s=None):
    """The loop as a generator: every ``next()`` runs one turn and yields the link's
    counters; it returns (StopIteration) the exit code of a bounded run (until_seq).
    ``names`` are the readings, ack and birth topics; ``tls`` says the link needs a valid
    clock (certificate validity) before it connects; ``feed`` (the watchdog's) is called
    every turn. With ``idle_max_s`` it sleeps after a turn until something is due or the
    broker sends something, at most ``idle_max_s``; without it, never (a test or the
    32-bit bench drives it turn by turn).

    Raises what the core raises (OSError from the flash), and MemoryError after
    MAX_MEMORY_ERRORS turns in a row ran out of memory. (A generator, not a class: its
    state lives in one frame, which costs a board less heap than an object's attributes.)
    """
    link = Link(client, names, core, board, tls, max_backoff_s, log)
    drain = [None, drain_timeout_s]
    oom = 0
    poller = None
    log("agent %s on %s: epoch %d, outbox head %d, acked %d"
        % (core.device_id, board.name, core.epoch, core.outbox.head_seq, core.outbox.acked))
    while True:
        now = port.monotonic()
        if feed is not None:
            feed()
        busy = False
        try:
            # one turn: sample and sign, the link's I/O (connect, or read acks), publish
            busy = core.step(now, board.wall_time(), link, board.clock_valid(now))[1] > 0
            link.check(now)
            oom = 0
        except MemoryError as e:
            # Nothing accepted is lost: a pack that could not be signed stays pending, a
            # record is freed only after the gateway's ack. Drop the link's buffers, collect,
            # go on; only a lasting shortage reaches start(), which resets the board.
            oom += 1
            link.counters["memory_errors"] += 1
            link.client.close()
            link.retry_at = now + link.backoff_s
            gc.collect()
            if oom > MAX_MEMORY_ERRORS:
                raise e
            log("agent: out of memory (%d in a row)" % oom)
        code = _finished(core, link, now, drain, log)
        if code is not None:
            return code
        if gc.mem_free() < GC_LOW_WATER:
            gc.collect()
        if idle_max_s and not busy:
            poller = _sleep(core, link, idle_max_s, poller)
        yield link.counters


def run(board, core, client, names, max_backoff_s=10.0, drain_timeout_s=120.0, log=print,
        tls=False, watchdog_s=boards.WATCHDOG_S):
    """Run the loop; returns an exit code (only bounded runs with until_seq return).

    Starts the board's watchdog and feeds it every turn; no turn and no sleep lasts
    longer than half its timeout. Raises what ``loop`` raises.
    """
    feed = board.watchdog(watchdog_s, port.monotonic)
    turns = loop(board, core, client, names, max_backoff_s, drain_timeout_s, log, tls, feed,
                 watchdog_s / 2)
    try:
        while True:
            next(turns)
    except StopIteration as e:
        return e.args[0] if e.args else 0
    finally:
        w = getattr(board, "wdt", None)  # the unix port: say what a watchdog would have done
        if w:
            log("watchdog: fed %d times, longest gap %.2f s, would reset %d" % (w[3], w[4], w[5]))


def start():
    """Entry point of the image's main.py: start up, drop start-up code, loop; exits.

    A crash (MemoryError included) resets a board after ``Board.restart``'s delay; the
    boot counter is written only by a boot that signs, so a board that keeps failing at
    start does not rewrite its flash on every boot.
    """
    board = None
    try:
        board = boards.load()
        from edgeledger.firmware import startup

        core, args, will, names, limits = startup.prepare("config.json", board)
        startup = None  # prepare() dropped its modules from sys.modules: let the GC free them
        gc.collect()
        from edgeledger.firmware.mqtt import MQTTClient

        client = MQTTClient(*args)
        if board.nic is not None:  # a board's own interface: bounded name lookups
            from edgeledger.firmware.netclock import resolver

            client.resolve = resolver(board.nic)
        client.set_last_will(*will)
        args = will = None
        code = run(board, core, client, names, **limits)
    except errors.ConfigError as e:
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

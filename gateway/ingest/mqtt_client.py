"""The gateway's MQTT 3.1.1 connection: a plain socket (TLS-wrapped for ``mqtts://``) and the
project's sans-IO codec (``protocols/mqtt.py``); no third-party MQTT library.

One network thread owns the socket: it connects, reads, dispatches and writes. Other threads
only queue bytes (``ack``, ``publish``, ``subscribe``) and wake it, so a TLS socket is never
read and written by two threads at once (OpenSSL does not allow it)::

    network thread                                              any thread
    --------------                                              ----------
    connect ─► [TLS handshake] ─► CONNECT ─► CONNACK            ack(pids) / publish() / subscribe()
      └─► on_connect(session_present)                             append whole packets to the
    loop:                                                         out buffer, wake the network
      select(socket, wake) ─► recv_into(framer.space())           thread
        ─► take_publishes(): QoS 1 PUBLISH ─► on_publish
        ─► next_packet(): SUBACK, PUBACK, PINGRESP, QoS 0 PUBLISH
      out buffer ─► one sendall
      keepalive: PINGREQ when the line was quiet for KEEPALIVE_S, drop it when no answer
    error ─► close ─► on_disconnect(reason, error) ─► wait (backoff) ─► connect again
    stop() ─► flush the out buffer ─► DISCONNECT ─► close

Nothing raises out of the network thread: a broker that cannot be reached, refuses the
CONNECT, closes the connection, stops answering or sends bytes that are not MQTT
(``MqttPacketError``; MQTT over TCP has no resynchronisation, §4.8) ends the connection, is
counted and reported through ``on_disconnect``, and the client connects again after
MIN_BACKOFF_S, doubled per failure in a row up to MAX_BACKOFF_S.

The session is persistent (CONNECT with clean session 0): while the gateway is away the
broker keeps its subscriptions and queues QoS 1 messages, and on reconnection sends again
every message it has not seen a PUBACK for (§4.4). The caller decides when to PUBACK; the
client resends its own unacknowledged QoS 1 publishes with the DUP flag.
"""
import logging
import select
import socket
import ssl
import threading
import time
from typing import Callable

from edgeledger.gateway.errors import ConfigError, GatewayError
from edgeledger.protocols import mqtt
from edgeledger.protocols.mqtt import MqttPacketError

log = logging.getLogger("edgeledger.gateway")

# The framer's buffer: what one recv_into can take (a few hundred signed readings of ~250
# bytes: one system call per burst, as the load generator's RECV_BYTES). The caller's
# ``max_packet`` raises it when its messages may be larger.
RECV_BUFFER = 1 << 18
# The largest packet taken from the broker: whatever MQTT can frame (§2.2.3), as paho-mqtt
# took it. The broker is what bounds message size (the generated configuration's
# max_packet_size); a larger message that an unbounded broker delivers grows the buffer for
# that one packet, reaches the pipeline whole and is quarantined there as oversized, instead
# of breaking the connection and coming back after every reconnect.
MAX_PACKET_TAKEN = mqtt.MAX_REMAINING + 5
# A TCP connect, TLS handshake and CONNACK each get this long (a broker on the site LAN
# answers in milliseconds; a loaded one in seconds).
CONNECT_TIMEOUT_S = 10.0
# A write that the kernel cannot take for this long means the broker stopped reading.
IO_TIMEOUT_S = 30.0
# Reconnection delay: MIN_BACKOFF_S after a failure, doubled per failure in a row up to
# MAX_BACKOFF_S (the values paho-mqtt's reconnect_delay_set had here); reset once a
# connection has lasted STABLE_S, so a broker that kicks the client at once is not hammered.
MIN_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
STABLE_S = 10.0
# Our own QoS 1 publishes awaiting the broker's PUBACK, resent on reconnection (§4.4). A
# newer publish to the same topic replaces the older one (the gateway publishes retained
# state: the latest ack of a device is all that matters); past this many topics the oldest
# is forgotten and counted (``forgotten``): half the 16-bit packet id space (§2.3.1), so a
# free id is always near.
MAX_INFLIGHT = 32768


class BrokerError(GatewayError):
    """The broker could not be reached or the connection broke (translated from OSError and
    ssl.SSLError), or the broker did not speak MQTT as expected."""


class BrokerRefused(BrokerError):
    """The broker refused the CONNECT; ``code`` is the CONNACK return code (§3.2.2.3)."""

    def __init__(self, code: int) -> None:
        reason = mqtt.CONNACK_REFUSALS[code - 1] if 1 <= code <= len(mqtt.CONNACK_REFUSALS) else "unknown code"
        BrokerError.__init__(self, "broker refused the CONNECT: %s (CONNACK return code %d)" % (reason, code))
        self.code = code


class Keepalive:
    """The keepalive rule of §3.1.2.10 as a small state machine, clock passed in.

    ``due(now)`` says what to do: ``PING`` when nothing was sent or received for
    ``interval`` seconds (the client must send a packet within the interval, and silence
    from the broker is worth a question); ``DEAD`` when a PINGREQ got no answer (any packet
    counts) within ``interval``; None otherwise. ``wait(now)`` is how long until the next
    decision."""

    PING = "ping"
    DEAD = "dead"

    def __init__(self, interval: float, now: float) -> None:
        self.interval = interval
        self.last_out = self.last_in = now
        self.ping_at: float | None = None

    def sent(self, now: float) -> None:
        self.last_out = now

    def received(self, now: float) -> None:
        self.last_in = now
        self.ping_at = None

    def pinged(self, now: float) -> None:
        self.ping_at = self.last_out = now

    def due(self, now: float) -> str | None:
        if self.interval <= 0:  # keepalive 0: switched off (§3.1.2.10)
            return None
        if self.ping_at is not None:
            return self.DEAD if now - self.ping_at >= self.interval else None
        if now - min(self.last_out, self.last_in) >= self.interval:
            return self.PING
        return None

    def wait(self, now: float) -> float:
        if self.interval <= 0:
            return 60.0
        start = self.ping_at if self.ping_at is not None else min(self.last_out, self.last_in)
        return max(0.0, start + self.interval - now)


def tls_context(ca_file: str | None = None, cert_file: str | None = None,
                key_file: str | None = None) -> ssl.SSLContext:
    """A client TLS context: the system's trust store or ``ca_file``, the host name checked,
    and a client certificate when ``cert_file`` is given. Raises ConfigError for a file that
    cannot be read or is not a certificate/key."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("MQTT TLS: expected readable PEM files (ca %r, cert %r, key %r), found %s"
                          % (ca_file, cert_file, key_file, e)) from e
    return ctx


class MqttClient:
    """A persistent-session MQTT 3.1.1 subscriber with manual acknowledgement.

    Callbacks run on the network thread and must not block for long (``on_publish`` may
    block: the client then stops reading and TCP pushes back on the broker):

    * ``on_connect(session_present)`` after an accepted CONNACK;
    * ``on_publish(topic, payload, packet_id, qos)`` for every PUBLISH (payload ``bytes``;
      ``packet_id`` 0 for QoS 0); the caller acknowledges QoS 1 with ``ack``;
    * ``on_subscribe(filters, granted)`` for every SUBACK (granted: the return codes,
      ``mqtt.SUBACK_FAILURE`` for a refused filter);
    * ``on_disconnect(reason, error, was_connected)`` when a connection (``was_connected``)
      or an attempt ends, unless ``stop()`` ended it; ``error`` is the BrokerError or
      MqttPacketError.

    Counters: ``connects`` (CONNACKs accepted), ``failures`` (connections or attempts that
    ended in an error), ``packet_errors`` (of those, bytes that were not MQTT), ``forgotten``
    (MAX_INFLIGHT overflow).
    """

    def __init__(self, host: str, port: int, client_id: str, keepalive: int = 30, username: str | None = None,
                 password: str | None = None, ssl_context: ssl.SSLContext | None = None,
                 max_packet: int = mqtt.DEFAULT_MAX_PACKET) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.keepalive = keepalive
        self.username, self.password = username, password
        self.ssl_context = ssl_context
        self.buffer_size = max(RECV_BUFFER, max_packet)
        self.on_connect: Callable[[bool], None] | None = None
        self.on_publish: Callable[[str, bytes, int, int], None] | None = None
        self.on_subscribe: Callable[[list[tuple[str, int]], bytes], None] | None = None
        self.on_disconnect: Callable[[str, Exception, bool], None] | None = None
        self.connected = threading.Event()
        self.connects = self.failures = self.packet_errors = self.forgotten = 0
        self._lock = threading.Lock()  # guards _out, _woken, _inflight, _subs, _next_id
        # Whole packets waiting for the network thread. Not bounded here: what goes in is the
        # PUBACKs and acks of what the worker committed, itself bounded by the service's inbox.
        self._out = bytearray()
        self._woken = False
        self._inflight: dict[str, tuple[int, bytes]] = {}  # topic -> (packet id, PUBLISH)
        self._inflight_ids: dict[int, str] = {}
        self._subs: dict[int, list[tuple[str, int]]] = {}  # SUBSCRIBE packet id -> filters
        self._next_id = 0
        self._sock: socket.socket | None = None
        self._framer = mqtt.Framer(MAX_PACKET_TAKEN, self.buffer_size)
        self._keepalive = Keepalive(keepalive, time.monotonic())
        self._stop = threading.Event()
        # made by start(), closed by stop(): a client that never runs holds no sockets
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="mqtt-network", daemon=True)

    # -- any thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread: connect, and keep connected until ``stop``."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, send DISCONNECT (§3.14: the broker then drops the will),
        close and end the network thread (waits up to ``timeout``)."""
        self._stop.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def ack(self, packet_ids: list[int]) -> None:
        """PUBACK (§3.4) each of ``packet_ids``, all in one write. Queued while disconnected:
        the broker sends those messages again with the same ids (§4.4), and the PUBACKs go
        out after the next CONNACK."""
        if packet_ids:
            self._queue(b"".join([mqtt.puback(pid) for pid in packet_ids]))

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1. Kept until the broker's PUBACK and sent again (DUP) after a
        reconnection; a later publish to the same topic replaces one still waiting."""
        with self._lock:
            old = self._inflight.pop(topic, None)
            if old is not None:
                del self._inflight_ids[old[0]]
            elif len(self._inflight) >= MAX_INFLIGHT:
                oldest = next(iter(self._inflight))
                del self._inflight_ids[self._inflight.pop(oldest)[0]]
                self.forgotten += 1
            pid = self._packet_id()
            packet = mqtt.publish(topic, payload, pid, qos=1, retain=retain)
            self._inflight[topic] = (pid, packet)
            self._inflight_ids[pid] = topic
            self._out += packet
        self._wake()

    def subscribe(self, filters: list[tuple[str, int]]) -> bool:
        """SUBSCRIBE to ``filters`` [(topic filter, qos)]; the answer comes to
        ``on_subscribe``. Returns False (nothing sent) while not connected: subscribe again
        from ``on_connect``."""
        if not self.connected.is_set():
            return False
        with self._lock:
            pid = self._packet_id()
            self._subs[pid] = list(filters)
            self._out += mqtt.subscribe(pid, filters)
        self._wake()
        return True

    def _packet_id(self) -> int:
        """A free packet id, 1..65535 (§2.3.1); called with the lock held."""
        while True:
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._inflight_ids and self._next_id not in self._subs:
                return self._next_id

    def _queue(self, data: bytes) -> None:
        with self._lock:
            self._out += data
        self._wake()

    def _wake(self) -> None:
        wake_w = self._wake_w
        if wake_w is None or threading.current_thread() is self._thread:
            return  # not started, or the network thread itself: it flushes before it selects
        with self._lock:
            if self._woken:
                return
            self._woken = True
        try:
            wake_w.send(b"\0")
        except OSError:  # full (it is already awake) or closed (stopped)
            pass

    # -- network thread -------------------------------------------------------------------------

    def _run(self) -> None:
        delay = MIN_BACKOFF_S
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._connect()
                self._serve()
            except Exception as e:  # nothing raises out of the network thread
                was_connected = self.connected.is_set()
                self._close()
                if self._stop.is_set():
                    break
                self.failures += 1
                if isinstance(e, MqttPacketError):
                    self.packet_errors += 1
                elif not isinstance(e, BrokerError):  # a bug, or a callback that raised
                    log.exception("MQTT network thread: unexpected error; reconnecting")
                if time.monotonic() - started >= STABLE_S:
                    delay = MIN_BACKOFF_S
                if self.on_disconnect is not None:
                    self._callback(self.on_disconnect, str(e), e, was_connected)
                if self._stop.wait(delay):
                    break
                delay = min(2 * delay, MAX_BACKOFF_S)
        self._close(orderly=True)

    def _callback(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("MQTT callback %s raised", getattr(fn, "__name__", fn))

    def _connect(self) -> None:
        """TCP, TLS, CONNECT, CONNACK. Raises BrokerError, BrokerRefused, MqttPacketError."""
        try:
            raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        except OSError as e:
            raise BrokerError("cannot reach the broker at %s:%d: %s" % (self.host, self.port, e)) from e
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = raw
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(raw, server_hostname=self.host)
            sock.sendall(mqtt.connect(self.client_id, self.keepalive, False, None, self.username, self.password))
        except OSError as e:  # ssl.SSLError (a certificate not trusted, a handshake refused) included
            raw.close()
            raise BrokerError("connecting to %s:%d: %s" % (self.host, self.port, e)) from e
        self._attach(sock)
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        framer = self._framer
        packet = framer.next_packet()
        while packet is None:
            if time.monotonic() > deadline:
                raise BrokerError("no CONNACK from %s:%d within %.0f s" % (self.host, self.port, CONNECT_TIMEOUT_S))
            self._recv()
            packet = framer.next_packet()
        kind, _flags, body = packet
        if kind != mqtt.CONNACK or len(body) != 2:
            raise MqttPacketError("expected a CONNACK as the broker's first packet (§3.2), found type %d, %d bytes"
                                  % (kind, len(body)))
        if body[1]:
            raise BrokerRefused(body[1])
        sock.settimeout(IO_TIMEOUT_S)
        self.connects += 1
        # §4.4: our own unacknowledged publishes go again, DUP set, with their packet ids
        with self._lock:
            resend = b"".join(bytes((p[0] | 0x08,)) + p[1:] for _pid, p in self._inflight.values())
            self._out[0:0] = resend
            self._subs.clear()  # SUBACKs of the old connection will not come
        self.connected.set()
        if self.on_connect is not None:
            self._callback(self.on_connect, bool(body[0] & 1))

    def _attach(self, sock: socket.socket) -> None:
        """Make ``sock`` the connection: a fresh framer (a failed one stays failed) and
        keepalive clock."""
        self._sock = sock
        self._framer = mqtt.Framer(MAX_PACKET_TAKEN, self.buffer_size)
        self._keepalive = Keepalive(self.keepalive, time.monotonic())

    def _serve(self) -> None:
        """Read, dispatch and write until ``stop``. Raises BrokerError, MqttPacketError."""
        sock = self._sock
        assert sock is not None
        wake = self._wake_r
        assert wake is not None  # start() made it
        pending = sock.pending if isinstance(sock, ssl.SSLSocket) else None
        self._dispatch()  # what came in the CONNACK's read
        self._flush()
        while not self._stop.is_set():
            ka = self._keepalive
            if pending is not None and pending():  # decrypted bytes that select() cannot see
                ready = [sock]
            else:
                ready, _w, _x = select.select([sock, wake], [], [], ka.wait(time.monotonic()))
            if wake in ready:
                with self._lock:
                    self._woken = False
                try:
                    wake.recv(4096)
                except BlockingIOError:
                    pass
            if sock in ready:
                self._recv()
                self._dispatch()
            self._flush()
            action = ka.due(time.monotonic())
            if action == Keepalive.PING:
                self._send(mqtt.PINGREQ_PACKET)
                ka.pinged(time.monotonic())
            elif action == Keepalive.DEAD:
                raise BrokerError("no answer to PINGREQ within %d s (keepalive, §3.1.2.10)" % self.keepalive)

    def _recv(self) -> int:
        """One recv_into the framer's free space (no copy); 0 when nothing was there yet.
        Raises BrokerError when the connection is closed or broken."""
        sock = self._sock
        assert sock is not None
        space = self._framer.space()
        if not len(space):  # only a packet over the bound fills it, and the framer refuses those
            raise MqttPacketError("MQTT packet: expected at most %d bytes, found a full buffer" % self.buffer_size)
        try:
            n = sock.recv_into(space)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, socket.timeout):
            return 0
        except OSError as e:
            raise BrokerError("reading from the broker: %s" % e) from e
        finally:
            space.release()
        if not n:
            raise BrokerError("the broker closed the connection")
        self._framer.received(n)
        self._keepalive.received(time.monotonic())
        return n

    def _dispatch(self) -> None:
        """Hand out every whole packet in the framer. Raises MqttPacketError."""
        framer = self._framer
        deliver = self.on_publish
        while True:
            if deliver is not None:
                for topic, pid, payload in framer.take_publishes():
                    deliver(topic, bytes(payload), pid, 1)
            packet = framer.next_packet()
            if packet is None:
                return
            self._packet(*packet)

    def _packet(self, kind: int, flags: int, body: bytes) -> None:
        """A packet other than a QoS 1 PUBLISH at the front of the buffer."""
        if kind == mqtt.PUBLISH:
            topic, pid, payload = mqtt.publish_fields(flags, body)
            qos = (flags >> 1) & 3
            if qos == 2:
                raise MqttPacketError("PUBLISH QoS: expected 0 or 1 (the gateway subscribes at QoS 1), found 2")
            if self.on_publish is not None:
                self.on_publish(topic, bytes(payload), pid or 0, qos)
        elif kind == mqtt.PUBACK and len(body) == 2:
            with self._lock:
                topic = self._inflight_ids.pop((body[0] << 8) | body[1], None)
                if topic is not None:
                    del self._inflight[topic]
        elif kind == mqtt.SUBACK and len(body) >= 3:
            with self._lock:
                filters = self._subs.pop((body[0] << 8) | body[1], None)
            if filters is not None and self.on_subscribe is not None:
                self._callback(self.on_subscribe, filters, bytes(body[2:]))
        elif kind == mqtt.PINGRESP and not body:
            pass  # any packet answers the ping (Keepalive.received)
        else:
            raise MqttPacketError("expected PUBLISH, PUBACK, SUBACK or PINGRESP from the broker, "
                                  "found type %d with %d bytes" % (kind, len(body)))

    def _flush(self) -> None:
        """Write the out buffer in one sendall. Raises BrokerError."""
        with self._lock:
            if not self._out:
                return
            data = bytes(self._out)
            self._out.clear()
        self._send(data)

    def _send(self, data: bytes) -> None:
        sock = self._sock
        assert sock is not None
        try:
            sock.sendall(data)
        except OSError as e:
            raise BrokerError("writing to the broker: %s" % e) from e
        self._keepalive.sent(time.monotonic())

    def _close(self, orderly: bool = False) -> None:
        """Close the connection; ``orderly``: write what is queued and DISCONNECT first."""
        sock, self._sock = self._sock, None
        self.connected.clear()
        if sock is None:
            return
        if orderly:
            try:
                sock.settimeout(CONNECT_TIMEOUT_S)
                with self._lock:
                    data = bytes(self._out)
                    self._out.clear()
                sock.sendall(data + mqtt.DISCONNECT_PACKET)
            except OSError as e:
                log.warning("MQTT: could not send DISCONNECT: %s", e)
        try:
            sock.close()
        except OSError:
            pass

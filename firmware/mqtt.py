# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""A minimal MQTT 3.1.1 client for the device (model: micropython-lib umqtt.simple).

What the agent needs and nothing more: CONNECT with a last will, keepalive and
optional username/password, TLS (server CA, optional client certificate),
QoS 0/1 PUBLISH out with packet ids and PUBACK tracking, SUBSCRIBE, QoS 0/1
PUBLISH in (answered with PUBACK), PINGREQ, DISCONNECT. No QoS 2, no session
resumption (clean session: the agent core resends from its last end-to-end ack).
Packets are built and framed by the sans-IO codec ``protocols/mqtt.py``; this module
owns the socket, the timeouts and the session state.

Blocking is bounded. ``connect`` waits at most ``timeout_s`` for each of name
lookup (the ``resolve`` it is given; the address is kept until a connect fails), TCP
connect, TLS handshake and CONNACK; then and afterwards the socket is non-blocking:
``poll`` only takes what has arrived, and a write that cannot finish within
``timeout_s`` drops the connection (``ConnectionLost``). A caller that keeps
``timeout_s`` below its sampling bound never misses a sample.

Incoming bytes go into the framer's one fixed buffer (``RX_MAX``), read into it without
a copy, so a packet split across reads is fine.

Errors: MqttError is the root; ConnectionLost (reconnect), ProtocolViolation (the
broker sent bytes this client does not speak; the codec's MqttPacketError is translated
into it), Refused (CONNACK or SUBACK refusal, ``code`` says why).
"""
from edgeledger.agent import port as platform
from edgeledger.protocols import mqtt

try:
    from micropython import const
except ImportError:  # CPython
    const = int

# Largest packet accepted from the broker. An end-to-end ack is its topic (~40 bytes)
# plus a 2..10-byte CBOR map; 512 leaves room for a command message and bounds what a
# misbehaving broker can make the device buffer.
RX_MAX = const(512)
# QoS 1 publishes awaiting their PUBACK. The broker acknowledges within one round trip;
# the agent core bounds end-to-end in-flight records separately (its ``window``).
_MAX_INFLIGHT = const(16)
_TIMEOUT_S = const(2)
_EAGAIN = const(11)  # MicroPython raises OSError(11) when a socket timeout expires


class MqttError(Exception):
    """Root of the client's errors."""


class ConnectionLost(MqttError):
    """The connection is gone (closed, reset, timed out); reconnect."""


class ProtocolViolation(MqttError):
    """The broker sent bytes that are not MQTT 3.1.1 as this client speaks it."""


class Refused(MqttError):
    """The broker refused the connection or a subscription; ``code`` is the CONNACK
    return code (§3.2.2.3) or 0x80 (SUBACK failure, §3.9.3)."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


class MQTTClient:
    """One MQTT 3.1.1 connection at a time; see the module docstring for the bounds.

    ``on_message(topic, payload, retained)`` is called from ``poll`` for every
    PUBLISH received (topic as str, payload as bytes). ``sock`` is None while not
    connected.
    """

    def __init__(self, client_id, server, port=1883, user=None, password=None, keepalive=30,
                 ssl_context=None, server_hostname=None, timeout_s=_TIMEOUT_S,
                 max_inflight=_MAX_INFLIGHT, clock=None, resolve=None):
        self.server = server
        self.port = port
        self.keepalive = keepalive
        self.timeout_s = timeout_s
        self.max_inflight = max_inflight
        self.clock = clock or platform.monotonic
        self.resolve = resolve  # (host, port, timeout_s) -> address; getaddrinfo if None
        self.on_message = None
        self.sock = None
        self.client_id = client_id
        self.user = user
        self.password = password
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or server
        self._will = None
        self._addr = None
        self._pid = 0
        self._inflight = set()
        self._rx = None  # the framer of the current connection
        self._last_tx = 0
        self._ping_at = None
        self._connack = None  # session-present flag once CONNACK arrived

    # -- connection -------------------------------------------------------------------------

    def set_last_will(self, topic, msg, retain=False, qos=0):
        """The message the broker publishes when this client vanishes (§3.1.2.5)."""
        self._will = (topic, msg, retain, qos)

    def connect(self, clean_session=True, sock=None):
        """Open the connection and wait for CONNACK; returns the session-present flag.

        ``sock`` is an already connected stream (tests pass a fake one). Raises
        ConnectionLost (network, timeout), Refused (CONNACK code) or
        ProtocolViolation.
        """
        self.close()
        try:
            self.sock = sock or self._open()
            self._rx = mqtt.Framer(RX_MAX)
            self._inflight = set()
            self._ping_at = None
            self._connack = None
            # Non-blocking from here on: a blocking readinto() would wait for a full buffer.
            self.sock.setblocking(False)
            self._send(mqtt.connect(self.client_id, self.keepalive, clean_session, self._will,
                                    self.user, self.password))
            deadline = self.clock() + self.timeout_s
            while self._connack is None:  # poll() raises Refused for a refusing CONNACK
                if self.clock() > deadline:
                    raise ConnectionLost("no %s in %.1f s" % ("CONNACK", self.timeout_s))
                platform.sleep(0.001)
                self.poll()
        except (MqttError, OSError, ValueError) as e:  # ValueError: a bad DNS answer
            self.close()
            self._addr = None
            if isinstance(e, MqttError):
                raise e
            raise ConnectionLost("%s:%d: %s" % (self.server, self.port, e))
        return self._connack

    def _open(self):
        """A connected socket (TLS-wrapped with an ``ssl_context``), blocking at most
        ``timeout_s`` per step. Raises OSError, ValueError (a bad DNS answer)."""
        import socket

        if self._addr is None:  # kept until a connect fails
            self._addr = (self.resolve(self.server, self.port, self.timeout_s) if self.resolve else
                          socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0][-1])
        sock = socket.socket()
        self.sock = sock  # closed by close() if what follows fails
        sock.settimeout(self.timeout_s)
        sock.connect(self._addr)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        return sock

    def disconnect(self):
        """Send DISCONNECT (the broker then discards the will, §3.14.4) and close."""
        if self.sock is not None:
            try:
                self._send(mqtt.DISCONNECT_PACKET)
            except MqttError:
                pass
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    # -- sending ----------------------------------------------------------------------------

    def _send(self, packet, tail=b""):
        """Write ``packet``, then ``tail`` (a PUBLISH payload, written from where it is, not
        copied). Raises ConnectionLost, also when the socket takes nothing for ``timeout_s``."""
        if self.sock is None:
            raise ConnectionLost("not connected")
        deadline = None
        for data in (packet, tail):
            mv = memoryview(data)
            off = 0
            while off < len(data):
                try:
                    n = self.sock.write(mv[off:])
                except OSError as e:
                    if e.args[0] != _EAGAIN:
                        self.close()
                        raise ConnectionLost("write: %s" % (e,))
                    n = None
                if n:
                    off += n
                    continue
                now = self.clock()  # would block: wait, within the bound
                if deadline is None:
                    deadline = now + self.timeout_s
                elif now > deadline:
                    self.close()
                    raise ConnectionLost("no %s in %.1f s" % ("write", self.timeout_s))
                platform.sleep(0.001)
        self._last_tx = self.clock()

    def inflight(self):
        """QoS 1 publishes awaiting their PUBACK (at most ``max_inflight``)."""
        return len(self._inflight)

    def _next_pid(self):
        """§2.3.1: a non-zero 16-bit packet id not in use."""
        pid = self._pid % 65535 + 1
        while pid in self._inflight:
            pid = pid % 65535 + 1
        self._pid = pid
        return pid

    def publish(self, topic, msg, retain=False, qos=0):
        """Send a PUBLISH (§3.3); returns the packet id (0 for QoS 0).

        Does not wait for the PUBACK: ``poll`` collects it. Raises ConnectionLost,
        and MqttError when ``max_inflight`` QoS 1 messages are already
        unacknowledged (compare ``inflight()`` first).
        """
        pid = 0
        if qos:
            if len(self._inflight) >= self.max_inflight:
                raise MqttError("%d QoS 1 messages await PUBACK" % len(self._inflight))
            pid = self._next_pid()
        self._send(mqtt.publish_header(topic, len(msg), pid, qos, retain), msg)
        if qos:
            self._inflight.add(pid)
        return pid

    def subscribe(self, topic, qos=1):
        """Send a SUBSCRIBE (§3.8) for one filter; a refusing SUBACK raises in ``poll``."""
        pid = self._next_pid()
        self._send(mqtt.subscribe(pid, ((topic, qos),)))
        return pid

    # -- receiving --------------------------------------------------------------------------

    def poll(self):
        """Handle every complete packet that has arrived; never waits.

        Also keeps the connection alive: a PINGREQ when nothing was sent for half
        the keepalive, and ConnectionLost when its PINGRESP is a keepalive late
        (§3.1.2.10). Raises ConnectionLost, ProtocolViolation, Refused.
        """
        if self.sock is None:
            raise ConnectionLost("not connected")
        while True:
            try:
                packet = self._rx.next_packet()
            except ValueError as e:  # the codec's MqttPacketError: no resync over TCP
                self.close()
                raise ProtocolViolation(str(e))
            if packet is not None:
                self._handle(packet[0], packet[1], packet[2])
            elif not self._read():
                break
        if self.keepalive:
            self._keep_alive(self.clock())

    def _read(self):
        """Read what has arrived into the framer; False when nothing more has.
        (The framer has room: it handed out every whole packet before.)"""
        try:
            n = self.sock.readinto(self._rx.space())
        except OSError as e:
            if e.args[0] != _EAGAIN:
                self.close()
                raise ConnectionLost("read: %s" % (e,))
            return False
        if n is None:  # nothing more for now
            return False
        if n == 0:
            self.close()
            raise ConnectionLost("closed by broker")
        self._rx.received(n)
        return True

    def _handle(self, kind, flags, body):
        """One packet from the broker. Raises ProtocolViolation, Refused, ConnectionLost."""
        code = 0
        if kind == mqtt.PUBLISH and flags & 6 < 4:  # QoS 0 or 1 (§3.3); QoS 2 falls below
            try:
                topic, pid, payload = mqtt.publish_fields(flags, body)
            except ValueError as e:
                self.close()
                raise ProtocolViolation(str(e))
            if pid is not None:
                self._send(mqtt.puback(pid))  # §3.3.4
            if self.on_message is not None:
                self.on_message(topic, payload, bool(flags & 1))
        elif kind == mqtt.PUBACK and len(body) == 2:
            self._inflight.discard((body[0] << 8) | body[1])
        elif kind == mqtt.PINGRESP:
            self._ping_at = None
        elif kind == mqtt.SUBACK and len(body) == 3:
            code = body[2] & mqtt.SUBACK_FAILURE
        elif kind == mqtt.CONNACK and len(body) == 2:
            code = body[1]
            self._connack = bool(body[0] & 1)
        else:
            raise ProtocolViolation("unexpected packet 0x%02x" % (kind << 4 | flags))
        if code:
            raise Refused("broker refused %s: %s (code %d)" % (
                "SUBSCRIBE" if kind == mqtt.SUBACK else "CONNECT",
                mqtt.CONNACK_REFUSALS[code - 1] if code <= 5 else "failure", code), code)

    def _keep_alive(self, now):
        """PINGREQ after half a keepalive of silence; ConnectionLost when its PINGRESP is a
        keepalive late (§3.1.2.10)."""
        if self._ping_at is not None and now - self._ping_at > self.keepalive:
            self.close()
            raise ConnectionLost("no %s in %.1f s" % ("PINGRESP", self.keepalive))
        if self._ping_at is None and now - self._last_tx >= self.keepalive / 2:
            self._send(mqtt.PINGREQ_PACKET)
            self._ping_at = now

"""A minimal MQTT 3.1.1 client for the device (model: micropython-lib umqtt.simple).

What the agent needs and nothing more: CONNECT with a last will, keepalive and
optional username/password, TLS (server CA, optional client certificate),
QoS 0/1 PUBLISH out with packet ids and PUBACK tracking, SUBSCRIBE, QoS 0/1
PUBLISH in (answered with PUBACK), PINGREQ, DISCONNECT. No QoS 2, no session
resumption (clean session: the agent core resends from its last end-to-end ack).

Blocking is bounded. ``connect`` waits at most ``timeout_s`` for each of TCP
connect, TLS handshake and CONNACK; then and afterwards the socket is non-blocking:
``poll`` only takes what has arrived, and a write that cannot finish within
``timeout_s`` drops the connection (``ConnectionLost``). A caller that keeps
``timeout_s`` below its sampling bound never misses a sample.

Incoming bytes go into one fixed buffer and are framed there (fixed header and
remaining length, MQTT 3.1.1 §2.2), so a packet split across reads is fine::

    byte 1      packet type (bits 7-4) | flags (bits 3-0)
    byte 2..5   remaining length, 7 bits per byte, bit 7 = more (§2.2.3)
    ...         variable header and payload

The code is kept small (it lives in a board's heap): packet types are literals
named in comments, one method frames and handles a packet.
"""
import struct

from edgeledger.agent import port as platform

# Control packet types (MQTT 3.1.1 §2.2.1) used below as literals:
# CONNECT 0x10, CONNACK 0x20, PUBLISH 0x30, PUBACK 0x40, SUBSCRIBE 0x82 (§3.8.1: flags
# 0010), SUBACK 0x90, PINGREQ 0xC0, PINGRESP 0xD0, DISCONNECT 0xE0.

# CONNACK return codes 1..5 (§3.2.2.3, Table 3.1).
CONNACK_CODES = ("unacceptable protocol version", "identifier rejected", "server unavailable",
                 "bad user name or password", "not authorized")

MAX_REMAINING = 268435455  # §2.2.3: four length bytes at most
# Largest packet accepted from the broker. An end-to-end ack is its topic (~40 bytes)
# plus a 2..10-byte CBOR map; 512 leaves room for a command message and bounds what a
# misbehaving broker can make the device buffer.
RX_MAX = 512
# QoS 1 publishes awaiting their PUBACK. The broker acknowledges within one round trip;
# the agent core bounds end-to-end in-flight records separately (its ``window``).
DEFAULT_MAX_INFLIGHT = 16
DEFAULT_TIMEOUT_S = 2.0
EAGAIN = 11  # MicroPython raises OSError(11) when a socket timeout expires


class MqttError(Exception):
    """Root of the client's errors."""


class ConnectionLost(MqttError):
    """The connection is gone (closed, reset, timed out); reconnect."""


class ProtocolViolation(MqttError):
    """The broker sent bytes that are not MQTT 3.1.1 as this client speaks it."""


class Refused(MqttError):
    """The broker refused the connection or a subscription (``code`` says why)."""

    def __init__(self, msg, code):
        super().__init__(msg)
        self.code = code


def encode_length(n):
    """Remaining-length bytes of ``n`` (§2.2.3). Raises ValueError above MAX_REMAINING."""
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError("MQTT remaining length: expected 0..%d, found %d" % (MAX_REMAINING, n))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _utf8(s):
    """A length-prefixed string (§1.5.3)."""
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!H", len(s)) + s


class MQTTClient:
    """One MQTT 3.1.1 connection at a time; see the module docstring for the bounds.

    ``on_message(topic, payload, retained)`` is called from ``poll`` for every
    PUBLISH received (topic as str, payload as bytes).
    """

    def __init__(self, client_id, server, port=1883, user=None, password=None, keepalive=30,
                 ssl_context=None, server_hostname=None, timeout_s=DEFAULT_TIMEOUT_S,
                 max_inflight=DEFAULT_MAX_INFLIGHT, clock=None):
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or server
        self.timeout_s = timeout_s
        self.max_inflight = max_inflight
        self.clock = clock or platform.monotonic
        self.on_message = None
        self.sock = None
        self._addr = None
        self._will = None
        self._pid = 0
        self._inflight = set()
        self._rx = bytearray(RX_MAX)
        self._rx_len = 0
        self._last_tx = 0.0
        self._ping_at = None
        self._connack = None  # (return code, session present) once CONNACK arrived
        self._suback = None

    # -- connection -------------------------------------------------------------------------

    def set_last_will(self, topic, msg, retain=False, qos=0):
        """The message the broker publishes when this client vanishes (§3.1.2.5)."""
        self._will = (topic, msg, retain, qos)

    @property
    def connected(self):
        return self.sock is not None

    def connect(self, clean_session=True, sock=None):
        """Open the connection and wait for CONNACK; returns the session-present flag.

        ``sock`` is an already connected stream (tests pass a fake one). Raises
        ConnectionLost (network, timeout), Refused (CONNACK code) or
        ProtocolViolation.
        """
        self.close()
        try:
            if sock is None:
                import socket

                if self._addr is None:  # resolve once: DNS has no timeout on some ports
                    self._addr = socket.getaddrinfo(self.server, self.port, 0,
                                                    socket.SOCK_STREAM)[0][-1]
                sock = socket.socket()
                self.sock = sock
                sock.settimeout(self.timeout_s)
                sock.connect(self._addr)
                if self.ssl_context is not None:
                    sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
            self.sock = sock
            self._rx_len = 0
            self._inflight = set()
            self._ping_at = None
            self._connack = None
            # Non-blocking from here on: a blocking readinto() would wait for a full buffer.
            sock.setblocking(False)
            # §3.1: variable header (protocol name, level 4, flags, keepalive), then payload
            flags = 0x02 if clean_session else 0  # §3.1.2.3 connect flags
            payload = _utf8(self.client_id)
            if self._will:
                topic, msg, retain, qos = self._will
                flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
                payload += _utf8(topic) + _utf8(msg)
            if self.user is not None:
                flags |= 0x80
                payload += _utf8(self.user)
                if self.password is not None:
                    flags |= 0x40
                    payload += _utf8(self.password)
            var = b"\x00\x04MQTT\x04" + struct.pack("!BH", flags, self.keepalive)
            self._send(b"\x10" + encode_length(len(var) + len(payload)) + var + payload)
            deadline = self.clock() + self.timeout_s
            while self._connack is None:
                if not self._receive(deadline):
                    raise ConnectionLost("no CONNACK in %.1f s" % self.timeout_s)
        except (MqttError, OSError) as e:
            self.close()
            if isinstance(e, MqttError):
                raise
            raise ConnectionLost("connect %s:%d: %s" % (self.server, self.port, e))
        code, present = self._connack
        if code:
            self.close()
            raise Refused("broker refused the connection: %s (code %d)"
                          % (CONNACK_CODES[code - 1] if code <= 5 else "unknown", code), code)
        return present

    def disconnect(self):
        """Send DISCONNECT (the broker then discards the will, §3.14.4) and close."""
        if self.sock is not None:
            try:
                self._send(b"\xe0\x00")
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

    def _send(self, data):
        """Write all of ``data`` within ``timeout_s``. Raises ConnectionLost."""
        if self.sock is None:
            raise ConnectionLost("not connected")
        mv = memoryview(data)
        off = 0
        deadline = None
        while off < len(data):
            try:
                n = self.sock.write(mv[off:])
            except OSError as e:
                if e.args[0] != EAGAIN:
                    self.close()
                    raise ConnectionLost("write: %s" % (e,))
                n = None
            if not n:  # would block
                now = self.clock()
                if deadline is None:
                    deadline = now + self.timeout_s
                elif now > deadline:
                    self.close()
                    raise ConnectionLost("write stalled for %.1f s" % self.timeout_s)
                platform.sleep(0.001)
                continue
            off += n
        self._last_tx = self.clock()

    def can_publish(self):
        return self.sock is not None and len(self._inflight) < self.max_inflight

    def inflight(self):
        return len(self._inflight)

    def _next_pid(self):
        while True:
            self._pid = self._pid % 65535 + 1  # §2.3.1: non-zero 16-bit
            if self._pid not in self._inflight:
                return self._pid

    def publish(self, topic, msg, retain=False, qos=0):
        """Send a PUBLISH (§3.3); returns the packet id (0 for QoS 0).

        Does not wait for the PUBACK: ``poll`` collects it. Raises
        ConnectionLost, and MqttError when ``max_inflight`` QoS 1 messages are
        already unacknowledged (check ``can_publish`` first).
        """
        topic = _utf8(topic)
        pid = 0
        if qos:
            if len(self._inflight) >= self.max_inflight:
                raise MqttError("in-flight window full: %d QoS 1 messages await PUBACK"
                                % len(self._inflight))
            pid = self._next_pid()
            topic += struct.pack("!H", pid)
        # fixed header, topic (and packet id) first; the message is written from where it is
        self._send(bytes([0x30 | qos << 1 | (1 if retain else 0)])
                   + encode_length(len(topic) + len(msg)) + topic)
        if qos:
            self._inflight.add(pid)
        self._send(msg)
        return pid

    def subscribe(self, topic, qos=1):
        """Send a SUBSCRIBE (§3.8) for one filter; the SUBACK is checked in ``poll``."""
        pid = self._next_pid()
        body = struct.pack("!H", pid) + _utf8(topic) + bytes([qos])
        self._suback = pid
        self._send(b"\x82" + encode_length(len(body)) + body)
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
        self._receive(None)
        now = self.clock()
        if self.keepalive:
            if self._ping_at is not None and now - self._ping_at > self.keepalive:
                self.close()
                raise ConnectionLost("no PINGRESP in %d s" % self.keepalive)
            if self._ping_at is None and now - self._last_tx >= self.keepalive / 2:
                self._send(b"\xc0\x00")  # PINGREQ
                self._ping_at = now

    def _receive(self, deadline):
        """Read what is there and handle complete packets; True if one was handled.

        With a ``deadline`` keep reading until a packet is complete or the deadline
        passes.
        """
        handled = False
        while True:
            while self._frame():
                handled = True
            if handled and deadline is not None:
                return True
            if self._rx_len >= RX_MAX:
                self.close()
                raise ProtocolViolation("packet header fills RX_MAX %d bytes" % RX_MAX)
            try:
                n = self.sock.readinto(memoryview(self._rx)[self._rx_len:])
            except OSError as e:
                if e.args[0] != EAGAIN:
                    self.close()
                    raise ConnectionLost("read: %s" % (e,))
                n = None
            if n is None:  # nothing more for now
                if deadline is None or self.clock() > deadline:
                    return handled
                platform.sleep(0.001)
                continue
            if n == 0:
                self.close()
                raise ConnectionLost("the broker closed the connection")
            self._rx_len += n

    def _frame(self):
        """Handle one complete packet from the buffer; False if none is complete."""
        buf = self._rx
        have = self._rx_len
        rem = 0
        i = 1
        while True:  # remaining length (§2.2.3)
            if i >= have:
                return False
            b = buf[i]
            rem |= (b & 0x7F) << (7 * i - 7)
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                self.close()
                raise ProtocolViolation("remaining length: expected at most 4 bytes (§2.2.3)")
        end = i + rem
        if end > RX_MAX:
            self.close()
            raise ProtocolViolation("packet of %d bytes exceeds RX_MAX %d" % (end, RX_MAX))
        if have < end:
            return False
        first = buf[0]
        body = bytes(buf[i:end])
        buf[0:have - end] = buf[end:have]
        self._rx_len = have - end
        kind = first & 0xF0
        if kind == 0x30:  # PUBLISH (§3.3)
            qos = (first >> 1) & 3
            if qos > 1:
                raise ProtocolViolation("PUBLISH QoS: expected 0 or 1, found %d" % qos)
            i = 2 + struct.unpack_from("!H", body)[0]
            topic = body[2:i].decode()
            if qos:
                self._send(b"\x40\x02" + body[i:i + 2])  # PUBACK with its packet id (§3.3.4)
                i += 2
            if self.on_message is not None:
                self.on_message(topic, body[i:], bool(first & 1))
        elif kind == 0x40:  # PUBACK
            self._inflight.discard(struct.unpack_from("!H", body)[0])
        elif kind == 0xD0:  # PINGRESP
            self._ping_at = None
        elif kind == 0x90:  # SUBACK (§3.9.3: return code 0x80 = failure)
            if struct.unpack_from("!H", body)[0] == self._suback and body[2] == 0x80:
                raise Refused("broker refused the subscription", 0x80)
            self._suback = None
        elif kind == 0x20 and len(body) == 2:  # CONNACK
            self._connack = (body[1], bool(body[0] & 1))
        else:
            raise ProtocolViolation("unexpected packet 0x%02x (%d bytes)" % (first, len(body)))
        return True

"""A minimal MQTT 3.1.1 client for the device (model: micropython-lib umqtt.simple).

What the agent needs and nothing more: CONNECT with a last will, keepalive and
optional username/password, TLS (server CA, optional client certificate),
QoS 0/1 PUBLISH out with packet ids and PUBACK tracking, SUBSCRIBE, QoS 0/1
PUBLISH in (answered with PUBACK), PINGREQ, DISCONNECT. No QoS 2, no session
resumption (clean session: the agent core resends from its last end-to-end ack).

Blocking is bounded. ``connect`` waits at most ``timeout_s`` for each of name
lookup (the ``resolve`` it is given; the address is kept until a connect fails), TCP
connect, TLS handshake and CONNACK; then and afterwards the socket is non-blocking:
``poll`` only takes what has arrived, and a write that cannot finish within
``timeout_s`` drops the connection (``ConnectionLost``). A caller that keeps
``timeout_s`` below its sampling bound never misses a sample.

Incoming bytes go into one fixed buffer and are framed there (fixed header and
remaining length, MQTT 3.1.1 §2.2), so a packet split across reads is fine::

    byte 1      packet type (bits 7-4) | flags (bits 3-0)
    byte 2..5   remaining length, 7 bits per byte, bit 7 = more (§2.2.3)
    ...         variable header and payload

Errors: MqttError is the root; ConnectionLost (reconnect), ProtocolViolation (the
broker sent bytes this client does not speak), Refused (CONNACK or SUBACK refusal,
``code`` says why).

The module lives in a board's heap for as long as the agent runs, and there every
function, class, string or bytes constant and instance attribute costs heap (the
machine code does not). So: private numbers are ``const``; packet types are
literals named in comments; packets are built by ``_send`` from a type byte, not
from bytes constants; the error subclasses are made with ``type()`` (a class
statement also keeps its body's code object); messages are short; ``poll`` frames
and handles packets in one method.
"""
import struct

from edgeledger.agent import port as platform

try:
    from micropython import const
except ImportError:  # CPython
    const = int

# Control packet types (MQTT 3.1.1 §2.2.1) used below as literals:
# CONNECT 0x10, CONNACK 0x20, PUBLISH 0x30, PUBACK 0x40, SUBSCRIBE 0x82 (§3.8.1: flags
# 0010), SUBACK 0x90, PINGREQ 0xC0, PINGRESP 0xD0, DISCONNECT 0xE0.

_MAX_REMAINING = const(268435455)  # §2.2.3: four length bytes at most
# Largest packet accepted from the broker. An end-to-end ack is its topic (~40 bytes)
# plus a 2..10-byte CBOR map; 512 leaves room for a command message and bounds what a
# misbehaving broker can make the device buffer.
_RX_MAX = const(512)
# QoS 1 publishes awaiting their PUBACK. The broker acknowledges within one round trip;
# the agent core bounds end-to-end in-flight records separately (its ``window``).
_MAX_INFLIGHT = const(16)
_TIMEOUT_S = const(2)
_EAGAIN = const(11)  # MicroPython raises OSError(11) when a socket timeout expires


# The client's errors, made with type(): a class statement would also keep the code
# object of its body. MqttError is the root.
MqttError = type("MqttError", (Exception,), {})
# The connection is gone (closed, reset, timed out); reconnect.
ConnectionLost = type("ConnectionLost", (MqttError,), {})
# The broker sent bytes that are not MQTT 3.1.1 as this client speaks it.
ProtocolViolation = type("ProtocolViolation", (MqttError,), {})
# The broker refused the connection or a subscription; ``code`` is the CONNACK return
# code (§3.2.2.3) or 0x80 (SUBACK failure, §3.9.3).
Refused = type("Refused", (MqttError,), {})


def encode_length(n):
    """Remaining-length bytes of ``n`` (§2.2.3). Raises ValueError above 268435455."""
    if not 0 <= n <= _MAX_REMAINING:
        raise ValueError("length %d: expected 0..%d" % (n, _MAX_REMAINING))
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
        self._rx = bytearray(_RX_MAX)
        self._rx_len = 0
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
            if sock is None:
                import socket

                if self._addr is None:  # kept until a connect fails
                    self._addr = (self.resolve(self.server, self.port, self.timeout_s)
                                  if self.resolve else
                                  socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0][-1])
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
            self._send(0x10, _utf8("MQTT") + struct.pack("!BBH", 4, flags, self.keepalive)
                       + payload)
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

    def disconnect(self):
        """Send DISCONNECT (the broker then discards the will, §3.14.4) and close."""
        if self.sock is not None:
            try:
                self._send(0xE0)
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

    def _send(self, first, body=b"", tail=b""):
        """Write one packet: byte ``first``, the remaining length, ``body``, ``tail``.

        ``tail`` (a PUBLISH message) is written from where it is, not copied. Raises
        ConnectionLost, also when the socket takes nothing for ``timeout_s``.
        """
        if self.sock is None:
            raise ConnectionLost("not connected")
        deadline = None
        for data in (bytes([first]) + encode_length(len(body) + len(tail)) + body, tail):
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
                if not n:  # would block
                    now = self.clock()
                    if deadline is None:
                        deadline = now + self.timeout_s
                    elif now > deadline:
                        self.close()
                        raise ConnectionLost("no %s in %.1f s" % ("write", self.timeout_s))
                    platform.sleep(0.001)
                    continue
                off += n
        self._last_tx = self.clock()

    def inflight(self):
        """QoS 1 publishes awaiting their PUBACK (at most ``max_inflight``)."""
        return len(self._inflight)

    def publish(self, topic, msg, retain=False, qos=0):
        """Send a PUBLISH (§3.3); returns the packet id (0 for QoS 0).

        Does not wait for the PUBACK: ``poll`` collects it. Raises ConnectionLost,
        and MqttError when ``max_inflight`` QoS 1 messages are already
        unacknowledged (compare ``inflight()`` first).
        """
        topic = _utf8(topic)
        pid = 0
        if qos:
            if len(self._inflight) >= self.max_inflight:
                raise MqttError("%d QoS 1 messages await PUBACK" % len(self._inflight))
            pid = self._pid % 65535 + 1  # §2.3.1: non-zero, 16 bits, not in use
            while pid in self._inflight:
                pid = pid % 65535 + 1
            self._pid = pid
            topic += struct.pack("!H", pid)
        # fixed header, topic (and packet id) first; the message is written from where it is
        self._send(0x30 | qos << 1 | (1 if retain else 0), topic, msg)
        if qos:
            self._inflight.add(pid)
        return pid

    def subscribe(self, topic, qos=1):
        """Send a SUBSCRIBE (§3.8) for one filter; a refusing SUBACK raises in ``poll``."""
        pid = self._pid % 65535 + 1  # as in publish (one method less in the heap)
        while pid in self._inflight:
            pid = pid % 65535 + 1
        self._pid = pid
        self._send(0x82, struct.pack("!H", pid) + _utf8(topic) + bytes([qos]))
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
        buf = self._rx
        while True:
            have = self._rx_len
            end = 0  # length of the first packet once its remaining length is complete
            rem = 0
            i = 1
            while i < have and not end:  # remaining length (§2.2.3)
                b = buf[i]
                rem |= (b & 0x7F) << (7 * i - 7)
                i += 1
                if not b & 0x80:
                    end = i + rem
                elif i > 4:
                    self.close()
                    raise ProtocolViolation("remaining length over 4 bytes")
            if end > _RX_MAX:
                self.close()
                raise ProtocolViolation("packet of %d bytes > RX_MAX %d" % (end, _RX_MAX))
            if not end or have < end:
                # No complete packet, so the buffer is not full (a header is 5 bytes at
                # most and a longer packet raised above): read what has arrived.
                try:
                    n = self.sock.readinto(memoryview(buf)[have:])
                except OSError as e:
                    if e.args[0] != _EAGAIN:
                        self.close()
                        raise ConnectionLost("read: %s" % (e,))
                    n = None
                if n is None:  # nothing more for now
                    break
                if n == 0:
                    self.close()
                    raise ConnectionLost("closed by broker")
                self._rx_len = have + n
                continue
            first = buf[0]
            body = bytes(buf[i:end])
            buf[0:have - end] = buf[end:have]
            self._rx_len = have - end
            kind = first & 0xF0
            code = 0
            if kind == 0x30 and first & 6 < 4:  # PUBLISH QoS 0 or 1 (§3.3); QoS 2 falls below
                i = 2 + struct.unpack_from("!H", body)[0]
                topic = body[2:i].decode()
                if first & 2:
                    self._send(0x40, body[i:i + 2])  # PUBACK with its packet id (§3.3.4)
                    i += 2
                if self.on_message is not None:
                    self.on_message(topic, body[i:], bool(first & 1))
            elif kind == 0x40 and len(body) == 2:  # PUBACK
                self._inflight.discard(struct.unpack_from("!H", body)[0])
            elif kind == 0xD0:  # PINGRESP
                self._ping_at = None
            elif kind == 0x90 and len(body) == 3:  # SUBACK: return code 0x80 = failure (§3.9.3)
                code = body[2] & 0x80
            elif kind == 0x20 and len(body) == 2:  # CONNACK: return code (§3.2.2.3)
                code = body[1]
                self._connack = bool(body[0] & 1)
            else:
                raise ProtocolViolation("unexpected packet 0x%02x" % first)
            if code:
                # CONNACK codes 1..5 (§3.2.2.3 Table 3.1), one string: a tuple of five costs more
                e = Refused("broker refused %s: %s (code %d)" % (
                    "SUBSCRIBE" if kind == 0x90 else "CONNECT",
                    "unacceptable protocol version|identifier rejected|server unavailable|"
                    "bad user name or password|not authorized".split("|")[code - 1]
                    if code <= 5 else "failure", code))
                e.code = code
                raise e
        if self.keepalive:
            now = self.clock()
            if self._ping_at is not None and now - self._ping_at > self.keepalive:
                self.close()
                raise ConnectionLost("no %s in %.1f s" % ("PINGRESP", self.keepalive))
            if self._ping_at is None and now - self._last_tx >= self.keepalive / 2:
                self._send(0xC0)  # PINGREQ
                self._ping_at = now

# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""MQTT 3.1.1 (OASIS, 2014) packets, sans-IO: encoders and a framer.

Bytes in, packets out; the caller owns the socket. Used by the board's client
(``firmware/mqtt.py``), the bench's load generator (``gateway/bench/loadgen.py``) and, in
the gateway's receive path, ``split_publishes``. Only what those speak is here: CONNECT
(with a will and credentials), CONNACK, PUBLISH QoS 0/1, PUBACK, SUBSCRIBE, SUBACK,
PINGREQ, PINGRESP, DISCONNECT; no QoS 2.

Every packet starts with a fixed header (§2.2)::

    byte 1      packet type (bits 7-4) | flags (bits 3-0)
    byte 2..5   remaining length, 7 bits per byte, least significant first,
                bit 7 = another byte follows (§2.2.3); at most four bytes
    ...         variable header and payload (remaining length bytes)

A PUBLISH (§3.3) is ``0x3Q`` (Q: DUP 8, QoS << 1, RETAIN 1), the topic as a
length-prefixed UTF-8 string (§1.5.3), a 2-byte packet id when QoS > 0, then the payload.

Reading: ``Framer`` takes bytes as they arrive (``receive_data``, or ``space``/``received``
to let a socket ``readinto`` its buffer without a copy) and hands out whole packets
(``next_packet``), counting what it consumed. ``split_publishes`` is the fast path for a
buffer holding many QoS 1 PUBLISH packets (the gateway's ingest): one pass, the payloads
as memoryview slices of the buffer, no copy.

Malformed input raises ``MqttPacketError`` (a DecodeError, so a ValueError): a remaining
length over four bytes, a packet over the framer's bound, a topic that overruns its packet
or is not UTF-8, a packet too short for its fields. MQTT runs over TCP, which neither loses
nor reorders bytes, so the protocol has no resynchronisation: after junk the next packet
boundary is unknowable, and §4.8 has the receiver close the connection. The framer stays
failed (every later call raises the same error) until the caller makes a new one for the
next connection.
"""
from edgeledger.protocols.errors import DecodeError


class MqttPacketError(DecodeError):
    """Bytes that are not an MQTT 3.1.1 packet as protocols/mqtt.py speaks it (a length over
    four bytes or over the bound, a topic that overruns its packet or is not UTF-8)."""


# Control packet types (§2.2.1 Table 2.1).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

# §2.2.3: four remaining-length bytes encode at most 268,435,455.
MAX_REMAINING = 268435455
# The framer's default bound on one packet (fixed header included). A device takes acks
# (a topic of ~40 bytes and a CBOR map of 2..10) and commands; the gateway takes signed
# readings, which its broker caps at 64 KiB (gateway broker config, max_message_bytes).
# 64 KiB + 1 KiB of header room is the largest packet either side expects; a board passes
# its own, far smaller bound.
DEFAULT_MAX_PACKET = 65536 + 1024

PINGREQ_PACKET = b"\xc0\x00"  # §3.12
DISCONNECT_PACKET = b"\xe0\x00"  # §3.14
# CONNACK return codes 1..5 (§3.2.2.3 Table 3.1).
CONNACK_REFUSALS = ("unacceptable protocol version", "identifier rejected", "server unavailable",
                    "bad user name or password", "not authorized")
SUBACK_FAILURE = 0x80  # §3.9.3


# --------------------------------------------------------------------- encoding ---

def encode_length(n):
    """Remaining-length bytes of ``n`` (§2.2.3). Raises ValueError outside 0..MAX_REMAINING."""
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError("MQTT remaining length: expected 0..%d, found %d" % (MAX_REMAINING, n))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _string(s):
    """A length-prefixed UTF-8 string (§1.5.3); ``s`` str or bytes."""
    if isinstance(s, str):
        s = s.encode()
    return bytes(((len(s) >> 8) & 0xFF, len(s) & 0xFF)) + s


def _packet(first, body):
    return bytes((first,)) + encode_length(len(body)) + body


def connect(client_id, keepalive=60, clean_session=True, will=None, username=None, password=None):
    """CONNECT (§3.1): protocol "MQTT" level 4. ``will`` is (topic, message, retain, qos)."""
    flags = 0x02 if clean_session else 0  # §3.1.2.3 connect flags
    payload = _string(client_id)
    if will:
        topic, msg, retain, qos = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        payload += _string(topic) + _string(msg)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
    head = _string("MQTT") + bytes((4, flags, (keepalive >> 8) & 0xFF, keepalive & 0xFF))
    return _packet(CONNECT << 4, head + payload)


def publish_header(topic, payload_len, packet_id=0, qos=0, retain=False):
    """The bytes of a PUBLISH (§3.3) before its payload, so that a caller can write the
    payload from where it lies. ``packet_id`` 1..65535 with QoS 1."""
    var = _string(topic)
    if qos:
        var += bytes(((packet_id >> 8) & 0xFF, packet_id & 0xFF))
    return bytes(((PUBLISH << 4) | qos << 1 | (1 if retain else 0),)) + encode_length(
        len(var) + payload_len) + var


def publish(topic, payload, packet_id=0, qos=0, retain=False):
    """A whole PUBLISH packet (§3.3)."""
    return publish_header(topic, len(payload), packet_id, qos, retain) + bytes(payload)


def puback(packet_id):
    """PUBACK (§3.4) of a QoS 1 PUBLISH."""
    return bytes((PUBACK << 4, 2, (packet_id >> 8) & 0xFF, packet_id & 0xFF))


def subscribe(packet_id, filters):
    """SUBSCRIBE (§3.8; fixed-header flags 0010) for ``filters``: [(topic filter, qos)]."""
    body = bytes(((packet_id >> 8) & 0xFF, packet_id & 0xFF))
    for topic, qos in filters:
        body += _string(topic) + bytes((qos,))
    return _packet((SUBSCRIBE << 4) | 0x02, body)


# --------------------------------------------------------------------- decoding ---

def _remaining(buf, i, end):
    """(remaining length, index after it) of the length starting at ``buf[i]``; (-1, -1)
    while incomplete. Raises MqttPacketError for a fifth length byte (§2.2.3)."""
    n = 0
    shift = 0
    while i < end:
        b = buf[i]
        n |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return n, i
        shift += 7
        if shift == 28:
            raise MqttPacketError("MQTT remaining length: expected at most 4 bytes, found a 5th")
    return -1, -1


def publish_fields(flags, body):
    """(topic, packet id or None, payload) of a PUBLISH body with fixed-header ``flags``.
    Raises MqttPacketError for a body too short for its topic and packet id, a topic that
    is not UTF-8, or QoS 3 (§3.3.1.2)."""
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MqttPacketError("PUBLISH QoS: expected 0, 1 or 2, found 3")
    n = len(body)
    if n < 2:
        raise MqttPacketError("PUBLISH: expected a topic length, found %d bytes" % n)
    tlen = (body[0] << 8) | body[1]
    pos = 2 + tlen + (2 if qos else 0)
    if pos > n:
        raise MqttPacketError("PUBLISH: expected %d bytes of topic and packet id, found %d" % (pos, n))
    topic = _topic(body, 2, 2 + tlen)
    pid = (body[pos - 2] << 8) | body[pos - 1] if qos else None
    return topic, pid, body[pos:]


def _topic(buf, start, stop):
    try:
        return bytes(buf[start:stop]).decode("utf-8")
    except UnicodeError:
        raise MqttPacketError("PUBLISH topic: expected UTF-8 (§1.5.3), found %r"
                              % bytes(buf[start:stop])[:40])


def split_publishes(data, start=0, end=None, max_packet=DEFAULT_MAX_PACKET):
    """The fast path: every whole QoS 1 PUBLISH packet at the front of ``data[start:end]``
    (``data`` bytes or bytearray).

    Returns ``(packets, offset)``: packets as (topic, packet id, payload) with the payload a
    memoryview slice of ``data`` (no copy; valid while ``data`` is unchanged), and the offset
    of the first byte not consumed: a packet of another type or QoS (for ``Framer``), a
    packet that is not complete yet, or a malformed packet after whole ones (they are
    returned first, so that everything before bad bytes is delivered). Raises
    MqttPacketError when the first packet is malformed (module docstring) or over
    ``max_packet`` bytes.
    """
    if end is None:
        end = len(data)
    view = memoryview(data)
    out = []
    append = out.append
    i = start
    while i + 2 <= end:
        if data[i] & 0xF6 != 0x32:  # PUBLISH, QoS 1 (DUP and RETAIN bits free)
            break
        rem = data[i + 1]
        j = i + 2
        if rem & 0x80:
            try:
                rem, j = _remaining(data, i + 1, end)
            except MqttPacketError as e:
                if out:
                    break  # the packets before it first; the next call raises
                raise e
            if j < 0:
                break
        stop = j + rem
        if stop - i > max_packet:
            if out:
                break
            raise MqttPacketError("MQTT packet of %d bytes: expected at most %d" % (stop - i, max_packet))
        if stop > end:
            break
        k = j + 2 + ((data[j] << 8) | data[j + 1] if rem >= 2 else rem)
        if k + 2 > stop:
            if out:
                break
            raise MqttPacketError("PUBLISH: expected %d bytes of topic and packet id, found %d"
                                  % (k + 2 - j, rem))
        try:
            topic = data[j + 2:k].decode("utf-8")
        except UnicodeError:
            if out:
                break
            raise MqttPacketError("PUBLISH topic: expected UTF-8 (§1.5.3), found %r"
                                  % bytes(data[j + 2:k])[:40])
        append((topic, (data[k] << 8) | data[k + 1], view[k + 2:stop]))
        i = stop
    return out, i


class Framer:
    """Whole packets from a byte stream: ``receive_data(bytes)`` (or ``space()`` and
    ``received(n)`` around a socket's ``readinto``), then ``next_packet()`` until it
    returns None; ``take_publishes()`` first takes the QoS 1 PUBLISH packets at the front
    in one pass (``split_publishes``).

    A packet is (type, flags, body): the type and flags of the fixed header, the body
    (variable header and payload) as bytes. ``consumed`` counts the bytes of the packets
    handed out, ``buffered`` the bytes held of packets not yet complete. The buffer is
    allocated once, ``buffer_size`` bytes (default ``max_packet``), and compacted only when
    ``space`` or ``receive_data`` needs room; a packet larger than the buffer but within
    ``max_packet`` grows it for that packet (a server takes whatever its broker delivers,
    as a general-purpose client would, and judges the size itself). A packet announcing
    more than ``max_packet`` raises MqttPacketError, and so does data that does not fit.
    After an error the framer stays failed (module docstring: MQTT over TCP cannot
    resynchronise).
    """

    def __init__(self, max_packet=DEFAULT_MAX_PACKET, buffer_size=0):
        self.max_packet = max_packet
        self.consumed = 0
        self._size = min(buffer_size or max_packet, max_packet)
        self._buf = bytearray(self._size)
        self._start = 0  # first byte not handed out
        self._end = 0  # one past the last byte received
        self._error = None

    def _compact(self):
        start, end = self._start, self._end
        if start:
            self._buf[0:end - start] = self._buf[start:end]
            self._start, self._end = 0, end - start
        if end == start and len(self._buf) > self._size:
            self._buf = bytearray(self._size)  # a large packet is gone: back to the usual size

    def _fit(self, n):
        """Room for a packet of ``n`` bytes from the buffer's start (``n`` <= max_packet)."""
        if n > len(self._buf):  # a new buffer: payload views handed out keep the old one
            start, end = self._start, self._end
            buf = bytearray(n)
            buf[0:end - start] = self._buf[start:end]
            self._buf, self._start, self._end = buf, 0, end - start

    def space(self):
        """The free tail of the buffer, for ``sock.readinto``; follow with ``received``.
        (Payloads from ``take_publishes`` are valid until this is called.)"""
        self._compact()
        return memoryview(self._buf)[self._end:]

    def received(self, n):
        """``n`` bytes were written into ``space()``."""
        self._end += n

    def receive_data(self, data):
        """Take ``data`` (bytes-like). Raises MqttPacketError if the unread bytes would
        pass the buffer, which only a packet over the bound can make happen."""
        self._compact()
        n = len(data)
        if self._end + n > self.max_packet:
            self._fail("MQTT packet: expected at most %d bytes buffered, found %d"
                       % (self.max_packet, self._end + n))
        self._fit(self._end + n)
        self._buf[self._end:self._end + n] = data
        self._end += n

    @property
    def buffered(self):
        """Bytes received and not yet handed out."""
        return self._end - self._start

    def next_packet(self):
        """The next whole packet as (type, flags, body), or None until more bytes arrive.
        Raises MqttPacketError (module docstring)."""
        if self._error is not None:
            raise MqttPacketError(self._error)
        buf, start, have = self._buf, self._start, self._end
        if have - start < 2:
            return None
        try:
            rem, j = _remaining(buf, start + 1, have)
        except MqttPacketError as e:
            self._fail(str(e))
        if j < 0:
            return None
        end = j + rem
        if end - start > self.max_packet:
            self._fail("MQTT packet of %d bytes: expected at most %d" % (end - start, self.max_packet))
        if have < end:
            self._fit(end - start)  # a packet larger than the buffer: room for all of it
            return None
        first = buf[start]
        self._start = end
        self.consumed += end - start
        return first >> 4, first & 0x0F, bytes(buf[j:end])

    def take_publishes(self):
        """The QoS 1 PUBLISH packets at the front, as ``split_publishes`` returns them (the
        payloads are views of the buffer, valid until ``space``/``receive_data``).
        Raises MqttPacketError."""
        if self._error is not None:
            raise MqttPacketError(self._error)
        try:
            packets, end = split_publishes(self._buf, self._start, self._end, self.max_packet)
        except MqttPacketError as e:
            self._fail(str(e))
        self.consumed += end - self._start
        self._start = end
        return packets

    def _fail(self, message):
        self._error = message
        raise MqttPacketError(message)

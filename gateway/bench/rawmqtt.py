"""A minimal MQTT 3.1.1 client over a plain socket, for load generation only.

paho-mqtt costs ~150 µs of Python per QoS 1 publish, so a paho publisher would
be slower than the gateway it is meant to saturate. Here packets are encoded
once, ahead of time (``publish_packet``), and a run only writes prepared bytes
and parses what comes back (PUBACK, SUBACK, PUBLISH of the gateway's acks).

Packet layouts: MQTT 3.1.1 (OASIS, 2014) §2.2 fixed header, §3.1 CONNECT,
§3.3 PUBLISH, §3.4 PUBACK, §3.8 SUBSCRIBE.
"""
import socket
import struct

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ = 1, 2, 3, 4, 8, 9, 12
# Bytes read per recv: many PUBACKs (4 bytes each) per system call.
RECV_BYTES = 1 << 18
# An incoming packet larger than this is a protocol error here (acks are a few bytes).
MAX_PACKET = 1 << 20


class MqttError(Exception):
    """The broker refused us or sent something this client does not expect."""


def _remaining_length(n):
    """§2.2.3: variable-length encoding, 7 bits per byte, high bit = more."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id, keepalive=60, clean_session=True):
    flags = 0x02 if clean_session else 0
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _utf8(client_id)
    return bytes([CONNECT << 4]) + _remaining_length(len(body)) + body


def publish_packet(topic, payload, packet_id, qos=1, retain=False):
    """§3.3: PUBLISH with QoS 1 (packet id present)."""
    head = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
    var = _utf8(topic) + (struct.pack("!H", packet_id) if qos else b"")
    return bytes([head]) + _remaining_length(len(var) + len(payload)) + var + payload


def subscribe_packet(packet_id, filters):
    body = struct.pack("!H", packet_id) + b"".join(_utf8(f) + bytes([qos]) for f, qos in filters)
    return bytes([(SUBSCRIBE << 4) | 0x02]) + _remaining_length(len(body)) + body


class Parser:
    """Feed bytes, get ``(type, flags, body)`` tuples; keeps a partial packet across feeds."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        buf = self.buf + data if self.buf else data
        out = []
        i, n = 0, len(buf)
        while i + 2 <= n:
            first = buf[i]
            length, mult, j = 0, 1, i + 1
            while True:
                if j >= n:
                    self.buf = buf[i:]
                    return out
                b = buf[j]
                length += (b & 0x7F) * mult
                mult *= 128
                j += 1
                if not b & 0x80:
                    break
                if mult > 128 ** 4:
                    raise MqttError("malformed remaining length")
            if length > MAX_PACKET:
                raise MqttError("packet of %d bytes, at most %d expected" % (length, MAX_PACKET))
            if j + length > n:
                break
            out.append((first >> 4, first & 0x0F, buf[j:j + length]))
            i = j + length
        self.buf = buf[i:]
        return out


def publish_fields(flags, body):
    """(topic, packet_id or None, payload) of a PUBLISH body."""
    tlen = struct.unpack_from("!H", body)[0]
    topic = body[2:2 + tlen].decode()
    pos = 2 + tlen
    pid = None
    if (flags >> 1) & 3:
        pid = struct.unpack_from("!H", body, pos)[0]
        pos += 2
    return topic, pid, body[pos:]


def open_session(host, port, client_id, clean_session=True, timeout=10.0):
    """A connected socket (CONNACK accepted) and its Parser. Raises MqttError/OSError."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(connect_packet(client_id, clean_session=clean_session))
    parser = Parser()
    while True:
        data = s.recv(4096)
        if not data:
            raise MqttError("broker closed the connection before CONNACK")
        for ptype, _flags, body in parser.feed(data):
            if ptype == CONNACK:
                if len(body) != 2 or body[1] != 0:
                    raise MqttError("CONNACK refused: return code %r" % (body[1:2],))
                return s, parser

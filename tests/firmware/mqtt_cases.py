"""MQTT client cases with exact bytes over a fake socket: one source, two runtimes.

CPython imports this module (``test_mqtt.py`` runs each ``case_*``); MicroPython
runs its source followed by ``run_all()``. Only what both runtimes have is used.
Expected bytes are written out from MQTT 3.1.1 (OASIS, 2014) packet layouts; the
CONNECT variable header is the standard's own example (§3.1.2.10 Figure 3.6). The codec
underneath (protocols/mqtt.py) has its own cases, tests/protocols/mqtt_cases.py.
"""
from edgeledger.firmware import mqtt


class FakeSocket:
    """A stream socket over byte buffers; ``chunk`` limits bytes per read."""

    def __init__(self, incoming=b"", chunk=0, eof=False):
        self.out = bytearray()
        self.incoming = bytearray(incoming)
        self.chunk = chunk
        self.eof = eof
        self.closed = False
        self.blocking = None
        self.write_stalls = 0

    def setblocking(self, flag):
        self.blocking = flag

    def write(self, data):
        if self.write_stalls:
            self.write_stalls -= 1
            return None
        self.out.extend(bytes(data))
        return len(data)

    def readinto(self, buf):
        if not self.incoming:
            return 0 if self.eof else None
        n = min(len(buf), len(self.incoming))
        if self.chunk:
            n = min(n, self.chunk)
        buf[:n] = self.incoming[:n]
        self.incoming = self.incoming[n:]
        return n

    def feed(self, data):
        self.incoming.extend(data)

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


CONNACK_OK = b"\x20\x02\x00\x00"


def connect_dev(keepalive):
    return b"\x10\x0f\x00\x04MQTT\x04\x02\x00" + bytes([keepalive]) + b"\x00\x03dev"


def connected(incoming=b"", keepalive=30, **kw):
    clock = Clock()
    c = mqtt.MQTTClient("dev", "broker", keepalive=keepalive, clock=clock, **kw)
    sock = FakeSocket(CONNACK_OK)
    assert c.connect(sock=sock) is False
    assert bytes(sock.out) == connect_dev(keepalive)
    sock.out = bytearray()
    sock.feed(incoming)
    return c, sock, clock


def raises(exc, fn, *args):
    try:
        fn(*args)  # noqa
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def case_connect_minimal_and_connack():
    c, sock, clock = connected()
    assert sock.blocking is False  # non-blocking from CONNECT on
    assert c.sock is not None


def case_connect_variable_header_is_the_standards_example():
    # §3.1.2.10 Figure 3.6: user name, password, will QoS 1, will flag, clean session,
    # keep alive 10 -> 00 04 'MQTT' 04 CE 00 0A
    c = mqtt.MQTTClient("c", "b", user="u", password="p", keepalive=10, clock=Clock())
    c.set_last_will("w", b"x", retain=False, qos=1)
    sock = FakeSocket(CONNACK_OK)
    c.connect(sock=sock)
    assert bytes(sock.out[2:12]) == b"\x00\x04MQTT\x04\xce\x00\x0a"
    assert bytes(sock.out) == (b"\x10\x19" + b"\x00\x04MQTT\x04\xce\x00\x0a" + b"\x00\x01c"
                               + b"\x00\x01w" + b"\x00\x01x" + b"\x00\x01u" + b"\x00\x01p")


def case_connect_with_retained_will():
    c = mqtt.MQTTClient("d1", "b", keepalive=60, clock=Clock())
    c.set_last_will("el/v1/s/d1/death", b"\xa1\x01\x02", retain=True, qos=1)
    sock = FakeSocket(CONNACK_OK)
    c.connect(sock=sock)
    # flags: will retain 0x20 | will QoS 1 0x08 | will 0x04 | clean session 0x02 = 0x2e
    assert bytes(sock.out) == (b"\x10\x25\x00\x04MQTT\x04\x2e\x00\x3c\x00\x02d1"
                               + b"\x00\x10el/v1/s/d1/death\x00\x03\xa1\x01\x02")


def case_connack_refused_names_the_code():
    c = mqtt.MQTTClient("dev", "b", clock=Clock())
    sock = FakeSocket(b"\x20\x02\x00\x05")
    e = raises(mqtt.Refused, c.connect, False, sock)
    assert e.code == 5 and "not authorized" in str(e)
    assert sock.closed and c.sock is None


def case_connack_split_one_byte_per_read():
    c = mqtt.MQTTClient("dev", "b", clock=Clock())
    sock = FakeSocket(b"\x20\x02\x01\x00", chunk=1)
    assert c.connect(sock=sock) is True  # session present flag


def case_no_connack_times_out():
    clock = Clock()

    def later():
        clock.t += 0.1
        return clock.t

    c = mqtt.MQTTClient("dev", "b", clock=later, timeout_s=1.0)
    sock = FakeSocket(b"")
    raises(mqtt.ConnectionLost, c.connect, True, sock)
    assert sock.closed


def case_publish_qos1_bytes_and_puback():
    c, sock, clock = connected()
    pid = c.publish("el/v1/s/d/r", b"\xd2\x84", qos=1)
    assert pid == 1
    # 0x32 = PUBLISH, QoS 1; remaining 2 + 11 + 2 + 2 = 17
    assert bytes(sock.out) == b"\x32\x11\x00\x0bel/v1/s/d/r\x00\x01\xd2\x84"
    assert c.inflight() == 1
    sock.feed(b"\x40\x02\x00\x01")
    c.poll()
    assert c.inflight() == 0


def case_publish_qos0_retained():
    c, sock, clock = connected()
    assert c.publish("t/b", b"hi", retain=True) == 0
    assert bytes(sock.out) == b"\x31\x07\x00\x03t/bhi"
    assert c.inflight() == 0


def case_publish_long_payload_two_length_bytes():
    c, sock, clock = connected()
    c.publish("t", b"\x00" * 200, qos=1)
    # remaining 2 + 1 + 2 + 200 = 205 = 0xcd -> cd 01
    assert bytes(sock.out[:8]) == b"\x32\xcd\x01\x00\x01t\x00\x01"
    assert len(sock.out) == 3 + 205


def case_inflight_window_is_bounded():
    c, sock, clock = connected(max_inflight=2)
    c.publish("t", b"1", qos=1)
    c.publish("t", b"2", qos=1)
    assert c.inflight() == c.max_inflight  # the window is full
    raises(mqtt.MqttError, lambda: c.publish("t", b"3", qos=1))
    sock.feed(b"\x40\x02\x00\x02")
    c.poll()
    assert c.inflight() < c.max_inflight
    assert c.publish("t", b"3", qos=1) == 3


def case_subscribe_and_suback():
    c, sock, clock = connected()
    pid = c.subscribe("el/v1/s/d/ack", 1)
    assert bytes(sock.out) == b"\x82\x12\x00\x01\x00\x0del/v1/s/d/ack\x01"
    sock.feed(b"\x90\x03" + bytes([0, pid, 1]))
    c.poll()


def case_suback_failure_is_refused():
    c, sock, clock = connected()
    c.subscribe("t", 1)
    sock.feed(b"\x90\x03\x00\x01\x80")
    e = raises(mqtt.Refused, c.poll)
    assert e.code == 0x80


def case_incoming_qos1_publish_byte_by_byte_is_acked():
    got = []
    c, sock, clock = connected()
    c.on_message = lambda topic, payload, retained: got.append((topic, payload, retained))
    sock.chunk = 1
    # retained QoS 1 PUBLISH, pid 0x1234, topic el/v1/s/d/ack, payload {1: 7}
    sock.feed(b"\x33\x14\x00\x0del/v1/s/d/ack\x12\x34\xa1\x01\x07")
    for _ in range(30):
        c.poll()
    assert got == [("el/v1/s/d/ack", b"\xa1\x01\x07", True)]
    assert bytes(sock.out) == b"\x40\x02\x12\x34"


def case_incoming_qos0_publish_and_two_in_one_read():
    got = []
    c, sock, clock = connected()
    c.on_message = lambda topic, payload, retained: got.append((topic, payload, retained))
    sock.feed(b"\x30\x04\x00\x01ax" + b"\x30\x05\x00\x01byz")
    c.poll()
    assert got == [("a", b"x", False), ("b", b"yz", False)]
    assert bytes(sock.out) == b""  # QoS 0: no PUBACK


def case_keepalive_ping_and_pingresp():
    c, sock, clock = connected(keepalive=10)
    clock.t += 4.9
    c.poll()
    assert bytes(sock.out) == b""
    clock.t += 0.2  # half the keepalive without sending anything
    c.poll()
    assert bytes(sock.out) == b"\xc0\x00"
    sock.feed(b"\xd0\x00")
    clock.t += 1
    c.poll()
    clock.t += 9.5  # the PINGRESP arrived, so no timeout; a new PINGREQ is due
    c.poll()
    assert bytes(sock.out) == b"\xc0\x00\xc0\x00"


def case_missing_pingresp_drops_connection():
    c, sock, clock = connected(keepalive=10)
    clock.t += 5
    c.poll()
    clock.t += 10.5
    raises(mqtt.ConnectionLost, c.poll)
    assert sock.closed and c.sock is None


def case_broker_closing_is_connection_lost():
    c, sock, clock = connected()
    sock.eof = True
    raises(mqtt.ConnectionLost, c.poll)
    assert c.sock is None


def case_oversized_packet_is_a_protocol_violation():
    c, sock, clock = connected()
    sock.feed(b"\x30\xff\x7f")  # 16383 bytes announced, RX_MAX is far smaller
    raises(mqtt.ProtocolViolation, c.poll)


def case_five_length_bytes_is_a_protocol_violation():
    c, sock, clock = connected()
    sock.feed(b"\x30\xff\xff\xff\xff\x01")
    raises(mqtt.ProtocolViolation, c.poll)


def case_incoming_qos2_publish_is_a_protocol_violation():
    c, sock, clock = connected()
    sock.feed(b"\x34\x05\x00\x01a\x00\x01")  # QoS 2: this client does not speak it
    raises(mqtt.ProtocolViolation, c.poll)
    assert bytes(sock.out) == b""


def case_unexpected_packet_type():
    c, sock, clock = connected()
    sock.feed(b"\xa0\x00")
    raises(mqtt.ProtocolViolation, c.poll)


def case_stalled_write_is_bounded():
    c, sock, clock = connected()
    sock.write_stalls = 2  # would block twice, then takes the bytes
    c.publish("t", b"x")
    assert bytes(sock.out) == b"\x30\x04\x00\x01tx"
    c.timeout_s = 0.0
    sock.write_stalls = 1000

    def later():
        clock.t += 1.0
        return clock.t

    c.clock = later
    raises(mqtt.ConnectionLost, c.publish, "t", b"y")
    assert c.sock is None


def case_disconnect_sends_packet_and_closes():
    c, sock, clock = connected()
    c.disconnect()
    assert bytes(sock.out) == b"\xe0\x00"
    assert sock.closed and c.sock is None


def case_packet_ids_skip_zero_and_inflight():
    c, sock, clock = connected(max_inflight=5)
    c._pid = 65534
    assert c.publish("t", b"", qos=1) == 65535
    assert c.publish("t", b"", qos=1) == 1  # wraps past 0 (§2.3.1: non-zero)


def run_all():
    names = sorted(n for n in globals() if n.startswith("case_"))
    for name in names:
        globals()[name]()
    print("mqtt cases ok %d" % len(names))

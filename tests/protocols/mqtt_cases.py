"""protocols/mqtt.py cases with exact bytes: one source, two runtimes.

CPython imports this module (``test_mqtt.py`` runs each ``case_*``); MicroPython runs its
source followed by ``run_all()``. Only what both runtimes have is used. Expected bytes are
written out from the MQTT 3.1.1 (OASIS, 2014) packet layouts; the remaining-length table and
the CONNECT variable header are the standard's own examples (§2.2.3 Table 2.4, §3.1.2.10
Figure 3.6).
"""
from edgeledger.protocols import mqtt
from edgeledger.protocols.errors import DecodeError
from edgeledger.protocols.mqtt import MqttPacketError

# One frame of every kind a client or the gateway meets, with what the framer hands out.
FRAMES = (
    (b"\x20\x02\x00\x00", (mqtt.CONNACK, 0, b"\x00\x00")),
    (b"\x90\x03\x00\x01\x01", (mqtt.SUBACK, 0, b"\x00\x01\x01")),
    (b"\x40\x02\x12\x34", (mqtt.PUBACK, 0, b"\x12\x34")),
    (b"\x33\x14\x00\x0del/v1/s/d/ack\x12\x34\xa1\x01\x07",
     (mqtt.PUBLISH, 3, b"\x00\x0del/v1/s/d/ack\x12\x34\xa1\x01\x07")),
    (b"\x30\x04\x00\x01ax", (mqtt.PUBLISH, 0, b"\x00\x01ax")),
    (b"\xd0\x00", (mqtt.PINGRESP, 0, b"")),
    (b"\x32\xcd\x01\x00\x01t\x00\x01" + b"\x00" * 200, (mqtt.PUBLISH, 2, b"\x00\x01t\x00\x01" + b"\x00" * 200)),
)
STREAM = b"".join(f for f, _ in FRAMES)
EXPECTED = [p for _, p in FRAMES]


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def drain(framer):
    out = []
    while True:
        p = framer.next_packet()
        if p is None:
            return out
        out.append(p)


# -- encoding ---------------------------------------------------------------------------------

def case_remaining_length_table():
    # §2.2.3 Table 2.4: the boundaries of one to four length bytes
    table = ((0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16383, b"\xff\x7f"),
             (16384, b"\x80\x80\x01"), (2097151, b"\xff\xff\x7f"), (2097152, b"\x80\x80\x80\x01"),
             (268435455, b"\xff\xff\xff\x7f"))
    for n, want in table:
        assert mqtt.encode_length(n) == want, n
    raises(ValueError, mqtt.encode_length, 268435456)
    raises(ValueError, mqtt.encode_length, -1)


def case_connect_variable_header_is_the_standards_example():
    # §3.1.2.10 Figure 3.6: user name, password, will QoS 1, will flag, clean session,
    # keep alive 10 -> 00 04 'MQTT' 04 CE 00 0A
    p = mqtt.connect("c", 10, True, ("w", b"x", False, 1), "u", "p")
    assert p == (b"\x10\x19" + b"\x00\x04MQTT\x04\xce\x00\x0a" + b"\x00\x01c"
                 + b"\x00\x01w" + b"\x00\x01x" + b"\x00\x01u" + b"\x00\x01p")


def case_connect_minimal_and_retained_will():
    assert mqtt.connect("dev", 30) == b"\x10\x0f\x00\x04MQTT\x04\x02\x00\x1e\x00\x03dev"
    # will retain 0x20 | will QoS 1 0x08 | will 0x04 | clean session 0x02 = 0x2e
    assert mqtt.connect("d1", 60, True, ("el/v1/s/d1/death", b"\xa1\x01\x02", True, 1)) == (
        b"\x10\x25\x00\x04MQTT\x04\x2e\x00\x3c\x00\x02d1" + b"\x00\x10el/v1/s/d1/death\x00\x03\xa1\x01\x02")
    assert mqtt.connect("x", 60, False)[9] == 0  # no clean session: flags 0


def case_publish_qos1_qos0_and_long_payload():
    assert mqtt.publish("el/v1/s/d/r", b"\xd2\x84", 1, qos=1) == b"\x32\x11\x00\x0bel/v1/s/d/r\x00\x01\xd2\x84"
    assert mqtt.publish("t/b", b"hi", retain=True) == b"\x31\x07\x00\x03t/bhi"
    head = mqtt.publish_header("t", 200, 1, qos=1)
    assert head == b"\x32\xcd\x01\x00\x01t\x00\x01"  # remaining 2 + 1 + 2 + 200 = 205
    assert mqtt.publish("t", b"\x00" * 200, 1, qos=1) == head + b"\x00" * 200
    assert mqtt.publish("t", b"y", 65535, qos=1, retain=True)[:1] == b"\x33"


def case_puback_subscribe_ping_disconnect():
    assert mqtt.puback(0x1234) == b"\x40\x02\x12\x34"
    assert mqtt.subscribe(1, (("el/v1/s/d/ack", 1),)) == b"\x82\x12\x00\x01\x00\x0del/v1/s/d/ack\x01"
    assert mqtt.subscribe(7, (("a", 0), ("b/+", 1))) == b"\x82\x0c\x00\x07\x00\x01a\x00\x00\x03b/+\x01"
    assert mqtt.PINGREQ_PACKET == b"\xc0\x00" and mqtt.DISCONNECT_PACKET == b"\xe0\x00"


def case_publish_fields():
    assert mqtt.publish_fields(3, b"\x00\x0del/v1/s/d/ack\x12\x34\xa1\x01\x07") == (
        "el/v1/s/d/ack", 0x1234, b"\xa1\x01\x07")
    assert mqtt.publish_fields(0, b"\x00\x01ax") == ("a", None, b"x")
    raises(MqttPacketError, mqtt.publish_fields, 2, b"\x00\x05ab\x00\x01")  # topic overruns
    raises(MqttPacketError, mqtt.publish_fields, 6, b"\x00\x01a\x00\x01")  # QoS 3
    raises(MqttPacketError, mqtt.publish_fields, 0, b"\x00")


# -- the framer -------------------------------------------------------------------------------

def case_every_frame_whole():
    for frame, want in FRAMES:
        f = mqtt.Framer()
        f.receive_data(frame)
        assert drain(f) == [want], frame
        assert f.consumed == len(frame) and f.buffered == 0


def case_stream_split_at_every_byte():
    for cut in range(len(STREAM) + 1):
        f = mqtt.Framer()
        f.receive_data(STREAM[:cut])
        got = drain(f)
        f.receive_data(STREAM[cut:])
        got += drain(f)
        assert got == EXPECTED, cut
        assert f.consumed == len(STREAM)


def case_stream_one_byte_at_a_time():
    f = mqtt.Framer()
    got = []
    for i in range(len(STREAM)):
        f.receive_data(STREAM[i:i + 1])
        got += drain(f)
        assert f.consumed + f.buffered == i + 1
    assert got == EXPECTED


def case_read_into_the_framers_buffer():
    f = mqtt.Framer(64)
    data = FRAMES[0][0] + FRAMES[3][0]
    space = f.space()
    space[:len(data)] = data
    f.received(len(data))
    assert drain(f) == [FRAMES[0][1], FRAMES[3][1]]


def case_junk_cannot_be_resynchronised():
    # 0xff 0xff 0xff 0xff 0x01: a fifth length byte. TCP loses no bytes, so MQTT has no
    # resync (the next boundary is unknowable); the framer stays failed, the caller closes.
    f = mqtt.Framer()
    f.receive_data(b"\x30\xff\xff\xff\xff\x01" + FRAMES[0][0])
    e = raises(MqttPacketError, f.next_packet)
    assert isinstance(e, DecodeError) and isinstance(e, ValueError)
    raises(MqttPacketError, f.next_packet)  # and stays so
    f = mqtt.Framer()
    f.receive_data(b"\xa0")  # an unknown type is a whole packet to the framer: its reader decides
    f.receive_data(b"\x00" + FRAMES[5][0])
    assert drain(f) == [(10, 0, b""), FRAMES[5][1]]


def case_packet_over_the_bound():
    f = mqtt.Framer(512)
    f.receive_data(b"\x30\xff\x7f")  # 16383 bytes announced
    raises(MqttPacketError, f.next_packet)
    f = mqtt.Framer(8)
    raises(MqttPacketError, f.receive_data, b"\x30\x07\x00\x01abcdef")  # 9 bytes: more than fits


def case_a_packet_larger_than_the_buffer_grows_it_up_to_the_bound():
    big = mqtt.publish("el/v1/s/d/r", b"x" * 3000, 7, qos=1)
    f = mqtt.Framer(8192, 64)  # 64-byte buffer, packets up to 8 KiB
    got = []
    for i in range(0, len(big), 50):  # as a socket would hand it over
        f.receive_data(big[i:i + 50])
        got += [(t, p, bytes(v)) for t, p, v in f.take_publishes()]
        assert f.next_packet() is None
    assert got == [("el/v1/s/d/r", 7, b"x" * 3000)]
    f.receive_data(FRAMES[2][0])  # the buffer is back to its size, and works
    assert f.next_packet() == FRAMES[2][1]
    f = mqtt.Framer(8192, 64)
    space = f.space()  # read straight into the buffer: the announced size makes room
    space[:5] = big[:5]
    f.received(5)
    assert f.next_packet() is None and len(f.space()) >= len(big) - 5


# -- the fast path ----------------------------------------------------------------------------

def _publishes(n, payload=b"\xd2\x84abc"):
    return b"".join(mqtt.publish("el/v1/plant-a/dev-%d/r" % i, payload + bytes([i]), i + 1, qos=1)
                    for i in range(n))


def case_split_publishes_whole_buffer():
    data = _publishes(5)
    packets, end = mqtt.split_publishes(data)
    assert end == len(data)
    assert [(t, p, bytes(v)) for t, p, v in packets] == [
        ("el/v1/plant-a/dev-%d/r" % i, i + 1, b"\xd2\x84abc" + bytes([i])) for i in range(5)]


def case_split_publishes_stops_at_incomplete_and_other_packets():
    data = _publishes(3)
    for cut in range(len(data) + 1):
        packets, end = mqtt.split_publishes(data, 0, cut)
        more, end2 = mqtt.split_publishes(data, end)
        assert [p for _, p, _ in packets + more] == [1, 2, 3], cut
        assert end2 == len(data)
    mixed = _publishes(1) + b"\x30\x04\x00\x01ax" + _publishes(1)
    packets, end = mqtt.split_publishes(mixed)
    assert len(packets) == 1 and mixed[end] == 0x30  # QoS 0 is the framer's
    big = mqtt.publish("t", b"x" * 300, 9, qos=1)  # two length bytes
    assert [bytes(v) for _, _, v in mqtt.split_publishes(big)[0]] == [b"x" * 300]


def case_split_publishes_refuses_malformed():
    raises(MqttPacketError, mqtt.split_publishes, b"\x32\x03\x00\x05a")  # rem < topic + id
    raises(MqttPacketError, mqtt.split_publishes, b"\x32\x06\x00\x09abcd")  # topic overruns
    raises(MqttPacketError, mqtt.split_publishes, b"\x32\xff\xff\xff\xff\x01")
    raises(MqttPacketError, mqtt.split_publishes, b"\x32\xff\x7f", 0, None, 512)  # over the bound


def case_split_publishes_returns_the_packets_before_a_malformed_one_first():
    good = _publishes(2)
    for bad in (b"\x32\x03\x00\x05a", b"\x32\x06\x00\x09abcd", b"\x32\xff\xff\xff\xff\x01",
                b"\x32\x07\x00\x03a\xffb\x00\x01"):
        packets, end = mqtt.split_publishes(good + bad)
        assert [p for _, p, _ in packets] == [1, 2] and end == len(good), bad
        raises(MqttPacketError, mqtt.split_publishes, good + bad, end)
    f = mqtt.Framer()
    f.receive_data(good + b"\x32\x06\x00\x09abcd")
    assert [p for _, p, _ in f.take_publishes()] == [1, 2]
    raises(MqttPacketError, f.take_publishes)


def case_framer_takes_publishes_then_other_packets():
    f = mqtt.Framer()
    f.receive_data(_publishes(3) + FRAMES[0][0] + _publishes(1))
    first = f.take_publishes()
    assert [p for _, p, _ in first] == [1, 2, 3]
    assert f.take_publishes() == [] and f.next_packet() == FRAMES[0][1]
    assert [bytes(v) for _, _, v in f.take_publishes()] == [b"\xd2\x84abc\x00"]
    assert f.buffered == 0 and f.consumed == len(_publishes(3)) + 4 + len(_publishes(1))


def case_framer_reuses_its_buffer():
    f = mqtt.Framer(16)
    for _ in range(100):  # far more than 16 bytes through a 16-byte buffer
        f.receive_data(FRAMES[2][0] + FRAMES[5][0][:1])
        assert f.next_packet() == FRAMES[2][1]
        f.receive_data(FRAMES[5][0][1:])
        assert f.next_packet() == FRAMES[5][1]


def run_all():
    names = sorted(n for n in globals() if n.startswith("case_"))
    for name in names:
        globals()[name]()
    print("mqtt codec cases ok %d" % len(names))

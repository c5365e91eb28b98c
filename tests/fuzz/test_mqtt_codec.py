"""protocols/mqtt.py under hostile input: arbitrary bytes and mutated packet streams, fed
whole and cut at random points. The framer and the fast path raise nothing but
MqttPacketError, hand out the same packets however the stream is cut, and agree with each
other on the QoS 1 PUBLISH packets."""
from hypothesis import given
from hypothesis import strategies as st

from edgeledger.protocols import mqtt
from edgeledger.protocols.mqtt import MqttPacketError
from tests.fuzz.profiles import fuzz
from tests.fuzz.test_decoders import mutated

MAX = 4096
GOOD = b"".join((
    mqtt.publish("el/v1/plant-a/dev-1/r", b"\xd2\x84" + b"x" * 40, 1, qos=1),
    mqtt.publish("el/v1/plant-a/dev-2/r", b"y" * 300, 2, qos=1, retain=True),
    b"\x40\x02\x00\x07\xd0\x00",
    mqtt.publish("el/v1/plant-a/dev-1/ack", b"\xa1\x01\x07", 0),
    mqtt.publish("el/v1/plant-a/dev-3/r", b"", 65535, qos=1),
))
streams = st.one_of(st.binary(max_size=300), mutated(GOOD))


def _framer_packets(data, cuts):
    """Packets of ``data`` fed in pieces at ``cuts``, and the error that stopped it (or None)."""
    f = mqtt.Framer(MAX)
    out = []
    prev = 0
    try:
        for cut in sorted(cuts) + [len(data)]:
            f.receive_data(data[prev:cut])
            prev = cut
            out.extend(iter(f.next_packet, None))
    except MqttPacketError as e:
        return out, e
    return out, None


@fuzz()
@given(streams, st.lists(st.integers(0, 400), max_size=6))
def test_framer_raises_only_its_error_and_cutting_changes_nothing(data, cuts):
    cuts = [c for c in cuts if c <= len(data)]
    whole, err = _framer_packets(data, [])
    cut, cut_err = _framer_packets(data, cuts)
    assert cut == whole[:len(cut)] and (err is None) == (cut_err is None)
    if err is None:
        assert cut == whole


@fuzz()
@given(streams)
def test_fast_path_agrees_with_the_framer(data):
    try:
        fast, end = mqtt.split_publishes(data, 0, None, MAX)
    except MqttPacketError:
        return
    slow, _ = _framer_packets(data[:end], [])
    assert [(t, pid, bytes(v)) for t, pid, v in fast] == [
        mqtt.publish_fields(flags, body) for _kind, flags, body in slow]
    assert all(kind == mqtt.PUBLISH and flags & 6 == 2 for kind, flags, _ in slow)

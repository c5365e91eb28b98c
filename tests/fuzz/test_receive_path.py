"""The gateway's MQTT receive path (``gateway/ingest/mqtt_client.py``: ``recv_into`` the
framer's buffer, ``Framer.take_publishes`` for QoS 1 PUBLISH, ``next_packet`` for the rest)
fed from a fake socket, through the same three calls the network thread makes per read
(``_recv``, ``_dispatch``, ``_flush``).

STYLE.md item 2: every stream is fed whole, split in two at every byte, one byte at a
time, and after junk. MQTT runs over TCP, so junk cannot be skipped the way a serial
framer resynchronises: the contract is that everything before the junk is delivered
exactly once and in order, nothing after it is, and the read ends in a typed
``MqttPacketError`` (the network thread then drops the connection and connects again:
tests/gateway/ingest/test_mqtt_client.py). Hypothesis then throws arbitrary bytes and hostile
PUBLISH packets at it, and holds every split of a stream to what the whole stream gives.
"""
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeledger.gateway.ingest.mqtt_client import MqttClient
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.ingest.service import IngestService
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import mqtt as codec
from edgeledger.protocols.mqtt import MqttPacketError
from tests.fuzz.profiles import fuzz

pytestmark = pytest.mark.security


class FakeSock:
    """Hands out one prepared chunk per recv_into() (as much as fits), then EAGAIN
    (BlockingIOError) like a non-blocking socket with nothing to read; records writes."""

    def __init__(self, chunks):
        self.chunks = [bytes(c) for c in chunks if c]
        self.sent = []

    def recv_into(self, buf):
        if not self.chunks:
            raise BlockingIOError()
        c = self.chunks.pop(0)
        n = min(len(c), len(buf))
        buf[:n] = c[:n]
        if n < len(c):
            self.chunks.insert(0, c[n:])
        return n

    def sendall(self, data):
        self.sent.append(bytes(data))


def run(client, chunks):
    """Feed ``chunks`` as the network thread reads them; returns (delivered, error): the
    (topic, payload, packet id, qos) handed to on_publish, and the MqttPacketError that
    ended the read (None if none did). Any other exception fails the calling test."""
    delivered = []
    if client.on_publish is None:
        client.on_publish = lambda topic, payload, mid, qos: delivered.append((topic, payload, mid, qos))
    fake = FakeSock(chunks)
    client._attach(fake)
    client.fake = fake
    error = None
    try:
        while fake.chunks:
            client._recv()
            client._dispatch()
            client._flush()
    except MqttPacketError as e:
        error = e
    for d in delivered:
        assert type(d[1]) is bytes  # a copy: the framer's buffer is reused by the next read
    return delivered, error


@pytest.fixture
def client():
    c = MqttClient("127.0.0.1", 1, "el-gw-rx")
    yield c
    c.stop()


# A stream of what a broker sends the gateway: QoS 1 PUBLISH packets of several sizes (a
# remaining length of 1, 2 and 3 bytes, an empty payload, a retained copy), a QoS 0
# PUBLISH (paho's path) and a PINGRESP between them.
T1, T2 = "el/v1/plant-a/d1/r", "el/v1/plant-a/device-with-a-longer-name/r"
FRAMES = [
    (codec.publish(T1, b"\xd2\x84abc", 1, qos=1), (T1, b"\xd2\x84abc", 1, 1)),
    (codec.publish(T2, b"x" * 200, 2, qos=1), (T2, b"x" * 200, 2, 1)),
    (b"\xd0\x00", None),  # PINGRESP
    (codec.publish(T1, b"", 3, qos=1), (T1, b"", 3, 1)),
    (codec.publish(T1, b"q0", 0, qos=0), (T1, b"q0", 0, 0)),
    (codec.publish(T2, b"y" * 17000, 65535, qos=1, retain=True), (T2, b"y" * 17000, 65535, 1)),
    (codec.publish(T1, b"last", 4, qos=1), (T1, b"last", 4, 1)),
]
STREAM = b"".join(f for f, _ in FRAMES)
EXPECTED = [e for _, e in FRAMES if e is not None]



def test_whole_stream(client):
    assert run(client, [STREAM]) == (EXPECTED, None)


def test_split_in_two_at_every_byte(client):
    small = b"".join(f for f, _ in FRAMES[:5])  # every split point of the first five frames
    expected = [e for _, e in FRAMES[:5] if e is not None]
    for i in range(1, len(small)):
        client.on_publish = None
        assert run(client, [small[:i], small[i:]]) == (expected, None), i
    big = FRAMES[5][0]  # and of the large frame, near its header and its end
    for i in list(range(1, 40)) + list(range(len(big) - 40, len(big))):
        client.on_publish = None
        assert run(client, [big[:i], big[i:]]) == ([FRAMES[5][1]], None), i


def test_one_byte_at_a_time(client):
    assert run(client, [STREAM[i:i + 1] for i in range(len(STREAM))]) == (EXPECTED, None)


def test_many_packets_per_read_and_a_packet_across_reads(client):
    """The fast path: one recv_into of many QoS 1 PUBLISH packets, the last one cut by the
    read; its rest arrives with the next read (after the framer compacts its buffer)."""
    stream = b"".join(codec.publish(T1, b"m%05d" % i, i + 1, qos=1) for i in range(5000))
    cut = len(stream) * 2 // 3 + 7
    delivered, error = run(client, [stream[:cut], stream[cut:]])
    assert error is None and [d[2] for d in delivered] == list(range(1, 5001))
    assert [d[1] for d in delivered[:2]] == [b"m00000", b"m00001"] and delivered[-1][1] == b"m04999"


@pytest.mark.parametrize("junk", [b"\x00", b"\xff\xff\xff\xff\xff", b"\x32\xff\xff\xff\xff\x7f", b"\x30\x02\x00\x10",
                                  b"\x32\x05\x00\x09el/v1", b"\x20\x02\x00\x00", b"\x34\x05\x00\x01t\x00\x01"])
@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_after_junk_the_read_ends_typed_and_nothing_after_it_is_delivered(client, junk, split):
    head = FRAMES[0][0] + FRAMES[1][0]
    data = head + junk + STREAM
    chunks = [data] if split == "whole" else [data[i:i + 1] for i in range(len(data))]
    delivered, error = run(client, chunks)
    assert delivered == EXPECTED[:2]  # what came before the junk, exactly once; nothing after it
    assert isinstance(error, MqttPacketError) and isinstance(error, ValueError), error


def test_a_topic_that_is_not_utf8_is_a_typed_error_not_a_delivery(client):
    bad = b"\x32" + codec.encode_length(2 + 4 + 2 + 3) + struct.pack("!H", 4) + b"el/\xff" + b"\x00\x07" + b"abc"
    delivered, error = run(client, [FRAMES[0][0] + bad + FRAMES[1][0]])
    assert delivered == [EXPECTED[0]]
    assert isinstance(error, MqttPacketError) and "UTF-8" in str(error)


def test_a_packet_larger_than_the_buffer_is_taken_whole(client):
    # The broker bounds message size; what it delivers is taken whole (the buffer grows for
    # it) and judged by the pipeline, not turned into a reconnect that brings it back.
    big_payload = b"y" * (client.buffer_size + 10)
    big = codec.publish(T1, big_payload, 9, qos=1)
    step = 4096
    chunks = [FRAMES[0][0]] + [big[i:i + step] for i in range(0, len(big), step)] + [FRAMES[1][0]]
    assert run(client, chunks) == ([EXPECTED[0], (T1, big_payload, 9, 1), EXPECTED[1]], None)


def test_a_length_mqtt_cannot_frame_is_refused(client):
    delivered, error = run(client, [FRAMES[0][0] + b"\x32\xff\xff\xff\xff\x01" + b"\x00" * 100])
    assert delivered == [EXPECTED[0]] and isinstance(error, MqttPacketError)


publish_parts = st.builds(
    lambda first, topic, mid, payload, extra_len: (
        bytes([first]) + codec.encode_length(max(0, 2 + len(topic) + 2 + len(payload) + extra_len))
        + struct.pack("!H", len(topic) & 0xFFFF) + topic + struct.pack("!H", mid) + payload),
    st.sampled_from([0x32, 0x33, 0x3A, 0x3B, 0x30, 0x34, 0x36, 0x40, 0x90, 0xD0, 0x00, 0xF0]),
    st.one_of(st.binary(max_size=20), st.just(T1.encode())),
    st.integers(0, 65535), st.binary(max_size=60), st.integers(-6, 6))


@fuzz()
@given(st.lists(st.one_of(publish_parts, st.binary(max_size=12), st.sampled_from([f for f, _ in FRAMES[:5]])),
                max_size=6),
       st.lists(st.integers(1, 50), max_size=8))
def test_receive_path_never_raises_untyped_and_any_split_gives_the_same(parts, cuts):
    data = b"".join(parts)
    chunks, pos = [], 0
    for n in cuts:
        chunks.append(data[pos:pos + n])
        pos += n
    chunks.append(data[pos:])
    whole = run(MqttClient("127.0.0.1", 1, "el-gw-rx"), [data])
    split = run(MqttClient("127.0.0.1", 1, "el-gw-rx"), chunks)
    assert split[0] == whole[0] and type(split[1]) is type(whole[1])
    for topic, payload, mid, qos in split[0]:
        assert isinstance(topic, str) and isinstance(payload, bytes) and 0 <= mid <= 65535 and qos in (0, 1)


def test_a_flood_past_its_rate_is_shed_on_the_receive_thread_with_one_ack_write(tmp_path):
    """Past its device's rate a message is counted and acknowledged on the receive thread,
    never queued; the PUBACKs of a whole read go out as one write (MQTT 3.1.1 §3.4)."""
    from edgeledger.gateway.ingest import ratelimit

    store = Store(str(tmp_path / "gw.db"))
    svc = IngestService(Pipeline(store, Registry(store), rate_limiter=ratelimit.RateLimiter(rate=0.001, burst=2)),
                        "mqtt://127.0.0.1:1", "el-gw-rx")
    flood = b"".join(codec.publish(T1, b"x%d" % i, 100 + i, qos=1) for i in range(10))
    delivered, error = run(svc.client, [flood + FRAMES[1][0]])
    queued = []
    while not svc.inbox.empty():
        queued.append(svc.inbox.get_nowait())
    assert error is None and delivered == []
    assert [q[2] for q in queued] == [100, 101, 2]  # the burst, and another device's reading
    assert svc.client.fake.sent == [b"".join(b"\x40\x02" + struct.pack("!H", 100 + i) for i in range(2, 10))]
    svc.pipeline.commit()
    assert svc.pipeline.counters["rejected_rate_limited"] == 8
    svc.client.stop()
    store.close()

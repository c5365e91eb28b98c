"""The gateway's MQTT receive path (service.py: ``_BufferedSocket``, ``_Client.loop_read``
and its hand-written PUBLISH parser ``_take_publishes``) fed from a fake socket.

STYLE.md item 2: every stream is fed whole, split in two at every byte, one byte at a
time, and after junk. MQTT runs over TCP, so junk cannot be skipped the way a serial
framer resynchronises: the contract is that everything before the junk is delivered
exactly once and in order, nothing after it is, the connection is dropped (paho's error
code, then a reconnect and the broker's redelivery), and nothing raises. Hypothesis then
throws arbitrary bytes and hostile PUBLISH packets at it.
"""
import struct

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.ingest.service import IngestService, _BufferedSocket
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import mqtt as codec
from tests.fuzz.profiles import fuzz

pytestmark = pytest.mark.security


class FakeSock:
    """Hands out one prepared chunk per recv(), then EAGAIN (BlockingIOError) like a
    non-blocking socket with nothing to read."""

    def __init__(self, chunks):
        self.chunks = [bytes(c) for c in chunks if c]
        self.closed = False

    def recv(self, n):
        if self.closed:
            raise OSError("closed")
        if not self.chunks:
            raise BlockingIOError()
        c = self.chunks.pop(0)
        if len(c) > n:
            self.chunks.insert(0, c[n:])
            c = c[:n]
        return c

    def pending(self):
        return 0

    def close(self):
        self.closed = True

    def setblocking(self, flag):
        pass

    def fileno(self):
        return -1


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    store = Store(str(tmp_path_factory.mktemp("rx") / "gw.db"))
    svc = IngestService(Pipeline(store, Registry(store)), "mqtt://127.0.0.1:1", "el-gw-rx")
    svc.client.on_disconnect = None  # no reconnect logic in a unit test
    yield svc
    store.close()


def run(svc, chunks, max_calls=100000):
    """Feed ``chunks`` through loop_read; returns (delivered, last rc). Raises nothing itself:
    an exception from the receive path fails the calling test."""
    c = svc.client
    while not svc.inbox.empty():
        svc.inbox.get_nowait()
    fake = FakeSock(chunks)
    c._sock = _BufferedSocket(fake)
    c._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                    "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}
    c._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
    rc = mqtt.MQTT_ERR_SUCCESS
    for _ in range(max_calls):
        if c._sock is None or (not fake.chunks and not c._sock.buffered()):
            break
        rc = c.loop_read()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            break
    delivered = []
    while not svc.inbox.empty():
        topic, payload, mid, qos = svc.inbox.get_nowait()
        delivered.append((topic, bytes(payload), mid, qos))
    c._sock = None
    return delivered, rc


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


def test_whole_stream(service):
    assert run(service, [STREAM]) == (EXPECTED, mqtt.MQTT_ERR_SUCCESS)


def test_split_in_two_at_every_byte(service):
    small = b"".join(f for f, _ in FRAMES[:5])  # every split point of the first five frames
    expected = [e for _, e in FRAMES[:5] if e is not None]
    for i in range(1, len(small)):
        assert run(service, [small[:i], small[i:]]) == (expected, mqtt.MQTT_ERR_SUCCESS), i
    big = FRAMES[5][0]  # and of the large frame, near its header and its end
    for i in list(range(1, 40)) + list(range(len(big) - 40, len(big))):
        assert run(service, [big[:i], big[i:]]) == ([FRAMES[5][1]], mqtt.MQTT_ERR_SUCCESS), i


def test_one_byte_at_a_time(service):
    assert run(service, [STREAM[i:i + 1] for i in range(len(STREAM))]) == (EXPECTED, mqtt.MQTT_ERR_SUCCESS)


@pytest.mark.parametrize("junk", [b"\x00", b"\xff\xff\xff\xff\xff", b"\x32\xff\xff\xff\xff\x7f", b"\x30\x02\x00\x10",
                                  b"\x32\x05\x00\x09el/v1"])
@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_after_junk_the_connection_is_dropped_and_nothing_raises(service, junk, split):
    head = FRAMES[0][0] + FRAMES[1][0]
    data = head + junk + STREAM
    chunks = [data] if split == "whole" else [data[i:i + 1] for i in range(len(data))]
    delivered, rc = run(service, chunks)
    assert delivered[:2] == EXPECTED[:2]  # what came before the junk, exactly once
    assert rc != mqtt.MQTT_ERR_SUCCESS or len(delivered) == 2, (delivered, rc)
    assert all(d in EXPECTED for d in delivered)


def test_a_topic_that_is_not_utf8_is_delivered_escaped_not_raised(service):
    bad = b"\x32" + codec.encode_length(2 + 4 + 2 + 3) + struct.pack("!H", 4) + b"el/\xff" + b"\x00\x07" + b"abc"
    delivered, rc = run(service, [bad + FRAMES[0][0]])
    assert delivered[0] == ("el/\\xff", b"abc", 7, 1)  # the pipeline refuses it as topic_mismatch
    assert delivered[1:] == [EXPECTED[0]] and rc == mqtt.MQTT_ERR_SUCCESS


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
def test_receive_path_never_raises(service, parts, cuts):
    data = b"".join(parts)
    chunks, pos = [], 0
    for n in cuts:
        chunks.append(data[pos:pos + n])
        pos += n
    chunks.append(data[pos:])
    delivered, rc = run(service, chunks, max_calls=10000)
    for topic, payload, mid, _qos in delivered:
        assert isinstance(topic, str) and isinstance(payload, bytes) and 0 <= mid <= 65535


def test_a_flood_past_its_rate_is_shed_on_the_receive_thread_with_one_ack_write(tmp_path):
    """Past its device's rate a message is counted and acknowledged on the receive thread,
    never queued; the PUBACKs of a whole read go out as one write (MQTT 3.1.1 §3.4)."""
    from edgeledger.gateway.ingest import ratelimit

    store = Store(str(tmp_path / "gw.db"))
    svc = IngestService(Pipeline(store, Registry(store), rate_limiter=ratelimit.RateLimiter(rate=0.001, burst=2)),
                        "mqtt://127.0.0.1:1", "el-gw-rx")
    svc.client.on_disconnect = None
    svc.client._sockpairW = None
    flood = b"".join(codec.publish(T1, b"x%d" % i, 100 + i, qos=1) for i in range(10))
    delivered, rc = run(svc, [flood + FRAMES[1][0]])
    assert [d[2] for d in delivered] == [100, 101, 2]  # the burst, and another device's reading
    acks = b"".join(p["packet"] for p in svc.client._out_packet)
    assert acks == b"".join(b"\x40\x02" + struct.pack("!H", 100 + i) for i in range(2, 10))
    assert len(svc.client._out_packet) == 1
    svc.pipeline.commit()
    assert svc.pipeline.counters["rejected_rate_limited"] == 8
    store.close()

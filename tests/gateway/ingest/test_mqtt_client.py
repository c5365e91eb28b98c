"""The gateway's MQTT connection (gateway/ingest/mqtt_client.py).

Against a real Mosquitto: connect, subscribe, receive, PUBACK only when the caller says
(the broker sends an unacknowledged message again to the persistent session, and an
acknowledged one never), the whole IngestService across a broker restart. Against a
scripted broker on a loopback socket (what Mosquitto will not do on demand): bytes that
are not MQTT, a refusing CONNACK, a broker that stops answering. The keepalive rules and
the ack-after-commit ordering as unit tests, clock and socket passed in.
"""
import contextlib
import socket
import struct
import threading

import paho.mqtt.client as paho
import pytest

from edgeledger.gateway.ingest import mqtt_client as client_mod
from edgeledger.gateway.ingest.mqtt_client import BrokerRefused, Keepalive, MqttClient
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.ingest.service import IngestService
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import mqtt as codec
from edgeledger.protocols import topics
from edgeledger.protocols.mqtt import MqttPacketError
from tests.fuzz.test_receive_path import FakeSock
from tests.support.devices import FakeDevice
from tests.support.net import wait_until

pytestmark = pytest.mark.faults

TOPIC = "el/v1/plant-a/d/r"


class Recorder:
    """Callbacks of one MqttClient, recorded (they run on its network thread)."""

    def __init__(self, client):
        self.client = client
        self.messages, self.sessions, self.disconnects, self.subacks = [], [], [], []
        client.on_publish = lambda topic, payload, pid, qos: self.messages.append((topic, payload, pid, qos))
        client.on_connect = self.sessions.append
        client.on_disconnect = lambda reason, error, was: self.disconnects.append((error, was))
        client.on_subscribe = lambda filters, granted: self.subacks.append((filters, granted))


def publisher(port, client_id="el-test-pub"):
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    return pub


def publish(pub, payloads):
    for p in payloads:
        pub.publish(TOPIC, p, qos=1).wait_for_publish(10)


def publish_once(port, payloads, client_id="el-test-pub"):
    """Publish ``payloads`` (QoS 1, each acknowledged by the broker) from a new client, then close it."""
    pub = publisher(port, client_id)
    try:
        publish(pub, payloads)
    finally:
        pub.disconnect()
        pub.loop_stop()


@contextlib.contextmanager
def running_service(broker, tmp_path, client_id):
    """A store with device "d" registered and an IngestService on ``broker`` that has
    subscribed; yields (store, device, service) and stops both afterwards."""
    st = Store(str(tmp_path / "gw.db"))
    dev = FakeDevice("d")
    dev.register(Registry(st))
    svc = IngestService(Pipeline(st, Registry(st)), broker.url, client_id)
    svc.start()
    try:
        assert svc.subscribed.wait(30)
        yield st, dev, svc
    finally:
        svc.stop()
        st.close()


def test_a_message_is_sent_again_until_acked_and_never_after(broker):
    c1 = MqttClient("127.0.0.1", broker.port, "el-gw-unit")
    r1 = Recorder(c1)
    c1.start()
    pub = publisher(broker.port)
    try:
        wait_until(c1.connected.is_set, 30, what="CONNACK")
        assert c1.subscribe([("el/v1/+/+/r", 1)])
        wait_until(lambda: r1.subacks, 30, what="SUBACK")
        assert r1.subacks == [([("el/v1/+/+/r", 1)], b"\x01")]
        publish(pub, [b"m1", b"m2", b"m3"])
        wait_until(lambda: len(r1.messages) == 3, 30, what="three messages")
        assert [(m[1], m[3]) for m in r1.messages] == [(b"m1", 1), (b"m2", 1), (b"m3", 1)]
        c1.stop()  # no PUBACK sent: the broker keeps them for the session

        c2 = MqttClient("127.0.0.1", broker.port, "el-gw-unit")
        r2 = Recorder(c2)
        c2.start()
        wait_until(lambda: len(r2.messages) == 3, 30, what="the unacknowledged messages again")
        assert r2.sessions == [True]  # clean session 0: the broker kept it (§3.2.2.2)
        assert [m[1] for m in r2.messages] == [b"m1", b"m2", b"m3"]
        c2.ack([m[2] for m in r2.messages])
        publish(pub, [b"m4"])
        wait_until(lambda: len(r2.messages) == 4, 30, what="m4")
        c2.ack([r2.messages[3][2]])
        c2.stop()  # the PUBACKs go out before DISCONNECT

        c3 = MqttClient("127.0.0.1", broker.port, "el-gw-unit")
        r3 = Recorder(c3)
        c3.start()
        wait_until(c3.connected.is_set, 30, what="CONNACK")
        publish(pub, [b"m5"])
        wait_until(lambda: r3.messages, 30, what="m5")
        c3.ack([r3.messages[0][2]])
        # a redelivery would have come right after the CONNACK, before m5
        assert [m[1] for m in r3.messages] == [b"m5"]  # m1..m4 were acknowledged: never again
        c3.stop()
        assert r1.disconnects == r2.disconnects == r3.disconnects == []
    finally:
        pub.disconnect()
        pub.loop_stop()


def test_the_service_reconnects_after_a_broker_restart_and_subscribes_again(broker, tmp_path, caplog):
    with running_service(broker, tmp_path, "el-gw-restart") as (st, dev, svc):
        publish_once(broker.port, [dev.next() for _ in range(5)])
        wait_until(lambda: st.count_messages() == 5, 60, what="five stored")
        svc.subscribed.clear()
        broker.stop()  # SIGKILL; the test broker keeps no sessions: the gateway must subscribe again
        wait_until(lambda: not svc.connected.is_set(), 60, what="the gateway to notice")
        broker.start()
        assert svc.subscribed.wait(60), broker.log()
        publish_once(broker.port, [dev.next() for _ in range(5)], "el-test-pub2")
        wait_until(lambda: st.count_messages() == 10, 60, what="ten stored after the restart")
        assert st.seqs("d") == list(range(1, 11))
        assert svc.client.connects == 2 and svc.client.packet_errors == 0
        assert "disconnected from broker" in caplog.text


class ScriptedBroker:
    """A loopback listener that answers each connection with the next script: a list of
    byte strings to send after the CONNECT arrives (None: stay silent and keep reading).
    Records what each connection sent."""

    def __init__(self, scripts):
        self.scripts = list(scripts)
        self.received = []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            got = bytearray()
            self.received.append(got)
            script = self.scripts.pop(0) if self.scripts else [None]
            conn.settimeout(0.2)
            sent = False
            while not self._stop:
                try:
                    data = conn.recv(4096)
                except socket.timeout:
                    data = b"?"
                except OSError:
                    break
                if not data:
                    break
                if data != b"?":
                    got += data
                if not sent and got:
                    for part in script:
                        if part is not None:
                            conn.sendall(part)
                    sent = True
            conn.close()

    def close(self):
        self._stop = True
        self.server.close()


CONNACK_OK = b"\x20\x02\x00\x00"


def test_bytes_that_are_not_mqtt_drop_the_connection_and_it_is_made_again(monkeypatch):
    monkeypatch.setattr(client_mod, "MIN_BACKOFF_S", 0.01)
    good = codec.publish(TOPIC, b"first", 1, qos=1)
    fake = ScriptedBroker([[CONNACK_OK + good + b"\x32\x06\x00\x09abcd" + codec.publish(TOPIC, b"lost", 2, qos=1)],
                           [CONNACK_OK + codec.publish(TOPIC, b"again", 3, qos=1)]])
    c = MqttClient("127.0.0.1", fake.port, "el-gw-junk")
    r = Recorder(c)
    c.start()
    try:
        wait_until(lambda: len(r.messages) == 2, 30, what="a message on each connection")
        assert [m[1] for m in r.messages] == [b"first", b"again"]  # nothing after the junk
        assert c.packet_errors == 1 and c.connects == 2 and c._thread.is_alive()
        (error, was_connected), = r.disconnects
        assert isinstance(error, MqttPacketError) and was_connected
        assert all(got.startswith(b"\x10") for got in fake.received)  # a CONNECT each time
    finally:
        c.stop()
        fake.close()


def test_a_refusing_connack_is_reported_typed_and_tried_again(monkeypatch):
    monkeypatch.setattr(client_mod, "MIN_BACKOFF_S", 0.01)
    fake = ScriptedBroker([[b"\x20\x02\x00\x05"], [CONNACK_OK]])
    c = MqttClient("127.0.0.1", fake.port, "el-gw-refused", username="gw", password="wrong")
    r = Recorder(c)
    c.start()
    try:
        wait_until(c.connected.is_set, 30, what="the second attempt accepted")
        (error, was_connected), = r.disconnects
        assert isinstance(error, BrokerRefused) and error.code == 5 and not was_connected
        assert "not authorized" in str(error)
        # CONNECT carried the credentials and clean session 0 (§3.1.2.4)
        assert fake.received[0] == codec.connect("el-gw-refused", 30, False, None, "gw", "wrong")
    finally:
        c.stop()
        fake.close()


def test_a_silent_broker_is_pinged_then_dropped(monkeypatch):
    monkeypatch.setattr(client_mod, "MIN_BACKOFF_S", 0.01)
    fake = ScriptedBroker([[CONNACK_OK, None], [CONNACK_OK]])
    c = MqttClient("127.0.0.1", fake.port, "el-gw-silent", keepalive=1)
    r = Recorder(c)
    c.start()
    try:
        wait_until(lambda: len(fake.received) == 2, 60, what="a reconnection after the unanswered PINGREQ")
        assert codec.PINGREQ_PACKET in bytes(fake.received[0])
        (error, was_connected), = r.disconnects
        assert "PINGREQ" in str(error) and was_connected
    finally:
        c.stop()
        fake.close()


@pytest.mark.parametrize("rule, events, now, expected", [
    ("quiet line: ping after the interval", [], 10.0, Keepalive.PING),
    ("traffic both ways: nothing due", [("sent", 9.0), ("received", 9.5)], 10.0, None),
    ("only receiving: still ping (the client must send within the interval)", [("received", 9.9)], 10.0,
     Keepalive.PING),
    ("a ping waits one interval for an answer", [("pinged", 10.0)], 19.9, None),
    ("no answer within the interval: dead", [("pinged", 10.0)], 20.0, Keepalive.DEAD),
    ("any packet answers the ping: then a new ping, not death", [("pinged", 10.0), ("received", 12.0)], 20.0,
     Keepalive.PING),
])
def test_keepalive_rules(rule, events, now, expected):
    ka = Keepalive(10, 0.0)
    for name, t in events:
        getattr(ka, name)(t)
    assert ka.due(now) == expected, rule
    assert ka.wait(now) >= 0


def test_pubacks_go_only_after_the_commit_and_all_in_one_write(tmp_path):
    store = Store(str(tmp_path / "gw.db"))
    dev = FakeDevice("d")
    dev.register(Registry(store))
    pipeline = Pipeline(store, Registry(store))
    gate, committing = threading.Event(), threading.Event()
    real_commit = pipeline.commit

    def held_commit(*a, **kw):
        committing.set()
        assert gate.wait(30)
        return real_commit(*a, **kw)

    pipeline.commit = held_commit
    svc = IngestService(pipeline, "mqtt://127.0.0.1:1", "el-gw-order")
    client = svc.client
    sock = FakeSock([b"".join(codec.publish(dev.topic, dev.next(), 10 + i, qos=1) for i in range(3))])
    client._attach(sock)
    client._recv()
    client._dispatch()
    svc._worker.start()
    try:
        assert committing.wait(30)
        client._flush()
        assert sock.sent == [] and not client._out  # nothing acknowledged before the commit
        gate.set()
        wait_until(lambda: client._out, 30, what="the PUBACKs after the commit")
        wait_until(lambda: svc.commits == 1, 30, what="the commit")
        client._flush()
        (written,) = sock.sent  # one write: the whole group's PUBACKs, then the device's ack
        framer = codec.Framer()
        framer.receive_data(written)
        packets = []
        while (p := framer.next_packet()) is not None:
            packets.append(p)
        assert packets[:3] == [(codec.PUBACK, 0, struct.pack("!H", 10 + i)) for i in range(3)]
        (kind, flags, body), = packets[3:]
        topic, _pid, _payload = codec.publish_fields(flags, body)
        assert (kind, flags, topic) == (codec.PUBLISH, 0x03, topics.ack("plant-a", "d"))  # QoS 1, retained
        assert store.count_messages() == 3
    finally:
        gate.set()
        svc._stop.set()
        svc._worker.join(10)
        client.stop()
        store.close()


def test_a_message_over_the_gateways_limit_is_quarantined_not_a_reconnect_loop(broker, tmp_path):
    """The test broker has no max_packet_size (an operator's own broker may not either): a
    publish far over max_message_bytes and over the client's usual buffer reaches the
    pipeline whole, is quarantined as oversized and acknowledged; the connection stays and
    the next reading is stored. (An early version dropped the connection on it and got it
    redelivered after every reconnect.)"""
    with running_service(broker, tmp_path, "el-gw-big") as (st, dev, svc):
        publish_once(broker.port, [b"\xd2" + b"x" * (2 * 1024 * 1024),  # 2 MiB: 8x the receive buffer
                                   dev.next()])
        wait_until(lambda: st.count_messages() == 1, 60, what="the next reading stored")
        assert st.quarantine_reasons() == {"oversized": 1}
        assert svc.client.connects == 1 and svc.client.packet_errors == 0

"""The demo's amqtt broker: QoS 1, persistent sessions, manual PUBACK, and the workarounds
for amqtt 0.12 documented in gateway/demo/broker.py (notes 1 and 4)."""
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from edgeledger.gateway.demo.broker import EmbeddedBroker

WAIT_S = 10.0


@pytest.fixture
def broker():
    with EmbeddedBroker() as b:
        yield b


class Client:
    """A paho client that records what it receives; ``manual_ack`` holds PUBACKs."""

    def __init__(self, port, client_id, clean_session=True, subscribe=(), manual_ack=False):
        self.got = []
        self.mids = []
        self.subscribed = threading.Event()
        self.connected = threading.Event()
        self.session_present = None
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                        protocol=mqtt.MQTTv311, manual_ack=manual_ack)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        self.subscriptions = list(subscribe)
        self.c = c
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert self.connected.wait(WAIT_S), "no CONNACK for %s" % client_id
        if self.subscriptions:
            assert self.subscribed.wait(WAIT_S), "no SUBACK for %s" % client_id

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.session_present = flags.session_present
        if self.subscriptions:
            client.subscribe([(t, 1) for t in self.subscriptions])
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        self.got.append((msg.topic, bytes(msg.payload), msg.retain))
        self.mids.append((msg.mid, msg.qos))

    def publish_all(self, topic, payloads, retain=False):
        infos = [self.c.publish(topic, p, qos=1, retain=retain) for p in payloads]
        for i in infos:
            i.wait_for_publish(WAIT_S)

    def wait_for(self, n):
        deadline = time.monotonic() + WAIT_S
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return [p for _t, p, _r in self.got]

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def test_qos1_in_order_with_pubacks_held_until_commit(broker):
    gw = Client(broker.port, "gw", clean_session=False, subscribe=["el/v1/s/+/r"], manual_ack=True)
    dev = Client(broker.port, "dev")
    payloads = [b"m%03d" % i for i in range(200)]
    dev.publish_all("el/v1/s/d/r", payloads)
    assert gw.wait_for(200) == payloads
    assert {qos for _mid, qos in gw.mids} == {1}
    for mid, qos in gw.mids:  # the "commit": PUBACK everything, late, in one go
        gw.c.ack(mid, qos)
    dev.close()
    gw.close()


def test_persistent_session_collects_while_the_gateway_is_away(broker):
    """Note 1: with LoopbackAuth the gateway's clean_session=False session is kept and QoS 1
    messages are queued for it (MQTT-3.1.2-4/5); stock anonymous auth would drop them."""
    gw = Client(broker.port, "gw", clean_session=False, subscribe=["el/v1/s/+/r"])
    gw.close()
    dev = Client(broker.port, "dev")
    dev.publish_all("el/v1/s/d/r", [b"while-away-%d" % i for i in range(10)])
    time.sleep(0.3)
    back = Client(broker.port, "gw", clean_session=False)
    assert back.session_present is True
    assert back.wait_for(10) == [b"while-away-%d" % i for i in range(10)]
    back.close()
    dev.close()


def test_a_client_never_gets_the_retained_ack_of_another_device(broker):
    """Note 4: amqtt 0.12 sends a connecting client the retained messages of every client's
    subscriptions; a device would take another device's ack for its own."""
    a = Client(broker.port, "dev-a", subscribe=["el/v1/s/a/ack"])
    gw = Client(broker.port, "gw")
    gw.publish_all("el/v1/s/a/ack", [b"ack-for-a"], retain=True)
    assert a.wait_for(1) == [b"ack-for-a"]
    b = Client(broker.port, "dev-b", subscribe=["el/v1/s/b/ack"])
    # A sentinel on b's own topic, published after its SUBACK: whatever retained message the
    # broker would send b on subscribing reaches it before this one.
    gw.publish_all("el/v1/s/b/ack", [b"sentinel"])
    assert b.wait_for(1) == [b"sentinel"]
    # and the retained ack still reaches its own device when it subscribes again
    a2 = Client(broker.port, "dev-a2", subscribe=["el/v1/s/a/ack"])
    assert a2.wait_for(1) == [b"ack-for-a"] and a2.got[0][2] is True
    for c in (a, gw, b, a2):
        c.close()


def test_many_devices_connect_and_subscribe_at_once(broker):
    """Note 4: the stock broker crashed a connection when another client subscribed while it
    walked the subscription table (seen with ten devices connecting together)."""
    gw = Client(broker.port, "gw")
    for i in range(30):
        gw.publish_all("el/v1/s/d%02d/ack" % i, [b"ack-%d" % i], retain=True)
    clients = []
    threads = [threading.Thread(target=lambda i=i: clients.append(
        Client(broker.port, "d%02d" % i, subscribe=["el/v1/s/d%02d/ack" % i]))) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert len(clients) == 30
    for c in clients:
        i = int(c.c._client_id.decode()[1:])
        assert c.wait_for(1) == [b"ack-%d" % i]
    for c in clients + [gw]:
        c.close()

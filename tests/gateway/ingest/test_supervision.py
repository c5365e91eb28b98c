"""Whatever still dies is restarted, counted and shown: the ingest thread (real Mosquitto,
real IngestService and Pipeline, one injected exception) and the batcher thread (the
embedded chain, one injected exception)."""

import paho.mqtt.client as mqtt
import pytest

from edgeledger.gateway.anchor import thread as anchoring
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.anchor.thread import BatcherThread
from edgeledger.gateway.config import BatchConfig
from edgeledger.gateway.ingest import service as service_mod
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.ingest.service import IngestService
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.devices import FakeDevice
from tests.support.net import wait_until

pytestmark = pytest.mark.faults


def once_raising(fn, after):
    """``fn``, except that call number ``after`` raises RuntimeError (a bug's stand-in)."""
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == after:
            raise RuntimeError("injected fault in call %d" % after)
        return fn(*args, **kwargs)

    return wrapped


def test_a_dead_ingest_thread_is_restarted_counted_and_loses_nothing(broker, tmp_path, monkeypatch):
    monkeypatch.setattr(service_mod, "RESTART_DELAY_S", 0.05)
    st = Store(str(tmp_path / "gw.db"))
    dev = FakeDevice("d")
    dev.register(Registry(st))
    pipe = Pipeline(st, Registry(st))
    pipe.process = once_raising(pipe.process, 20)
    svc = IngestService(pipe, broker.url, "el-gw-supervised")
    svc.start()
    try:
        assert svc.subscribed.wait(30)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="el-test-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        n = 100
        for _ in range(n):
            pub.publish(dev.topic, dev.next(), qos=1).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        wait_until(lambda: st.count_messages() == n, 60, what="every message stored after the thread died once")
        assert svc.restarts == 1 and pipe.counters["ingest_thread_restarts"] == 1
        assert st.seqs("d") == list(range(1, n + 1))
        (event,) = st.recent_events()
        assert event.kind == "ingest_thread_restart" and "injected fault" in event.detail
    finally:
        svc.stop()
        st.close()


def test_a_dead_batcher_is_restarted_counted_and_anchors_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(anchoring, "RESTART_DELAY_S", 0.05)
    path = str(tmp_path / "gw.db")
    st = Store(path)
    dev = FakeDevice("d")
    reg = Registry(st)
    dev.register(reg)
    pipe = Pipeline(st, reg)
    for _ in range(30):
        pipe.process(dev.topic, dev.next())
    pipe.commit()
    led = EmbeddedLedger()
    led.deploy(led.new_funded_key())
    led.authorize_gateway(dev.site, led.account)
    st.set_ledger_meta({"chain_id": led.chain_id, "contract": led.address, "gateway": led.account})
    led.sign_anchor = once_raising(led.sign_anchor, 2)
    bt = BatcherThread(path, led, BatchConfig(max_size=10, max_age_s=0), 1)
    bt.start()
    try:
        wait_until(lambda: bt.batcher.anchored_messages() == 30, 60, what="every batch anchored after a death")
    finally:
        bt.stop()
    st2 = Store(path)
    assert st2.load_counters()["batcher_restarts"] == 1
    assert [e.kind for e in st2.recent_events()] == ["batcher_restart"]
    assert led.last_batch(led.account)[0] == 3

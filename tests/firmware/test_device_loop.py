"""The built unix image runs the agent loop under real MicroPython against a real
Mosquitto and the real gateway: every reading stored once, the outbox emptied."""
import os
import time

import pytest

from edgeledger.protocols import cose, reading
from tests.support.net import wait_until
from tests.support.site import count_exactly_once


def stored_times(store, device):
    """Record times of every stored message of ``device``, decoded from the stored bytes."""
    out = []
    for (raw,) in store.db.execute("SELECT bytes FROM messages WHERE device=? ORDER BY seq", (device,)):
        payload = reading.decode_payload(cose.parse_sign1(bytes(raw)).payload)
        out.extend(r["t"] for r in reading.resolve(payload.pack))
    return out


@pytest.mark.micropython
@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_image_publishes_every_reading_and_empties_outbox(site, unix_image, devices, alg):
    last = 40
    site.add_device("mpy-1", alg=alg)
    site.start_gateway()
    dev = devices(unix_image, site, "mpy-1", until_seq=last).start()
    assert dev.wait(timeout=120) == 0, dev.log()
    assert "sealed and acked up to seq %d" % last in dev.log()
    st = site.store()
    assert count_exactly_once(st, {"mpy-1": last}) == (0, 0, 0)
    assert st.count_messages("mpy-1") == last
    assert st.quarantine_reasons() == {}
    segs = os.listdir(os.path.join(dev.dir, "state", "outbox"))
    # everything acked: only the newest segment (the chain head) and the ack log remain
    assert len([n for n in segs if n.endswith(".seg")]) == 1


@pytest.mark.micropython
def test_broker_outage_device_keeps_sampling_and_catches_up(site, broker, unix_image, devices):
    last = 150
    site.add_device("mpy-2", alg="EdDSA")
    site.start_gateway()
    # the outage must fall inside the device's 7.5 s of sampling: start it once the gateway
    # listens (its start-up takes seconds on a loaded machine; until then nothing is stored)
    wait_until(lambda: "subscribed to" in site.log("gateway.log"), 120, what="gateway subscribed")
    dev = devices(unix_image, site, "mpy-2", until_seq=last, interval_s=0.05).start()
    st = site.store()
    wait_until(lambda: st.count_messages("mpy-2") >= 20, 60, what="first readings stored")
    broker.stop()
    down = time.time()
    time.sleep(3.0)
    up = time.time()
    broker.start()
    assert dev.wait(timeout=120) == 0, dev.log()
    assert count_exactly_once(st, {"mpy-2": last}) == (0, 0, 0)
    assert st.quarantine_reasons() == {}
    during = [t for t in stored_times(st, "mpy-2") if down + 0.5 < t < up - 0.5]
    # 2 s of the outage at 20 samples/s: the loop kept sampling (allow for signing time)
    assert len(during) >= 10, (len(during), dev.log())
    assert "link: lost" in dev.log() or "link: connected" in dev.log()

"""The built unix image runs the agent loop under real MicroPython against a real
Mosquitto and the real gateway: every reading stored once, the outbox emptied."""
import os
import time

import pytest

from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.support.net import wait_until
from tests.support.site import count_exactly_once


def stored_times(store, device):
    """Record times of every stored message of ``device``, decoded from the stored bytes."""
    out = []
    for (raw,) in store.db.execute("SELECT bytes FROM messages WHERE device=? ORDER BY seq", (device,)):
        payload = reading_validate.decode_payload(cose_verify.parse_sign1(bytes(raw)).payload)
        out.extend(r["t"] for r in reading_validate.resolve(payload.pack))
    return out


@pytest.mark.micropython
# SM2 too: its loop holds the most names, and past 620 of them the qstr pool's next chunk
# (~7 KB) took its floor to 69 KB, above the 64 KB these tests run in (docs/firmware.md)
@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "SM2"])
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
    # 20 s of sampling at 20/s: the outage (3 s) must fall inside it however slowly the
    # gateway starts, so the device starts only once the gateway listens, and the broker is
    # cut only while the newest stored reading is fresh (the device is still sampling).
    last = 400
    site.add_device("mpy-2", alg="EdDSA")
    site.start_gateway()
    site.wait_gateway_ready()
    dev = devices(unix_image, site, "mpy-2", until_seq=last, interval_s=0.05).start()
    st = site.store()
    wait_until(lambda: st.count_messages("mpy-2") >= 20, 120, what="first readings stored")
    newest = max(stored_times(st, "mpy-2"))
    assert time.time() - newest < 10, "the device's newest stored reading is %.1f s old" % (time.time() - newest)
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

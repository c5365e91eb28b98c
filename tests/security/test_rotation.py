"""Key rotation: the new key is valid from its registration on chain, the old one until now +
overlap and, once the device has switched keys, only for the seqs it signed before; at the
gateway and on chain alike (protocols/keywindow.py, one rule)."""
import hashlib
import math
import time

import pytest

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway import errors
from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.enrol import provision
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import keywindow
from tests.support.devices import FakeDevice

pytestmark = pytest.mark.security

SITE = "plant-a"
OVERLAP = 60.0


def chain_refusal(ledger, kid, seq, t):
    """The verifier's key rule over what the chain holds for (SITE, kid): None if accepted."""
    reg, entry = ledger.registration(SITE, kid), ledger.key_entry(SITE, kid)
    window = keywindow.KeyWindow(reg["timestamp"], reg["first_seq"], entry["end_time"], entry["last_seq"])
    return keywindow.refusal(window, seq, t, t)


def _ledger():
    led = EmbeddedLedger()
    led.deploy(led.new_funded_key())
    led.authorize_gateway(SITE, led.account)
    return led


@pytest.fixture
def rotated(tmp_path):
    led = _ledger()
    st = Store(str(tmp_path / "gateway.db"))
    reg = Registry(st)
    out = str(tmp_path / "bundle")
    b = provision.provision(reg, "dev-r", SITE, out, broker_url="mqtts://localhost:8883", ledger=led)
    old_signer = load_key_file(b.files["key"])
    t0 = math.floor(time.time()) + 100.25  # rotation time: a quarter second past a whole second
    new_kid, until = provision.rotate(reg, "dev-r", OVERLAP, out_dir=out, ledger=led, now=t0)
    new_signer = load_key_file(b.files["key"])
    assert new_signer.kid == new_kid != old_signer.kid
    return {"ledger": led, "store": st, "registry": reg, "old": old_signer, "new": new_signer, "until": until,
            "t0": t0}


class Sender:
    def __init__(self, rotated):
        self.pipe = Pipeline(rotated["store"], rotated["registry"])
        self.dev = FakeDevice("dev-r", SITE, signer=rotated["old"])

    def send(self, signer, t, seq=None):
        dev = self.dev
        dev.signer = signer
        seq = dev.seq + 1 if seq is None else seq
        msg = dev.make(seq, dev.prev, t=t)
        try:
            self.pipe.process(dev.topic, msg, received_at=t)
        except errors.RejectedMessage as e:
            return e.reason
        dev.seq = seq
        dev.prev = hashlib.sha256(msg).digest()
        return "stored"


def test_rotation_times_are_whole_seconds_rounded_safely(rotated):
    reg, led, until = rotated["registry"], rotated["ledger"], rotated["until"]
    assert until == math.ceil(rotated["t0"] + OVERLAP)
    assert reg.key(rotated["old"].kid).valid_until == until
    entry = led.key_entry(SITE, rotated["old"].kid)
    assert (entry["end_time"], entry["last_seq"], entry["rotated"], entry["revoked"]) == (until, None, True, False)
    new = led.registration(SITE, rotated["new"].kid)
    # the new key's window opens at the chain's own block time, and the gateway's with it
    assert reg.key(rotated["new"].kid).valid_from == new["timestamp"]
    assert new["first_seq"] == reg.key(rotated["new"].kid).first_seq == 1  # nothing stored yet
    assert led.key_entry(SITE, rotated["new"].kid)["end_time"] is None


def test_rotated_out_key_cannot_sign_after_the_device_switched(rotated):
    """Attack: the old key leaks after the rotation. Once the device's first message under its
    new key is stored, the old key's last seq is sealed: a message it signs with a later seq is
    refused even when timed inside the overlap, at the gateway and by the chain's rule."""
    s, t0, until, led = Sender(rotated), rotated["t0"], rotated["until"], rotated["ledger"]
    old, new = rotated["old"], rotated["new"]
    assert s.send(old, t0 - 10) == "stored"  # seq 1, before the rotation
    assert s.send(old, t0 + 30) == "stored"  # seq 2, inside the overlap
    assert s.send(new, t0 + 31) == "stored"  # seq 3: the device switched
    assert rotated["registry"].key(old.kid).revoked_after_seq == 2  # sealed at once
    assert s.send(old, t0 + 32) == "revoked_device"  # seq 4 under the old key: W5
    assert s.send(old, t0 - 5) == "revoked_device"  # back-dated into its window: still W5
    assert s.send(old, until) == "revoked_device"
    assert s.send(new, until + 3600) == "stored"
    s.pipe.commit()
    assert rotated["store"].seqs("dev-r") == [1, 2, 3, 4]
    assert keysync.push_key_ends(rotated["registry"], led, {}) == 1
    assert led.key_entry(SITE, old.kid)["last_seq"] == 2
    # the chain judges every one of those readings the same way
    for kid, seq, t, rule in ((old.kid, 1, t0 - 10, None), (old.kid, 2, t0 + 30, None), (old.kid, 4, t0 + 32, "W5"),
                              (old.kid, 3, t0 - 5, "W5"), (old.kid, 2, until, "W4"), (new.kid, 3, t0 + 31, None),
                              (new.kid, 4, until + 3600, None)):
        got = chain_refusal(led, kid, seq, t)
        assert (got.rule if got else None) == rule, (seq, t, got)


def test_rotated_key_of_a_device_that_never_switched_is_sealed_when_the_overlap_ends(rotated):
    s, t0, until, reg = Sender(rotated), rotated["t0"], rotated["until"], rotated["registry"]
    old = rotated["old"]
    for t in (t0 - 10, t0 + 1, t0 + 2):
        assert s.send(old, t) == "stored"
    s.pipe.commit()
    assert reg.seal_expired(now=until - 1) == []  # the overlap is still on: the device may switch
    assert s.send(old, t0 + 3) == "stored"  # seq 4
    s.pipe.commit()
    assert reg.seal_expired(now=until) == [old.kid]
    assert reg.key(old.kid).revoked_after_seq == 4
    assert s.send(old, t0 + 4) == "revoked_device"  # seq 5, timed inside the old window


def test_sync_chain_repairs_a_chain_that_missed_the_rotation(rotated):
    fresh = _ledger()  # e.g. the embedded chain after a gateway restart
    assert keysync.sync_chain(rotated["registry"], fresh) == {"registered": 2, "ended": 1}
    assert fresh.key_entry(SITE, rotated["old"].kid)["end_time"] == rotated["until"]
    assert keysync.sync_chain(rotated["registry"], fresh) == {"registered": 0, "ended": 0}

"""Key rotation: the new key is valid from now, the old one until now + overlap, at the
gateway and on chain alike, judged by each reading's own time."""
import math

import pytest

from edgeledger.agent.signer import load_key_file
from edgeledger.gateway import errors, provision
from edgeledger.gateway.ledger import EmbeddedLedger
from edgeledger.gateway.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.devices import FakeDevice

pytestmark = pytest.mark.security

SITE = "plant-a"
T0 = 1_790_000_000.25  # rotation time (a quarter second past a whole second: rounding matters)
OVERLAP = 60.0


def chain_accepts(ledger, kid, t):
    """The verifier's key rule (gateway/verifier.py): registered, and not revoked at or before t."""
    key = ledger.get_key(kid)
    return key is not None and not (key["revoked_at"] and key["revoked_at"] <= t)


@pytest.fixture
def rotated(tmp_path):
    led = EmbeddedLedger()
    led.deploy(led.new_funded_key())
    led.set_gateway(led.account)
    st = Store(str(tmp_path / "gateway.db"))
    reg = Registry(st)
    out = str(tmp_path / "bundle")
    b = provision.provision(reg, "dev-r", SITE, out, broker_url="mqtts://localhost:8883", ledger=led,
                            now=T0 - 3600)
    old_signer = load_key_file(b.files["key"])
    new_kid, until = provision.rotate(reg, "dev-r", OVERLAP, out_dir=out, ledger=led, now=T0)
    new_signer = load_key_file(b.files["key"])
    assert new_signer.kid == new_kid != old_signer.kid
    return {"ledger": led, "store": st, "registry": reg, "old": old_signer, "new": new_signer, "until": until}


def test_rotation_times_are_whole_seconds_rounded_safely(rotated):
    assert rotated["until"] == math.ceil(T0 + OVERLAP)
    assert rotated["registry"].key(rotated["old"].kid).valid_until == rotated["until"]
    led = rotated["ledger"]
    assert led.get_key(rotated["old"].kid)["revoked_at"] == rotated["until"]
    assert led.get_key(rotated["new"].kid)["valid_from"] == math.floor(T0)
    assert led.get_key(rotated["new"].kid)["revoked_at"] == 0


def test_old_key_verifies_until_the_overlap_ends_and_not_after(rotated):
    until = rotated["until"]
    pipe = Pipeline(rotated["store"], rotated["registry"])
    dev = FakeDevice("dev-r", SITE, signer=rotated["old"])

    def send(signer, t):
        dev.signer = signer
        msg = dev.make(dev.seq + 1, dev.prev, t=t)
        try:
            pipe.process(dev.topic, msg, received_at=t)
        except errors.RejectedMessage as e:
            return e.reason
        import hashlib

        dev.seq += 1
        dev.prev = hashlib.sha256(msg).digest()
        return "stored"

    assert send(rotated["old"], T0 - 10) == "stored"  # before the rotation
    assert send(rotated["old"], T0 + 30) == "stored"  # inside the overlap
    assert send(rotated["new"], T0 + 31) == "stored"  # the new key at once
    assert send(rotated["old"], until - 0.001) == "stored"  # last instant of the overlap
    assert send(rotated["old"], until) == "revoked_device"  # valid_until is exclusive
    assert send(rotated["old"], until + 3600) == "revoked_device"
    assert send(rotated["new"], until + 3600) == "stored"
    pipe.commit()
    assert rotated["store"].seqs("dev-r") == [1, 2, 3, 4, 5]
    # the chain judges every one of those readings the same way
    led = rotated["ledger"]
    for t, ok in ((T0 - 10, True), (T0 + 30, True), (until - 0.001, True), (until, False), (until + 3600, False)):
        assert chain_accepts(led, rotated["old"].kid, t) is ok, t
    assert chain_accepts(led, rotated["new"].kid, until + 3600)


def test_sync_chain_repairs_a_chain_that_missed_the_rotation(rotated, tmp_path):
    fresh = EmbeddedLedger()  # e.g. the embedded chain after a gateway restart
    fresh.deploy(fresh.new_funded_key())
    fresh.set_gateway(fresh.account)
    assert provision.sync_chain(rotated["registry"], fresh) == {"registered": 2, "revoked": 1}
    assert fresh.get_key(rotated["old"].kid)["revoked_at"] == rotated["until"]
    assert provision.sync_chain(rotated["registry"], fresh) == {"registered": 0, "revoked": 0}

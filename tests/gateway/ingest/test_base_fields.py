"""SenML base fields (RFC 8428 §4.1, §4.6; issue 16 item 3). A board signs a multi-record
pack with ``bn``/``bt``/``bu`` (``reading.with_base_fields``); a Linux agent, an
older board or any other device may write the same records out in full. The gateway and
the verifiers take both forms unchanged, store and prove the bytes as received, and
resolve both to the same readings; every time check runs on the resolved times."""
import hashlib
import time

import pytest

from edgeledger.gateway import errors, proofs
from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.proofs import verifier
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import chain, cose
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.reading import with_base_fields
from tests.support.anchoring import anchor_stored
from tests.support.devices import FakeDevice

UNITS = ("V", "V", "V", "A", "A", "A", "W", "W", "W", "W")
NAMES = ("voltage_l1", "voltage_l2", "voltage_l3", "current_l1", "current_l2", "current_l3",
         "power_l1", "power_l2", "power_l3", "power")


def poll(device, t):
    """One SDM630 poll of 10 values, records written out in full, one time."""
    return [{0: "%s/m1/%s" % (device, n), 1: u, 2: 200.5 + i, 6: t}
            for i, (n, u) in enumerate(zip(NAMES, UNITS))]


def series(device, t):
    """10 samples of one channel a second apart (time offsets from the base time)."""
    return [{0: device + "/power", 1: "W", 2: 1000 + i, 6: t + i} for i in range(10)]


def signed(dev, pack):
    msg = cose.sign1(reading_validate.encode_payload(dev.name, dev.seq + 1, dev.prev, 1, pack), dev.signer)
    dev.seq += 1
    dev.prev = hashlib.sha256(msg).digest()
    return msg


@pytest.fixture
def gateway(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    yield st, Registry(st), Pipeline(st, Registry(st))
    st.close()


def test_gateway_stores_both_forms_as_received_and_they_resolve_alike(gateway):
    st, reg, pipe = gateway
    dev = FakeDevice("m1", alg="ES256")
    dev.register(pipe.registry)
    t = round(time.time(), 2)
    sent = []
    for records in (poll("m1", t), series("m1", t)):
        based = with_base_fields(records)
        assert -2 in based[0] and -3 in based[0]  # a base name and a base time were used
        for pack in (records, based):
            msg = signed(dev, pack)
            pipe.process(dev.topic, msg)
            sent.append((msg, records))
    pipe.commit()
    for seq, (msg, records) in enumerate(sent, 1):
        stored = bytes(st.message("m1", seq)[1])
        assert stored == msg  # stored exactly as received, never re-encoded
        body = reading_validate.decode_payload(cose_verify.parse_sign1(stored).payload)
        assert reading_validate.resolve(body.pack) == reading_validate.resolve(records)
    # the base-field form is the smaller one of each pair
    assert len(sent[1][0]) < len(sent[0][0]) and len(sent[3][0]) < len(sent[2][0])


def test_a_base_time_far_from_now_is_refused_though_no_record_has_a_time(gateway):
    _st, _reg, pipe = gateway
    dev = FakeDevice("m2", alg="ES256")
    dev.register(pipe.registry)
    pack = with_base_fields(poll("m2", round(time.time()) + 30 * 86400))
    assert all(6 not in r for r in pack)  # the only time is the base time
    with pytest.raises(errors.RejectedMessage) as e:
        pipe.process(dev.topic, signed(dev, pack))
    assert e.value.reason == "clock_skew"


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    """Base-field packs of one key, timed before and after its end, anchored on the embedded
    chain; the key is revoked afterwards, its end between the two packs."""
    led = EmbeddedLedger()
    led.deploy(led.new_funded_key())
    dev = FakeDevice("m3", alg="EdDSA")
    led.authorize_gateway(dev.site, led.account)
    st = Store(str(tmp_path_factory.mktemp("base") / "gw.db"))
    reg = Registry(st)
    pipe = Pipeline(st, reg, clock_skew_s=10 ** 9)
    dev.register(reg)
    keysync.sync_chain(reg, led)  # registered on chain; the registry keeps the chain's time
    t0 = reg.key(dev.signer.kid).chain_time
    for t in (t0 + 10, t0 + 200):  # seq 1 before, seq 2 after the key's end (t0 + 100)
        pack = with_base_fields(series("m3", t))
        assert pack[0][-3] == t and max(r.get(6, 0) for r in pack) == 9  # offsets only
        pipe.process(dev.topic, signed(dev, pack))
    pipe.commit()
    anchor_stored(st, led, 2)
    led.revoke_key(dev.site, dev.signer.kid, t0 + 100, 10 ** 6)
    meta = st.ledger_meta()
    yield {"ledger": led, "trust": verifier.TrustRoot(led.chain_id, led.address),
           "bundle": lambda seq: proofs.bundle_for(st, "m3", seq, int(meta["chain_id"]), meta["contract"]).encode()}
    st.close()


@pytest.mark.ledger
def test_verifier_judges_revocation_by_the_resolved_base_time(anchored):
    # offline: the signature and the Merkle path of a base-field pack check out
    assert verifier.verify_bundle(anchored["bundle"](2))["offline"] == "ok"
    led, trust = anchored["ledger"], anchored["trust"]
    assert verifier.verify_bundle(anchored["bundle"](1), rpc=led, min_confirmations=1,
                                  trust=trust)["key_status"] == "valid"
    # the records of seq 2 carry only offsets 0..9: read without their base time they would
    # date from 1970 (rule W3: before the key's registration); resolved, they follow the
    # key's end (rule W4): the verifier must name W4
    with pytest.raises(verifier.KeyOutsideWindow, match="W4"):
        verifier.verify_bundle(anchored["bundle"](2), rpc=led, min_confirmations=1, trust=trust)


def test_both_forms_have_the_same_chain_and_message_rules():
    # the payload rules do not care which form a pack takes: both decode and check
    dev = FakeDevice("m4")
    records = poll("m4", 1767225600.5)
    for pack in (records, with_base_fields(records)):
        body = reading_validate.decode_payload(cose_verify.parse_sign1(signed(dev, pack)).payload)
        assert reading_validate.time_range(body.pack) == (1767225600.5, 1767225600.5)
    assert dev.seq == 2 and dev.prev != chain.GENESIS

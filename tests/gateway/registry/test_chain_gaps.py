"""Broken device chains end in a recorded, explained gap, never in a wedge
(protocols/chain.py R1, G1-G3; gateway/gaps.py; bundle field 13)."""
import hashlib
import time

import pytest

from edgeledger.gateway import errors, proofs
from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.cli import status
from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.errors import RegistryError
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.proofs import verifier
from edgeledger.gateway.registry import Registry, gaps
from edgeledger.gateway.store import Store
from edgeledger.protocols import chain, cose
from edgeledger.protocols.bundle import Bundle
from edgeledger.protocols.reading import validate as reading_validate
from tests.support.devices import FakeDevice


@pytest.fixture
def st(tmp_path):
    s = Store(str(tmp_path / "gw.db"))
    yield s
    s.close()


def restart_message(dev, seq, why="outbox head segment unreadable after a power cut"):
    """What a device sends to start a new chain segment: seq beyond anything it may have
    used, prev = 32 zero bytes, and (optional) a record saying why."""
    t = time.time()
    pack = [{0: chain.RESTART_RECORD, 3: why, 6: t}, {0: dev.name + "/power", 1: "W", 2: 1.0, 6: t}]
    msg = cose.sign1(reading_validate.encode_payload(dev.name, seq, chain.GENESIS, 7, pack), dev.signer)
    dev.seq, dev.prev = seq, hashlib.sha256(msg).digest()
    dev.sent[seq] = msg
    return msg


def send(pipe, dev, msg):
    try:
        pipe.process(dev.topic, msg)
        return "stored"
    except errors.RejectedMessage as e:
        return e.reason


def test_g1_a_declared_restart_is_stored_recorded_and_acknowledged(st):
    pipe = Pipeline(st, Registry(st))
    dev = FakeDevice("d1")
    dev.register(pipe.registry)
    for _ in range(5):
        pipe.process(dev.topic, dev.next())
    dev.next(), dev.next()  # seqs 6 and 7 are lost with the device's flash
    assert send(pipe, dev, restart_message(dev, 40)) == "stored"
    assert send(pipe, dev, dev.next()) == "stored"  # 41 links to the restart
    acks = pipe.commit()
    assert acks == {"d1": 41}
    (g,) = st.chain_gaps("d1")
    assert (g.after_seq, g.resume_seq, g.kind) == (5, 40, "restart") and g.accepted_at is not None
    assert "outbox head segment unreadable" in g.reason
    assert st.seqs("d1") == [1, 2, 3, 4, 5, 40, 41]
    assert pipe.counters["chain_restarts"] == 1
    text = "\n".join(status.report(GatewayConfig(), st))
    assert "d1: seqs 6..39 not in the chain, chain goes on at seq 40 (restart" in text


def test_g3_a_restart_waits_for_an_operator_when_restarts_are_not_accepted(st):
    pipe = Pipeline(st, Registry(st), accept_restarts=False)
    dev = FakeDevice("d2")
    dev.register(pipe.registry)
    for _ in range(3):
        pipe.process(dev.topic, dev.next())
    pipe.process(dev.topic, restart_message(dev, 10))
    pipe.process(dev.topic, dev.next())
    assert pipe.commit() == {"d2": 3}  # the mark stops before the restart
    assert "WAITING for an operator" in "\n".join(status.report(GatewayConfig(), st))
    g = gaps.accept_gap(st, "d2", "flash replaced on site visit")
    assert g.resume_seq == 10
    assert pipe.reload_gaps() == ["d2"]
    assert pipe.commit() == {"d2": 11}


def test_g2_operator_accepts_the_seqs_a_revoked_key_signed_and_the_chain_goes_on(st):
    """The dead end of issue 13: seqs signed with a key revoked meanwhile can never be
    stored; the device's mark stops and it resends for ever. accept-gap gets it out."""
    reg = Registry(st)
    pipe = Pipeline(st, reg)
    dev = FakeDevice("d3")
    dev.register(reg)
    for _ in range(3):
        assert send(pipe, dev, dev.next()) == "stored"
    pipe.commit()
    reg.revoke("d3", at=time.time() - 1)
    rejected = [send(pipe, dev, dev.next()) for _ in range(3)]  # seqs 4..6, old key
    assert rejected == ["revoked_device"] * 3
    dev.signer = FakeDevice("d3").signer  # rotated key
    reg.register("d3", dev.site, dev.signer.alg, dev.signer.public_key, dev.signer.kid)
    for _ in range(3):
        assert send(pipe, dev, dev.next()) == "stored"  # 7..9, ahead of the hole
    assert pipe.commit() == {"d3": 3}
    waiting = "\n".join(status.report(GatewayConfig(), st, "gw.toml"))
    assert "d3: contiguous up to seq 3, next stored seq 7 (3 missing; quarantined among them: revoked_device 3)" \
        in waiting and "accept-gap --config gw.toml --device d3" in waiting
    g = gaps.accept_gap(st, "d3", "key revoked after a leak", by="operator test")
    assert (g.after_seq, g.resume_seq, g.kind) == (3, 7, "operator")
    assert pipe.reload_gaps() == ["d3"]
    assert pipe.commit() == {"d3": 9}
    with pytest.raises(RegistryError, match="no gap"):
        gaps.accept_gap(st, "d3", "again")


def test_accept_gap_without_a_stored_successor_needs_through(st):
    reg = Registry(st)
    pipe = Pipeline(st, reg)
    dev = FakeDevice("d4")
    dev.register(reg)
    pipe.process(dev.topic, dev.next())
    pipe.commit()
    with pytest.raises(RegistryError, match="--through"):
        gaps.accept_gap(st, "d4", "lost")
    g = gaps.accept_gap(st, "d4", "lost", through=50)
    assert (g.after_seq, g.resume_seq) == (1, 51)


def test_bundles_after_a_gap_carry_it_and_verify_says_so(st):
    """Visible to verifiers: the restart message says it itself (signed); later readings'
    bundles carry the gateway's record of the gap (field 13)."""
    led = EmbeddedLedger()
    led.deploy(led.new_funded_key())
    pipe = Pipeline(st, Registry(st))
    dev = FakeDevice("d5")
    led.authorize_gateway(dev.site, led.account)
    dev.register(pipe.registry)
    keysync.sync_chain(pipe.registry, led)  # the key on chain, with the registry's window
    for _ in range(2):
        pipe.process(dev.topic, dev.next())
    pipe.process(dev.topic, restart_message(dev, 9, why="head lost"))
    pipe.process(dev.topic, dev.next())
    pipe.commit()
    st.set_ledger_meta({"chain_id": led.chain_id, "contract": led.address, "gateway": led.account})
    batcher = Batcher(st, led, max_size=100, max_age_s=0, confirmations=1)
    for _ in range(20):
        batcher.step()
        led.mine(1)
        if batcher.anchored_messages() == 4:
            break
    assert batcher.anchored_messages() == 4
    first = proofs.bundle_for(st, "d5", 1, led.chain_id, led.address)
    assert first.gaps == []
    trust = verifier.TrustRoot(led.chain_id, led.address)
    restart = verifier.verify_bundle(proofs.bundle_for(st, "d5", 9, led.chain_id, led.address).encode(), rpc=led,
                                     min_confirmations=1, trust=trust)
    assert restart["chain_restart"] == "head lost"
    later = proofs.bundle_for(st, "d5", 10, led.chain_id, led.address)
    assert Bundle.decode(later.encode()).gaps == later.gaps and len(later.gaps) == 1
    report = verifier.verify_bundle(later.encode(), rpc=led, min_confirmations=1, trust=trust)
    (g,) = report["chain_gaps"]
    assert (g["missing_from"], g["missing_to"], g["resumes_at"], g["kind"]) == (3, 8, 9, "restart")
    assert report["verdict"] == "verified" and report["storage_proof"] == "ok"


def lost_message(dev, seq, prev, ranges):
    """The message after a restart that found damaged records: it declares the seqs lost in
    an ``agent/outbox_lost`` record (agent/recovery.py) and links to ``prev``."""
    t = time.time()
    text = " ".join("%d-%d:%s" % r for r in ranges)
    pack = [{0: chain.LOST_RECORD, 3: text, 6: t}, {0: dev.name + "/power", 1: "W", 2: 1.0, 6: t}]
    msg = cose.sign1(reading_validate.encode_payload(dev.name, seq, prev, 8, pack), dev.signer)
    dev.seq, dev.prev = seq, hashlib.sha256(msg).digest()
    dev.sent[seq] = msg
    return msg


def test_a_declared_loss_is_a_recorded_gap_and_the_acks_move_past_it(st):
    """G1 by declaration: seq 3 was damaged (gone), the head 6..9 too; the device goes on at
    10 naming seq 5, its last intact record. Every declared range is one recorded gap, the
    mark (and so the ack) moves past both, a repeated declaration adds nothing."""
    pipe = Pipeline(st, Registry(st))
    dev = FakeDevice("d9")
    dev.register(pipe.registry)
    msgs = [dev.next() for _ in range(9)]
    for seq in (1, 2, 4, 5):
        pipe.process(dev.topic, msgs[seq - 1])
    assert pipe.commit() == {"d9": 2}  # waits for 3, which the device no longer has
    prev5 = hashlib.sha256(msgs[4]).digest()
    assert send(pipe, dev, lost_message(dev, 10, prev5, [(3, 3, "damaged"), (6, 9, "head")])) == "stored"
    assert pipe.commit() == {"d9": 10}
    got = sorted((g.after_seq, g.resume_seq, g.kind) for g in st.chain_gaps("d9"))
    assert got == [(2, 4, "lost"), (5, 10, "lost")]
    assert all(g.accepted_at is not None and "declared by the device" in g.reason for g in st.chain_gaps("d9"))
    # said again after another restart: one gap each, still
    assert send(pipe, dev, lost_message(dev, 11, dev.prev, [(3, 3, "damaged"), (6, 9, "head")])) == "stored"
    assert pipe.commit() == {"d9": 11}
    assert len(st.chain_gaps("d9")) == 2 and pipe.counters["declared_losses"] == 2
    text = "\n".join(status.report(GatewayConfig(), st))
    assert "d9: seqs 6..9 not in the chain, chain goes on at seq 10 (lost" in text


def test_a_lost_head_with_nothing_kept_is_one_gap_not_two(st):
    """The device kept no record before its damaged head: its next message names 32 zero
    bytes (a restart, R1) and declares the range. One gap, from the declaration."""
    pipe = Pipeline(st, Registry(st))
    dev = FakeDevice("d10")
    dev.register(pipe.registry)
    dev.next(), dev.next()  # never reached the gateway, lost with the flash
    assert send(pipe, dev, lost_message(dev, 3, chain.GENESIS, [(1, 2, "head")])) == "stored"
    assert pipe.commit() == {"d10": 3}
    (g,) = st.chain_gaps("d10")
    assert (g.after_seq, g.resume_seq, g.kind) == (0, 3, "lost")
    assert pipe.counters["chain_restarts"] == 0


def test_an_unreadable_declaration_is_counted_and_the_reading_stored(st):
    pipe = Pipeline(st, Registry(st))
    dev = FakeDevice("d11")
    dev.register(pipe.registry)
    pipe.process(dev.topic, dev.next())
    t = time.time()
    pack = [{0: chain.LOST_RECORD, 3: "nonsense", 6: t}, {0: dev.name + "/power", 1: "W", 2: 1.0, 6: t}]
    msg = cose.sign1(reading_validate.encode_payload(dev.name, 2, dev.prev, 1, pack), dev.signer)
    assert send(pipe, dev, msg) == "stored"
    assert pipe.commit() == {"d11": 2}
    assert st.chain_gaps("d11") == [] and pipe.counters["declared_losses_unreadable"] == 1

"""Every kind of bad input gets its own typed reason, a counter and a quarantine row,
while good traffic keeps being stored."""
import hashlib
import time

import pytest

from edgeledger.gateway import errors
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import cbor, cose, topics
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cose import encrypt as cose_encrypt
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.protocols import wire_vectors
from tests.protocols.canonical_cases import MALFORMED, cases_for
from tests.support.devices import FakeDevice, encrypted_pack


@pytest.fixture
def gw(tmp_path):
    store = Store(str(tmp_path / "gw.db"))
    registry = Registry(store)
    pipe = Pipeline(store, registry, max_message_bytes=4096)
    yield pipe
    store.close()


def feed(pipe, topic, data):
    try:
        return pipe.process(topic, data)
    except errors.RejectedMessage as e:
        return e


def bad_inputs(pipe):
    """(expected reason, topic, bytes) for every kind of bad input."""
    reg = pipe.registry
    d1, d3, revoked = FakeDevice("d1"), FakeDevice("d3"), FakeDevice("revoked")
    ghost = FakeDevice("ghost")
    for d in (d1, d3, revoked):
        d.register(reg)
    good = [d1.next() for _ in range(3)]
    revoked.next()
    for m in good:
        pipe.process(d1.topic, m)
    pipe.process(revoked.topic, revoked.sent[1])
    pipe.commit()
    reg.revoke("revoked", at=time.time() - 1)
    sig_flipped = bytearray(d1.make(4, d1.prev))
    sig_flipped[-1] ^= 1
    forked = d1.make(2, hashlib.sha256(good[0]).digest(), value=99.0)
    replayed = d1.make(2, d1.prev, value=7.0)  # seq 2 again, but continuing from seq 3
    big = d1.make(4, d1.prev, records=200)
    skewed = d1.make(4, d1.prev, t=time.time() + 86400 * 30)
    not_payload = d1.signer
    from edgeledger.protocols import cose

    garbage_payload = cose.sign1(cbor.encode({1: 1, 2: "d1"}), not_payload)
    return [
        ("malformed_cbor", d1.topic, b"\xff\x00\x01"),
        ("malformed_cbor", d1.topic, d1.make(4, d1.prev) + b"\x00"),  # unsigned trailing byte
        ("truncated_cose", d1.topic, good[0][:-10]),
        ("not_cose_sign1", d1.topic, cbor.encode([1, 2, 3])),
        ("bad_payload", d1.topic, garbage_payload),
        ("bad_signature", d1.topic, bytes(sig_flipped)),
        ("unknown_device", ghost.topic, ghost.next()),
        ("revoked_device", revoked.topic, revoked.next()),
        ("replay", d1.topic, replayed),
        ("fork", d1.topic, forked),
        ("oversized", d1.topic, big),
        ("topic_mismatch", d3.topic, d1.make(4, d1.prev)),
        ("topic_mismatch", topics.readings("other-site", "d1"), d1.make(4, d1.prev)),
        ("clock_skew", d1.topic, skewed),
        ("non_canonical", d1.topic, b"\xd8\x12" + d1.make(4, d1.prev)[1:]),  # tag 18 in a long head
    ], d1


def test_each_bad_input_has_its_reason_and_good_traffic_flows(gw):
    cases, d1 = bad_inputs(gw)
    for reason, topic, data in cases:
        out = feed(gw, topic, data)
        assert isinstance(out, errors.RejectedMessage), reason
        assert out.reason == reason, (reason, str(out))
        # good traffic continues between every bad message
        assert not isinstance(feed(gw, d1.topic, d1.next()), errors.RejectedMessage)
    acks = gw.commit()
    assert acks["d1"] == d1.seq
    q = gw.store.quarantine_reasons()
    expected = {}
    for reason, _, _ in cases:
        expected[reason] = expected.get(reason, 0) + 1
    assert q == expected
    assert gw.counters["rejected"] == len(cases)
    for reason, n in expected.items():
        assert gw.counters["rejected_" + reason] == n
    # the quarantine keeps the raw bytes as evidence
    rows = gw.store.db.execute("SELECT reason, bytes FROM quarantine").fetchall()
    assert sorted((r, bytes(b)) for r, b in rows) == sorted((r, bytes(d)) for r, _, d in cases)
    assert gw.store.seqs("d1") == list(range(1, d1.seq + 1))


def test_duplicate_is_acked_and_stored_once(gw):
    d = FakeDevice("d1")
    d.register(gw.registry)
    m = d.next()
    gw.process(d.topic, m)
    gw.commit()
    out = gw.process(d.topic, m)
    assert out.verdict == "duplicate"
    assert gw.commit() == {"d1": 1}
    assert gw.store.count_messages() == 1 and gw.counters["duplicates"] == 1


def test_gap_is_stored_but_ack_waits_for_it(gw):
    d = FakeDevice("d1")
    d.register(gw.registry)
    msgs = [d.next() for _ in range(4)]
    for i in (0, 2, 3):
        gw.process(d.topic, msgs[i])
    assert gw.commit() == {"d1": 1}
    gw.process(d.topic, msgs[1])
    assert gw.commit() == {"d1": 4}


def test_state_survives_restart(gw, tmp_path):
    d = FakeDevice("d1")
    d.register(gw.registry)
    for _ in range(3):
        gw.process(d.topic, d.next())
    gw.commit()
    again = Pipeline(gw.store, Registry(gw.store))
    assert again.marks["d1"] == [3, 3]
    forked = d.make(3, hashlib.sha256(d.sent[2]).digest(), value=5.0)
    assert feed(again, d.topic, forked).reason == "fork"
    assert again.process(d.topic, d.next()).verdict == "next"


def _other_encodings():
    for alg in ("EdDSA", "ES256"):
        for name, deviation, build in cases_for(cose_verify.ALG_BY_NAME[alg]):
            yield pytest.param(alg, deviation, build, id="%s-%s" % (alg, name))


@pytest.mark.parametrize("alg, deviation, build", list(_other_encodings()))
def test_other_encoding_first_is_refused_and_the_device_chain_stays_whole(gw, alg, deviation, build):
    """A re-encoded copy of seq 1 that arrives before the device's own message (or after it)
    is refused as non_canonical and never becomes the chain's seq 1: the device's messages
    all store as ``next``, with no fork and no chain break. (Before the check, the copy was
    stored and the genuine seq 1 became a fork, seq 2 a chain break.)"""
    d = FakeDevice("d1", alg=alg)
    d.register(gw.registry)
    m1, m2 = d.next(), d.next()
    other = build(m1, d.signer)
    reason = "malformed_cbor" if deviation == MALFORMED else "non_canonical"
    first = feed(gw, d.topic, other)
    assert isinstance(first, errors.RejectedMessage) and first.reason == reason, str(first)
    if reason == "non_canonical":
        assert first.detail.startswith("non-canonical COSE_Sign1 (%s): expected " % deviation), first.detail
        assert (first.device, first.seq) == ("d1", 1)  # named in the quarantine row (unverified)
    assert gw.process(d.topic, m1).verdict == "next"
    assert gw.process(d.topic, m2).verdict == "next"
    late = feed(gw, d.topic, other)  # after the original: still not a fork, nor a duplicate
    assert isinstance(late, errors.RejectedMessage) and late.reason == reason
    # the device's protected header is known by now (the pipeline skips re-checking it), and
    # the copy is still refused with the same rule and the same words
    assert late.detail == first.detail
    assert gw.commit() == {"d1": 2}
    assert [bytes(gw.store.message("d1", s)[1]) for s in (1, 2)] == [m1, m2]
    assert gw.store.quarantine_reasons() == {reason: 2}
    assert gw.counters["rejected_" + reason] == 2 and gw.counters["stored"] == 2
    rows = gw.store.db.execute("SELECT bytes FROM quarantine").fetchall()
    assert [bytes(r[0]) for r in rows] == [other, other]  # the evidence, as received


def test_known_headers_are_bounded_and_only_of_registered_keys(gw, monkeypatch):
    """The protected headers the pipeline has checked (its fast path) are kept only for
    registered keys, so a flood of well-formed messages under made-up kids cannot fill the
    table, and never more than MAX_KNOWN_HEADERS; past the bound, messages are still judged
    in full and stored."""
    from edgeledger.gateway.ingest import pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "MAX_KNOWN_HEADERS", 2)
    ghosts = [FakeDevice("ghost%d" % i) for i in range(5)]  # never registered
    for g in ghosts:
        assert feed(gw, g.topic, g.next()).reason == "unknown_device"
    assert gw._headers == {}
    devices = [FakeDevice("d%d" % i) for i in range(3)]
    for d in devices:
        d.register(gw.registry)
    for _ in range(3):
        for d in devices:
            assert gw.process(d.topic, d.next()).verdict == "next"
            assert len(gw._headers) <= 2
    assert gw.commit() == dict((d.name, 3) for d in devices)


def test_payload_check_falls_back_to_the_exact_encoder_where_cbor2_orders_keys_otherwise():
    """cbor2's canonical mode orders map keys length-first (RFC 7049), RFC 8949 §4.2.1
    bytewise: for {24: .., -1: ..} cbor2 writes -1 first, the deterministic encoding 24 first.
    The gateway's fast payload check must not take cbor2's word for such a map: the cbor2
    order is refused, the deterministic one accepted."""
    from edgeledger.gateway.ingest import pipeline as pipeline_mod

    value = {24: 1, -1: 2}
    cbor2_order = bytes.fromhex("a2" + "2002" + "181801")
    assert cbor2_order == __import__("cbor2").dumps(value, canonical=True)
    with pytest.raises(cose_verify.NonCanonicalMessage) as e:
        pipeline_mod._check_payload_encoding(cbor2_order, value)
    assert e.value.deviation == "payload_encoding"
    pipeline_mod._check_payload_encoding(cbor.encode(value), value)  # the bytewise order passes


def test_doc_vectors_are_refused_before_any_key_or_chain_check(gw):
    """docs/wire-format.md's refused vectors, from a device nobody registered: the encoding is
    judged first (non_canonical), while the genuine message gets as far as the key lookup."""
    v = wire_vectors.load()
    refused = wire_vectors.refusals()
    assert len(refused) >= 10
    for name in refused:
        out = feed(gw, topics.readings("plant-a", "meter-01"), v[name])
        assert out.reason == "non_canonical" and "(%s)" % refused[name] in out.detail, (name, str(out))
    assert feed(gw, topics.readings("plant-a", "meter-01"), v["message-1"]).reason == "unknown_device"


def test_a_bignum_value_is_refused_like_the_verifier_refuses_it(gw):
    """A SenML value of 2**70, written as a bignum (tag 2) and signed by the device key: the
    pure codec (devices, edgeledger verify) has no bignums and never calls it a number. The
    gateway keeps every tag as a tag, as the pure codec does, so it refuses the message with
    the verifier's words (it could otherwise store a reading no bundle can prove)."""
    from edgeledger.gateway.registry import signatures
    from edgeledger.protocols import chain
    from edgeledger.protocols.bundle import Bundle, TamperedMessage, check_offline

    d = FakeDevice("d1")
    d.register(gw.registry)
    big = cbor_decoder.Tag(2, (2 ** 70).to_bytes(9, "big"))  # deterministic CBOR for 2**70
    body = {1: 1, 2: "d1", 3: 1, 4: chain.GENESIS, 5: 1, 6: [{0: "d1/e", 1: "Wh", 2: big, 6: time.time()}]}
    protected = cose.protected_header(d.signer.alg, d.signer.kid)
    payload = cbor.encode(body)
    message = cose.sign1_bytes(protected, payload, d.signer.sign(cose.sig_structure(protected, payload)))
    out = feed(gw, d.topic, message)
    assert out.reason == "bad_payload" and "SenML v must be a number" in out.detail, str(out)
    b = Bundle.decode(wire_vectors.load()["bundle-v2-2"])
    b.message = message
    with pytest.raises(TamperedMessage, match="SenML v must be a number"):
        check_offline(b, signatures.verify)


def test_key_window_covers_encrypted_and_non_finite_time_readings(gw):
    """protocols/keywindow.py at the gateway: an encrypted reading (no visible time) after a
    revocation is judged by its seq, a NaN or infinite record time is refused, a key does not
    speak for readings timed long before its registration."""
    from edgeledger.protocols import cose
    from edgeledger.protocols.reading import validate as reading_validate

    d = FakeDevice("d1")
    d.register(gw.registry, valid_from=time.time() - 60)

    def enc(seq):
        return cose.sign1(reading_validate.encode_payload("d1", seq, d.prev, 1, enc=encrypted_pack("d1", seq)),
                          d.signer)

    for _ in range(2):
        m = enc(d.seq + 1)
        assert gw.process(d.topic, m).verdict == "next"
        d.seq, d.prev = d.seq + 1, hashlib.sha256(m).digest()
    gw.commit()
    gw.registry.revoke("d1", at=time.time() + 3600)  # ends in an hour; last seq: the mark, 2
    out = feed(gw, d.topic, enc(3))
    assert out.reason == "revoked_device" and "W5" in out.detail, out.detail
    from edgeledger.protocols import reading

    for t in (float("nan"), float("inf")):  # signed by a buggy encoder: the board's does not check
        bad = cose.sign1(reading.encode_payload("d1", 3, d.prev, 1, [{0: "d1/x", 2: 1.0, 6: t}]), d.signer)
        out = feed(gw, d.topic, bad)
        assert out.reason == "out_of_range" and "finite" in out.detail, out.detail
    backdated = FakeDevice("d2")
    backdated.register(gw.registry, valid_from=time.time())
    out = feed(gw, backdated.topic, backdated.next(t=time.time() - 3600))
    assert out.reason == "revoked_device" and "W3" in out.detail, out.detail
    assert gw.store.seqs("d1") == [1, 2]


def _reencoded_encrypt0s(enc):
    """Other spellings of one COSE_Encrypt0, each still a valid COSE_Encrypt0 that decrypts."""
    parsed = cose_verify.parse_encrypt0(enc)
    body = enc[2 + len(parsed.protected) + 1:]  # after d0 83, the protected bstr's head and bytes
    assert enc[2] == 0x40 + len(parsed.protected)
    unprot = cbor.encode({4: parsed.kid, 5: parsed.iv})
    ct = enc[len(enc) - len(parsed.ciphertext) - 2:]  # 58 NN head: ciphertext is 24..255 bytes
    assert ct[0] == 0x58 and body.startswith(unprot)
    head = enc[:3 + len(parsed.protected)]
    return {
        "untagged": enc[1:],
        "long tag head": b"\xd8\x10" + enc[1:],
        "unprotected keys out of order": head + b"\xa2\x05\x4d" + parsed.iv + b"\x04\x50" + parsed.kid + ct,
        "an extra unprotected label": head + b"\xa3\x04\x50" + parsed.kid + b"\x05\x4d" + parsed.iv
                                      + b"\x18\x21\x41\x78" + ct,
        "ciphertext head 59": head + unprot + b"\x59\x00" + ct[1:],
        "alg in a long form": b"\xd0\x83\x44\xa1\x01\x18\x0a" + unprot + ct,
    }


def test_a_reencoded_encrypt0_is_refused_as_non_canonical(gw):
    """One reading, one encoding, also inside: an enc spelled any other way than a device's
    encoder writes it is refused (rule encrypted_encoding), never stored: on the full check
    (a device's first message) and on the fast path (a protected header already seen)."""
    d = FakeDevice("d1")
    d.register(gw.registry)
    for seq in (1, 2):
        enc = encrypted_pack("d1", seq)
        for case, other in _reencoded_encrypt0s(enc).items():
            if case != "untagged":  # still the same COSE_Encrypt0 to a lenient reader
                assert cose_verify.parse_encrypt0(other, cose_verify.lenient_decode).ciphertext \
                    == cose_verify.parse_encrypt0(enc).ciphertext, case
            m = cose.sign1(reading_validate.encode_payload("d1", seq, d.prev, 1, enc=other), d.signer)
            out = feed(gw, d.topic, m)
            if case == "untagged":
                assert out.reason == "bad_payload" and "tag 16" in out.detail, (case, out.detail)
            else:
                assert out.reason == "non_canonical" and "encrypted_encoding" in out.detail, (case, out.detail)
        m = cose.sign1(reading_validate.encode_payload("d1", seq, d.prev, 1, enc=enc), d.signer)
        assert gw.process(d.topic, m).verdict == "next"
        d.seq, d.prev = seq, hashlib.sha256(m).digest()
        assert gw._known_sign1(m) is not None  # its header is known now: seq 2 takes the fast path


def test_an_enc_that_is_no_encrypt0_is_a_bad_payload(gw):
    d = FakeDevice("d1")
    d.register(gw.registry)
    enc = encrypted_pack("d1", 1)
    parsed = cose_verify.parse_encrypt0(enc)
    short_iv = cose_encrypt.encrypt0_bytes(parsed.protected, parsed.kid, parsed.iv[:12], parsed.ciphertext)
    for blob, words in ((b"\x01" * 24, "trailing"), (b"\xd0\x82\x40\x40", "array of 3"),
                        (enc.replace(b"\xa1\x01\x0a", b"\xa1\x01\x0b"), "unsupported COSE content alg"),
                        (short_iv, "IV must be 13 bytes")):
        m = cose.sign1(reading_validate.encode_payload("d1", 1, d.prev, 1, enc=blob), d.signer)
        out = feed(gw, d.topic, m)
        assert out.reason == "bad_payload" and words in out.detail, (blob.hex(), out.detail)

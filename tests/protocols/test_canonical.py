"""One reading, one accepted encoding (docs/wire-format.md, "Canonical form").

Every other encoding of a genuine message (tests/protocols/canonical_cases.py) is refused with
the rule it breaks, whichever decoder reads it (the pure codec of the verifier and the boards,
cbor2 as the gateway runs it); the doc's vectors are rebuilt from message-1 and checked, on
CPython and under MicroPython; genuine messages of both algorithms always pass.
"""
import cbor2
import pytest

from edgeledger.agent.crypto.pure.ed25519 import verify as pure_ed25519
from edgeledger.agent.crypto.verify import ed25519_verify, es256_verify
from edgeledger.agent.signer import KeySigner, generate
from edgeledger.gateway.ingest import pipeline
from edgeledger.gateway.registry import signatures
from edgeledger.protocols import chain, cose
from edgeledger.protocols.bundle import Bundle, NonCanonical, check_offline
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.cose.verify import NonCanonicalMessage
from edgeledger.protocols.errors import CoseError, DecodeError
from edgeledger.protocols.reading import validate as reading_validate
from tests.agent.crypto import vectors as crypto_vectors
from tests.protocols import wire_vectors
from tests.protocols.canonical_cases import CASES, MALFORMED, cases_for
from tests.support.mpy import run_micropython

V = wire_vectors.load()
REFUSED = wire_vectors.refusals()
ED = KeySigner(-8, bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"), "meter-01")
ES = KeySigner(-7, bytes.fromhex(crypto_vectors.P256_PRIVATE), "meter-01")
SIGNER = {cose.EDDSA: ED, cose.ES256: ES}
GENUINE = {cose.EDDSA: V["message-1"], cose.ES256: V["es256-message-1"]}
# the decoders check_canonical runs with: the strict pure codec, and cbor2 as the gateway reads
DECODERS = {"pure": cbor_decoder.decode, "cbor2": pipeline._decode}


def _cases():
    for alg in (cose.EDDSA, cose.ES256):
        for name, deviation, build in cases_for(alg):
            for dname in DECODERS:
                yield pytest.param(alg, name, deviation, build, dname,
                                   id="%s-%s-%s" % (cose_verify.ALGORITHMS[alg]["name"], name, dname))


@pytest.mark.parametrize("alg, case, deviation, build, decoder", list(_cases()))
def test_each_other_encoding_is_refused_with_its_rule(alg, case, deviation, build, decoder):
    genuine = GENUINE[alg]
    other = build(genuine, SIGNER[alg])
    assert other != genuine
    decode = DECODERS[decoder]
    if deviation == MALFORMED:
        with pytest.raises(ValueError, match="trailing|after"):  # one CBOR item, then more bytes
            cose_verify.parse_canonical(other, decode)
        return
    with pytest.raises(NonCanonicalMessage) as e:
        cose_verify.parse_canonical(other, decode)
    assert e.value.deviation == deviation, str(e.value)
    assert isinstance(e.value, CoseError) and isinstance(e.value, DecodeError) and isinstance(e.value, ValueError)
    assert "expected " in str(e.value) and "found " in str(e.value)
    # the same reading, with a signature by the device key: only the encoding is wrong
    lenient = cose_verify.parse_sign1(other, cbor2.loads)
    assert reading_validate.decode_payload(lenient.payload, cbor2.loads).seq == 1
    verifies = signatures.verify(alg, SIGNER[alg].public_key, lenient.to_be_signed(), lenient.signature)
    assert verifies is (case != "high_s_eddsa_s_plus_l")  # libsodium refuses S >= L itself


def test_genuine_vectors_are_canonical_with_every_decoder():
    for name in ("message-1", "message-2", "es256-message-1"):
        for decode in DECODERS.values():
            msg = cose_verify.parse_canonical(V[name], decode)
            assert cose.sign1_bytes(msg.protected, msg.payload, msg.signature) == V[name]


def test_doc_vectors_are_the_cases_built_from_message_1():
    assert cose.sign1(V["payload-1"], ES) == V["es256-message-1"]  # RFC 6979 + low-S: reproducible
    assert set(REFUSED) == set(n for n in V if n.startswith("refused-"))
    for name, deviation in REFUSED.items():
        case = name[len("refused-"):]
        case_deviation, only, build = CASES[case]
        alg = only or cose.EDDSA
        assert build(GENUINE[alg], SIGNER[alg]) == V[name], name
        assert case_deviation == deviation, name
        with pytest.raises(NonCanonicalMessage) as e:
            cose_verify.parse_canonical(V[name])
        assert e.value.deviation == deviation
    # the doc shows every rule but trailing_bytes (which the gateway's decoder refuses first)
    assert set(REFUSED.values()) == set(cose_verify.CANONICAL_RULES) - {"trailing_bytes"}


def test_trailing_bytes_rule_holds_for_a_decoder_that_stops_at_the_first_item():
    # cbor2.loads reads one item and ignores the rest; check_canonical still sees the tail
    with pytest.raises(NonCanonicalMessage) as e:
        cose_verify.parse_canonical(V["message-1"] + b"\x00\x01", cbor2.loads)
    assert e.value.deviation == "trailing_bytes" and "found 2 bytes after it" in str(e.value)


def _pack(rng_seed):
    """A varied SenML pack: base fields (negative labels), floats of every width, big ints."""
    import random

    rng = random.Random(rng_seed)
    recs = [{-2: "dev/", -3: 1764093000 + rng.randrange(10 ** 6), -4: "W", 0: "p", 2: rng.choice(
        [rng.random() * 1e6, float(rng.randrange(-100, 100)), 230.5, 1.1, 2 ** 40, -(2 ** 33)])}]
    for i in range(rng.randrange(0, 12)):
        recs.append({0: "v%d" % i, 2: rng.uniform(-1e9, 1e9), 6: rng.randrange(0, 600)})
    return recs


def test_messages_our_signers_make_are_always_canonical():
    """Fails without low-S signing: about half of all ES256 signatures have s > n/2."""
    for alg in ("EdDSA", "ES256"):
        for i in range(100 if alg == "ES256" else 30):
            s = generate(alg, "d%d" % i)
            m = cose.sign1(reading_validate.encode_payload(s.device, i + 1, chain.GENESIS, i, _pack(i)), s)
            for decode in DECODERS.values():
                cose_verify.parse_canonical(m, decode)


def test_ed25519_s_plus_l_is_refused_by_every_verifier_and_by_the_rule():
    """RFC 8032 §5.1.7 strict verification already refuses S >= L: libsodium (the gateway),
    cryptography (the CPython shim) and the pure verifier (boards) agree."""
    genuine = cose_verify.parse_canonical(V["message-1"])
    twin = CASES["high_s_eddsa_s_plus_l"][2](V["message-1"], ED)
    other = cose_verify.parse_sign1(twin)
    assert other.signature != genuine.signature and other.signature[:32] == genuine.signature[:32]
    tbs = genuine.to_be_signed()
    for verify in (lambda p, m, s: signatures.verify(cose.EDDSA, p, m, s), ed25519_verify,
                   pure_ed25519.verify):
        assert verify(ED.public_key, tbs, genuine.signature) is True
        assert verify(ED.public_key, tbs, other.signature) is False
    with pytest.raises(NonCanonicalMessage) as e:
        cose_verify.parse_canonical(twin)
    assert e.value.deviation == "high_s"


def test_es256_high_s_twin_verifies_but_is_refused():
    genuine = cose_verify.parse_canonical(V["es256-message-1"])
    twin = cose_verify.parse_sign1(V["refused-high_s_es256"])
    for sig in (genuine.signature, twin.signature):  # ECDSA itself accepts both
        assert signatures.verify(cose.ES256, ES.public_key, genuine.to_be_signed(), sig) is True
        assert es256_verify(ES.public_key, genuine.to_be_signed(), sig) is True
    assert int.from_bytes(twin.signature[32:], "big") > cose_verify.P256_N // 2


def test_a_bundle_carrying_another_encoding_fails_as_non_canonical():
    good = Bundle.decode(V["bundle-v2-2"])
    assert check_offline(good, signatures.verify).seq == 2
    for case in ("array_head_98_04", "unprotected_kid", "untagged", "payload_unsorted_keys", "crit"):
        deviation, _, build = CASES[case]
        b = Bundle.decode(V["bundle-v2-2"])
        b.message = build(V["message-2"], ED)
        with pytest.raises(NonCanonical) as e:
            check_offline(b, signatures.verify)
        assert str(e.value).startswith("non-canonical message: ") and "(%s)" % deviation in str(e.value)


ENVELOPE_RULES = ("untagged", "envelope_encoding", "unprotected_header", "trailing_bytes")


@pytest.mark.parametrize("alg", [cose.EDDSA, cose.ES256])
def test_split_sign1_takes_the_canonical_envelope_only(alg):
    """The gateway's fast path splits a message without decoding it (split_sign1): it must
    give the parts of every genuine message, and nothing for any other envelope, a prefix
    or a longer message, so that no envelope deviation skips the full check."""
    genuine = GENUINE[alg]
    msg = cose_verify.parse_canonical(genuine)
    assert cose_verify.split_sign1(genuine) == (msg.protected, msg.payload, msg.signature)
    for name, deviation, build in cases_for(alg):
        other = build(genuine, SIGNER[alg])
        parts = cose_verify.split_sign1(other)
        if deviation in ENVELOPE_RULES or deviation == MALFORMED:
            assert parts is None, name
        else:  # a deviation inside the protected header, the payload or the signature
            assert parts is not None and cose.sign1_bytes(*parts) == other, name
    for n in range(len(genuine)):
        assert cose_verify.split_sign1(genuine[:n]) is None, n
    for tail in (b"\x00", b"\xa0", genuine):
        assert cose_verify.split_sign1(genuine + tail) is None
    big = cose.sign1(b"\xa0" * 70000, ED)  # a 4-byte payload head (ai 26)
    assert cose_verify.split_sign1(big)[1] == b"\xa0" * 70000


@pytest.mark.micropython
def test_rules_under_micropython():
    names = sorted(REFUSED)
    script = """
from edgeledger.agent.signer import KeySigner
from edgeledger.protocols import cose
from edgeledger.protocols.cbor.decoder import CborDecodeError
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.cose.verify import NonCanonicalMessage
V = %r
REFUSED = %r
for name in ("message-1", "message-2", "es256-message-1"):
    cose_verify.parse_canonical(V[name])
print("genuine|ok")
es = KeySigner(-7, %r, "meter-01")
print("es256-signed|" + ("same" if cose.sign1(V["payload-1"], es) == V["es256-message-1"] else "differs"))
for name in REFUSED:
    try:
        cose_verify.parse_canonical(V[name])
        print(name + "|accepted")
    except NonCanonicalMessage as e:
        print(name + "|" + e.deviation)
try:
    cose_verify.parse_canonical(V["message-1"] + b"\\x00")
    print("trailing|accepted")
except CborDecodeError:
    print("trailing|CborDecodeError")
print("split|" + ",".join(n for n in sorted(V) if cose_verify.split_sign1(V[n]) is not None))
""" % (dict((n, V[n]) for n in ["message-1", "message-2", "es256-message-1", "payload-1"] + names), names,
       bytes.fromhex(crypto_vectors.P256_PRIVATE))
    out = dict(line.split("|", 1) for line in run_micropython(script, heapsize="256K", timeout=300).stdout.splitlines()
               if "|" in line)
    assert out.pop("genuine") == "ok"
    assert out.pop("es256-signed") == "same"  # pure P-256, RFC 6979, low-S: the CPython bytes
    assert out.pop("trailing") == "CborDecodeError"
    split = sorted(n for n in V if n in ("message-1", "message-2", "es256-message-1", "payload-1") + tuple(names)
                   and cose_verify.split_sign1(V[n]) is not None)
    assert out.pop("split") == ",".join(split) and "message-1" in split  # what CPython splits, on a board
    assert out == REFUSED

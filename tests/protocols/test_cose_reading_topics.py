import pytest

from edgeledger.agent.signer import generate
from edgeledger.protocols import cbor, chain, cose, topics
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.errors import CoseError, PayloadError, ProtocolError, SignatureError
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.topics import TopicError
from tests.support.devices import encrypted_pack

PACK = [{0: "m/p", 1: "W", 2: 5, 6: 1764093000}]


def test_sign_parse_verify_both_algorithms():
    from edgeledger.gateway.registry import signatures

    for alg in ("EdDSA", "ES256"):
        s = generate(alg, "d1")
        m = cose.sign1(reading_validate.encode_payload("d1", 1, chain.GENESIS, 0, PACK), s)
        parsed = cose_verify.parse_sign1(m)
        assert parsed.alg == s.alg and parsed.kid == s.kid
        cose_verify.verify_sign1(parsed, s.public_key, signatures.verify)
        tampered = cose_verify.Sign1(parsed.protected, parsed.alg, parsed.kid, parsed.payload + b"x", parsed.signature)
        with pytest.raises(SignatureError, match="does not verify"):
            cose_verify.verify_sign1(tampered, s.public_key, signatures.verify)


@pytest.mark.parametrize("item, message", [
    (cbor_decoder.Tag(17, []), "tag 18"),
    (cbor_decoder.Tag(18, [b"", {}, b""]), "array of 4"),
    (cbor_decoder.Tag(18, [b"\xa1\x01\x26", {}, b"p", b"s" * 64]), "kid must be"),
    (cbor_decoder.Tag(18, [cbor.encode({1: -8}), {}, b"p", b"s" * 64]), "kid must be"),
    (cbor_decoder.Tag(18, [cbor.encode({1: -8, 4: b"k"}), {}, b"p", b"s" * 63]), "must be 64 bytes"),
    (cbor_decoder.Tag(18, [cbor.encode({1: -9, 4: b"k"}), {}, b"p", b"s" * 64]), "unsupported COSE alg"),
    (cbor_decoder.Tag(18, ["x", {}, b"p", b"s"]), "byte strings"),
])
def test_malformed_sign1_is_a_typed_error(item, message):
    with pytest.raises(CoseError) as e:
        cose_verify.parse_sign1(cbor.encode(item))
    assert isinstance(e.value, ValueError) and isinstance(e.value, ProtocolError)
    assert message in str(e.value)


@pytest.mark.parametrize("change, message", [
    ({1: 2}, "version must be 1"),
    ({2: ""}, "device id"),
    ({3: 0}, "seq must be"),
    ({3: -1}, "seq must be"),
    ({4: b"short"}, "prev must be 32 bytes"),
    ({5: -1}, "epoch"),
    ({6: []}, "pack must be an array"),
    ({6: [{99: 1}]}, "unknown SenML label"),
    ({6: [{2: "x"}]}, "SenML v must be a number"),
    ({9: 1}, "unknown payload key"),
])
def test_payload_rules(change, message):
    body = {1: 1, 2: "d1", 3: 1, 4: chain.GENESIS, 5: 0, 6: PACK}
    body.update(change)
    with pytest.raises(PayloadError, match=message):
        reading_validate.decode_payload(cbor.encode(body))


def test_payload_pack_or_enc_not_both():
    with pytest.raises(PayloadError, match="exactly one"):
        reading_validate.encode_payload("d1", 1, chain.GENESIS, 0, PACK, enc=b"x")
    enc = encrypted_pack("d1", 1)
    p = reading_validate.decode_payload(reading_validate.encode_payload("d1", 1, chain.GENESIS, 0, enc=enc))
    assert p.pack is None and p.enc == enc
    with pytest.raises(PayloadError, match="enc \\(7\\)"):  # an enc must be a COSE_Encrypt0
        reading_validate.decode_payload(reading_validate.encode_payload("d1", 1, chain.GENESIS, 0, enc=b"\x01\x02"))


def test_topics_round_trip_and_reject_wildcards():
    t = topics.readings("plant-a", "meter-01")
    assert t == "el/v1/plant-a/meter-01/r"
    assert topics.parse(t) == ("plant-a", "meter-01", "r")
    assert topics.subscription("r") == "el/v1/+/+/r"
    for bad in ("a/b", "a+", "#", "", "x" * 65):
        with pytest.raises(TopicError):
            topics.readings("plant-a", bad)
    with pytest.raises(TopicError, match="expected el/v1"):
        topics.parse("other/v1/a/b/r")

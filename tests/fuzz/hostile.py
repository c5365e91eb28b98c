# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Hostile inputs for the protocol decoders, each with the one error it must end in.

Runs unchanged under CPython (test_decoders.py) and under the real MicroPython interpreter
(the same file is its script there), so the device-side decoders are held to the same
contract on both runtimes. Proof bundles are CPython-only (``bundle.py`` builds an error
class with two bases, which MicroPython refuses): ``bundle_cases()`` imports it lazily. Every
case is a message a hostile device, broker user or bundle
author can send; before issue 12 each of them raised something untyped (TypeError,
OverflowError, MemoryError, IndexError, UnicodeDecodeError, ...) or was accepted.
"""
from edgeledger.protocols import batch, cbor, topics
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import CborDecodeError
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.errors import CoseError, PayloadError
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.reading.validate import PayloadRangeError
from edgeledger.protocols.topics import TopicError

NAN = float("nan")
INF = float("inf")
GENESIS = b"\x00" * 32
KID = b"k" * 16


def sign1(header, payload=b"", signature=b"\x00" * 64):
    protected = header if isinstance(header, bytes) else cbor.encode(header)
    return cbor.encode(cbor_decoder.Tag(18, [protected, {}, payload, signature]))


def payload(records, **fields):
    body = {1: 1, 2: "d1", 3: 1, 4: GENESIS, 5: 0, 6: records}
    for k, v in fields.items():
        body[int(k[1:])] = v
    return cbor.encode(body)


def header_map(**change):
    m = {1: 1, 2: b"\x01" * 20, 3: 1, 4: b"\x00" * 32, 5: b"\x02" * 32, 6: 1, 7: 10, 8: 20}
    for k, v in change.items():
        m[int(k[1:])] = v
    return m


def bundle_map(**change):
    m = {1: 1, 2: b"message", 3: 0, 4: [], 5: header_map(), 6: 1, 7: b"\x00" * 20, 8: b"\x00" * 32,
         9: 1, 10: b"\x00" * 32, 11: {1: -8, 2: b"\x00" * 32}}
    for k, v in change.items():
        m[int(k[1:])] = v
    return cbor.encode(m)


BIG = 2 ** 62  # bytes(BIG) would try to allocate 4 EiB

CASES = (
    # COSE_Sign1 headers: an alg that is not an integer was a TypeError (unhashable) or matched
    ("alg is a list", cose_verify.parse_sign1, sign1({1: [1], 4: KID}), CoseError),
    ("alg is a map", cose_verify.parse_sign1, sign1({1: {1: 2}, 4: KID}), CoseError),
    ("alg is a float equal to EdDSA", cose_verify.parse_sign1, sign1({1: -8.0, 4: KID}), CoseError),
    ("alg is true", cose_verify.parse_sign1, sign1({1: True, 4: KID}), CoseError),
    ("protected header is not CBOR", cose_verify.parse_sign1, sign1(b"\xff\x00"), CborDecodeError),
    ("protected header has a tail", cose_verify.parse_sign1, sign1(cbor.encode({1: -8, 4: KID}) + b"\x00"),
     CborDecodeError),
    # reading payload numbers: NaN/inf/huge times stopped ingest (OverflowError, NOT NULL)
    ("record time NaN", reading_validate.decode_payload, payload([{2: 1, 6: NAN}]), PayloadRangeError),
    ("record time +inf", reading_validate.decode_payload, payload([{2: 1, 6: INF}]), PayloadRangeError),
    ("record time -inf", reading_validate.decode_payload, payload([{2: 1, 6: -INF}]), PayloadRangeError),
    ("record time 2**40", reading_validate.decode_payload, payload([{2: 1, 6: 2 ** 40}]), PayloadRangeError),
    ("base time 2**64-1", reading_validate.decode_payload, payload([{-3: 2 ** 64 - 1, 2: 1, 6: 0.5}]),
     PayloadRangeError),
    ("resolved time negative", reading_validate.decode_payload, payload([{-3: 100, 2: 1, 6: -200}]), PayloadRangeError),
    ("base time a bignum", reading_validate.decode_payload,
     payload([{-3: cbor_decoder.Tag(2, b"\x01" + b"\x00" * 200), 2: 1}]),
     PayloadError),
    ("value NaN", reading_validate.decode_payload, payload([{2: NAN, 6: 1764093000}]), PayloadRangeError),
    ("value -inf", reading_validate.decode_payload, payload([{2: -INF, 6: 1764093000}]), PayloadRangeError),
    ("sum inf", reading_validate.decode_payload, payload([{5: INF, 6: 1764093000}]), PayloadRangeError),
    ("value a bignum", reading_validate.decode_payload, payload([{2: cbor_decoder.Tag(2, b"\x01" * 9), 6: 1764093000}]),
     PayloadError),
    ("seq a bignum", reading_validate.decode_payload,
     payload([{2: 1, 6: 1764093000}], k3=cbor_decoder.Tag(2, b"\x01" * 9)),
     PayloadError),
    # batch headers on their own
    ("header root an integer", batch.BatchHeader.from_map, header_map(k5=BIG), batch.HeaderError),
    ("header number a boolean", batch.BatchHeader.from_map, header_map(k3=True), batch.HeaderError),
    ("header number 2**64", batch.BatchHeader.from_map, header_map(k3=2 ** 64), batch.HeaderError),
    ("header is a string", batch.BatchHeader.from_map, "header", batch.HeaderError),
    # topics
    ("topic with a NUL id", topics.parse, "el/v1/\x00/d/r", TopicError),
    ("topic one level too deep", topics.parse, "el/v1/s/d/r/x", TopicError),
    ("topic with a wildcard", topics.parse, "el/v1/s/+/r", TopicError),
)


def bundle_cases():
    from edgeledger.protocols import bundle

    return (
        # proof bundles: integers where byte strings belong were allocated (bytes(n)), wrong
        # containers were IndexError/TypeError
        ("bundle message is a huge integer", bundle.Bundle.decode, bundle_map(k2=BIG), bundle.MalformedBundle),
        ("bundle path entry is an integer", bundle.Bundle.decode, bundle_map(k4=[BIG]), bundle.MalformedBundle),
        ("bundle path is a map", bundle.Bundle.decode, bundle_map(k4={1: b"x" * 32}), bundle.MalformedBundle),
        ("bundle key is a byte string", bundle.Bundle.decode, bundle_map(k11=b"xy"), bundle.MalformedBundle),
        ("bundle key is an integer", bundle.Bundle.decode, bundle_map(k11={1: -8, 2: BIG}), bundle.MalformedBundle),
        ("bundle index negative", bundle.Bundle.decode, bundle_map(k3=-1), bundle.MalformedBundle),
        ("bundle chain id a string", bundle.Bundle.decode, bundle_map(k6="1"), bundle.MalformedBundle),
        ("bundle storage proof of integers", bundle.Bundle.decode, bundle_map(k12={1: BIG, 2: [], 3: []}),
         bundle.MalformedBundle),
        ("bundle header gateway an integer", bundle.Bundle.decode, bundle_map(k5=header_map(k2=BIG)),
         bundle.MalformedBundle),
        ("bundle header a list", bundle.Bundle.decode, bundle_map(k5=[1, 2]), bundle.MalformedBundle),
        ("bundle is an array", bundle.Bundle.decode, cbor.encode([1, 2]), bundle.MalformedBundle),
    )


def check_all(out=print, bundles=True):
    """Run every case; raise AssertionError naming the first that ends otherwise."""
    for what, fn, arg, expected in CASES + (bundle_cases() if bundles else ()):
        try:
            fn(arg)
        except expected:
            out("ok " + what)
            continue
        except Exception as e:  # anything else is the bug this module exists to catch
            raise AssertionError("%s: expected %s, got %s: %s"
                                 % (what, expected.__name__, type(e).__name__, e))
        raise AssertionError("%s: expected %s, nothing was raised" % (what, expected.__name__))

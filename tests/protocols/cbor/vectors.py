"""Golden vectors for the deterministic CBOR codec, as data.

APPENDIX_A: RFC 8949 Appendix A, taken from cbor/test-vectors
``appendix_a.json`` (the machine-readable form of the appendix), with every
example our data model can represent. Not taken as valid: ``f818``
(simple(24)), which RFC 7049's appendix had and RFC 8949 removed because
§3.3 makes it not well-formed (it is in APPENDIX_F1 instead).

APPENDIX_F1: RFC 8949 Appendix F.1, "Examples of CBOR Data Items That Are Not
Well-Formed", every example, keyed by the RFC's own group label.
"""

INF = float("inf")
NAN = float("nan")


def tag(n, v):
    from edgeledger.protocols.cbor.decoder import Tag

    return Tag(n, v)


# (hex, value): decode(hex) is value and encode(value) is hex, byte for byte.
APPENDIX_A = [
    ("00", 0),
    ("01", 1),
    ("0a", 10),
    ("17", 23),
    ("1818", 24),
    ("1819", 25),
    ("1864", 100),
    ("1903e8", 1000),
    ("1a000f4240", 1000000),
    ("1b000000e8d4a51000", 1000000000000),
    ("1bffffffffffffffff", 18446744073709551615),
    # 2**64 and -2**64-1 as bignums: this codec has no ints beyond 64 bits,
    # so they decode to (and encode from) the tag itself.
    ("c249010000000000000000", ("tag", 2, bytes.fromhex("010000000000000000"))),
    ("3bffffffffffffffff", -18446744073709551616),
    ("c349010000000000000000", ("tag", 3, bytes.fromhex("010000000000000000"))),
    ("20", -1),
    ("29", -10),
    ("3863", -100),
    ("3903e7", -1000),
    ("f90000", 0.0),
    ("f98000", -0.0),
    ("f93c00", 1.0),
    ("fb3ff199999999999a", 1.1),
    ("f93e00", 1.5),
    ("f97bff", 65504.0),
    ("fa47c35000", 100000.0),
    ("fa7f7fffff", 3.4028234663852886e38),
    ("fb7e37e43c8800759c", 1.0e300),
    ("f90001", 5.960464477539063e-08),
    ("f90400", 6.103515625e-05),
    ("f9c400", -4.0),
    ("fbc010666666666666", -4.1),
    ("f97c00", INF),
    ("f97e00", NAN),
    ("f9fc00", -INF),
    ("f4", False),
    ("f5", True),
    ("f6", None),
    ("c074323031332d30332d32315432303a30343a30305a", ("tag", 0, "2013-03-21T20:04:00Z")),
    ("c11a514b67b0", ("tag", 1, 1363896240)),
    ("c1fb41d452d9ec200000", ("tag", 1, 1363896240.5)),
    ("d74401020304", ("tag", 23, b"\x01\x02\x03\x04")),
    ("d818456449455446", ("tag", 24, b"dIETF")),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", ("tag", 32, "http://www.example.com")),
    ("40", b""),
    ("4401020304", b"\x01\x02\x03\x04"),
    ("60", ""),
    ("6161", "a"),
    ("6449455446", "IETF"),
    ("62225c", '"\\'),
    ("62c3bc", "\u00fc"),
    ("63e6b0b4", "\u6c34"),
    ("64f0908591", "\U00010151"),
    ("80", []),
    ("83010203", [1, 2, 3]),
    ("8301820203820405", [1, [2, 3], [4, 5]]),
    ("98190102030405060708090a0b0c0d0e0f101112131415161718181819", list(range(1, 26))),
    ("a0", {}),
    ("a201020304", {1: 2, 3: 4}),
    ("a26161016162820203", {"a": 1, "b": [2, 3]}),
    ("826161a161626163", ["a", {"b": "c"}]),
    ("a56161614161626142616361436164614461656145", {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}),
]

# Appendix A floats marked "roundtrip: false": valid CBOR, but not the
# preferred serialization (§4.2.2). (hex, value, preferred hex).
APPENDIX_A_NON_PREFERRED = [
    ("fa7f800000", INF, "f97c00"),
    ("fa7fc00000", NAN, "f97e00"),
    ("faff800000", -INF, "f9fc00"),
    ("fb7ff0000000000000", INF, "f97c00"),
    ("fb7ff8000000000000", NAN, "f97e00"),
    ("fbfff0000000000000", -INF, "f9fc00"),
]

# Appendix A indefinite-length examples: well-formed, refused by this codec in
# every mode (deterministic CBOR has definite lengths only, §4.2.1).
APPENDIX_A_INDEFINITE = [
    "5f42010243030405ff",
    "7f657374726561646d696e67ff",
    "9fff",
    "9f018202039f0405ffff",
    "9f01820203820405ff",
    "83018202039f0405ff",
    "83019f0203ff820405",
    "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
    "bf61610161629f0203ffff",
    "826161bf61626163ff",
    "bf6346756ef563416d7421ff",
]

# Appendix A simple values outside our data model: undefined, simple(16),
# simple(255). Well-formed; refused as unsupported.
APPENDIX_A_UNSUPPORTED = ["f7", "f0", "f8ff"]

APPENDIX_F1 = {
    "End of input in a head": "18, 19, 1a, 1b, 19 01, 1a 01 02, 1b 01 02 03 04 05 06 07, "
    "38, 58, 78, 98, 9a 01 ff 00, b8, d8, f8, f9 00, fa 00 00, fb 00 00 00",
    "Definite-length strings with short data": "41, 61, 5a ff ff ff ff 00, "
    "5b ff ff ff ff ff ff ff ff 01 02 03, 7a ff ff ff ff 00, 7b 7f ff ff ff ff ff ff ff 01 02 03",
    "Definite-length maps and arrays not closed with enough items": "81, "
    "81 81 81 81 81 81 81 81 81, 82 00, a1, a2 01 02, a1 00, a2 00 00 00",
    "Tag number not followed by tag content": "c0",
    'Indefinite-length strings not closed by a "break" stop code': "5f 41 00, 7f 61 00",
    'Indefinite-length maps and arrays not closed by a "break" stop code': "9f, 9f 01 02, "
    "bf, bf 01 02 01 02, 81 9f, 9f 80 00, 9f 9f 9f 9f 9f ff ff ff ff, 9f 81 9f 81 9f 9f ff ff ff",
    "Reserved additional information values": "1c, 1d, 1e, 3c, 3d, 3e, 5c, 5d, 5e, 7c, 7d, "
    "7e, 9c, 9d, 9e, bc, bd, be, dc, dd, de, fc, fd, fe",
    "Reserved two-byte encodings of simple values": "f8 00, f8 01, f8 18, f8 1f",
    "Indefinite-length string chunks not of the correct type": "5f 00 ff, 5f 21 ff, "
    "5f 61 00 ff, 5f 80 ff, 5f a0 ff, 5f c0 00 ff, 5f e0 ff, 7f 41 00 ff",
    "Indefinite-length string chunks not definite length": "5f 5f 41 00 ff ff, 7f 7f 61 00 ff ff",
    "Break occurring on its own outside of an indefinite-length item": "ff",
    "Break occurring in a definite-length array or map or a tag": "81 ff, 82 00 ff, a1 ff, "
    "a1 ff 00, a1 00 ff, a2 00 00 ff, 9f 81 ff, 9f 82 9f 81 9f 9f ff ff ff ff",
    "Break in an indefinite-length map that would lead to an odd number of items "
    "(break in a value position)": "bf 00 ff, bf 00 00 00 ff",
    "Major type 0, 1, 6 with additional information 31": "1f, 3f, df",
}


def appendix_f1_items():
    """[(group label, hex)] for all 94 examples of Appendix F.1."""
    out = []
    for label, items in APPENDIX_F1.items():
        for piece in items.split(","):
            out.append((label, piece.replace(" ", "")))
    return out


# Inputs built for this codec (not published vectors): (hex, error class
# name, cbor2 strict verdict). "cbor2 raises" is True when the input is
# malformed/invalid CBOR; False when it is valid CBOR that only a strict
# deterministic decoder or our smaller data model refuses.
OWN_REJECTS = [
    # §4.2.1 shortest heads
    ("1817", "NonCanonicalError", False),
    ("1900ff", "NonCanonicalError", False),
    ("1a0000ffff", "NonCanonicalError", False),
    ("1b00000000ffffffff", "NonCanonicalError", False),
    ("3817", "NonCanonicalError", False),
    ("580161", "NonCanonicalError", False),
    ("780161", "NonCanonicalError", False),
    ("980100", "NonCanonicalError", False),
    ("b8010000", "NonCanonicalError", False),
    ("d80600", "NonCanonicalError", False),
    # §4.2.1 key order: unsorted, and cbor2's length-first order
    ("a202000100", "NonCanonicalError", False),
    ("a22000181800", "NonCanonicalError", False),
    ("a26161011903e800", "NonCanonicalError", False),
    # §4.2.2 floats
    ("fa3fc00000", "NonCanonicalError", False),
    ("fb3ff8000000000000", "NonCanonicalError", False),
    ("fb40f86a0000000000", "NonCanonicalError", False),
    ("fb3e70000000000000", "NonCanonicalError", False),
    ("f97e01", "NonCanonicalError", False),
    ("f9fe00", "NonCanonicalError", False),
    ("fa7fc00001", "NonCanonicalError", False),
    ("fb8000000000000000", "NonCanonicalError", False),
    # §3.4.3 bignums in preferred form only
    ("c24101", "NonCanonicalError", False),
    ("c249000100000000000000", "NonCanonicalError", False),
    ("c3480100000000000000", "NonCanonicalError", False),
    ("c201", "InvalidError", True),
    ("c36161", "InvalidError", True),
    # §5.6 duplicate keys (also by Python value: 1, 1.0 and true collide)
    ("a201000100", "InvalidError", True),
    ("a20100f93c0000", "InvalidError", True),
    ("a20100f500", "InvalidError", True),
    # §3.1 / RFC 3629: invalid UTF-8
    ("62c0af", "InvalidError", True),
    ("63eda080", "InvalidError", True),
    ("64f4908080", "InvalidError", True),
    ("61ff", "InvalidError", True),
    ("6180", "InvalidError", True),
    ("62c328", "InvalidError", True),
    ("62e282", "InvalidError", True),
    ("65f880808080", "InvalidError", True),
    # one item only
    ("0000", "MalformedError", True),
    ("a0ff", "MalformedError", True),
    # indefinite lengths: well-formed, but not deterministic
    ("5f4100ff", "IndefiniteLengthError", True),
    ("7f6161ff", "IndefiniteLengthError", True),
    ("bf0101ff", "IndefiniteLengthError", True),
    # outside the data model
    ("f7", "UnsupportedError", False),
    ("f820", "UnsupportedError", False),
    ("f3", "UnsupportedError", False),
    ("a180f4", "UnsupportedError", False),
    ("a1a0f4", "UnsupportedError", False),
    ("a1c680f4", "UnsupportedError", False),
    # declared lengths beyond the input
    ("5b0000000100000000", "TruncatedError", True),
    ("9b00000001000000000000", "LimitError", True),
    ("bb000000010000000001", "LimitError", True),
    ("8201", "TruncatedError", True),
    ("7a7fffffff61", "TruncatedError", True),
]

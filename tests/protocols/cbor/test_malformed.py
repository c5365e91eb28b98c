"""Malformed, truncated, over-deep, over-long and non-deterministic input."""
import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeledger.protocols import cbor
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import CborDecodeError
from edgeledger.protocols.errors import DecodeError, EncodeError, ProtocolError
from tests.protocols.cbor import vectors
from tests.protocols.cbor.helpers import cbor2_strict_loads
from tests.protocols.cbor.strategies import values

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    "hexstr,name,cbor2_raises", vectors.OWN_REJECTS, ids=[r[0] for r in vectors.OWN_REJECTS]
)
def test_rejects(hexstr, name, cbor2_raises):
    data = bytes.fromhex(hexstr)
    with pytest.raises(getattr(cbor_decoder, name)) as info:
        cbor_decoder.decode(data)
    err = info.value
    assert type(err).__name__ == name
    assert isinstance(err, CborDecodeError) and isinstance(err, DecodeError)
    assert isinstance(err, ProtocolError) and isinstance(err, ValueError)
    assert "offset" in str(err)
    if cbor2_raises:
        with pytest.raises(cbor2.CBORError):
            cbor2_strict_loads(data)
    else:
        cbor2_strict_loads(data)  # valid CBOR; only a strict decoder refuses it


NON_CANONICAL_BUT_VALID = [(h, n) for h, n, _ in vectors.OWN_REJECTS if n == "NonCanonicalError"]


@pytest.mark.parametrize("hexstr,name", NON_CANONICAL_BUT_VALID, ids=[h for h, _ in NON_CANONICAL_BUT_VALID])
def test_lenient_mode_reads_non_deterministic_encodings(hexstr, name):
    data = bytes.fromhex(hexstr)
    value = cbor_decoder.decode(data, canonical=False)
    if hexstr[:2] in ("c2", "c3"):
        # a bignum that is not in preferred form cannot be re-encoded either
        with pytest.raises(EncodeError, match="RFC 8949 §3.4.3"):
            cbor.encode(value)
        return
    # and re-encoding yields the deterministic form, which strict mode accepts
    again = cbor.encode(value)
    assert again != data
    cbor_decoder.decode(again)


def test_messages_say_what_was_expected_and_found():
    cases = {
        "1817": ["carries 23 in 1 argument bytes", "shortest form, 0 argument bytes"],
        "1a0000ffff": ["carries 65535 in 4", "shortest form, 2"],
        "a202000100": ["sorts before", "bytewise"],
        "fb3ff8000000000000": ["f93e00", "shortest"],
        "62c0af": ["UTF-8", "c0"],
        "0000": ["one data item", "1 trailing"],
        "9fff": ["indefinite-length array", "definite lengths only"],
        "1c": ["reserved additional information 28"],
        "ff": ["break", "outside an indefinite-length item"],
        "f7": ["simple value 23", "undefined"],
        "a180f4": ["type list", "hashable"],
        "45": ["declares 5 bytes", "found 0"],
        "1b0001": ["needs 8 bytes", "found 2"],
    }
    for hexstr, parts in cases.items():
        with pytest.raises(CborDecodeError) as info:
            cbor_decoder.decode(bytes.fromhex(hexstr))
        for part in parts:
            assert part in str(info.value), (hexstr, str(info.value))


def test_depth_bound():
    nested = b"\x81" * cbor.MAX_DEPTH + b"\x00"
    assert cbor_decoder.decode(nested) is not None
    with pytest.raises(cbor_decoder.LimitError, match="max_depth=%d" % cbor.MAX_DEPTH):
        cbor_decoder.decode(b"\x81" + nested)
    with pytest.raises(cbor_decoder.LimitError):
        cbor_decoder.decode(b"\xc6" * (cbor.MAX_DEPTH + 1) + b"\x00")
    with pytest.raises(cbor_decoder.LimitError):
        cbor_decoder.decode(b"\xa1\x00" * (cbor.MAX_DEPTH + 1) + b"\x00")
    assert cbor_decoder.decode(b"\x81\x81\x00", max_depth=2) == [[0]]
    with pytest.raises(cbor_decoder.LimitError):
        cbor_decoder.decode(b"\x81\x81\x00", max_depth=1)
    # cbor2 counts the same way: n nested arrays need max_depth >= n
    cbor2.loads(b"\x81\x81\x00", max_depth=2)
    with pytest.raises(cbor2.CBORDecodeError):
        cbor2.loads(b"\x81\x81\x00", max_depth=1)
    # a hostile, very deep input fails fast without exhausting the stack
    with pytest.raises(cbor_decoder.LimitError):
        cbor_decoder.decode(b"\x81" * 100000)


def test_item_bound():
    ok = bytes.fromhex("993fff") + b"\x00" * (cbor_decoder.MAX_ITEMS - 1)
    assert len(cbor_decoder.decode(ok)) == cbor_decoder.MAX_ITEMS - 1
    too_many = bytes.fromhex("994000") + b"\x00" * cbor_decoder.MAX_ITEMS
    with pytest.raises(cbor_decoder.LimitError, match="max_items=%d" % cbor_decoder.MAX_ITEMS):
        cbor_decoder.decode(too_many)
    # the bound counts every item in the whole tree, keys included
    with pytest.raises(cbor_decoder.LimitError):
        cbor_decoder.decode(bytes.fromhex("a2000001828080"), max_items=5)
    assert cbor_decoder.decode(bytes.fromhex("a2000001828080"), max_items=7) == {0: 0, 1: [[], []]}
    # a declared count above the budget fails before any item is read
    with pytest.raises(cbor_decoder.LimitError, match="declares 4294967296 items"):
        cbor_decoder.decode(bytes.fromhex("9b0000000100000000"))


def test_string_bound():
    big = b"x" * (cbor_decoder.MAX_BYTES + 1)
    enc = cbor.encode(big)
    with pytest.raises(cbor_decoder.LimitError, match="max_bytes=%d" % cbor_decoder.MAX_BYTES):
        cbor_decoder.decode(enc)
    assert cbor_decoder.decode(enc, max_bytes=len(big)) == big
    assert cbor_decoder.decode(cbor.encode("y" * cbor_decoder.MAX_BYTES)) == "y" * cbor_decoder.MAX_BYTES
    with pytest.raises(cbor_decoder.LimitError):
        cbor_decoder.decode(cbor.encode("y" * 10), max_bytes=9)
    # a declared length beyond the input is truncation, whatever its size
    with pytest.raises(cbor_decoder.TruncatedError):
        cbor_decoder.decode(bytes.fromhex("5bffffffffffffffff010203"))


@SETTINGS
@given(values())
def test_every_truncation_of_a_valid_encoding_is_truncated_input(obj):
    data = cbor.encode(obj)
    for k in range(len(data)):
        with pytest.raises(cbor_decoder.TruncatedError):
            cbor_decoder.decode(data[:k])
        with pytest.raises(cbor_decoder.TruncatedError):
            cbor_decoder.decode_prefix(data[:k])
    # and one more byte is trailing garbage
    with pytest.raises(cbor_decoder.MalformedError, match="trailing"):
        cbor_decoder.decode(data + b"\x00")


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=40), st.booleans())
def test_random_bytes_raise_only_cbor_decode_error(data, canonical):
    try:
        cbor_decoder.decode(data, canonical=canonical)
    except CborDecodeError:
        pass


@SETTINGS
@given(values(), st.integers(0, 2**32 - 1), st.integers(0, 7))
def test_corrupted_encodings_raise_only_cbor_decode_error(obj, where, bit):
    data = bytearray(cbor.encode(obj))
    data[where % len(data)] ^= 1 << bit
    try:
        cbor_decoder.decode(bytes(data))
    except CborDecodeError:
        pass

"""Our codec against cbor2 6.x: same bytes, same values, same verdicts."""
import math
import struct

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edgeledger.protocols import cbor
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import CborDecodeError, Tag
from tests.protocols.cbor.helpers import from_cbor2, key_orders_agree, same, to_cbor2
from tests.protocols.cbor.strategies import floats, small_keys, values

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def normalized(v):
    """Tuples encode as arrays and decode as lists."""
    if isinstance(v, (list, tuple)):
        return [normalized(x) for x in v]
    if isinstance(v, dict):
        return {k: normalized(x) for k, x in v.items()}
    if isinstance(v, Tag):
        return Tag(v.tag, normalized(v.value))
    return v


def check_against_cbor2(obj):
    ours = cbor.encode(obj)
    theirs = cbor2.dumps(to_cbor2(obj), canonical=True)
    if key_orders_agree(obj):
        assert ours == theirs
    else:
        # the one documented difference: cbor2 sorts keys length-first
        assert ours != theirs
        assert same(cbor_decoder.decode(theirs, canonical=False), cbor_decoder.decode(ours))
        with pytest.raises(cbor_decoder.NonCanonicalError, match="orders keys bytewise"):
            cbor_decoder.decode(theirs)
    # round trip through both decoders
    assert same(cbor_decoder.decode(ours), normalized(obj))
    assert same(from_cbor2(cbor2.loads(ours)), normalized(obj))
    value, end = cbor_decoder.decode_prefix(ours + b"\x00junk")
    assert end == len(ours) and same(value, normalized(obj))


@SETTINGS
@given(values())
def test_parity_and_round_trip(obj):
    check_against_cbor2(obj)


@SETTINGS
@given(values(key_strategy=small_keys))
def test_parity_byte_for_byte_on_single_family_keys(obj):
    assert key_orders_agree(obj)
    assert cbor.encode(obj) == cbor2.dumps(to_cbor2(obj), canonical=True)


@settings(max_examples=2000, deadline=None)
@given(floats)
@example(float("nan"))
@example(-float("nan"))
@example(struct.unpack(">d", bytes.fromhex("7ff0000000000001"))[0])  # signalling NaN
@example(struct.unpack(">d", bytes.fromhex("fff8000000000123"))[0])  # NaN with payload
def test_float_parity(x):
    ours = cbor.encode(x)
    assert ours == cbor2.dumps(x, canonical=True)
    back = cbor_decoder.decode(ours)
    if math.isnan(x):
        assert ours.hex() == "f97e00" and math.isnan(back)
    else:
        # exact value and sign survive, and no shorter form would
        assert struct.pack(">d", back) == struct.pack(">d", x)
        for size, fmt in ((3, ">e"), (5, ">f")):
            if len(ours) > size:
                try:
                    shorter = struct.unpack(fmt, struct.pack(fmt, x))[0]
                except OverflowError:
                    continue
                assert struct.pack(">d", shorter) != struct.pack(">d", x)


def test_cbor2_canonical_orders_map_keys_length_first():
    # RFC 8949 §4.2.1 orders keys by their encoded bytes: 24 (1818) before
    # -1 (20), 1000 (1903e8) before "a" (6161). cbor2 6.x canonical=True
    # uses RFC 7049's length-first order instead (RFC 8949 §4.2.3).
    # We follow RFC 8949 and refuse cbor2's order when decoding strictly.
    obj = {-1: 0, 24: 0}
    assert cbor.encode(obj).hex() == "a2181800" + "2000"
    assert cbor2.dumps(obj, canonical=True).hex() == "a2" + "2000" + "181800"
    obj = {"a": 1, 1000: 2}
    assert cbor.encode(obj).hex() == "a21903e8026161" + "01"
    assert cbor2.dumps(obj, canonical=True).hex() == "a2616101" + "1903e802"
    with pytest.raises(cbor_decoder.NonCanonicalError):
        cbor_decoder.decode(cbor2.dumps(obj, canonical=True))
    assert cbor_decoder.decode(cbor2.dumps(obj, canonical=True), canonical=False) == obj


def test_cbor2_encodes_memoryview_as_an_array():
    # Another cbor2 6.x difference: memoryview becomes an array of ints there;
    # here it is a byte string, like bytes and bytearray.
    assert cbor.encode(memoryview(b"ab")).hex() == "426162"
    assert cbor2.dumps(memoryview(b"ab"), canonical=True).hex() == "8218611862"


@SETTINGS
@given(st.binary(max_size=60))
def test_well_formedness_verdicts_match_cbor2(data):
    """Random bytes: when we call the input malformed, truncated, invalid or
    indefinite, cbor2 (strict) refuses it too; when cbor2 refuses it, so do
    we, unless cbor2's refusal comes from a tag's semantics."""
    from tests.protocols.cbor.helpers import cbor2_strict_loads

    try:
        cbor_decoder.decode(data, canonical=False)
        ours = None
    except CborDecodeError as e:
        ours = e
    try:
        cbor2_strict_loads(data)
        theirs = None
    except Exception as e:  # cbor2 may raise CBORDecodeError or other errors from semantic decoders
        theirs = e
    hard = (cbor_decoder.TruncatedError, cbor_decoder.MalformedError, cbor_decoder.InvalidError,
            cbor_decoder.IndefiniteLengthError)
    if isinstance(ours, hard):
        assert theirs is not None, "cbor2 accepted what we call %r" % ours
    if theirs is not None and ours is None:
        # cbor2 interprets some tags (0 datetime, 1 epoch, 4 decimal, 30
        # rational, ...) and refuses ill-typed content; we keep tags opaque.
        assert data and _has_tag(cbor_decoder.decode(data, canonical=False)), (data.hex(), theirs)


def _has_tag(v):
    if isinstance(v, Tag):
        return True
    if isinstance(v, list):
        return any(_has_tag(x) for x in v)
    if isinstance(v, dict):
        return any(_has_tag(k) or _has_tag(x) for k, x in v.items())
    return False

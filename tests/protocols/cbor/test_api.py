"""The codec's public surface: encode errors, Tag, decode_prefix, inputs, bounds."""
import collections
import enum

import pytest

from edgeledger.protocols import cbor
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import CborDecodeError, Tag
from edgeledger.protocols.errors import EncodeError, ProtocolError


def test_constants_are_named_bounds():
    assert cbor.MAX_DEPTH == 16
    assert cbor_decoder.MAX_ITEMS == 16384
    assert cbor_decoder.MAX_BYTES == 65536


@pytest.mark.parametrize(
    "value,hexstr",
    [
        (2**64 - 1, "1bffffffffffffffff"),
        (-(2**64), "3bffffffffffffffff"),
        (2**32, "1b0000000100000000"),
        (-(2**32) - 1, "3b0000000100000000"),
        (bytearray(b"ab"), "426162"),
        (memoryview(b"ab"), "426162"),
        ((1, 2), "820102"),
        (Tag(18, [b"", {}, None, b""]), "d28440a0f640"),
    ],
)
def test_encode_forms(value, hexstr):
    assert cbor.encode(value).hex() == hexstr


def test_encode_rejects_integers_outside_64_bits():
    for n in (2**64, -(2**64) - 1, 10**30):
        with pytest.raises(EncodeError, match="no bignums"):
            cbor.encode(n)
        with pytest.raises(EncodeError):
            cbor.encode([{"k": n}])


@pytest.mark.parametrize("value,name", [(set(), "set"), (1j, "complex"), (object(), "object"), ({1: {2}}, "set")])
def test_encode_names_unsupported_types(value, name):
    with pytest.raises(EncodeError, match="type %s" % name):
        cbor.encode(value)


def test_encode_subclasses_by_their_base():
    class Color(enum.IntEnum):
        RED = 1

    assert cbor.encode(Color.RED) == b"\x01"
    assert cbor.encode(collections.OrderedDict([("b", 1), ("a", 2)])).hex() == "a2616102616201"
    assert cbor.encode(True) == b"\xf5" and cbor.encode(False) == b"\xf4"


def test_encode_sorts_keys_and_refuses_duplicate_encodings():
    assert cbor.encode({"b": 1, "a": 2, 10: 3, -1: 4, b"x": 5}).hex() == "a50a0320044178056161026162" + "01"
    with pytest.raises(EncodeError, match="same bytes f97e00"):
        cbor.encode({float("nan"): 1, float("-nan"): 2})


def test_encode_refuses_lone_surrogates():
    with pytest.raises(EncodeError, match="UTF-8"):
        cbor.encode("\ud800")


def test_encode_depth_bound_and_cycles():
    deep = 0
    for _ in range(cbor.MAX_DEPTH):
        deep = [deep]
    assert cbor_decoder.decode(cbor.encode(deep)) == deep
    with pytest.raises(EncodeError, match="max_depth=%d" % cbor.MAX_DEPTH):
        cbor.encode([deep])
    cycle = []
    cycle.append(cycle)
    with pytest.raises(EncodeError, match="max_depth"):
        cbor.encode(cycle)
    assert cbor.encode([[1]], max_depth=2) == bytes.fromhex("818101")
    with pytest.raises(EncodeError):
        cbor.encode([[1]], max_depth=1)


def test_bignum_tags_only_in_preferred_form():
    two64 = bytes.fromhex("010000000000000000")
    assert cbor.encode(Tag(2, two64)).hex() == "c249010000000000000000"
    for bad in (Tag(2, b"\x01"), Tag(3, b"\x00" + two64), Tag(2, 5), Tag(3, "x")):
        with pytest.raises(EncodeError, match="§3.4.3"):
            cbor.encode(bad)


def test_tag_value_object():
    t = Tag(18, [1, b"x"])
    assert t.tag == 18 and t.value == [1, b"x"]
    assert t == Tag(18, [1, b"x"]) and not (t != Tag(18, [1, b"x"]))
    assert t != Tag(19, [1, b"x"]) and t != Tag(18, [2]) and t != (18, [1, b"x"])
    assert repr(t) == "Tag(18, [1, b'x'])"
    assert hash(Tag(1, 2)) == hash(Tag(1, 2))
    assert {Tag(1, "a"): 1}[Tag(1, "a")] == 1
    with pytest.raises(TypeError):
        hash(t)
    for bad in (-1, 2**64, "18", True, 1.0):
        with pytest.raises(EncodeError, match="tag number"):
            Tag(bad, None)
    assert cbor_decoder.decode(cbor.encode({Tag(1, 2): 3})) == {Tag(1, 2): 3}


def test_decode_prefix_reads_one_item_from_a_longer_buffer():
    buf = bytes.fromhex("83010203") + bytes.fromhex("6161") + b"\xff"
    value, end = cbor_decoder.decode_prefix(buf)
    assert (value, end) == ([1, 2, 3], 4)
    value, end = cbor_decoder.decode_prefix(buf, end)
    assert (value, end) == ("a", 6)
    with pytest.raises(cbor_decoder.MalformedError):
        cbor_decoder.decode_prefix(buf, end)
    with pytest.raises(cbor_decoder.TruncatedError):
        cbor_decoder.decode_prefix(buf, len(buf))
    with pytest.raises(cbor_decoder.TruncatedError):
        cbor_decoder.decode_prefix(bytes.fromhex("8301"))
    with pytest.raises(cbor_decoder.NonCanonicalError):
        cbor_decoder.decode_prefix(bytes.fromhex("1801"))
    assert cbor_decoder.decode_prefix(bytes.fromhex("1801"), canonical=False) == (1, 2)


def test_decode_accepts_bytes_like_input_only():
    data = bytes.fromhex("a26161016162820203")
    expected = {"a": 1, "b": [2, 3]}
    for buf in (data, bytearray(data), memoryview(data)):
        assert cbor_decoder.decode(buf) == expected
        assert type(cbor_decoder.decode(cbor.encode(b"xy"))) is bytes
    assert type(cbor_decoder.decode(bytearray(cbor.encode(b"xy")))) is bytes
    with pytest.raises(TypeError):
        cbor_decoder.decode("a26161")


def test_decoded_types():
    value = cbor_decoder.decode(cbor.encode([1, 1.0, True, None, b"b", "s", (1,), {}, Tag(6, 0)]))
    assert [type(v).__name__ for v in value] == [
        "int", "float", "bool", "NoneType", "bytes", "str", "list", "dict", "Tag"]


def test_error_hierarchy():
    for cls in (cbor_decoder.TruncatedError, cbor_decoder.MalformedError, cbor_decoder.InvalidError,
                cbor_decoder.NonCanonicalError, cbor_decoder.IndefiniteLengthError, cbor_decoder.LimitError,
                cbor_decoder.UnsupportedError):
        assert issubclass(cls, CborDecodeError)
        assert issubclass(cls, ProtocolError) and issubclass(cls, ValueError)
    assert issubclass(cbor_decoder.IndefiniteLengthError, cbor_decoder.NonCanonicalError)
    assert issubclass(EncodeError, ValueError)


def test_realistic_signed_message_round_trip():
    # a COSE_Sign1-shaped item around a SenML-like payload (RFC 8428 labels)
    payload = cbor.encode({
        1: 1, 2: "dev-0001", 3: 4711, 4: b"\x11" * 32, 5: 3,
        6: [{-2: "urn:dev:mac:0024befffe804ff1/", 0: "temp", 1: "Cel", 2: 23.5, 6: 1.25},
            {0: "hum", 1: "%RH", 2: 41.0}],
    })
    message = Tag(18, [cbor.encode({1: -8}), {4: b"kid-1"}, payload, b"\x00" * 64])
    data = cbor.encode(message)
    assert cbor_decoder.decode(data) == message
    assert cbor.encode(cbor_decoder.decode(data)) == data
    assert cbor_decoder.decode(cbor_decoder.decode(data).value[2])[6][0][2] == 23.5

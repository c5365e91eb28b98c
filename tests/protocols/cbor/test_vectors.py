"""RFC 8949 Appendix A and Appendix F.1, byte for byte, on CPython and MicroPython."""
import cbor2
import pytest

from edgeledger.protocols import cbor
from edgeledger.protocols.cbor import decoder as cbor_decoder
from tests.protocols.cbor import vectors
from tests.protocols.cbor.helpers import SAME_SRC, cbor2_strict_loads, literal, materialize, same
from tests.support.mpy import run_micropython

APPENDIX_A = [(h, materialize(v)) for h, v in vectors.APPENDIX_A]
F1 = vectors.appendix_f1_items()


def test_tables_are_complete():
    # 82 examples in the JSON form of the appendix: 61 representable, 6
    # non-preferred floats, 11 indefinite-length, 3 unsupported simple
    # values, and f818 which RFC 8949 makes not well-formed.
    total = (
        len(vectors.APPENDIX_A)
        + len(vectors.APPENDIX_A_NON_PREFERRED)
        + len(vectors.APPENDIX_A_INDEFINITE)
        + len(vectors.APPENDIX_A_UNSUPPORTED)
        + 1
    )
    assert total == 82
    assert len(F1) == 94
    assert len({h for h, _ in vectors.APPENDIX_A}) == len(vectors.APPENDIX_A)


@pytest.mark.parametrize("hexstr,value", APPENDIX_A, ids=[h for h, _ in APPENDIX_A])
def test_appendix_a_decode_and_encode(hexstr, value):
    data = bytes.fromhex(hexstr)
    assert same(cbor_decoder.decode(data), value)
    assert cbor.encode(value).hex() == hexstr


@pytest.mark.parametrize("hexstr,value,preferred", vectors.APPENDIX_A_NON_PREFERRED)
def test_appendix_a_non_preferred_floats(hexstr, value, preferred):
    data = bytes.fromhex(hexstr)
    with pytest.raises(cbor_decoder.NonCanonicalError, match=preferred):
        cbor_decoder.decode(data)
    assert same(cbor_decoder.decode(data, canonical=False), value)
    assert cbor.encode(value).hex() == preferred


@pytest.mark.parametrize("hexstr", vectors.APPENDIX_A_INDEFINITE)
def test_appendix_a_indefinite_lengths_are_refused_in_every_mode(hexstr):
    data = bytes.fromhex(hexstr)
    for canonical in (True, False):
        with pytest.raises(cbor_decoder.IndefiniteLengthError, match="definite lengths only"):
            cbor_decoder.decode(data, canonical=canonical)
    # well-formed CBOR: cbor2 reads it when indefinite lengths are allowed
    cbor2.loads(data)
    with pytest.raises(cbor2.CBORDecodeError):
        cbor2_strict_loads(data)


@pytest.mark.parametrize("hexstr", vectors.APPENDIX_A_UNSUPPORTED)
def test_appendix_a_unsupported_simple_values(hexstr):
    with pytest.raises(cbor_decoder.UnsupportedError, match="simple value"):
        cbor_decoder.decode(bytes.fromhex(hexstr))
    cbor2_strict_loads(bytes.fromhex(hexstr))  # valid CBOR


def test_simple_24_is_not_well_formed_in_rfc_8949():
    # In RFC 7049's Appendix A as simple(24); RFC 8949 §3.3 forbids it.
    with pytest.raises(cbor_decoder.MalformedError, match="one-byte form"):
        cbor_decoder.decode(bytes.fromhex("f818"))


F1_EXPECTED = {
    "End of input in a head": cbor_decoder.TruncatedError,
    "Definite-length strings with short data": cbor_decoder.TruncatedError,
    "Definite-length maps and arrays not closed with enough items": cbor_decoder.TruncatedError,
    "Tag number not followed by tag content": cbor_decoder.TruncatedError,
    "Reserved additional information values": cbor_decoder.MalformedError,
    "Reserved two-byte encodings of simple values": cbor_decoder.MalformedError,
    "Break occurring on its own outside of an indefinite-length item": cbor_decoder.MalformedError,
    "Break occurring in a definite-length array or map or a tag": cbor_decoder.MalformedError,
    "Major type 0, 1, 6 with additional information 31": cbor_decoder.MalformedError,
}


def f1_expected(label, hexstr):
    # An indefinite-length head (5f 7f 9f bf) is refused where it stands,
    # before anything after it is looked at.
    if hexstr[:2] in ("5f", "7f", "9f", "bf") or hexstr.startswith("819f"):
        return cbor_decoder.IndefiniteLengthError
    return F1_EXPECTED[label]


@pytest.mark.parametrize("label,hexstr", F1, ids=[h for _, h in F1])
def test_appendix_f1_not_well_formed(label, hexstr):
    data = bytes.fromhex(hexstr)
    for canonical in (True, False):
        with pytest.raises(f1_expected(label, hexstr)) as info:
            cbor_decoder.decode(data, canonical=canonical)
        assert isinstance(info.value, ValueError)
    # same verdict from cbor2, even with indefinite lengths allowed
    with pytest.raises(cbor2.CBORDecodeError):
        cbor2.loads(data)
    with pytest.raises(cbor2.CBORDecodeError):
        cbor2_strict_loads(data)


# -- the same tables under MicroPython ---------------------------------------

MPY_SCRIPT = SAME_SRC + '''
import binascii
from edgeledger.protocols import cbor
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import Tag
from edgeledger.protocols.cbor.decoder import CborDecodeError

ok = 0
bad = []
for h, expected in VALID:
    data = binascii.unhexlify(h)
    try:
        got = cbor_decoder.decode(data)
        if not same(got, expected):
            bad.append("decode %s -> %r, expected %r" % (h, got, expected))
        enc = binascii.hexlify(cbor.encode(expected)).decode()
        if enc != h:
            bad.append("encode %r -> %s, expected %s" % (expected, enc, h))
        else:
            ok += 1
        # every proper prefix is truncated input
        for k in range(len(data)):
            try:
                cbor_decoder.decode(data[:k])
                bad.append("prefix %d of %s accepted" % (k, h))
            except cbor_decoder.TruncatedError:
                pass
    except Exception as e:
        bad.append("%s raised %r" % (h, e))
for h, name, canonical in REJECT:
    try:
        cbor_decoder.decode(binascii.unhexlify(h), canonical=canonical)
        bad.append("%s accepted, expected %s" % (h, name))
    except CborDecodeError as e:
        if type(e).__name__ != name:
            bad.append("%s raised %s, expected %s: %s" % (h, type(e).__name__, name, e))
        else:
            ok += 1
    except Exception as e:
        bad.append("%s raised non-CBOR error %r" % (h, e))
for line in bad:
    print("FAIL", line)
print("OK", ok)
'''


def _mpy_tables():
    valid = "VALID = [\n" + "".join(
        "    (%r, %s),\n" % (h, literal(v)) for h, v in APPENDIX_A
    ) + "]\n"
    rejects = []
    for h, _value, _preferred in vectors.APPENDIX_A_NON_PREFERRED:
        rejects.append((h, "NonCanonicalError", True))
    for h in vectors.APPENDIX_A_INDEFINITE:
        rejects.append((h, "IndefiniteLengthError", True))
        rejects.append((h, "IndefiniteLengthError", False))
    for h in vectors.APPENDIX_A_UNSUPPORTED:
        rejects.append((h, "UnsupportedError", True))
    for label, h in F1:
        rejects.append((h, f1_expected(label, h).__name__, True))
    for h, name, _ in vectors.OWN_REJECTS:
        rejects.append((h, name, True))
    return valid + "REJECT = %r\n" % (rejects,), len(APPENDIX_A) + len(rejects)


@pytest.mark.micropython
def test_vectors_under_micropython():
    tables, expected_ok = _mpy_tables()
    source = "import struct\nfrom edgeledger.protocols.cbor.decoder import Tag\n" + tables + MPY_SCRIPT
    out = run_micropython(source).stdout
    assert "FAIL" not in out, out
    assert out.strip().splitlines()[-1] == "OK %d" % expected_ok, out

# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Deterministic CBOR (RFC 8949 §4.2), pure Python for MicroPython and CPython: this
module encodes (what a device needs); ``decoder.py`` decodes, strictly (what a gateway
and a verifier need; a device decodes nothing but the 3-byte end-to-end ack, read byte by
byte in ``session.decode_ack``).

This is the codec the device uses (MicroPython has no cbor2). On CPython the
gateway uses cbor2; tests hold the two to the same bytes and to the same
verdict on malformed input.

Encoding rules (RFC 8949 §4.2.1 "core deterministic encoding requirements"
and §4.2.2 / §3.4.3 preferred serialization):

* every head (integer value, string length, item count, tag number) uses the
  shortest argument form: 0..23 inline, then 1, 2, 4 or 8 bytes;
* definite lengths only: indefinite-length strings, arrays and maps are never
  produced and never accepted (not even with ``canonical=False``);
* map entries are ordered by the bytewise lexicographic order of their
  *encoded keys*; two keys that encode to the same bytes are an error;
* a float is written in the shortest of binary16/32/64 that keeps its value
  exactly; every NaN is written as ``f97e00``, infinities as ``f97c00`` and
  ``f9fc00`` (§4.2.2); -0.0 stays ``f98000``; floats are never turned into
  integers (no "numeric reduction");
* bignums (tags 2 and 3) must hold a value outside -2**64..2**64-1 and have
  no leading zero byte (§3.4.3): integers in range use major types 0/1.

Difference from cbor2 6.x ``dumps(canonical=True)``: cbor2 orders map keys
length-first (the RFC 7049 §3.9 "canonical" order, RFC 8949 §4.2.3), we
order them bytewise as RFC 8949 §4.2.1 requires. The two orders agree when
the keys of a map all have the same major type (all unsigned integers, all
text strings, ...) or all encode in one byte (-24..23), which covers COSE
headers and SenML labels; they differ for e.g. ``{24: .., -1: ..}``.

Decoding is strict by default (``canonical=True``): besides well-formedness
(RFC 8949 §3, Appendix F) the decoder checks the deterministic rules above,
so one value has exactly one accepted encoding. Signed device messages must
be deterministic; the gateway stores and hashes the bytes as received, and a
second spelling of the same reading would let a replay or a fork pass the
"same seq, same bytes" check. ``canonical=False`` accepts non-shortest heads,
unsorted keys and non-preferred floats (for foreign CBOR, e.g. test vectors),
but still rejects indefinite lengths, duplicate keys, bad UTF-8 and trailing
bytes.

Data model: int (-2**64..2**64-1), bool, None, bytes (bytearray and
memoryview are encoded as byte strings), str, list (tuple encodes as an
array, decodes as a list), dict, float and ``Tag``. Simple values other than
false/true/null (e.g. ``undefined``) are not supported.

The encoder is kept small on purpose (it lives in a board's heap): one recursive function
with an isinstance chain instead of dispatch tables.
"""
import struct

from edgeledger.protocols import errors

#: Nested containers (arrays, maps, tags) in one item (the decoder's bound too).
MAX_DEPTH = 16

_NAN = b"\xf9\x7e\x00"


class Tag:
    """A tagged data item (RFC 8949 §3.4): ``Tag(18, [...])`` is COSE_Sign1.

    The encoder's minimal form. ``cbor.Tag`` (what the decoder returns and what
    the rest of the project uses) adds equality, hashing and repr; a board, which
    only encodes, does not keep those methods in its heap.
    """

    def __init__(self, tag, value):
        if type(tag) is not int or tag < 0 or tag >> 64:
            raise errors.EncodeError("tag number must be an int in 0..2**64-1, found %r" % (tag,))
        self.tag = tag
        self.value = value


def _hex(b):
    return "".join("%02x" % c for c in b)


def _bignum_ok(value):
    # RFC 8949 §3.4.3: preferred serialization of a bignum has no leading zero
    # byte, and integers that fit major type 0/1 must not use tags 2/3, so the
    # content is >= 9 bytes with a non-zero first byte.
    return isinstance(value, bytes) and len(value) >= 9 and value[0] != 0


def _float_head(bits):
    """Shortest float encoding (head byte included) of a binary64 bit pattern.

    RFC 8949 §4.2.2 preferred serialization, done on the IEEE 754 bits so the
    result is exact on any port (MicroPython builds with binary32 floats too).
    """
    sign = bits >> 63
    exp = (bits >> 52) & 0x7FF
    mant = bits & 0xFFFFFFFFFFFFF
    if exp == 0x7FF:
        if mant:
            return _NAN
        return b"\xf9\xfc\x00" if sign else b"\xf9\x7c\x00"
    if exp == 0:
        if mant == 0:
            return b"\xf9\x80\x00" if sign else b"\xf9\x00\x00"
        return b"\xfb" + struct.pack(">Q", bits)  # binary64 subnormal: no shorter form
    e = exp - 1023
    sig = mant | (1 << 52)
    # binary16: normal for -14 <= e <= 15 (10 mantissa bits kept), subnormal below.
    if -14 <= e <= 15:
        if mant & 0x3FFFFFFFFFF == 0:
            return struct.pack(">BH", 0xF9, (sign << 15) | ((e + 15) << 10) | (mant >> 42))
    elif -24 <= e < -14 and sig & ((1 << (28 - e)) - 1) == 0:
        return struct.pack(">BH", 0xF9, (sign << 15) | (sig >> (28 - e)))
    # binary32: normal for -126 <= e <= 127 (23 mantissa bits kept), subnormal below.
    if -126 <= e <= 127:
        if mant & 0x1FFFFFFF == 0:
            return struct.pack(">BI", 0xFA, (sign << 31) | ((e + 127) << 23) | (mant >> 29))
    elif -149 <= e < -126 and sig & ((1 << (-97 - e)) - 1) == 0:
        return struct.pack(">BI", 0xFA, (sign << 31) | (sig >> (-97 - e)))
    return b"\xfb" + struct.pack(">Q", bits)


def _head(out, mt, n):
    """Head of major type ``mt`` (already shifted) with argument ``n``, shortest form."""
    if n < 24:
        out.append(mt | n)
        return
    if n >> 64:
        raise errors.EncodeError("integer argument %d is above 2**64-1; this codec has no bignums" % n)
    k = 1
    ai = 24
    while n >> (8 * k):  # 1, 2, 4 or 8 argument bytes (§4.2.1)
        k *= 2
        ai += 1
    out.append(mt | ai)
    out.extend(n.to_bytes(k, "big"))


def _enc(obj, out, depth, max_depth):
    if obj is None:
        out.append(0xF6)
    elif obj is True or obj is False:
        out.append(0xF5 if obj else 0xF4)
    elif isinstance(obj, int):  # major type 1 holds -1 - n
        _head(out, 0x20, -1 - obj) if obj < 0 else _head(out, 0, obj)
    elif isinstance(obj, float):
        out.extend(_float_head(struct.unpack(">Q", struct.pack(">d", obj))[0]))
    elif isinstance(obj, str):
        try:
            b = obj.encode("utf-8")
        except UnicodeError:
            raise errors.EncodeError("text string is not encodable as UTF-8 (lone surrogate?)")
        _head(out, 0x60, len(b))
        out.extend(b)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _head(out, 0x40, len(obj))
        out.extend(obj)
    else:
        if depth >= max_depth:
            raise errors.EncodeError("containers nested %d deep; expected at most max_depth=%d"
                              % (depth + 1, max_depth))
        depth += 1
        if isinstance(obj, (list, tuple)):
            _head(out, 0x80, len(obj))
            for item in obj:
                _enc(item, out, depth, max_depth)
        elif isinstance(obj, dict):
            if all(type(k) is int and k >= 0 for k in obj):
                # Every map this project writes has small unsigned int keys: their shortest
                # encodings sort bytewise exactly as the numbers do, so no key is encoded
                # twice (on a board, fewer short-lived objects in the heap).
                _head(out, 0xA0, len(obj))
                for k in sorted(obj):
                    _head(out, 0, k)
                    _enc(obj[k], out, depth, max_depth)
                return
            enc = {}  # encoded key -> value
            for k in obj:
                kb = bytearray()
                _enc(k, kb, depth, max_depth)
                kb = bytes(kb)
                if kb in enc:
                    raise errors.EncodeError("two map keys encode to the same bytes %s; expected "
                                      "distinct keys (RFC 8949 §5.6)" % _hex(kb))
                enc[kb] = obj[k]
            _head(out, 0xA0, len(enc))
            for kb in sorted(enc):  # RFC 8949 §4.2.1: bytewise order of the encoded keys
                out.extend(kb)
                _enc(enc[kb], out, depth, max_depth)
        elif isinstance(obj, Tag):
            if obj.tag in (2, 3) and not _bignum_ok(obj.value):
                raise errors.EncodeError("tag %d (bignum) must hold a byte string of >= 9 bytes without "
                                  "leading zero (RFC 8949 §3.4.3)" % obj.tag)
            _head(out, 0xC0, obj.tag)
            _enc(obj.value, out, depth, max_depth)
        else:
            raise errors.EncodeError("cannot encode a value of type %s as CBOR" % type(obj).__name__)


def encode(obj, max_depth=MAX_DEPTH):
    """Encode ``obj`` as deterministic CBOR (RFC 8949 §4.2.1) and return bytes.

    Raises EncodeError for an unsupported type (the message names it), an int
    outside -2**64..2**64-1, a text string with lone surrogates, two map keys
    with the same encoding, a bignum tag outside its preferred form, or nesting
    deeper than ``max_depth`` containers (which also stops reference cycles).
    """
    out = bytearray()
    _enc(obj, out, 0, max_depth)
    return bytes(out)

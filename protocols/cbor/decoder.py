# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""The strict CBOR decoder (RFC 8949 §3 well-formedness and the §4.2.1 deterministic rules
of the package docstring), and ``Tag`` with comparison and hashing.

``decode`` refuses everything but the one deterministic encoding of a value by default
(``canonical=True``); see ``edgeledger.protocols.cbor`` for the rules and the data model.
Every error is a ``CborDecodeError`` (a ValueError) whose subclass says what was wrong.
"""
import math
import struct

from edgeledger.protocols import cbor as encoder
from edgeledger.protocols.cbor import _NAN, MAX_DEPTH, _bignum_ok, _float_head, _hex
from edgeledger.protocols.errors import DecodeError


class CborDecodeError(DecodeError):
    """Malformed, truncated, non-deterministic, over-deep or over-long CBOR."""


class Tag(encoder.Tag):
    """A tagged data item (RFC 8949 §3.4): ``Tag(18, [...])`` is COSE_Sign1.

    Compares and hashes by (tag, value); the encoder takes it and its minimal base
    class ``cbor.Tag`` alike.
    """

    def __eq__(self, other):  # != is its negation on both runtimes
        return isinstance(other, encoder.Tag) and self.tag == other.tag and self.value == other.value

    def __hash__(self):
        # Raises TypeError when the content is unhashable, like a tuple would.
        return hash((self.tag, self.value))

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


# ---------------------------------------------------------------------------
# Bounds. The largest thing this codec reads or writes is a signed pack from a
# 1 kHz sensor (one COSE_Sign1 per second, DESIGN.md §3): ~1000 SenML records
# of 2-4 fields, 12-20 KB. A reading message from a meter and a proof bundle
# (message bytes, an audit path of <= 32 hashes, a batch header, optionally an
# EIP-1186 proof of ~10 trie nodes of <= 532 bytes) are a few KB each.
# ---------------------------------------------------------------------------

#: Nested containers (arrays, maps, tags) allowed in one item (``MAX_DEPTH``,
#: defined with the encoder in __init__.py). The deepest real structure is
#: a proof bundle: map > storage proof map > proof list > node list > bytes,
#: depth 4-5; SenML: map > pack array > record map, depth 3. 16 leaves 3x
#: headroom and keeps the recursive codec far from MicroPython's C-stack limit.

#: Data items (every head: integers, strings, containers, tags, keys and
#: values) in one decoded item. A 1000-record pack of 4-field SenML records is
#: 1000 * 9 = 9000 items plus the envelope; rounded up to 2**14.
MAX_ITEMS = 16384

#: Bytes in one byte or text string. The largest single string is the COSE
#: payload of the 1 kHz pack above (~20 KB); 64 KiB is 3x that, and a board
#: cannot hold much more than that in one allocation anyway.
MAX_BYTES = 65536

# Head argument forms (RFC 8949 §3): additional information 24..27 carry the
# argument in 1, 2, 4, 8 following bytes; the argument must not fit a
# shorter form (§4.2.1): this is the smallest value each form may carry.
_ARG_SIZE = {24: 1, 25: 2, 26: 4, 27: 8}
_ARG_MIN = {24: 24, 25: 0x100, 26: 0x10000, 27: 0x100000000}
_ARG_FMT = {24: ">B", 25: ">H", 26: ">I", 27: ">Q"}

_MAJOR_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value or float",
)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class TruncatedError(CborDecodeError):
    """The input ends inside a data item (RFC 8949 Appendix F, kind 2)."""


class MalformedError(CborDecodeError):
    """Not well-formed CBOR (RFC 8949 Appendix F, kind 3) or trailing bytes."""


class InvalidError(CborDecodeError):
    """Well-formed but not valid (RFC 8949 §5.3): bad UTF-8, duplicate map
    keys, a bignum tag whose content is not a byte string."""


class NonCanonicalError(CborDecodeError):
    """Valid CBOR that breaks a deterministic-encoding rule (RFC 8949 §4.2)."""


class IndefiniteLengthError(NonCanonicalError):
    """An indefinite-length string, array or map (RFC 8949 §3.2.2): well-formed,
    but deterministic CBOR allows definite lengths only (§4.2.1)."""


class LimitError(CborDecodeError):
    """The item is deeper, longer or has more items than the named bound."""


class UnsupportedError(CborDecodeError):
    """Valid CBOR outside this codec's data model (e.g. ``undefined``, map keys
    that cannot be dict keys in Python)."""


# ---------------------------------------------------------------------------
# Floats: the encoder's _float_head (__init__.py) names the preferred form
# (RFC 8949 §4.2.2) the decoder checks against; binary16 is widened here.
# ---------------------------------------------------------------------------

# float("inf"), not math.inf: math's constants are optional in MicroPython builds.
_INF = float("inf")
_NAN_VALUE = float("nan")


def _half_to_float(h):
    """Value of a binary16 bit pattern (RFC 8949 Appendix D)."""
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        v = math.ldexp(m, -24)
    elif e == 31:
        v = _INF if m == 0 else _NAN_VALUE
    else:
        v = math.ldexp(m + 1024, e - 25)
    return -v if h & 0x8000 else v


# ---------------------------------------------------------------------------
# UTF-8. CPython's decoder is strict; MicroPython's accepts overlong forms,
# surrogates and code points above U+10FFFF, so there non-ASCII text is
# checked against RFC 3629 §4 with the table below.
# ---------------------------------------------------------------------------

# (lead byte lo, hi, second byte lo, hi, continuation bytes) -- RFC 3629 §4.
_UTF8_LEADS = (
    (0xC2, 0xDF, 0x80, 0xBF, 1),
    (0xE0, 0xE0, 0xA0, 0xBF, 2),
    (0xE1, 0xEC, 0x80, 0xBF, 2),
    (0xED, 0xED, 0x80, 0x9F, 2),
    (0xEE, 0xEF, 0x80, 0xBF, 2),
    (0xF0, 0xF0, 0x90, 0xBF, 3),
    (0xF1, 0xF3, 0x80, 0xBF, 3),
    (0xF4, 0xF4, 0x80, 0x8F, 3),
)


def _utf8_error_at(b):
    """Offset of the first byte of ``b`` that breaks RFC 3629, or -1."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        for lo, hi, lo2, hi2, k in _UTF8_LEADS:  # noqa: B007 (used after the loop)
            if lo <= c <= hi:
                break
        else:
            return i
        if i + k >= n or not (lo2 <= b[i + 1] <= hi2):
            return i
        for j in range(i + 2, i + k + 1):
            if not (0x80 <= b[j] <= 0xBF):
                return i
        i += k + 1
    return -1


def _platform_utf8_is_strict():
    for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
        try:
            str(bad, "utf-8")
            return False
        except UnicodeError:
            pass
    return True


_UTF8_STRICT = _platform_utf8_is_strict()


# ---------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------


class _Decoder:
    def __init__(self, data, max_depth, max_items, max_bytes, canonical):
        self.data = data
        self.n = len(data)
        self.max_depth = max_depth
        self.max_items = max_items
        self.budget = max_items
        self.max_bytes = max_bytes
        self.canonical = canonical

    def _need(self, i, k, what, at):
        if i + k > self.n:
            raise TruncatedError(
                "%s at offset %d needs %d bytes from offset %d; found %d "
                "(input ends at %d)" % (what, at, k, i, self.n - i, self.n)
            )

    def _argument(self, i, major, ai):
        """Return (argument, offset after the head) of the head at ``i``."""
        if ai < 24:
            return ai, i + 1
        size = _ARG_SIZE.get(ai)
        if size is None:
            if ai == 31:
                if major in (2, 3, 4, 5):
                    raise IndefiniteLengthError(
                        "indefinite-length %s at offset %d; deterministic CBOR "
                        "(RFC 8949 §4.2.1) allows definite lengths only"
                        % (_MAJOR_NAMES[major], i)
                    )
                raise MalformedError(
                    "additional information 31 at offset %d is not well-formed for "
                    "a %s (RFC 8949 §3.2.4, Appendix F)" % (i, _MAJOR_NAMES[major])
                )
            raise MalformedError(
                "reserved additional information %d at offset %d (head byte %02x); "
                "expected 0..27 (RFC 8949 §3)" % (ai, i, self.data[i])
            )
        self._need(i + 1, size, "%s head" % _MAJOR_NAMES[major], i)
        if size == 1:
            arg = self.data[i + 1]
        else:
            arg = struct.unpack_from(_ARG_FMT[ai], self.data, i + 1)[0]
        if self.canonical and arg < _ARG_MIN[ai]:
            shortest = 0 if arg < 24 else 1 if arg < 0x100 else 2 if arg < 0x10000 else 4
            raise NonCanonicalError(
                "%s head at offset %d carries %d in %d argument bytes; deterministic "
                "CBOR (RFC 8949 §4.2.1) requires the shortest form, %d argument bytes"
                % (_MAJOR_NAMES[major], i, arg, size, shortest)
            )
        return arg, i + 1 + size

    def item(self, i, depth):
        """Decode the item at offset ``i``; return (value, offset after it)."""
        if i >= self.n:
            raise TruncatedError(
                "expected a data item at offset %d; found end of input" % i
            )
        self.budget -= 1
        if self.budget < 0:
            raise LimitError(
                "more than max_items=%d data items; found another at offset %d"
                % (self.max_items, i)
            )
        ib = self.data[i]
        major = ib >> 5
        ai = ib & 0x1F
        if major == 7:
            return self._major7(i, ai)
        arg, j = self._argument(i, major, ai)
        return _MAJORS[major](self, i, arg, j, depth)

    # -- major types 0..6 -------------------------------------------------

    def _uint(self, i, arg, j, depth):
        return arg, j

    def _nint(self, i, arg, j, depth):
        return -1 - arg, j

    def _string(self, i, arg, j, what):
        if arg > self.n - j:
            raise TruncatedError(
                "%s at offset %d declares %d bytes; found %d before the end of input"
                % (what, i, arg, self.n - j)
            )
        if arg > self.max_bytes:
            raise LimitError(
                "%s at offset %d declares %d bytes; expected at most max_bytes=%d"
                % (what, i, arg, self.max_bytes)
            )
        return self.data[j : j + arg]

    def _bstr(self, i, arg, j, depth):
        b = self._string(i, arg, j, "byte string")
        if type(b) is not bytes:
            b = bytes(b)
        return b, j + arg

    def _tstr(self, i, arg, j, depth):
        b = self._string(i, arg, j, "text string")
        try:
            s = str(b, "utf-8")
        except UnicodeError:
            s = None
        if s is not None and not _UTF8_STRICT and len(s) != len(b):
            if _utf8_error_at(b) >= 0:
                s = None
        if s is None:
            bad = _utf8_error_at(b)
            raise InvalidError(
                "text string at offset %d is not valid UTF-8 (RFC 8949 §3.1, RFC 3629): "
                "bad byte %02x at offset %d" % (i, b[bad] if bad >= 0 else 0, j + max(bad, 0))
            )
        return s, j + arg

    def _container_checks(self, i, j, depth, what, items):
        # No pre-check of the count against the bytes left: the loop stops at
        # the end of input (TruncatedError) or at the first bad item (e.g. a
        # break inside a definite-length array, MalformedError), and nothing
        # is allocated ahead of the items themselves.
        if items > self.budget:
            raise LimitError(
                "%s at offset %d declares %d items; expected at most max_items=%d "
                "in the whole item (%d left)" % (what, i, items, self.max_items, self.budget)
            )
        if depth >= self.max_depth:
            raise LimitError(
                "%s at offset %d is nested %d deep; expected at most max_depth=%d"
                % (what, i, depth + 1, self.max_depth)
            )

    def _array(self, i, arg, j, depth):
        self._container_checks(i, j, depth, "array", arg)
        out = []
        for _ in range(arg):
            v, j = self.item(j, depth + 1)
            out.append(v)
        return out, j

    def _map(self, i, arg, j, depth):
        self._container_checks(i, j, depth, "map", 2 * arg)
        data = self.data
        out = {}
        prev = None
        for n in range(arg):
            k0 = j
            k, j = self.item(j, depth + 1)
            k1 = j
            v, j = self.item(j, depth + 1)
            if self.canonical:
                kb = data[k0:k1]
                if prev is not None and kb <= prev:
                    if kb == prev:
                        raise InvalidError(
                            "map at offset %d repeats key %s at offset %d (RFC 8949 §5.6)"
                            % (i, _hex(kb), k0)
                        )
                    raise NonCanonicalError(
                        "map at offset %d: key %s at offset %d sorts before the previous "
                        "key %s; deterministic CBOR (RFC 8949 §4.2.1) orders keys bytewise"
                        % (i, _hex(kb), k0, _hex(prev))
                    )
                prev = kb
            try:
                out[k] = v
            except TypeError:
                raise UnsupportedError(
                    "map at offset %d has a key of type %s at offset %d; this decoder "
                    "needs hashable keys (int, str, bytes, float, bool, None, Tag)"
                    % (i, type(k).__name__, k0)
                )
            if len(out) != n + 1:
                raise InvalidError(
                    "map at offset %d repeats key %r at offset %d (RFC 8949 §5.6; "
                    "keys are compared as values, so 1, 1.0 and true collide)"
                    % (i, k, k0)
                )
        return out, j

    def _tag(self, i, arg, j, depth):
        if depth >= self.max_depth:
            raise LimitError(
                "tag at offset %d is nested %d deep; expected at most max_depth=%d"
                % (i, depth + 1, self.max_depth)
            )
        v, end = self.item(j, depth + 1)
        if arg == 2 or arg == 3:
            if not isinstance(v, bytes):
                raise InvalidError(
                    "tag %d (bignum) at offset %d must hold a byte string; found %s "
                    "(RFC 8949 §3.4.3)" % (arg, i, type(v).__name__)
                )
            if self.canonical and not _bignum_ok(v):
                raise NonCanonicalError(
                    "tag %d (bignum) at offset %d holds %s; preferred serialization "
                    "(RFC 8949 §3.4.3) has no leading zero and uses major type %d for "
                    "values that fit 64 bits" % (arg, i, _hex(v), arg - 2)
                )
        return Tag(arg, v), end

    # -- major type 7 -----------------------------------------------------

    def _major7(self, i, ai):
        data = self.data
        if ai < 20 or ai == 23:
            raise UnsupportedError(
                "simple value %d at offset %d; expected false, true, null or a float "
                "(this codec's data model has no %s)"
                % (ai, i, "undefined" if ai == 23 else "unassigned simple values")
            )
        if ai <= 22:  # 20, 21, 22 (RFC 8949 §3.3)
            return (False, True, None)[ai - 20], i + 1
        if ai == 24:
            self._need(i + 1, 1, "simple value head", i)
            v = data[i + 1]
            if v < 32:
                raise MalformedError("two-byte simple value %d at offset %d; values below 32 must use "
                                     "the one-byte form (RFC 8949 §3.3, not well-formed)" % (v, i))
            raise UnsupportedError("simple value %d at offset %d; expected false, true, null or a float" % (v, i))
        if ai == 25:
            self._need(i + 1, 2, "half-precision float", i)
            h = struct.unpack_from(">H", data, i + 1)[0]
            if self.canonical and (h & 0x7C00) == 0x7C00 and (h & 0x3FF) and h != 0x7E00:
                raise NonCanonicalError(
                    "NaN at offset %d is encoded as f9%04x; deterministic CBOR "
                    "(RFC 8949 §4.2.2) uses f97e00 for every NaN" % (i, h)
                )
            return _half_to_float(h), i + 3
        if ai == 26:
            self._need(i + 1, 4, "single-precision float", i)
            v = struct.unpack_from(">f", data, i + 1)[0]
            if self.canonical:
                s = struct.unpack_from(">I", data, i + 1)[0]
                if (s & 0x7F800000) == 0x7F800000:
                    # NaN and infinities always have a binary16 form.
                    if s & 0x7FFFFF:
                        preferred = _NAN
                    else:
                        preferred = b"\xf9\xfc\x00" if s >> 31 else b"\xf9\x7c\x00"
                else:
                    preferred = _float_head(struct.unpack(">Q", struct.pack(">d", v))[0])
                if len(preferred) != 5:
                    self._not_preferred(i, data[i : i + 5], preferred)
            return v, i + 5
        if ai == 27:
            self._need(i + 1, 8, "double-precision float", i)
            bits = struct.unpack_from(">Q", data, i + 1)[0]
            if self.canonical:
                preferred = _float_head(bits)
                if len(preferred) != 9:
                    self._not_preferred(i, data[i : i + 9], preferred)
            return struct.unpack_from(">d", data, i + 1)[0], i + 9
        if ai == 31:
            raise MalformedError(
                "break stop code (ff) at offset %d outside an indefinite-length item; "
                "expected a data item (RFC 8949 §3.2.1)" % i
            )
        raise MalformedError(
            "reserved additional information %d at offset %d (head byte %02x); "
            "expected 0..27 (RFC 8949 §3)" % (ai, i, data[i])
        )

    def _not_preferred(self, i, found, preferred):
        raise NonCanonicalError(
            "float at offset %d is encoded as %s; deterministic CBOR (RFC 8949 "
            "§4.2.2) requires the shortest form that keeps the value, %s"
            % (i, _hex(found), _hex(preferred))
        )


# Decoder dispatch by major type (RFC 8949 §3.1); 7 is handled in item().
_MAJORS = (
    _Decoder._uint,
    _Decoder._nint,
    _Decoder._bstr,
    _Decoder._tstr,
    _Decoder._array,
    _Decoder._map,
    _Decoder._tag,
)


def _as_buffer(data):
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, memoryview):
        return bytes(data)
    raise TypeError("expected bytes, bytearray or memoryview; found %s" % type(data).__name__)


def decode_prefix(
    data, offset=0, max_depth=MAX_DEPTH, max_items=MAX_ITEMS, max_bytes=MAX_BYTES, canonical=True
):
    """Decode one data item starting at ``offset``; return (value, end offset).

    Bytes after the item are left for the caller. Raises CborDecodeError (a
    ValueError), more precisely: TruncatedError when the buffer ends inside
    the item, MalformedError, InvalidError, NonCanonicalError (with
    ``canonical=True``; IndefiniteLengthError always), LimitError when
    ``max_depth``/``max_items``/``max_bytes`` is exceeded, UnsupportedError for
    simple values other than false/true/null and for unhashable map keys.
    TypeError if ``data`` is not a bytes-like object, ValueError for a
    negative ``offset`` (programmer errors, not CborDecodeError).
    """
    data = _as_buffer(data)
    if offset < 0:
        raise ValueError("offset must be >= 0, found %d" % offset)
    return _Decoder(data, max_depth, max_items, max_bytes, canonical).item(offset, 0)


def decode(data, max_depth=MAX_DEPTH, max_items=MAX_ITEMS, max_bytes=MAX_BYTES, canonical=True):
    """Decode ``data``, which must be exactly one CBOR data item.

    Raises the errors listed for ``decode_prefix``, and MalformedError when
    bytes follow the item.
    """
    data = _as_buffer(data)
    value, end = _Decoder(data, max_depth, max_items, max_bytes, canonical).item(0, 0)
    if end != len(data):
        raise MalformedError(
            "expected one data item ending at offset %d; found %d trailing bytes"
            % (end, len(data) - end)
        )
    return value

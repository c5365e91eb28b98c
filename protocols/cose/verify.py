# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""COSE_Sign1 parsing, canonical form and verification (RFC 9052 §4.2, §4.4): the
gateway's and the verifier's side of ``edgeledger.protocols.cose`` (the layout is in its
docstring). The algorithm table is data. Verifying is done by a function passed in
(``verify(alg, key, to_be_signed, signature) -> bool``), so this module needs no crypto
library and runs on MicroPython as well as CPython.

``parse_sign1`` takes the decoder to use: the pure codec by default, cbor2 on
the gateway (its ``CBORTag`` has the same ``.tag``/``.value`` shape as ours).

It also parses the COSE_Encrypt0 of an encrypted pack (``parse_encrypt0``; ``encrypt.py``
makes one).

One reading has exactly one accepted encoding: ``check_canonical`` (and
``parse_canonical``, which parses and checks) refuse every other spelling of a
message with a ``NonCanonicalMessage`` whose ``deviation`` names the rule of
``CANONICAL_RULES`` it breaks; docs/wire-format.md ("Canonical form") lists them.
"""
from edgeledger.protocols.cbor import decoder, encode
from edgeledger.protocols.cbor.decoder import decode as cbor_decode
from edgeledger.protocols.cose import (
    EDDSA,
    ES256,
    HDR_ALG,
    HDR_KID,
    SIGN_ALGS,
    SM2,
    TAG_SIGN1,
    protected_header,
    sig_structure,
    sign1_bytes,
)
from edgeledger.protocols.cose import encrypt as cose_encrypt
from edgeledger.protocols.errors import CoseError, EncodeError, SignatureError


class NonCanonicalMessage(CoseError):
    """A COSE_Sign1 that is not in the one accepted encoding of its content (cose.py,
    "canonical form" in docs/wire-format.md); its ``deviation`` names the rule it breaks."""


# Orders of the signature groups: P-256's n (SEC 2 §2.4.2), Ed25519's L (RFC 8032 §5.1) and
# sm2p256v1's n (GB/T 32918.5).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2 ** 252 + 27742317777372353535851937790883648493
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

# COSE algorithm id -> name, signature length, public key length (RFC 9053; SM2: private
# use, r ‖ s and a SEC 1 uncompressed sm2p256v1 point, docs/wire-format.md), and the
# canonical range of the signature's second half s (its byte order, largest value):
# an ES256 (r, s) verifies as (r, n - s) too, only the low one is accepted (s <= n/2);
# an Ed25519 S is accepted only reduced, S < L (RFC 8032 §5.1.7, as libsodium checks);
# an SM2 s only reduced, s < n (GB/T 32918.2 §7.1 B2).
ALGORITHMS = {
    EDDSA: {"name": "EdDSA", "sig_len": 64, "pub_len": 32, "s_order": "little", "s_max": ED25519_L - 1,
            "s_bound": "L - 1"},
    ES256: {"name": "ES256", "sig_len": 64, "pub_len": 65, "s_order": "big", "s_max": P256_N // 2,
            "s_bound": "n/2"},
    SM2: {"name": "SM2", "sig_len": 64, "pub_len": 65, "s_order": "big", "s_max": SM2_N - 1,
          "s_bound": "n - 1"},
}
assert sorted(ALGORITHMS) == sorted(SIGN_ALGS)
ALG_BY_NAME = dict((v["name"], k) for k, v in ALGORITHMS.items())

MAX_KID_LEN = 32  # our kids are 16 bytes; leave room for a secure element's own ids


class Sign1:
    """A decoded COSE_Sign1: the raw pieces, kept exactly as received."""

    __slots__ = ("protected", "alg", "kid", "payload", "signature")

    def __init__(self, protected, alg, kid, payload, signature):
        self.protected = protected  # the bstr as received: it is what was signed
        self.alg = alg
        self.kid = kid
        self.payload = payload
        self.signature = signature

    def to_be_signed(self):
        return sig_structure(self.protected, self.payload)


def parse_sign1(data, decode=cbor_decode):
    """Decode COSE_Sign1 bytes into a ``Sign1``.

    Raises ``CborDecodeError`` (from ``decode``) for bytes that are not CBOR and
    ``CoseError`` for CBOR that is not a COSE_Sign1 with our header set. Nothing else,
    whatever the bytes (tests/fuzz/test_decoders.py). This reads the structure only;
    whoever accepts a reading uses ``parse_canonical``.
    """
    item = decode(data)
    return sign1_from_item(item, decode)


def sign1_from_item(item, decode=cbor_decode):
    """The ``Sign1`` of a decoded COSE_Sign1; raises CoseError (and what ``decode``
    raises for the protected header).

    This is the structure only: an untagged COSE_Sign1 (RFC 9052 §2) parses too, so
    that ``check_canonical`` can name that deviation (``untagged``).
    """
    if getattr(item, "tag", None) == TAG_SIGN1:
        parts = item.value
    elif isinstance(item, (list, tuple)) and len(item) == 4:
        parts = item
    else:
        raise CoseError("expected a COSE_Sign1 (CBOR tag 18), found %s" % _describe(item))
    if not isinstance(parts, (list, tuple)) or len(parts) != 4:
        raise CoseError("COSE_Sign1 must be an array of 4, found %s" % _describe(parts))
    protected, unprotected, payload, signature = parts
    if not isinstance(protected, bytes) or not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise CoseError("COSE_Sign1 protected, payload and signature must be byte strings")
    if not _is_map(unprotected):
        raise CoseError("COSE_Sign1 unprotected header must be a map, found %s" % _describe(unprotected))
    header = decode(protected) if protected else {}
    if not _is_map(header):
        raise CoseError("protected header must encode a map, found %s" % _describe(header))
    alg = header.get(HDR_ALG)
    kid = header.get(HDR_KID, unprotected.get(HDR_KID))
    # type first: a list or map is unhashable, and 1.0 or True would match a key of 1
    info = ALGORITHMS.get(alg) if type(alg) is int else None
    if info is None:
        raise CoseError("unsupported COSE alg %s; supported: %s" % (_describe_alg(alg), sorted(ALGORITHMS)))
    if not isinstance(kid, bytes) or not 0 < len(kid) <= MAX_KID_LEN:
        raise CoseError("kid must be 1..%d bytes, found %s" % (MAX_KID_LEN, _describe(kid)))
    if len(signature) != info["sig_len"]:
        raise CoseError("%s signature must be %d bytes, found %d" % (info["name"], info["sig_len"], len(signature)))
    return Sign1(protected, alg, kid, payload, signature)


# ---------------------------------------------------------------------------
# COSE_Encrypt0 (cose/encrypt.py): an encrypted pack, the payload's key 7
# ---------------------------------------------------------------------------
class Encrypt0:
    """A decoded COSE_Encrypt0: the raw pieces, as received."""

    __slots__ = ("protected", "alg", "kid", "iv", "ciphertext")

    def __init__(self, protected, alg, kid, iv, ciphertext):
        self.protected = protected
        self.alg = alg
        self.kid = kid
        self.iv = iv
        self.ciphertext = ciphertext

    def aad(self):
        """The Enc_structure: the additional data CCM authenticates."""
        return cose_encrypt.enc_structure(self.protected)


def parse_encrypt0(data, decode=cbor_decode):
    """The ``Encrypt0`` of COSE_Encrypt0 bytes, checked for shape: tag 16, array of 3, a
    protected header with a known alg, a kid of 1..MAX_KID_LEN bytes, an IV of the alg's
    nonce length, a ciphertext at least one tag long. Raises CoseError for anything else and
    what ``decode`` raises for bytes that are not CBOR (a ValueError). Not the encoding:
    ``check_encrypted_encoding`` checks that."""
    item = decode(data)
    if getattr(item, "tag", None) != cose_encrypt.TAG_ENCRYPT0:
        raise CoseError("expected a COSE_Encrypt0 (CBOR tag 16), found %s" % _describe(item))
    parts = item.value
    if not isinstance(parts, (list, tuple)) or len(parts) != 3:
        raise CoseError("COSE_Encrypt0 must be an array of 3, found %s" % _describe(parts))
    protected, unprotected, ciphertext = parts
    if not isinstance(protected, bytes) or not isinstance(ciphertext, bytes):
        raise CoseError("COSE_Encrypt0 protected header and ciphertext must be byte strings")
    header = decode(protected) if protected else {}
    if not _is_map(header) or not _is_map(unprotected):
        raise CoseError("COSE_Encrypt0 headers must be maps")
    alg = header.get(HDR_ALG)
    info = cose_encrypt.ENC_ALGORITHMS.get(alg) if type(alg) is int else None
    if info is None:
        raise CoseError("unsupported COSE content alg %r; supported: %s" % (alg, sorted(cose_encrypt.ENC_ALGORITHMS)))
    kid, iv = unprotected.get(HDR_KID), unprotected.get(cose_encrypt.HDR_IV)
    if not isinstance(kid, bytes) or not 0 < len(kid) <= cose_encrypt.MAX_KID_LEN:
        raise CoseError("COSE_Encrypt0 kid must be 1..%d bytes, found %s" % (cose_encrypt.MAX_KID_LEN, _describe(kid)))
    if not isinstance(iv, bytes) or len(iv) != info["nonce_len"]:
        raise CoseError("%s IV must be %d bytes, found %s" % (info["name"], info["nonce_len"], _describe(iv)))
    if len(ciphertext) < info["tag_len"]:
        raise CoseError("%s ciphertext must hold at least the %d-byte tag, found %d bytes"
                        % (info["name"], info["tag_len"], len(ciphertext)))
    return Encrypt0(protected, alg, kid, iv, ciphertext)


def lenient_decode(data):
    """The pure decoder without its canonical checks: what a COSE_Encrypt0 says, however written
    (whether it is written canonically is ``verify.check_encrypted_encoding``'s question)."""
    return cbor_decode(data, canonical=False)


def canonical_encrypt0(enc):
    """The one accepted encoding of the parsed ``enc`` (an ``Encrypt0``)."""
    return cose_encrypt.encrypt0_bytes(cose_encrypt.enc_protected(enc.alg), enc.kid, enc.iv, enc.ciphertext)


# ---------------------------------------------------------------------------
# The canonical form (DESIGN §5). A device signs the payload and the protected
# header; everything else can be re-encoded by anyone on the path (a broker user:
# the threat model does not trust the broker for integrity) without touching the
# signature, and an ES256 signature can be flipped to its twin (r, n - s). Each
# such copy has its own digest: stored first, it would make the device's own
# message a "fork" and every later reading a chain break. So a message is
# accepted only as the exact bytes ``sign1`` makes from its content, and the
# signature only in its canonical range. Rule name -> what is expected:
# ---------------------------------------------------------------------------
CANONICAL_RULES = {
    "untagged": "the COSE_Sign1 array wrapped in tag 18 (first byte d2)",
    "envelope_encoding": "tag d2, array head 84 and shortest definite-length byte-string "
                         "heads (RFC 8949 §4.2.1)",
    "unprotected_header": "an empty unprotected header (a0): alg and kid are protected",
    "trailing_bytes": "nothing after the COSE_Sign1",
    "crit": "no crit header (label 2): version 1 has no critical extensions",
    "protected_label": "no protected header labels but 1 (alg) and 4 (kid)",
    "protected_encoding": "the protected header {1: alg, 4: kid} in deterministic CBOR (RFC 8949 §4.2.1)",
    "payload_encoding": "a payload in deterministic CBOR (RFC 8949 §4.2.1)",
    "high_s": "the signature's s in its canonical range: ES256 s <= n/2 (low-S), "
              "EdDSA S < L (RFC 8032 §5.1.7), SM2 s < n",
    "encrypted_encoding": "an encrypted pack (payload key 7) that is exactly the COSE_Encrypt0 "
                          "d0 83, {1: alg}, {4: kid, 5: iv}, ciphertext in deterministic CBOR (cose/encrypt.py)",
}
HDR_CRIT = 2  # RFC 9052 §3.1


def parse_canonical(data, decode=cbor_decode):
    """Parse COSE_Sign1 bytes that must be the one canonical encoding of their content.

    Returns the ``Sign1``. Raises NonCanonicalMessage (``deviation`` names the rule),
    CborDecodeError (from ``decode``: not CBOR, or bytes after the item) and CoseError
    for what is not a COSE_Sign1 at all, like ``parse_sign1``; a payload that is not
    CBOR raises what ``decode`` raises.
    """
    try:
        item = decode(data)
    except decoder.NonCanonicalError as e:  # the strict pure decoder names it itself
        raise _deviation("envelope_encoding", "found %s" % e)
    try:
        msg = sign1_from_item(item, decode)
    except decoder.NonCanonicalError as e:  # its only decode is the protected header's
        raise _deviation("protected_encoding", "found %s" % e)
    check_canonical(data, msg, decode)
    return msg


def check_canonical(data, msg, decode=cbor_decode):
    """Raise NonCanonicalMessage unless ``data`` is the one canonical encoding of ``msg``
    (the ``Sign1`` parsed from ``data``).

    The envelope and the protected header must be byte for byte what ``sign1`` writes
    for them (``sign1_bytes``, ``protected_header``), the payload must re-encode to
    itself with the deterministic encoder (``decode`` may be any decoder: cbor2 on the
    gateway), an encrypted pack in it must be its one encoding (``check_encrypted_encoding``),
    and the signature's s must be in its canonical range (``ALGORITHMS``). A payload that
    does not decode raises what ``decode`` raises.
    """
    expected = sign1_bytes(msg.protected, msg.payload, msg.signature)
    if data != expected:
        raise _envelope_deviation(data, expected)
    expected = protected_header(msg.alg, msg.kid)
    if msg.protected != expected:
        raise _protected_deviation(msg.protected, expected)
    check_low_s(msg)
    try:
        value = decode(msg.payload)
    except decoder.NonCanonicalError as e:
        raise _deviation("payload_encoding", "found %s" % e)
    check_payload_encoding(msg.payload, value)
    check_encrypted_encoding(value)


def split_sign1(data):
    """``(protected, payload, signature)`` when ``data`` (bytes) is laid out exactly as
    ``sign1_bytes`` writes a COSE_Sign1: tag 18 (d2), array of 4 (84), the protected byte
    string, the empty unprotected map (a0), the payload and signature byte strings, every
    head in its shortest form, nothing after. Otherwise None, which says nothing more: only
    ``parse_canonical`` (or ``sign1_from_item`` and ``check_canonical``) names what is wrong.

    A message that splits has the canonical envelope (rules untagged, envelope_encoding,
    unprotected_header, trailing_bytes); its protected header and payload are still unchecked.
    This reads the bytes once and decodes nothing (the gateway's fast path).
    """
    n = len(data)
    if n < 2 or data[0] != 0xD2 or data[1] != 0x84:
        return None
    protected = _bstr_at(data, 2, n)
    if protected is None or protected[1] >= n or data[protected[1]] != 0xA0:
        return None
    payload = _bstr_at(data, protected[1] + 1, n)
    if payload is None:
        return None
    signature = _bstr_at(data, payload[1], n)
    if signature is None or signature[1] != n:
        return None
    return (data[protected[0]:protected[1]], data[payload[0]:payload[1]], data[signature[0]:signature[1]])


# Shortest-form byte string heads (RFC 8949 §4.2.1): additional information -> (argument
# bytes, smallest length that needs them). Lengths of 2**32 and more (ai 27) never fit a message.
_BSTR_ARG = {24: (1, 24), 25: (2, 0x100), 26: (4, 0x10000)}


def _bstr_at(data, i, n):
    """(start, end) of the content of the byte string whose head, in its shortest form, is at
    ``i`` and whose content ends by ``n``; else None."""
    if i >= n or data[i] >> 5 != 2:
        return None
    ai = data[i] & 0x1F
    if ai < 24:
        start = i + 1
        return (start, start + ai) if start + ai <= n else None
    arg = _BSTR_ARG.get(ai)
    if arg is None or i + 1 + arg[0] > n:
        return None
    length = int.from_bytes(data[i + 1:i + 1 + arg[0]], "big")
    start = i + 1 + arg[0]
    if length < arg[1] or start + length > n:
        return None
    return start, start + length


def check_low_s(msg):
    """Raise NonCanonicalMessage (rule high_s) unless the signature's s of ``msg`` is in its
    canonical range (``ALGORITHMS``)."""
    info = ALGORITHMS[msg.alg]
    s = int.from_bytes(msg.signature[32:], info["s_order"])
    if s > info["s_max"]:
        raise _deviation("high_s", "found %s s = %s, above %s" % (
            info["name"], _hex(msg.signature[32:]), info["s_bound"]))


def check_payload_encoding(payload, value):
    """Raise NonCanonicalMessage (rule payload_encoding) unless ``payload`` is exactly the
    deterministic encoding (RFC 8949 §4.2.1, the pure encoder) of ``value``, the value any
    decoder read from it."""
    try:
        again = encode(value)
    except EncodeError as e:  # e.g. a value a lenient decoder built from a tag
        raise _deviation("payload_encoding", "found a value deterministic CBOR does not carry (%s)" % e)
    if again != payload:
        raise _deviation("payload_encoding", _difference(payload, again))


def check_encrypted_encoding(value):
    """Raise NonCanonicalMessage (rule encrypted_encoding) unless the encrypted pack of the
    decoded reading payload ``value`` (key 7, ``protocols/reading``), if it has one, is the
    exact bytes ``cose/encrypt.py`` writes for its parts. An ``enc`` that is no COSE_Encrypt0
    at all passes here: the payload check (``reading/validate.check_enc``) refuses it."""
    from edgeledger.protocols.reading import K_ENC

    enc = value.get(K_ENC) if _is_map(value) else None
    if not isinstance(enc, bytes):
        return
    try:
        expected = canonical_encrypt0(parse_encrypt0(enc, lenient_decode))
    except (CoseError, ValueError):
        return
    if enc != expected:
        raise _deviation("encrypted_encoding", _difference(enc, expected))


def _deviation(rule, found):
    e = NonCanonicalMessage("non-canonical COSE_Sign1 (%s): expected %s; %s"
                            % (rule, CANONICAL_RULES[rule], found))
    e.deviation = rule
    return e


def _envelope_deviation(data, expected):
    """Which envelope rule ``data`` breaks (only called when it differs from ``expected``)."""
    if len(data) > len(expected) and data[:len(expected)] == expected:
        return _deviation("trailing_bytes", "found %d bytes after it" % (len(data) - len(expected)))
    try:
        item = cbor_decode(data, canonical=False)
    except ValueError as e:  # indefinite lengths, or bytes after the item
        return _deviation("envelope_encoding", "found %s" % e)
    if getattr(item, "tag", None) != TAG_SIGN1:
        return _deviation("untagged", "found the array without its tag (first byte %02x)" % data[0])
    parts = item.value
    if isinstance(parts, list) and len(parts) == 4 and parts[1]:
        return _deviation("unprotected_header", "found labels %s" % ", ".join(repr(k) for k in parts[1]))
    return _deviation("envelope_encoding", _difference(data, expected))


def _protected_deviation(protected, expected):
    try:
        header = cbor_decode(protected, canonical=False)
    except ValueError as e:  # indefinite lengths, or what only a lenient decoder takes
        return _deviation("protected_encoding", "found %s" % e)
    if HDR_CRIT in header:
        return _deviation("crit", "found crit %r" % (header[HDR_CRIT],))
    extra = [k for k in header if k not in (HDR_ALG, HDR_KID)]
    if extra:
        return _deviation("protected_label", "found labels %s" % ", ".join(repr(k) for k in extra))
    return _deviation("protected_encoding", _difference(protected, expected))


def _difference(found, canonical):
    """Where ``found`` departs from its canonical encoding, as the strict decoder says it."""
    try:
        cbor_decode(found)
    except ValueError as e:
        return "found %s" % e
    n = min(len(found), len(canonical))
    i = 0
    while i < n and found[i] == canonical[i]:
        i += 1
    return "found %s at offset %d where the canonical encoding has %s" % (
        _hex(found[i:i + 4]) or "the end", i, _hex(canonical[i:i + 4]) or "the end")


def verify_sign1(msg, public_key, verify):
    """Check ``msg`` (a Sign1) with ``verify(alg, public_key, tbs, sig) -> bool``.

    Raises ``SignatureError`` when it does not verify.
    """
    if not verify(msg.alg, public_key, msg.to_be_signed(), msg.signature):
        raise SignatureError("%s signature does not verify for kid %s"
                             % (ALGORITHMS[msg.alg]["name"], _hex(msg.kid)))


def _is_map(x):
    # cbor2 6 decodes maps inside tags as its immutable ``frozendict``, not a dict
    return isinstance(x, dict) or (hasattr(x, "keys") and hasattr(x, "get"))


def _hex(b):
    return "".join("%02x" % x for x in b)


def _describe_alg(alg):
    return repr(alg) if type(alg) is int else "of type %s" % type(alg).__name__


def _describe(x):
    if isinstance(x, bytes):
        return "%d bytes" % len(x)
    return type(x).__name__

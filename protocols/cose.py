"""COSE_Sign1 (RFC 9052 §4.2), sans-IO.

::

    COSE_Sign1 = #6.18([ protected : bstr .cbor {1: alg, 4: kid},
                         unprotected : {},
                         payload : bstr,
                         signature : bstr ])
    Sig_structure = ["Signature1", protected, external_aad = h'', payload]   (RFC 9052 §4.4)

Creating a message (``sign1``, ``protected_header``, ``sig_structure``) lives
in ``cose_sign.py``, which a board imports alone; this module re-exports it
and adds parsing and verification. The algorithm table is data. Signing and
verifying are done by objects passed in (a signer with ``alg``, ``kid`` and
``sign(bytes)``; a ``verify(alg, key, to_be_signed, signature) -> bool``
function), so this module needs no crypto library and runs on MicroPython as
well as CPython.

``parse_sign1`` takes the decoder to use: the pure codec by default, cbor2 on
the gateway (its ``CBORTag`` has the same ``.tag``/``.value`` shape as ours).
"""
from edgeledger.protocols import cbor
from edgeledger.protocols.cose_sign import (  # noqa: F401  (re-exported)
    EDDSA,
    ES256,
    HDR_ALG,
    HDR_KID,
    SIG_CONTEXT,
    SIGN_ALGS,
    TAG_SIGN1,
    protected_header,
    sig_structure,
    sign1,
)
from edgeledger.protocols.errors import CoseError, SignatureError

# COSE algorithm id -> name, signature length, public key length (RFC 9053)
ALGORITHMS = {
    EDDSA: {"name": "EdDSA", "sig_len": 64, "pub_len": 32},
    ES256: {"name": "ES256", "sig_len": 64, "pub_len": 65},
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


def parse_sign1(data, decode=cbor.decode):
    """Decode COSE_Sign1 bytes into a ``Sign1``.

    Raises ``CborDecodeError`` (from ``decode``) for bytes that are not CBOR and
    ``CoseError`` for CBOR that is not a COSE_Sign1 with our header set. Nothing else,
    whatever the bytes (tests/fuzz/test_decoders.py).
    """
    item = decode(data)
    return sign1_from_item(item, decode)


def sign1_from_item(item, decode=cbor.decode):
    """A ``Sign1`` from a decoded item (a tag 18). Raises ``CoseError``, or what ``decode``
    raises when the protected header is not CBOR (``CborDecodeError`` for ours)."""
    if getattr(item, "tag", None) != TAG_SIGN1:
        raise CoseError("expected a COSE_Sign1 (CBOR tag 18), found %s" % _describe(item))
    parts = item.value
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

"""COSE_Sign1 (RFC 9052 §4.2), sans-IO: this module creates a message (what a device
needs); ``verify.py`` parses one, checks that it is in its one canonical encoding and
verifies its signature (what a gateway and a verifier need).

::

    COSE_Sign1 = #6.18([ protected : bstr .cbor {1: alg, 4: kid},
                         unprotected : {},
                         payload : bstr,
                         signature : bstr ])
    Sig_structure = ["Signature1", protected, external_aad = h'', payload]   (RFC 9052 §4.4)

Signing is done by an object passed in (a signer with ``alg``, ``kid`` and
``sign(bytes)``), so this package needs no crypto library and runs on MicroPython as
well as CPython.
"""
from edgeledger.protocols import errors
from edgeledger.protocols.cbor import _head, encode

TAG_SIGN1 = 18
HDR_ALG = 1  # RFC 9052 §3.1
HDR_KID = 4
SIG_CONTEXT = "Signature1"

EDDSA = -8  # RFC 9053 §2.2
ES256 = -7  # RFC 9053 §2.1
# SM2 signature with SM3 and Z_A of the default user id (GB/T 32918.2): COSE registers no
# SM2 algorithm, so this is a private-use id (the IANA COSE Algorithms registry, RFC 9053: values < -65536),
# meaningful only between an edgeledger device and its verifiers (docs/wire-format.md).
SM2 = -65537
#: The algorithms this project signs with (``verify.ALGORITHMS`` describes each).
SIGN_ALGS = (EDDSA, ES256, SM2)


# Array of 4 (84) and the text string "Signature1" (6a + 10 bytes): the fixed start of
# every Sig_structure of a COSE_Sign1.
_SIG1_HEAD = b"\x84\x6aSignature1"


def sig_structure(protected, payload, external_aad=b""):
    """The bytes that are signed: ``["Signature1", protected, external_aad, payload]``,
    written from a fixed head and three byte strings (what ``encode`` makes of that list,
    without walking it: a gateway builds one per message it verifies)."""
    out = bytearray(_SIG1_HEAD)
    for part in (protected, external_aad, payload):
        _head(out, 0x40, len(part))  # major type 2, byte string, shortest head
        out.extend(part)
    return bytes(out)


def protected_header(alg, kid):
    """``bstr .cbor {1: alg, 4: kid}``. Raises CoseError for an alg not in SIGN_ALGS."""
    if alg not in SIGN_ALGS:
        raise errors.CoseError("unsupported COSE alg %r; supported: %s" % (alg, sorted(SIGN_ALGS)))
    return encode({HDR_ALG: alg, HDR_KID: bytes(kid)})


def sign1(payload, signer):
    """Sign ``payload`` bytes with ``signer`` and return the COSE_Sign1 message bytes.

    ``signer`` has ``alg``, ``kid`` and ``sign(bytes) -> bytes``. Raises CoseError
    for an unsupported alg.
    """
    protected = protected_header(signer.alg, signer.kid)
    return sign1_bytes(protected, payload, signer.sign(sig_structure(protected, payload)))


def sign1_bytes(protected, payload, signature):
    """``#6.18([protected, {}, payload, signature])`` in deterministic CBOR: tag 18 (d2),
    array of 4 (84), the empty unprotected map (a0), byte-string heads in their shortest
    form. The one envelope a gateway accepts (``verify.check_canonical``)."""
    out = bytearray(b"\xd2\x84")
    _head(out, 0x40, len(protected))  # major type 2, byte string
    out.extend(protected)
    out.append(0xA0)
    _head(out, 0x40, len(payload))
    out.extend(payload)
    _head(out, 0x40, len(signature))
    out.extend(signature)
    return bytes(out)

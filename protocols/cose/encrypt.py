"""COSE_Encrypt0 (RFC 9052 §5.2, §5.3), sans-IO: the readings a device encrypts for the data
owner (the payload's ``enc``, key 7, ``protocols/reading``). The cipher is a function passed
in, so this module needs no crypto library and runs on MicroPython as well as CPython::

    COSE_Encrypt0 = #6.16([ protected : bstr .cbor {1: alg},
                            unprotected : {4: kid, 5: iv},
                            ciphertext : bstr ])              ; CCM: ciphertext ‖ 8-byte tag
    Enc_structure = ["Encrypt0", protected, external_aad = h'']   (RFC 9052 §5.3)

Header buckets (RFC 9052 §3.1): ``alg`` is protected (it "MUST be authenticated"); the IV
is unprotected (an altered IV fails the tag check); the ``kid`` is unprotected too: it only
picks the key, and a wrong kid also ends in a failed tag. Nothing of it can be altered on
the way anyway: the whole COSE_Encrypt0 is inside the device's signed payload.

Algorithms (``ENC_ALGORITHMS``): AES-CCM-16-64-128 (COSE 10, RFC 9053 §4.2) and SM4 under
the same CCM parameters (16-byte key, 13-byte nonce, 8-byte tag), for which COSE registers
no id: the private-use ``SM4_CCM_16_64_128`` (below -65536, docs/wire-format.md).

This module makes a COSE_Encrypt0 (the device's side); ``verify.py`` parses one
(``parse_encrypt0``) and holds it to its one encoding, the exact bytes ``encrypt0_bytes``
writes for its parts (``check_encrypted_encoding``, rule ``encrypted_encoding``; docs/wire-format.md,
"Canonical form"), as it does the COSE_Sign1 around it.
"""
from edgeledger.protocols.cbor import _head, encode
from edgeledger.protocols.errors import CoseError

TAG_ENCRYPT0 = 16  # RFC 9052 §2
HDR_ALG, HDR_KID, HDR_IV = 1, 4, 5  # RFC 9052 §3.1
ENC_CONTEXT = "Encrypt0"

AES_CCM_16_64_128 = 10  # RFC 9053 §4.2
# SM4 (GB/T 32907) in CCM with AES-CCM-16-64-128's parameters: a private-use id (IANA COSE
# Algorithms registry: values below -65536), meaningful only to edgeledger devices and
# their data owners; apart from SM2's -65537 (protocols/cose).
SM4_CCM_16_64_128 = -65540

# COSE id -> name, key, nonce and tag lengths (RFC 9053 §4.2: "16" is L = 2, a 13-byte
# nonce; "64" an 8-byte tag; "128" the key).
ENC_ALGORITHMS = {
    AES_CCM_16_64_128: {"name": "AES-CCM-16-64-128", "key_len": 16, "nonce_len": 13, "tag_len": 8},
    SM4_CCM_16_64_128: {"name": "SM4-CCM-16-64-128", "key_len": 16, "nonce_len": 13, "tag_len": 8},
}
ENC_ALG_BY_NAME = dict((v["name"], k) for k, v in ENC_ALGORITHMS.items())

MAX_KID_LEN = 32  # our content kids are 16 bytes; room for an owner's own ids


def enc_protected(alg):
    """``bstr .cbor {1: alg}``. Raises CoseError for an alg not in ENC_ALGORITHMS."""
    if alg not in ENC_ALGORITHMS:
        raise CoseError("unsupported COSE content alg %r; supported: %s" % (alg, sorted(ENC_ALGORITHMS)))
    return encode({HDR_ALG: alg})


def enc_structure(protected, external_aad=b""):
    """``["Encrypt0", protected, external_aad]`` in deterministic CBOR (RFC 9052 §5.3)."""
    return encode([ENC_CONTEXT, protected, external_aad])


def encrypt0_bytes(protected, kid, iv, ciphertext):
    """``#6.16([protected, {4: kid, 5: iv}, ciphertext])`` in deterministic CBOR: the one
    encoding of a COSE_Encrypt0 that a gateway accepts."""
    out = bytearray(b"\xd0\x83")  # tag 16, array of 3
    _head(out, 0x40, len(protected))
    out.extend(protected)
    out.extend(encode({HDR_KID: bytes(kid), HDR_IV: bytes(iv)}))
    _head(out, 0x40, len(ciphertext))
    out.extend(ciphertext)
    return bytes(out)


def encrypt0(alg, kid, iv, plaintext, ccm_encrypt):
    """A COSE_Encrypt0 of ``plaintext``; ``ccm_encrypt(iv, plaintext, aad) -> ciphertext ‖ tag``
    holds the key. Raises CoseError for an unknown alg, ValueError for an IV of the wrong length."""
    protected = enc_protected(alg)
    if len(iv) != ENC_ALGORITHMS[alg]["nonce_len"]:
        raise ValueError("%s IV: expected %d bytes, found %d"
                         % (ENC_ALGORITHMS[alg]["name"], ENC_ALGORITHMS[alg]["nonce_len"], len(iv)))
    return encrypt0_bytes(protected, kid, iv, ccm_encrypt(iv, plaintext, enc_structure(protected)))

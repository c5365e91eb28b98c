"""CPython backend of the crypto package: ``hashlib``, ``hmac`` and ``cryptography``.

SM3 and SM4 come from ``cryptography`` too (it has no SM2: that is ``tongsuo.py``).

Imported only by the package's probe (``__init__.py``) once it has found ``cryptography``;
the functions have the signatures and contracts of ``__init__.py``, ``verify.py``,
``mac.py`` and ``cipher.py``. Errors from ``cryptography`` are translated here.
"""
import hashlib
import hmac
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from edgeledger.agent.crypto.errors import CcmAuthError

# RFC 6979 deterministic k on CPython too, so both runtimes give the same bytes.
_ES256_SIGN = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_ES256_VERIFY = ec.ECDSA(hashes.SHA256())


def sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(bytes(data))
    return h.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    m = _hmac.HMAC(bytes(key), hashes.SM3())
    m.update(bytes(data))
    return m.finalize()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def hmac_sha512(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha512")


def ed25519_public_key(seed: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(bytes(msg))


def ed25519_verify(pub: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(bytes(pub)).verify(bytes(sig), bytes(msg))
    except InvalidSignature:
        return False
    return True


def p256_public_key(d: int) -> bytes:
    """``d`` is the checked scalar (int)."""
    return ec.derive_private_key(d, ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def es256_sign(d: int, msg: bytes) -> bytes:
    """``d`` is the checked scalar (int); returns r ‖ s."""
    der = ec.derive_private_key(d, ec.SECP256R1()).sign(bytes(msg), _ES256_SIGN)
    r, s = utils.decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def p256_decode_point(pub: bytes) -> ec.EllipticCurvePublicKey:
    """The public key object; ValueError if ``pub`` (65 bytes, 0x04) is not on the curve."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(pub))
    except ValueError:
        raise ValueError("P-256 public key: expected a point on the curve, found one that "
                         "is not") from None


def es256_verify(pub: bytes, msg: bytes, sig: bytes) -> bool:
    """``pub`` already length/prefix checked, ``sig`` 64 bytes."""
    key = p256_decode_point(pub)
    r = int.from_bytes(bytes(sig[:32]), "big")
    s = int.from_bytes(bytes(sig[32:]), "big")
    if not (r and s):
        return False
    try:
        key.verify(utils.encode_dss_signature(r, s), bytes(msg), _ES256_VERIFY)
    except InvalidSignature:
        return False
    return True


class Aes:
    """AES-128 forward block cipher with the key schedule kept (FIPS 197); ``Aes(key,
    algorithms.SM4)`` is SM4 (GB/T 32907), the other 128-bit block cipher CCM runs over."""

    def __init__(self, key: bytes, algorithm: Any = algorithms.AES) -> None:
        self._enc = Cipher(algorithm(bytes(key)), modes.ECB()).encryptor()

    def encrypt_block(self, block: bytes) -> bytes:
        return self._enc.update(bytes(block))


def sm4(key: bytes) -> Aes:
    """SM4 block encryption (the forward cipher CCM needs) with the key schedule kept."""
    return Aes(key, algorithms.SM4)


def aes_ccm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes | None, tag_len: int) -> bytes:
    try:
        return AESCCM(bytes(key), tag_len).encrypt(bytes(nonce), bytes(plaintext),
                                                   bytes(aad) if aad else None)
    except ValueError as e:
        raise ValueError("AES-CCM: %s" % e) from e


def aes_ccm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes | None, tag_len: int) -> bytes:
    try:
        ccm = AESCCM(bytes(key), tag_len)
        return ccm.decrypt(bytes(nonce), bytes(data), bytes(aad) if aad else None)
    except InvalidTag:
        raise CcmAuthError("CCM tag mismatch: expected a tag computed over this nonce, aad "
                           "and ciphertext, found a different %d-byte tag" % tag_len) from None
    except ValueError as e:
        raise ValueError("AES-CCM: %s" % e) from e

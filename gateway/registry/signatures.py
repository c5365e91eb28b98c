"""Signature verification on the gateway: libsodium for Ed25519, OpenSSL for P-256,
Tongsuo for SM2.

PyNaCl (libsodium) verifies Ed25519 about 1.7x faster than ``cryptography`` on
this class of machine, so it serves EdDSA; ES256 uses ``cryptography``; SM2
(GB/T 32918.2 with SM3 and Z_A of the default user id, COSE alg -65537) uses
``tongsuopy``, the fastest correct SM2 library on PyPI (docs/national-crypto.md),
imported on the first SM2 key. Key objects are cached per public key. Library
exceptions are translated here: ``verify`` answers True or False and never raises,
whatever the key (a key that is not a valid point verifies nothing);
``check_public_key`` is what registration uses to refuse such keys in the first place
(and an SM2 key on a platform tongsuopy does not install on).

Valid keys (issue 12):

* Ed25519 (RFC 8032 §5.1.3): 32 bytes that decode to a point of the curve, in the
  prime-order subgroup and not of small order (libsodium's
  ``crypto_core_ed25519_is_valid_point``); a small-order key would "verify" forged
  signatures under some implementations.
* P-256 (SEC 1 §2.3.4) and SM2 (GB/T 32918.1 §6.2): an uncompressed point ``04 || X || Y``
  on the curve (OpenSSL/Tongsuo check the curve equation when they load the point).
"""
import hashlib
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from edgeledger.protocols.bundle import KID_LEN
from edgeledger.protocols.cose import EDDSA, ES256, SM2


def key_id(public_key: bytes) -> bytes:
    """A key's id (kid): the first KID_LEN bytes of SHA-256 over the raw public key, the id its
    messages name and the chain registers it under."""
    return hashlib.sha256(bytes(public_key)).digest()[:KID_LEN]


# Cached key objects; a site has at most a few thousand device keys.
MAX_CACHED_KEYS = 100000
_cache: dict[tuple[object, bytes], Any] = {}


def _ed25519_key(public_key: bytes) -> VerifyKey:
    if len(public_key) != 32 or not crypto_core_ed25519_is_valid_point(bytes(public_key)):
        raise ValueError("expected 32 bytes encoding an Ed25519 point of prime order, found %d bytes that do not"
                         % len(public_key))
    return VerifyKey(public_key)


def _p256_key(public_key: bytes) -> ec.EllipticCurvePublicKey:
    if len(public_key) != 65 or public_key[:1] != b"\x04":
        raise ValueError("expected an uncompressed P-256 point (65 bytes, 04 X Y), found %d bytes starting %s"
                         % (len(public_key), bytes(public_key[:1]).hex()))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)


def _ed25519_verify(key: VerifyKey, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(message, signature)
        return True
    except BadSignatureError:
        return False


def _es256_verify(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


# GB/T 32918.5 §3: order n of the sm2p256v1 base point.
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


def _sm2_key(public_key: bytes) -> tuple:
    try:
        from tongsuopy.crypto import hashes as sm_hashes
        from tongsuopy.crypto.asymciphers import ec as sm_ec
        from tongsuopy.crypto.exceptions import InvalidSignature as SmInvalidSignature
    except ImportError:
        raise ValueError("SM2 verification needs tongsuopy, which does not install on this "
                         "platform (wheels: x86-64 Linux, macOS, Windows)") from None
    if len(public_key) != 65 or public_key[0] != 4:  # tongsuopy also takes compressed points
        raise ValueError("SM2 public key: expected 65 bytes SEC1 uncompressed (0x04)")
    key = sm_ec.EllipticCurvePublicKey.from_encoded_point(sm_ec.SM2(), public_key)
    return key, sm_ec.ECDSA(sm_hashes.SM3()), SmInvalidSignature


def _sm2_verify(key: tuple, message: bytes, signature: bytes) -> bool:
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if len(signature) != 64 or not (0 < r < SM2_N and 0 < s < SM2_N):
        return False  # the canonical form only: r and s reduced mod n, 32 bytes each
    public, algorithm, invalid = key
    try:
        public.verify(encode_dss_signature(r, s), message, algorithm)
        return True
    except invalid:
        return False


# COSE alg -> (key loader, verify)
VERIFIERS: dict[object, tuple[Callable[[bytes], Any], Callable[[Any, bytes, bytes], bool]]] = {
    EDDSA: (_ed25519_key, _ed25519_verify),
    ES256: (_p256_key, _es256_verify),
    SM2: (_sm2_key, _sm2_verify),
}


_BAD = object()  # cached marker: this key is not usable
_CURVE: dict[object, str] = {EDDSA: "Ed25519", ES256: "P-256", SM2: "SM2"}


def _key(alg: object, public_key: object) -> object:
    """The library key object, or (_BAD, why) for an unusable key; cached either way."""
    entry = VERIFIERS.get(alg) if type(alg) is int else None
    if entry is None or not isinstance(public_key, (bytes, bytearray)):
        return (_BAD, "unsupported COSE alg %r or a key that is not bytes" % (alg,))
    cache_key = (alg, bytes(public_key))
    key = _cache.get(cache_key)
    if key is None:
        try:
            key = entry[0](cache_key[1])
        except Exception as e:  # library-specific key errors, translated here
            key = (_BAD, "not a valid %s public key: %s" % (_CURVE[alg], e))
        if len(_cache) >= MAX_CACHED_KEYS:
            _cache.clear()
        _cache[cache_key] = key
    return key


def key_problem(alg: object, public_key: object) -> str | None:
    """None if ``public_key`` is a usable key for COSE ``alg``, else why not (a sentence)."""
    key = _key(alg, public_key)
    return key[1] if isinstance(key, tuple) and key[0] is _BAD else None


def check_public_key(alg: object, public_key: object) -> None:
    """Raise ValueError (saying why) unless ``public_key`` is a valid key for ``alg``."""
    problem = key_problem(alg, public_key)
    if problem is not None:
        raise ValueError(problem)


def verify(alg: object, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` over ``message`` verifies with ``public_key``, else False.

    Never raises: an unsupported algorithm or a key that is not a valid point is False
    (``key_problem`` says why).
    """
    key = _key(alg, public_key)
    if isinstance(key, tuple) and key[0] is _BAD:
        return False
    try:
        return VERIFIERS[alg][1](key, message, signature)
    except Exception:  # a library error on a hostile signature is a failed verification
        return False

"""Signature verification on the gateway: libsodium for Ed25519, OpenSSL for P-256,
Tongsuo for SM2.

PyNaCl (libsodium) verifies Ed25519 about 1.7x faster than ``cryptography`` on
this class of machine, so it serves EdDSA; ES256 uses ``cryptography``; SM2
(GB/T 32918.2 with SM3 and Z_A of the default user id, COSE alg -65537) uses
``tongsuopy``, the fastest correct SM2 library on PyPI (docs/national-crypto.md),
imported on the first SM2 key. Key objects are cached per public key. Library
exceptions are translated here: callers see True or False, or ``ValueError`` for a
malformed key (or an SM2 key on a platform tongsuopy does not install on).
"""
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from edgeledger.protocols.cose import EDDSA, ES256, SM2

# Cached key objects; a site has at most a few thousand device keys.
MAX_CACHED_KEYS = 100000
_cache = {}


def _ed25519_key(public_key):
    return VerifyKey(public_key)


def _p256_key(public_key):
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)


def _ed25519_verify(key, message, signature):
    try:
        key.verify(message, signature)
        return True
    except BadSignatureError:
        return False


def _es256_verify(key, message, signature):
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
                         "platform (wheels: x86-64 Linux, macOS, Windows)")
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
VERIFIERS = {
    EDDSA: (_ed25519_key, _ed25519_verify),
    ES256: (_p256_key, _es256_verify),
    SM2: (_sm2_key, _sm2_verify),
}


def load_key(alg: int, public_key: bytes) -> object:
    """The (cached) key object ``verify`` uses: a registry calls it before it accepts a key,
    so that a key this gateway cannot verify with is refused at enrolment, not at ingest.

    Raises ValueError for an unsupported algorithm or a malformed public key (an SM2 key
    too where tongsuopy does not install).
    """
    entry = VERIFIERS.get(alg)
    if entry is None:
        raise ValueError("unsupported COSE alg %r" % (alg,))
    cache_key = (alg, public_key)
    key = _cache.get(cache_key)
    if key is None:
        try:
            key = entry[0](public_key)
        except Exception as e:  # library-specific key errors
            raise ValueError("malformed %d public key: %s" % (alg, e))
        if len(_cache) >= MAX_CACHED_KEYS:
            _cache.clear()
        _cache[cache_key] = key
    return key


def verify(alg, public_key, message, signature):
    """True if ``signature`` over ``message`` verifies with ``public_key``.

    Raises ValueError for an unsupported algorithm or a malformed public key.
    """
    return VERIFIERS[alg][1](load_key(alg, public_key), message, signature)

"""Signature verification on the gateway: libsodium for Ed25519, OpenSSL for P-256.

PyNaCl (libsodium) verifies Ed25519 about 1.7x faster than ``cryptography`` on
this class of machine, so it serves EdDSA; ES256 uses ``cryptography``. Key
objects are cached per public key. Library exceptions are translated here:
callers see True or False, or ``ValueError`` for a malformed key.
"""
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from edgeledger.protocols.cose import EDDSA, ES256

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


# COSE alg -> (key loader, verify)
VERIFIERS = {
    EDDSA: (_ed25519_key, _ed25519_verify),
    ES256: (_p256_key, _es256_verify),
}


def verify(alg, public_key, message, signature):
    """True if ``signature`` over ``message`` verifies with ``public_key``.

    Raises ValueError for an unsupported algorithm or a malformed public key.
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
    return entry[1](key, message, signature)

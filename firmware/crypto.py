"""The one crypto shim: native modules first, pure-Python fallbacks second.

This is the only module in edgeledger that probes the runtime with
``try: import``. Everything else calls these functions (bytes in, bytes out):

  sha256, sha512, hmac_sha256, hmac_sha512, random_bytes
  ed25519_public_key, ed25519_sign, ed25519_verify        (RFC 8032)
  p256_public_key, es256_sign, es256_low_s, es256_verify  (FIPS 186-4, RFC 9053 §2.1)
  aes_ecb_encrypt_block, AesEcb, aes_ccm_encrypt, aes_ccm_decrypt  (FIPS 197, RFC 3610)

A board hashes and signs readings; it does not verify, encrypt, MAC or draw
random bytes. So that its heap does not hold that code, this module defines only
what signing needs; the rest is imported on first access through this module
(``crypto.ed25519_verify``, ``from ...crypto import IMPLEMENTATION``): the
``*_LEN`` constants, ``P256_N``, ``IMPLEMENTATION``, hmac_*, random_bytes and
the verify functions from ``crypto_more.py``; AES/CCM (with ``CcmAuthError``)
from ``crypto_aes.py``.

Backends:
  CPython      hashlib, hmac, os.urandom and ``cryptography`` (crypto_cpython.py)
  MicroPython  hashlib.sha256, os.urandom, cryptolib/ucryptolib AES-ECB; pure
               sha512, hmac, ed25519, p256, aesccm (aes if there is no cryptolib),
               each imported on first use, so a board that only signs Ed25519
               never loads the P-256 code.

``IMPLEMENTATION`` names the backend serving each primitive.

Every function raises ValueError for an argument of the wrong length. Verify
functions return False for a signature that does not verify (wrong length
included) and raise ValueError for a malformed public key. ES256 signatures
are deterministic (RFC 6979) on both runtimes, and low-S (s <= n/2) so that a
reading has one signature, not two.
"""
import hashlib

try:
    from micropython import const
except ImportError:  # CPython
    const = int

_KEY_LEN = const(32)  # ED25519_SEED_LEN, P256_PRIV_LEN
# SEC 2 §2.4.2 (FIPS 186-4 D.1.2.3): order n of the P-256 base point (``P256_N``).
_P256_N = const(0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551)

# ---------------------------------------------------------------- probing ---
try:
    import cryptography  # noqa: F401
except ImportError:
    _cp = None
else:
    from edgeledger.firmware import crypto_cpython as _cp

_native_sha512 = getattr(hashlib, "sha512", None)


def _need(name, value, n):
    if len(value) != n:
        raise ValueError("%s: expected %d bytes, found %d" % (name, n, len(value)))


# ----------------------------------------------------------------- hashes ---
def sha256(data):
    """SHA-256 (FIPS 180-4) of ``data``: 32 bytes."""
    return hashlib.sha256(data).digest()


def sha512(data):
    """SHA-512 (FIPS 180-4) of ``data``: 64 bytes."""
    if _native_sha512:
        return _native_sha512(data).digest()
    from edgeledger.firmware import sha512 as pure

    return pure.sha512(data)


# ---------------------------------------------------------------- Ed25519 ---
# The pure modules are imported inside the functions: on first use, and only the
# one the board's algorithm needs.
def _ed25519(seed):
    _need("Ed25519 seed", seed, _KEY_LEN)
    if _cp:
        return _cp.ed25519_public_key, _cp.ed25519_sign
    from edgeledger.firmware import ed25519 as pure

    return pure.public_key, pure.sign


def ed25519_public_key(seed):
    """RFC 8032 §5.1.5 public key (32 bytes) of a 32-byte seed."""
    return _ed25519(seed)[0](seed)


def ed25519_sign(seed, msg):
    """RFC 8032 §5.1.6 signature R ‖ S (64 bytes)."""
    return _ed25519(seed)[1](seed, msg)


# ------------------------------------------------------------ P-256/ES256 ---
def _p256_scalar(d):
    """The private scalar of 32 bytes ``d``; ValueError unless 1 <= d < n (SEC 1 §3.2.1)."""
    _need("P-256 private key", d, _KEY_LEN)
    k = int.from_bytes(bytes(d), "big")
    if k < 1 or k >= _P256_N:
        raise ValueError("P-256 private key: expected an integer in [1, n-1], found %s"
                         % ("0" if k == 0 else ">= n"))
    return k


def p256_public_key(d):
    """65-byte SEC 1 uncompressed public point of the 32-byte private key ``d``.

    Raises ValueError if ``d`` is not 32 bytes or not in [1, n-1].
    """
    k = _p256_scalar(d)
    if _cp:
        return _cp.p256_public_key(k)
    from edgeledger.firmware import p256 as pure

    return pure.public_key(k)


def es256_sign(d, msg):
    """ECDSA P-256 over SHA-256(msg), RFC 6979 k; returns r ‖ s (64 bytes, not DER), low-S.

    Raises ValueError on a bad private key.
    """
    k = _p256_scalar(d)
    if _cp:
        return es256_low_s(_cp.es256_sign(k, msg))
    from edgeledger.firmware import p256 as pure

    return es256_low_s(pure.sign(k, sha256(msg)))


def es256_low_s(sig):
    """ES256 r ‖ s with s > n/2 replaced by n - s: the same signature to any verifier,
    and the only one of the two a gateway accepts (protocols/cose.py, canonical form).
    A signer whose ECDSA comes from elsewhere (a secure element) passes its output here."""
    s = int.from_bytes(sig[32:], "big")
    if s > _P256_N >> 1:
        return sig[:32] + (_P256_N - s).to_bytes(32, "big")
    return sig


# ----------------------------------------------- loaded on first access ---
def __getattr__(name):
    """The rest of the shim (see the module docstring)."""
    from edgeledger.firmware import crypto_more

    return crypto_more.shim_attr(name)

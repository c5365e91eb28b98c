"""The one crypto shim: native modules first, pure-Python fallbacks second.

This module and the parts it loads on first use (crypto_more.py, crypto_sm2.py) are
the only place in edgeledger that probes the runtime with ``try: import``.
Everything else calls these functions (bytes in, bytes out):

  sha256, sha512, sm3, hmac_sha256, hmac_sha512, hmac_sm3, random_bytes
  ed25519_public_key, ed25519_sign, ed25519_verify        (RFC 8032)
  p256_public_key, es256_sign, es256_low_s, es256_verify  (FIPS 186-4, RFC 9053 §2.1)
  sm2_public_key, sm2_sign, sm2_verify                    (GB/T 32918.2 with SM3, Z_A of the
                                                           default id 1234567812345678)
  aes_ecb_encrypt_block, AesEcb, aes_ccm_encrypt, aes_ccm_decrypt  (FIPS 197, RFC 3610)
  sm4_ecb_encrypt_block, Sm4Ecb, sm4_ccm_encrypt, sm4_ccm_decrypt  (GB/T 32907, RFC 3610)

A board hashes and signs readings; it does not verify, encrypt, MAC or draw
random bytes. So that its heap does not hold that code, this module defines only
what signing needs; the rest is imported on first access through this module
(``crypto.ed25519_verify``, ``from ...crypto import IMPLEMENTATION``): the
``*_LEN`` constants, ``P256_N``, ``IMPLEMENTATION``, hmac_sha*, random_bytes and
the verify functions from ``crypto_more.py``; AES/CCM (with ``CcmAuthError``)
from ``crypto_aes.py``; sm3, hmac_sm3, sm2_verify and ``SM2_N`` from ``crypto_sm2.py``;
SM4/SM4-CCM from ``crypto_sm4.py``.

Backends:
  CPython      hashlib, hmac, os.urandom and ``cryptography`` (crypto_cpython.py,
               SM3 and SM4 too); SM2 through ``tongsuopy`` (crypto_sm2_cpython.py)
               where it installs (x86-64 Linux, macOS, Windows wheels), else pure
  MicroPython  hashlib.sha256, os.urandom, cryptolib/ucryptolib AES-ECB; pure
               sha512, hmac, ed25519, p256, sm3, sm2, sm4, aesccm (aes if there is no
               cryptolib), each imported on first use, so a board that only signs
               Ed25519 never loads the P-256 or SM2 code.

``IMPLEMENTATION`` names the backend serving each primitive.

Every function raises ValueError for an argument of the wrong length. Verify
functions return False for a signature that does not verify (wrong length
included) and raise ValueError for a malformed public key. ES256 signatures
are deterministic (RFC 6979) on both runtimes, and low-S (s <= n/2) so that a
reading has one signature, not two; SM2 signatures are deterministic (RFC 6979 with
HMAC-SM3) from the pure code and random-k from tongsuopy (both valid GB/T 32918.2
signatures: a verifier cannot tell them apart).
"""
import hashlib

try:
    from micropython import const
except ImportError:  # CPython
    const = int

_KEY_LEN = const(32)  # ED25519_SEED_LEN, P256_PRIV_LEN, SM2_PRIV_LEN
# SEC 2 §2.4.2 (FIPS 186-4 D.1.2.3): order n of the P-256 base point (``P256_N``).
_P256_N = const(0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551)
# GB/T 32918.5 §3: order n of the sm2p256v1 base point (``SM2_N``).
_SM2_N = const(0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123)

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
def _scalar(name, d, n, margin):
    """The private scalar of the 32 bytes ``d``; ValueError unless 1 <= d <= n - margin
    (SEC 1 §3.2.1: margin 1; GB/T 32918.1 §6.1: margin 2, as 1 + d must be invertible)."""
    _need(name + " private key", d, _KEY_LEN)
    k = int.from_bytes(bytes(d), "big")
    if k < 1 or k > n - margin:
        raise ValueError("%s private key: expected an integer in [1, n-%d], found %s"
                         % (name, margin, "0" if k == 0 else "> n-%d" % margin))
    return k


def p256_public_key(d):
    """65-byte SEC 1 uncompressed public point of the 32-byte private key ``d``.

    Raises ValueError if ``d`` is not 32 bytes or not in [1, n-1].
    """
    k = _scalar("P-256", d, _P256_N, 1)
    if _cp:
        return _cp.p256_public_key(k)
    from edgeledger.firmware import p256 as pure

    return pure.public_key(k)


def es256_sign(d, msg):
    """ECDSA P-256 over SHA-256(msg), RFC 6979 k; returns r ‖ s (64 bytes, not DER), low-S.

    Raises ValueError on a bad private key.
    """
    k = _scalar("P-256", d, _P256_N, 1)
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


# -------------------------------------------------------------- SM2/SM3 ---
# What signing needs; the rest of SM2/SM3 (SM3 itself, verify, the CPython backend's probe)
# is in crypto_sm2.py, which a board that only signs never loads.
def _sm2(d):
    """(scalar, signing module) for the 32-byte SM2 key ``d``: ValueError unless
    1 <= d <= n-2 (GB/T 32918.1 §6.1: 1 + d must be invertible). The module is tongsuopy's
    (crypto_sm2_cpython) on CPython where it installs, else the pure sm2.py."""
    k = _scalar("SM2", d, _SM2_N, 2)
    if _cp:
        from edgeledger.firmware import crypto_sm2

        found = crypto_sm2.backend()
        if found:
            return k, found
    from edgeledger.firmware import sm2 as pure

    return k, pure


def sm2_public_key(d):
    """65-byte SEC 1 uncompressed public point of the 32-byte SM2 private key ``d``.

    Raises ValueError if ``d`` is not 32 bytes or not in [1, n-2].
    """
    k, signer = _sm2(d)
    return signer.public_key(k)


def sm2_sign(d, msg):
    """SM2 signature (GB/T 32918.2 §6.1) of ``msg`` with SM3 and the default user id;
    returns r ‖ s (64 bytes, not DER). Raises ValueError on a bad private key."""
    k, signer = _sm2(d)
    return signer.sign_message(k, msg)


# ----------------------------------------------- loaded on first access ---
def __getattr__(name):
    """The rest of the shim (see the module docstring)."""
    from edgeledger.firmware import crypto_more

    return crypto_more.shim_attr(name)

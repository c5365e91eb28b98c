"""The one crypto shim: native modules first, pure-Python fallbacks second.

This is the only module in edgeledger that probes the runtime with
``try: import``. Everything else calls these functions (bytes in, bytes out):

  sha256, sha512, hmac_sha256, hmac_sha512, random_bytes
  ed25519_public_key, ed25519_sign, ed25519_verify        (RFC 8032)
  p256_public_key, es256_sign, es256_verify               (FIPS 186-4, RFC 9053 §2.1)
  aes_ecb_encrypt_block, AesEcb, aes_ccm_encrypt, aes_ccm_decrypt  (FIPS 197, RFC 3610)

A board signs readings; it does not encrypt. So that a board's heap does not
hold it, AES/CCM (with ``CcmAuthError``) lives in ``crypto_aes.py``, imported on
first access through this module (``crypto.AesEcb``, ``from ...crypto import
CcmAuthError``).

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
are deterministic (RFC 6979) on both runtimes.
"""
import hashlib
import os

SHA256_LEN = 32
SHA512_LEN = 64
ED25519_SEED_LEN = 32
ED25519_PUB_LEN = 32
ED25519_SIG_LEN = 64
P256_PRIV_LEN = 32
P256_PUB_LEN = 65  # SEC 1 §2.3.3 uncompressed: 0x04 ‖ X ‖ Y
ES256_SIG_LEN = 64  # RFC 9053 §2.1: r ‖ s, each 32 bytes big-endian, not DER
# SEC 2 §2.4.2 (FIPS 186-4 D.1.2.3): order n of the P-256 base point.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
AES_KEY_LEN = 16
AES_BLOCK = 16

# ---------------------------------------------------------------- probing ---
try:
    import cryptography  # noqa: F401
except ImportError:
    _cp = None
else:
    from edgeledger.firmware import crypto_cpython as _cp

_cryptolib = None
if _cp is None:
    try:
        import cryptolib as _cryptolib
    except ImportError:
        try:
            import ucryptolib as _cryptolib
        except ImportError:
            _cryptolib = None

_native_sha512 = getattr(hashlib, "sha512", None)

IMPLEMENTATION = {
    "sha256": "hashlib",
    "sha512": "hashlib" if _native_sha512 else "pure",
    "hmac": "hmac" if _cp else "pure",
    "random": "os.urandom",
    "ed25519": "cryptography" if _cp else "pure",
    "p256": "cryptography" if _cp else "pure",
    "aes": "cryptography" if _cp else ("cryptolib" if _cryptolib else "pure"),
    "ccm": "cryptography" if _cp else "pure",
}

def _load(name):
    """The pure fallback module ``name``, imported on first use (keeps the board heap
    small). Module names are spelled out for the image build, which follows them."""
    return __import__(name, None, None, ("x",))


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
    return _load("edgeledger.firmware.sha512").sha512(data)


def hmac_sha256(key, data):
    """HMAC-SHA-256 (RFC 2104): 32 bytes."""
    return (_cp or _load("edgeledger.firmware.hmac")).hmac_sha256(key, data)


def hmac_sha512(key, data):
    """HMAC-SHA-512 (RFC 2104): 64 bytes."""
    return (_cp or _load("edgeledger.firmware.hmac")).hmac_sha512(key, data)


def random_bytes(n):
    """``n`` bytes from the OS/hardware RNG. Raises OSError if there is none."""
    return os.urandom(n)


# ---------------------------------------------------------------- Ed25519 ---
def _ed25519(seed):
    _need("Ed25519 seed", seed, ED25519_SEED_LEN)
    if _cp:
        return _cp.ed25519_public_key, _cp.ed25519_sign
    mod = _load("edgeledger.firmware.ed25519")
    return mod.public_key, mod.sign


def ed25519_public_key(seed):
    """RFC 8032 §5.1.5 public key (32 bytes) of a 32-byte seed."""
    return _ed25519(seed)[0](seed)


def ed25519_sign(seed, msg):
    """RFC 8032 §5.1.6 signature R ‖ S (64 bytes)."""
    return _ed25519(seed)[1](seed, msg)


def ed25519_verify(pub, msg, sig):
    """RFC 8032 §5.1.7. Returns bool; raises ValueError if ``pub`` is not 32 bytes."""
    _need("Ed25519 public key", pub, ED25519_PUB_LEN)
    if len(sig) != ED25519_SIG_LEN:
        return False
    if _cp:
        return _cp.ed25519_verify(pub, msg, sig)
    return _load("edgeledger.firmware.ed25519").verify(pub, msg, sig)


# ------------------------------------------------------------ P-256/ES256 ---
def _p256_scalar(d):
    """The private scalar of 32 bytes ``d``; ValueError unless 1 <= d < n (SEC 1 §3.2.1)."""
    _need("P-256 private key", d, P256_PRIV_LEN)
    k = int.from_bytes(bytes(d), "big")
    if k < 1 or k >= P256_N:
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
    return _load("edgeledger.firmware.p256").public_key(k)


def es256_sign(d, msg):
    """ECDSA P-256 over SHA-256(msg), RFC 6979 k; returns r ‖ s (64 bytes, not DER).

    Raises ValueError on a bad private key.
    """
    k = _p256_scalar(d)
    if _cp:
        return _cp.es256_sign(k, msg)
    return _load("edgeledger.firmware.p256").sign(k, sha256(msg))


def es256_verify(pub, msg, sig):
    """Returns bool; raises ValueError if ``pub`` is not a valid 65-byte P-256 point."""
    _need("P-256 public key", pub, P256_PUB_LEN)
    if pub[0] != 4:
        raise ValueError("P-256 public key: expected SEC1 uncompressed (0x04), found 0x%02x"
                         % pub[0])
    if _cp:
        if len(sig) != ES256_SIG_LEN:
            _cp.p256_decode_point(pub)  # still refuse a malformed key loudly
            return False
        return _cp.es256_verify(pub, msg, sig)
    return _load("edgeledger.firmware.p256").verify(pub, sha256(msg), sig)


# ----------------------------------------------- loaded on first access ---
def __getattr__(name):
    """AesEcb, aes_ecb_encrypt_block, aes_ccm_encrypt, aes_ccm_decrypt, CcmAuthError."""
    from edgeledger.firmware import crypto_aes

    try:
        return getattr(crypto_aes, name)
    except AttributeError:
        raise AttributeError("module edgeledger.firmware.crypto has no attribute %r" % (name,))

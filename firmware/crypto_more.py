"""The rest of the crypto shim, and the incremental SHA-512: imported on first access.

A board hashes and signs; verifying, MACs, random bytes and incremental hashing
are for the gateway, the tests and key generation. crypto.py and sha512.py keep
only what signing needs and reach the rest here through their ``__getattr__``,
so a board's heap never holds this code:

  crypto.py   the *_LEN constants, P256_N, AES_KEY_LEN, AES_BLOCK, IMPLEMENTATION,
              hmac_sha256, hmac_sha512, random_bytes, ed25519_verify, es256_verify
              (through ``shim_attr``, which finds AES/CCM in crypto_aes.py, SM2/SM3 in
              crypto_sm2.py and SM4/SM4-CCM in crypto_sm4.py)
  sha512.py   Sha512, the incremental SHA-512

The pure verify code is in ed25519_verify.py, p256_verify.py and sm2_verify.py (separate, so
that verifying one algorithm compiles only its own code on a board that runs
source). Contracts are those of crypto.py and sha512.py (see their docstrings).
"""
import os
import struct

from edgeledger.firmware.crypto import _cp, _native_sha512, _need, sha256

# ===================================================== the rest of crypto.py ===
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

_cryptolib = None
if _cp is None:
    try:
        import cryptolib as _cryptolib
    except ImportError:
        try:
            import ucryptolib as _cryptolib
        except ImportError:
            _cryptolib = None


def _load(name):
    """The pure fallback module ``name``, imported on first use (keeps the board heap
    small). Module names are spelled out for the image build, which follows them."""
    return __import__(name, None, None, ("x",))


IMPLEMENTATION = {
    "sha256": "hashlib",
    "sha512": "hashlib" if _native_sha512 else "pure",
    "hmac": "hmac" if _cp else "pure",
    "random": "os.urandom",
    "ed25519": "cryptography" if _cp else "pure",
    "p256": "cryptography" if _cp else "pure",
    "aes": "cryptography" if _cp else ("cryptolib" if _cryptolib else "pure"),
    "ccm": "cryptography" if _cp else "pure",
    "sm3": "cryptography" if _cp else "pure",
    "sm2": ("tongsuopy" if _load("edgeledger.firmware.crypto_sm2").backend() else "pure")
    if _cp else "pure",
    "sm4": "cryptography" if _cp else "pure",  # SM4-CCM: aesccm.py over this block cipher
}

# What crypto.py serves from here; any other name it looks up in crypto_aes.py.
_SHIM = ("SHA256_LEN", "SHA512_LEN", "ED25519_SEED_LEN", "ED25519_PUB_LEN", "ED25519_SIG_LEN",
         "P256_PRIV_LEN", "P256_PUB_LEN", "ES256_SIG_LEN", "P256_N", "AES_KEY_LEN", "AES_BLOCK",
         "IMPLEMENTATION", "hmac_sha256", "hmac_sha512", "random_bytes", "ed25519_verify",
         "es256_verify", "_cryptolib", "_load")
# What crypto.py serves from the national-algorithm modules (any other name: crypto_aes.py).
_ELSEWHERE = (
    ("edgeledger.firmware.crypto_sm2", ("SM2_N", "SM2_PRIV_LEN", "SM2_PUB_LEN", "SM2_SIG_LEN",
                                        "SM3_LEN", "sm3", "hmac_sm3", "sm2_verify")),
    ("edgeledger.firmware.crypto_sm4", ("SM4_KEY_LEN", "SM4_BLOCK", "Sm4Ecb",
                                        "sm4_ecb_encrypt_block", "sm4_ccm_encrypt",
                                        "sm4_ccm_decrypt")),
)


def shim_attr(name):
    """``crypto.<name>`` for a name crypto.py does not define itself."""
    if name in _SHIM:
        return globals()[name]
    for module, names in _ELSEWHERE:
        if name in names:
            return getattr(_load(module), name)
    from edgeledger.firmware import crypto_aes

    try:
        return getattr(crypto_aes, name)
    except AttributeError:
        raise AttributeError("module edgeledger.firmware.crypto has no attribute %r" % (name,))


def hmac_sha256(key, data):
    """HMAC-SHA-256 (RFC 2104): 32 bytes."""
    return (_cp or _load("edgeledger.firmware.hmac")).hmac_sha256(key, data)


def hmac_sha512(key, data):
    """HMAC-SHA-512 (RFC 2104): 64 bytes."""
    return (_cp or _load("edgeledger.firmware.hmac")).hmac_sha512(key, data)


def random_bytes(n):
    """``n`` bytes from the OS/hardware RNG. Raises OSError if there is none."""
    return os.urandom(n)


def ed25519_verify(pub, msg, sig):
    """RFC 8032 §5.1.7. Returns bool; raises ValueError if ``pub`` is not 32 bytes."""
    _need("Ed25519 public key", pub, ED25519_PUB_LEN)
    if len(sig) != ED25519_SIG_LEN:
        return False
    if _cp:
        return _cp.ed25519_verify(pub, msg, sig)
    from edgeledger.firmware.ed25519_verify import verify

    return verify(pub, msg, sig)


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
    from edgeledger.firmware.p256_verify import verify

    return verify(pub, sha256(msg), sig)


# ================================================== sha512.Sha512 (FIPS 180-4) ===
# The pure SHA-512 module is imported where it is used: reading IMPLEMENTATION, say,
# must not load it.
class Sha512:
    """Incremental SHA-512: ``Sha512(data).update(more).digest()``."""

    digest_size = 64
    block_size = 128

    def __init__(self, data=b""):
        from edgeledger.firmware.sha512 import _H0

        self._h = list(struct.unpack(">16I", _H0))
        self._buf = b""
        self._len = 0
        if data:
            self.update(data)

    def update(self, data):
        from edgeledger.firmware.sha512 import _compress

        self._len += len(data)
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        off = 0
        while len(buf) - off >= 128:
            _compress(self._h, buf, off)
            off += 128
        self._buf = buf[off:]
        return self

    def digest(self):
        from edgeledger.firmware.sha512 import _final

        return _final(list(self._h), self._buf, self._len)

"""The cryptography a device and the gateway share: native first, pure Python second.

This module is what a device needs, bytes in, bytes out:

  sha256, sha512, sm3                                (FIPS 180-4, GB/T 32905)
  ed25519_public_key, ed25519_sign                   (RFC 8032)
  p256_public_key, es256_sign, es256_low_s           (FIPS 186-4, RFC 9053 §2.1)
  sm2_public_key, sm2_sign                           (GB/T 32918.2 with SM3, Z_A of the
                                                      default id 1234567812345678)
  random_bytes                                       (a new private key's bytes)

and the one place that probes the runtime (``CPYTHON``, ``CRYPTOLIB``, ``NATIVE_SHA512``,
``sm2_backend``; ``implementation()`` names the backend serving each primitive). The
package's other modules, each for one concern::

    verify.py    verify Ed25519, ES256 and SM2 signatures     gateway, tests, tools
    mac.py       HMAC-SHA-256/512, HMAC-SM3                  tests
    cipher.py    AES-128, SM4, CCM over either               tests, tools
    cpython.py   the CPython backend (hashlib, hmac, cryptography)
    tongsuo.py   SM2 on CPython (tongsuopy)
    errors.py    CcmAuthError
    pure/        the pure-Python code MicroPython runs: sha512, sm3, hmac, aes, sm4, ccm,
                 ecc/ (the a = -3 curve arithmetic P-256 and SM2 share), and per algorithm
                 a sign.py and a verify.py (ed25519/, p256/, sm2/)

Backends: ``cryptography`` on CPython (``cpython.py``; SM2 through tongsuopy where its
wheel installs); on MicroPython hashlib.sha256, os.urandom, cryptolib AES-ECB where the
port has it, and the pure modules, each imported on first use, so a board that signs
Ed25519 never loads the P-256 or SM2 code. A board saves memory through its image build,
not through these names: ``firmware build`` ships what the board's code imports and leaves
signature verification out (a board signs, the gateway verifies).

Every function raises ValueError for an argument of the wrong length, and for a private
key out of range. ES256 signatures are deterministic (RFC 6979) on both runtimes, and
low-S (s <= n/2) so that a reading has one signature, not two; SM2 signatures are
deterministic (RFC 6979 with HMAC-SM3) from the pure code and random-k from tongsuopy
(both valid GB/T 32918.2 signatures: a verifier cannot tell them apart).
"""
import hashlib
import os

try:
    from micropython import const
except ImportError:  # CPython
    const = int

# ------------------------------------------------------------- the probe ---
try:
    import cryptography  # noqa: F401
except ImportError:  # MicroPython, or a CPython without it
    CPYTHON = None
else:
    from edgeledger.agent.crypto import cpython as CPYTHON

CRYPTOLIB = None
if CPYTHON is None:
    try:
        import cryptolib as CRYPTOLIB
    except ImportError:
        try:
            import ucryptolib as CRYPTOLIB
        except ImportError:
            CRYPTOLIB = None

NATIVE_SHA512 = getattr(hashlib, "sha512", None)

_sm2_found = None  # the tongsuo module once found, False once found missing


def sm2_backend():
    """``tongsuo.py`` (tongsuopy's SM2) on CPython where it imports, else None (pure SM2)."""
    global _sm2_found
    if _sm2_found is None:
        _sm2_found = False
        if CPYTHON:
            try:
                from edgeledger.agent.crypto import tongsuo
            except ImportError:  # tongsuopy has no wheel for this platform
                tongsuo = False
            _sm2_found = tongsuo
    return _sm2_found or None


def need(name, value, n):
    """Raise ValueError unless ``value`` is ``n`` bytes long."""
    if len(value) != n:
        raise ValueError("%s: expected %d bytes, found %d" % (name, n, len(value)))


def implementation():
    """{primitive: the backend serving it}, e.g. {"ed25519": "pure", ...}."""
    cp = "cryptography" if CPYTHON else "pure"
    return {
        "sha256": "hashlib",
        "sha512": "hashlib" if NATIVE_SHA512 else "pure",
        "hmac": "hmac" if CPYTHON else "pure",
        "random": "os.urandom",
        "ed25519": cp,
        "p256": cp,
        "aes": "cryptography" if CPYTHON else ("cryptolib" if CRYPTOLIB else "pure"),
        "ccm": cp,
        "sm3": cp,
        "sm2": "tongsuopy" if sm2_backend() else "pure",
        "sm4": cp,  # SM4-CCM: pure/ccm.py over this block cipher
    }


# ---------------------------------------------------------------- hashes ---
def sha256(data):
    """SHA-256 (FIPS 180-4) of ``data``: 32 bytes."""
    return hashlib.sha256(data).digest()


def sha512(data):
    """SHA-512 (FIPS 180-4) of ``data``: 64 bytes."""
    if NATIVE_SHA512:
        return NATIVE_SHA512(data).digest()
    from edgeledger.agent.crypto.pure import sha512 as pure

    return pure.sha512(data)


def sm3(data):
    """SM3 (GB/T 32905) of ``data``: 32 bytes."""
    if CPYTHON:
        return CPYTHON.sm3(data)
    from edgeledger.agent.crypto.pure import sm3 as pure

    return pure.sm3(data)


# --------------------------------------------------------------- signing ---
# Private constants are ``const`` on MicroPython: inlined, no global, no heap.
_KEY_LEN = const(32)  # every private key: an Ed25519 seed, a P-256 or SM2 scalar
# SEC 2 §2.4.2 (FIPS 186-4 D.1.2.3): order n of the P-256 base point.
_P256_N = const(0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551)
# GB/T 32918.5 §3: order n of the sm2p256v1 base point.
_SM2_N = const(0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123)


def random_bytes(n):
    """``n`` bytes from the OS/hardware RNG (a new private key). Raises OSError if there is none."""
    return os.urandom(n)


# ---------------------------------------------------------------- Ed25519 ---
# The pure modules are imported inside the functions: on first use, and only the
# one the board's algorithm needs.
def _ed25519(seed):
    need("Ed25519 seed", seed, _KEY_LEN)
    if CPYTHON:
        return CPYTHON.ed25519_public_key, CPYTHON.ed25519_sign
    from edgeledger.agent.crypto.pure.ed25519 import sign as pure

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
    need(name + " private key", d, _KEY_LEN)
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
    if CPYTHON:
        return CPYTHON.p256_public_key(k)
    from edgeledger.agent.crypto.pure.p256 import sign as pure

    return pure.public_key(k)


def es256_sign(d, msg):
    """ECDSA P-256 over SHA-256(msg), RFC 6979 k; returns r ‖ s (64 bytes, not DER), low-S.

    Raises ValueError on a bad private key.
    """
    k = _scalar("P-256", d, _P256_N, 1)
    if CPYTHON:
        return es256_low_s(CPYTHON.es256_sign(k, msg))
    from edgeledger.agent.crypto.pure.p256 import sign as pure

    return es256_low_s(pure.sign(k, sha256(msg)))


def es256_low_s(sig):
    """ES256 r ‖ s with s > n/2 replaced by n - s: the same signature to any verifier,
    and the only one of the two a gateway accepts (protocols/cose/verify.py, canonical form).
    A signer whose ECDSA comes from elsewhere (a secure element) passes its output here."""
    s = int.from_bytes(sig[32:], "big")
    if s > _P256_N >> 1:
        return sig[:32] + (_P256_N - s).to_bytes(32, "big")
    return sig


# ------------------------------------------------------------------- SM2 ---
def _sm2_signer(d):
    """(scalar, signing module) for the 32-byte SM2 key ``d``: ValueError unless
    1 <= d <= n-2 (GB/T 32918.1 §6.1: 1 + d must be invertible). The module is tongsuopy's
    (``tongsuo.py``) on CPython where it installs, else the pure ``pure/sm2/sign.py``."""
    k = _scalar("SM2", d, _SM2_N, 2)
    found = sm2_backend() if CPYTHON else None
    if found:
        return k, found
    from edgeledger.agent.crypto.pure.sm2 import sign as pure

    return k, pure


def sm2_public_key(d):
    """65-byte SEC 1 uncompressed public point of the 32-byte SM2 private key ``d``.

    Raises ValueError if ``d`` is not 32 bytes or not in [1, n-2].
    """
    k, signer = _sm2_signer(d)
    return signer.public_key(k)


def sm2_sign(d, msg):
    """SM2 signature (GB/T 32918.2 §6.1) of ``msg`` with SM3 and the default user id;
    returns r ‖ s (64 bytes, not DER). Raises ValueError on a bad private key."""
    k, signer = _sm2_signer(d)
    return signer.sign_message(k, msg)

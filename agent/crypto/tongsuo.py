"""CPython backend of the crypto package for SM2: ``tongsuopy``.

``cryptography`` has SM3 and SM4 but no SM2 signatures; tongsuopy (the Tongsuo project's
Python binding of its OpenSSL fork, which implements GB/T 32918.2) was chosen among the
PyPI candidates by verify rate and correctness (docs/national-crypto.md). Tongsuo signs an
SM2 key with ``ECDSA(SM3)`` as GB/T 32918.2 says: e = SM3(Z_A ‖ M), Z_A over the default
user id 1234567812345678, and a random k.

Imported only by ``sm2_backend`` (``__init__.py``), which falls back to the pure ``pure/sm2`` where
this import fails (tongsuopy ships x86-64 Linux, macOS and Windows wheels
only). Functions have the contracts of the package's sm2_* functions; scalars come in checked (1 <= d <= n-2), keys
length- and prefix-checked. Errors from tongsuopy are translated here.
"""
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from tongsuopy.crypto import hashes, serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature

_SM2_SM3 = ec.ECDSA(hashes.SM3())  # on an SM2 key: the GB/T 32918.2 signature with Z_A
# The key object of the last private key used: a device signs with one key, and deriving
# the object costs a scalar multiplication. One entry, so a bound of one.
_last: tuple[int, Any] | None = None


def _private(d: int) -> Any:
    global _last
    if _last is None or _last[0] != d:
        _last = (d, ec.derive_private_key(d, ec.SM2()))
    return _last[1]


def public_key(d: int) -> bytes:
    """``d`` the checked scalar (int) -> 65-byte SEC 1 uncompressed point."""
    return _private(d).public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)


def sign_message(d: int, msg: bytes) -> bytes:
    """``d`` the checked scalar (int) -> r ‖ s (64 bytes) over ``msg`` (the pure sm2/sign.py's
    name and contract)."""
    r, s = decode_dss_signature(_private(d).sign(bytes(msg), _SM2_SM3))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def public_key_object(pub: bytes) -> Any:
    """The key object of a 65-byte 0x04 point; ValueError if it is not on sm2p256v1."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), bytes(pub))
    except ValueError:
        raise ValueError("SM2 public key: expected a point on the curve, found one that is not") from None


def verify(key: Any, msg: bytes, r: int, s: int) -> bool:
    """True if (r, s), already range-checked, verifies over ``msg`` with the key object."""
    try:
        key.verify(encode_dss_signature(r, s), bytes(msg), _SM2_SM3)
    except InvalidSignature:
        return False
    return True

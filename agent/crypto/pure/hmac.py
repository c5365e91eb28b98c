"""Pure-Python HMAC (RFC 2104) for MicroPython, which has no ``hmac`` module.

HMAC(K, m) = H((K' ^ opad) ‖ H((K' ^ ipad) ‖ m)), K' = K padded (or first hashed, if
longer than the block) to the hash's block size B (RFC 2104 §2). HMAC-SHA-256 feeds the
native ``hashlib.sha256`` piece by piece (ES256 signing, RFC 6979's nonce derivation, on a
board: no copy of the inner input); the pure hashes (SHA-512, SM3) are one-shot
(``digest(bytes) -> bytes``), so ``hmac_oneshot`` hashes the inner input in one piece.
"""
import hashlib

_IPAD = 0x36
_OPAD = 0x5C
SHA256_BLOCK = 64  # FIPS 180-4 §5: SHA-256 block, bytes
SHA512_BLOCK = 128  # FIPS 180-4 §5: SHA-512 block, bytes


def _pads(key, block):
    """K' ^ ipad and K' ^ opad for a key no longer than the block (callers hash longer
    ones first, RFC 2104 §2)."""
    ki = bytearray(block)
    ko = bytearray(block)
    for i in range(block):
        b = key[i] if i < len(key) else 0
        ki[i] = b ^ _IPAD
        ko[i] = b ^ _OPAD
    return bytes(ki), bytes(ko)


def hmac_oneshot(digest, block, key, data):
    """HMAC over a one-shot hash ``digest(bytes) -> bytes`` with block size ``block``."""
    if len(key) > block:
        key = digest(key)  # RFC 2104 §2
    ki, ko = _pads(key, block)
    return digest(ko + digest(ki + bytes(data)))


def hmac_sha256(key, data):
    """HMAC-SHA-256 on the native ``hashlib.sha256`` (32 bytes), fed piece by piece: no
    copy of K' ^ ipad ‖ m is made (a board signs with little heap)."""
    if len(key) > SHA256_BLOCK:
        key = hashlib.sha256(key).digest()  # RFC 2104 §2
    ki, ko = _pads(key, SHA256_BLOCK)
    h = hashlib.sha256(ki)
    h.update(data)
    o = hashlib.sha256(ko)
    o.update(h.digest())
    return o.digest()


def hmac_sha512(key, data):
    """HMAC-SHA-512 on the pure SHA-512 (64 bytes)."""
    # imported here: ES256 signing (p256 nonces -> hmac_sha256) never needs SHA-512's code
    from edgeledger.agent.crypto.pure.sha512 import sha512

    return hmac_oneshot(sha512, SHA512_BLOCK, key, data)

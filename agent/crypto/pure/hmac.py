"""Pure-Python HMAC (RFC 2104) for MicroPython, which has no ``hmac`` module.

HMAC(K, m) = H((K' ^ opad) ‖ H((K' ^ ipad) ‖ m)), K' = K padded (or first hashed, if
longer than the block) to the hash's block size B (RFC 2104 §2). The hashes here are
one-shot (``digest(bytes) -> bytes``): what a device MACs is short (RFC 6979's nonce
derivation), so the inner input is hashed in one piece.
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


def _sha256(data):
    return hashlib.sha256(data).digest()


def hmac_sha256(key, data):
    """HMAC-SHA-256 on the native ``hashlib.sha256`` (32 bytes)."""
    return hmac_oneshot(_sha256, SHA256_BLOCK, key, data)


def hmac_sha512(key, data):
    """HMAC-SHA-512 on the pure SHA-512 (64 bytes)."""
    # imported here: ES256 signing (p256 nonces -> hmac_sha256) never needs SHA-512's code
    from edgeledger.agent.crypto.pure.sha512 import sha512

    return hmac_oneshot(sha512, SHA512_BLOCK, key, data)

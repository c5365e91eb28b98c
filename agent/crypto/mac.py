"""Message authentication codes: HMAC (RFC 2104) over SHA-256, SHA-512 and SM3.

``hmac``/``cryptography`` on CPython, the pure ``pure/hmac.py`` elsewhere (MicroPython has
no ``hmac`` module). A board never MACs: RFC 6979 nonces use the pure HMAC directly.
"""
from edgeledger.agent.crypto import CPYTHON


def hmac_sha256(key, data):
    """HMAC-SHA-256 (RFC 2104): 32 bytes."""
    if CPYTHON:
        return CPYTHON.hmac_sha256(key, data)
    from edgeledger.agent.crypto.pure import hmac as pure

    return pure.hmac_sha256(key, data)


def hmac_sha512(key, data):
    """HMAC-SHA-512 (RFC 2104): 64 bytes."""
    if CPYTHON:
        return CPYTHON.hmac_sha512(key, data)
    from edgeledger.agent.crypto.pure import hmac as pure

    return pure.hmac_sha512(key, data)


def hmac_sm3(key, data):
    """HMAC-SM3 (RFC 2104 over SM3, 64-byte block): 32 bytes."""
    if CPYTHON:
        return CPYTHON.hmac_sm3(key, data)
    from edgeledger.agent.crypto.pure import sm3 as pure

    return pure.hmac_sm3(key, data)

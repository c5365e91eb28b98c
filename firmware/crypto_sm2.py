"""SM2 and SM3 for the crypto shim (``crypto.py``): loaded on first use.

Reached as ``crypto.sm3``, ``crypto.hmac_sm3``, ``crypto.sm2_verify``, ``crypto.SM2_N``, ...
(through ``crypto_more.shim_attr``). Signing (``crypto.sm2_public_key``/``sm2_sign``) is in
crypto.py, so that a board that signs SM2 does not hold this module; on CPython it asks
``backend()`` here which signer to use.

Backends: SM3 from ``cryptography`` on CPython, else the pure sm3.py; SM2 from tongsuopy
(crypto_sm2_cpython.py) on CPython where it installs, else the pure sm2.py (boards, and
CPython on platforms tongsuopy ships no wheel for). Contracts as the rest of the shim:
ValueError for arguments of the wrong length or range; verify returns False for a
signature that does not verify, whatever its length, and raises ValueError for a
malformed public key.
"""
from edgeledger.firmware.crypto import _cp, _need

# GB/T 32918.5 §3: order n of the sm2p256v1 base point.
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
SM2_PRIV_LEN = 32
SM2_PUB_LEN = 65  # SEC 1 §2.3.3 uncompressed (GB/T 32918.1 §4.2.9): 0x04 ‖ X ‖ Y
SM2_SIG_LEN = 64  # r ‖ s, each 32 bytes big-endian, not DER (docs/wire-format.md)
SM3_LEN = 32

_backend = None  # crypto_sm2_cpython once found, False once found missing


def backend():
    """crypto_sm2_cpython (tongsuopy) on CPython where it imports, else None (pure SM2)."""
    global _backend
    if _backend is None:
        _backend = False
        if _cp:
            try:
                from edgeledger.firmware import crypto_sm2_cpython as found
            except ImportError:  # tongsuopy has no wheel for this platform
                found = False
            _backend = found
    return _backend or None


def sm3(data):
    """SM3 (GB/T 32905) of ``data``: 32 bytes."""
    if _cp:
        return _cp.sm3(data)
    from edgeledger.firmware import sm3 as pure

    return pure.sm3(data)


def hmac_sm3(key, data):
    """HMAC-SM3 (RFC 2104 over SM3): 32 bytes."""
    if _cp:
        return _cp.hmac_sm3(key, data)
    from edgeledger.firmware import sm3 as pure

    return pure.hmac_sm3(key, data)


def sm2_verify(pub, msg, sig):
    """GB/T 32918.2 §7.1 with SM3 and the default user id. Returns bool (False for a
    signature that is not 64 bytes, or whose r or s is outside [1, n-1]); raises
    ValueError if ``pub`` is not a valid 65-byte SEC 1 uncompressed sm2p256v1 point."""
    _need("SM2 public key", pub, SM2_PUB_LEN)
    if pub[0] != 4:
        raise ValueError("SM2 public key: expected SEC1 uncompressed (0x04), found 0x%02x"
                         % pub[0])
    found = backend()
    if not found:
        from edgeledger.firmware.sm2_verify import verify_message

        return verify_message(pub, msg, sig)
    key = found.public_key_object(pub)  # a malformed key raises, whatever the signature
    if len(sig) != SM2_SIG_LEN:
        return False
    r = int.from_bytes(bytes(sig[:32]), "big")
    s = int.from_bytes(bytes(sig[32:]), "big")
    if not (0 < r < SM2_N and 0 < s < SM2_N):  # the canonical form: r, s reduced mod n
        return False
    return found.verify(key, msg, r, s)

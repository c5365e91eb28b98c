"""Verification: Ed25519, ES256 and SM2 signatures, bytes in, bool out.

  ed25519_verify                                     (RFC 8032 §5.1.7)
  es256_verify                                       (SEC 1 §4.1.4, RFC 9053 §2.1)
  sm2_verify                                         (GB/T 32918.2 §7.1 with SM3 and the
                                                      default user id)

A board signs and never verifies: its image leaves this module and the pure verify code
out (``firmware build``, ``NOT_ON_BOARDS``). The gateway verifies with
``cryptography``/tongsuopy; pure Python serves where they are missing.

Each returns False for a signature that does not verify (wrong length or a scalar out of
range included) and raises ValueError for a malformed public key.
"""
from edgeledger.agent.crypto import CPYTHON, need, sha256, sm2_backend

ED25519_PUB_LEN = 32
ED25519_SIG_LEN = 64
P256_PUB_LEN = 65  # SEC 1 §2.3.3 uncompressed: 0x04 ‖ X ‖ Y
ES256_SIG_LEN = 64  # RFC 9053 §2.1: r ‖ s, each 32 bytes big-endian, not DER
SM2_PUB_LEN = 65  # SEC 1 §2.3.3 uncompressed (GB/T 32918.1 §4.2.9): 0x04 ‖ X ‖ Y
SM2_SIG_LEN = 64  # r ‖ s, each 32 bytes big-endian, not DER (docs/wire-format.md)
# GB/T 32918.5 §3: order n of the sm2p256v1 base point.
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


def _uncompressed(name, pub, n):
    need(name + " public key", pub, n)
    if pub[0] != 4:
        raise ValueError("%s public key: expected SEC1 uncompressed (0x04), found 0x%02x"
                         % (name, pub[0]))


def ed25519_verify(pub, msg, sig):
    """RFC 8032 §5.1.7. Returns bool; raises ValueError if ``pub`` is not 32 bytes."""
    need("Ed25519 public key", pub, ED25519_PUB_LEN)
    if len(sig) != ED25519_SIG_LEN:
        return False
    if CPYTHON:
        return CPYTHON.ed25519_verify(pub, msg, sig)
    from edgeledger.agent.crypto.pure.ed25519 import verify as pure

    return pure.verify(pub, msg, sig)


def es256_verify(pub, msg, sig):
    """Returns bool; raises ValueError if ``pub`` is not a valid 65-byte P-256 point."""
    _uncompressed("P-256", pub, P256_PUB_LEN)
    if CPYTHON:
        if len(sig) != ES256_SIG_LEN:
            CPYTHON.p256_decode_point(pub)  # still refuse a malformed key loudly
            return False
        return CPYTHON.es256_verify(pub, msg, sig)
    from edgeledger.agent.crypto.pure.p256 import verify as pure

    return pure.verify(pub, sha256(msg), sig)


def sm2_verify(pub, msg, sig):
    """GB/T 32918.2 §7.1 with SM3 and the default user id. Returns bool (False for a
    signature that is not 64 bytes, or whose r or s is outside [1, n-1]); raises
    ValueError if ``pub`` is not a valid 65-byte SEC 1 uncompressed sm2p256v1 point."""
    _uncompressed("SM2", pub, SM2_PUB_LEN)
    found = sm2_backend()
    if not found:
        from edgeledger.agent.crypto.pure.sm2 import verify as pure

        return pure.verify_message(pub, msg, sig)
    key = found.public_key_object(pub)  # a malformed key raises, whatever the signature
    if len(sig) != SM2_SIG_LEN:
        return False
    r = int.from_bytes(bytes(sig[:32]), "big")
    s = int.from_bytes(bytes(sig[32:]), "big")
    if not (0 < r < SM2_N and 0 < s < SM2_N):  # the canonical form: r, s reduced mod n
        return False
    return found.verify(key, msg, r, s)

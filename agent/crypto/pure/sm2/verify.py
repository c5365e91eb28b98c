"""Pure-Python SM2 signature verification (GB/T 32918.2-2016 §7.1) and public-key decoding.

A board signs and never verifies, so its image leaves this module out. Arithmetic as in
``sign.py``; [s]G + [t]P and the x test are ``ecc/verify.py``'s ``x_matches``, shared with
P-256.
"""
from edgeledger.agent.crypto.pure.ecc import verify as ecc_verify
from edgeledger.agent.crypto.pure.sm2.sign import DEFAULT_UID, N, affine, base_mul, double, madd, z_a
from edgeledger.agent.crypto.pure.sm3 import sm3

# GB/T 32918.5 §3: field prime p, curve coefficient b (a = p − 3).
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_OPS = (double, madd, affine, base_mul)


def decode_point(pub):
    """(x, y) of a 65-byte SEC 1 uncompressed point (GB/T 32918.1 §4.2.9 form 04), on
    sm2p256v1. Raises ValueError for a wrong length, a wrong prefix, coordinates >= p or
    a point not on the curve."""
    return ecc_verify.decode_point(pub, P, B, "SM2")


def verify(pub, digest, sig):
    """§7.1 verification of r ‖ s over the 32-byte ``digest`` e = SM3(Z_A ‖ M).

    Returns bool: False unless ``sig`` is 64 bytes with r, s in [1, n-1] (B1, B2) and
    t = r + s mod n is not 0 (B5). Raises ValueError (from decode_point) for a
    malformed key.
    """
    q = decode_point(pub)
    rs = ecc_verify.scalars(sig, N)
    if rs is None:
        return False
    r, s = rs
    t = (r + s) % N
    if t == 0:
        return False
    # B6-B7: (x1, y1) = [s]G + [t]P, R = (e + x1) mod n == r, i.e. x1 ≡ r − e (mod n).
    return ecc_verify.x_matches(_OPS, P, N, q, s, t, (r - int.from_bytes(digest, "big")) % N)


def verify_message(pub, msg, sig, uid=DEFAULT_UID):
    """``verify`` of the message ``msg``: e = SM3(Z_A ‖ msg) with Z_A of ``pub`` and ``uid``."""
    decode_point(pub)  # a malformed key raises before it is hashed into Z_A
    return verify(pub, sm3(z_a(pub, uid) + bytes(msg)), sig)

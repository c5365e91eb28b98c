"""Pure-Python P-256 ECDSA verification (SEC 1 §4.1.4) and point decoding (§2.3.4).

A board signs and never verifies, so its image leaves this module out. Arithmetic as in
``sign.py`` (whose curve functions this module reuses); [u1]G + [u2]Q and the x test are
``ecc/verify.py``'s ``x_matches``, shared with SM2.
"""
from edgeledger.agent.crypto.pure.ecc import verify as ecc_verify
from edgeledger.agent.crypto.pure.p256.sign import N, affine, base_mul, double, madd

# P-256 (SEC 2 §2.4.2): field prime p, curve coefficient b (a = -3).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
PUB_LEN = ecc_verify.PUB_LEN
_OPS = (double, madd, affine, base_mul)


def decode_point(pub):
    """(x, y) of a SEC 1 uncompressed point (§2.3.4), on the curve.

    Raises ValueError for a wrong length, a wrong prefix, coordinates >= p or a
    point not on P-256.
    """
    return ecc_verify.decode_point(pub, P, B, "P-256")


def verify(pub, digest, sig):
    """SEC 1 §4.1.4 verification of r ‖ s over ``digest``.

    Returns bool; raises ValueError (from decode_point) for a malformed key.
    """
    q = decode_point(pub)
    rs = ecc_verify.scalars(sig, N)
    if rs is None:
        return False
    r, s = rs
    e = int.from_bytes(digest, "big")
    w = pow(s, N - 2, N)
    u1 = e * w % N
    u2 = r * w % N
    return ecc_verify.x_matches(_OPS, P, N, q, u1, u2, r)

"""P-256 ECDSA verification (SEC 1 §4.1.4) and point decoding (§2.3.4), reached
as ``p256.verify`` and ``p256.decode_point``.

Imported on first access: a board signs and never verifies, so its heap does
not hold this code. Arithmetic as in p256.py (whose signing functions this
module reuses); variable-base [u]Q is a 4-bit window over an affine table.
"""
from edgeledger.firmware.p256 import N, _affine, _base_mul, _double, _madd

# P-256 (SEC 2 §2.4.2): field prime p, curve coefficient b (a = -3).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
PUB_LEN = 65  # SEC 1 §2.3.3 uncompressed: 0x04 ‖ X ‖ Y


def decode_point(pub):
    """(x, y) of a SEC 1 uncompressed point (§2.3.4), on the curve.

    Raises ValueError for a wrong length, a wrong prefix, coordinates >= p or a
    point not on P-256.
    """
    if len(pub) != PUB_LEN:
        raise ValueError("P-256 public key: expected %d bytes, found %d" % (PUB_LEN, len(pub)))
    if pub[0] != 4:
        raise ValueError("P-256 public key: expected SEC1 uncompressed (0x04), found 0x%02x"
                         % pub[0])
    x = int.from_bytes(bytes(pub[1:33]), "big")
    y = int.from_bytes(bytes(pub[33:65]), "big")
    if x >= P or y >= P or (y * y - (x * x * x - 3 * x + B)) % P:
        raise ValueError("P-256 public key: expected a point on the curve, found one that is not")
    return (x, y)


def _affine_many(points):
    """Affine (x, y) of Jacobian points (none at ∞), one inversion (Montgomery's trick)."""
    acc = []
    prod = 1
    for pt in points:
        prod = prod * pt[2] % P
        acc.append(prod)
    inv = pow(prod, P - 2, P)
    out = [None] * len(points)
    for i in range(len(points) - 1, -1, -1):
        X, Y, Z = points[i]
        zi = inv * acc[i - 1] % P if i else inv
        inv = inv * Z % P
        zi2 = zi * zi % P
        out[i] = (X * zi2 % P, Y * zi2 % P * zi % P)
    return out


def verify(pub, digest, sig):
    """SEC 1 §4.1.4 verification of r ‖ s over ``digest``.

    Returns bool; raises ValueError (from decode_point) for a malformed key.
    """
    q = decode_point(pub)
    if len(sig) != 64:
        return False
    r = int.from_bytes(bytes(sig[:32]), "big")
    s = int.from_bytes(bytes(sig[32:]), "big")
    if not (1 <= r < N and 1 <= s < N):
        return False
    e = int.from_bytes(digest, "big")
    w = pow(s, N - 2, N)
    u1 = e * w % N
    u2 = r * w % N
    # [u2]Q, 4-bit window over the affine multiples 1..15 of Q (Q has prime order
    # n > 15, so none of them is ∞).
    jac = [(q[0], q[1], 1)]
    for _ in range(14):
        jac.append(_madd(jac[-1], q))
    table = [None] + _affine_many(jac)
    kb = u2.to_bytes(32, "little")
    acc = (1, 1, 0)  # ∞
    for i in range(63, -1, -1):
        acc = _double(_double(_double(_double(acc))))
        nib = (kb[i >> 1] >> (4 * (i & 1))) & 15
        if nib:
            acc = _madd(acc, table[nib])
    if u1:
        acc = _madd(acc, _affine(_base_mul(u1))) if acc[2] else _base_mul(u1)
    X, _, Z = acc
    if Z == 0:
        return False
    # x(R) mod n == r without an inversion: X == r' Z² for r' = r or r + n (< p).
    zz = Z * Z % P
    if X == r * zz % P:
        return True
    return r + N < P and X == (r + N) * zz % P

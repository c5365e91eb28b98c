"""Verifying on the curves of ``curve.py``: point decoding, the signature's scalars, and
[u1]G + [u2]Q with its x coordinate mod n, shared by P-256 ECDSA (``p256/verify.py``) and SM2
(``sm2/verify.py``).

A board signs and never verifies, so its image leaves this module out.
"""

PUB_LEN = 65  # SEC 1 §2.3.3 uncompressed: 0x04 ‖ X ‖ Y


def decode_point(pub, p, b, name):
    """(x, y) of a SEC 1 uncompressed point (§2.3.4) on y² = x³ − 3x + b over GF(p).

    Raises ValueError for a wrong length, a wrong prefix, coordinates >= p or a point not
    on the curve; ``name`` ("P-256", "SM2") starts the message.
    """
    if len(pub) != PUB_LEN:
        raise ValueError("%s public key: expected %d bytes, found %d" % (name, PUB_LEN, len(pub)))
    if pub[0] != 4:
        raise ValueError("%s public key: expected SEC1 uncompressed (0x04), found 0x%02x"
                         % (name, pub[0]))
    x = int.from_bytes(bytes(pub[1:33]), "big")
    y = int.from_bytes(bytes(pub[33:65]), "big")
    if x >= p or y >= p or (y * y - (x * x * x - 3 * x + b)) % p:
        raise ValueError("%s public key: expected a point on the curve, found one that is not"
                         % name)
    return (x, y)


def scalars(sig, n):
    """(r, s) of a 64-byte r ‖ s with both in [1, n-1] (the canonical form), else None."""
    if len(sig) != 64:
        return None
    r = int.from_bytes(bytes(sig[:32]), "big")
    s = int.from_bytes(bytes(sig[32:]), "big")
    if not (1 <= r < n and 1 <= s < n):
        return None
    return r, s


def affine_many(points, p):
    """Affine (x, y) of Jacobian points (none at ∞) over GF(p), one inversion (Montgomery's
    trick)."""
    acc = []
    prod = 1
    for pt in points:
        prod = prod * pt[2] % p
        acc.append(prod)
    inv = pow(prod, p - 2, p)
    out = [None] * len(points)
    for i in range(len(points) - 1, -1, -1):
        X, Y, Z = points[i]
        zi = inv * acc[i - 1] % p if i else inv
        inv = inv * Z % p
        zi2 = zi * zi % p
        out[i] = (X * zi2 % p, Y * zi2 % p * zi % p)
    return out


def x_matches(ops, p, n, q, u1, u2, v):
    """True if R = [u1]G + [u2]Q is not ∞ and x(R) ≡ v (mod n), for 0 <= v < n.

    ``ops`` is ``curve.curve(p, comb)``; ``q`` the affine point Q (of prime order n > 15);
    0 <= u1, u2 < 2**256. Both ECDSA (SEC 1 §4.1.4: v = r) and SM2 (GB/T 32918.2 §7.1:
    v = r − e mod n) end in this test.
    """
    double, madd, affine, base_mul = ops
    # [u2]Q, 4-bit window over the affine multiples 1..15 of Q (Q has prime order
    # n > 15, so none of them is ∞).
    jac = [(q[0], q[1], 1)]
    for _ in range(14):
        jac.append(madd(jac[-1], q))
    table = [None] + affine_many(jac, p)
    kb = u2.to_bytes(32, "little")
    acc = (1, 1, 0)  # ∞
    for i in range(63, -1, -1):
        acc = double(double(double(double(acc))))
        nib = (kb[i >> 1] >> (4 * (i & 1))) & 15
        if nib:
            acc = madd(acc, table[nib])
    if u1:
        acc = madd(acc, affine(base_mul(u1))) if acc[2] else base_mul(u1)
    X, _, Z = acc
    if Z == 0:
        return False
    # x(R) mod n == v without an inversion: X == v' Z² for v' = v or v + n (< p).
    zz = Z * Z % p
    if X == v * zz % p:
        return True
    return v + n < p and X == (v + n) * zz % p

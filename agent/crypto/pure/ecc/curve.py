"""Prime-field curves y² = x³ − 3x + b in Jacobian coordinates: the arithmetic that P-256
(``p256/sign.py``) and SM2's sm2p256v1 (``sm2/sign.py``) share, both having a = −3.

``curve(p, comb)`` returns ``(double, madd, affine, base_mul)`` bound to the field prime
``p`` and to the curve's comb table for [k]G:

  double(P)       2P, dbl-2001-b (a = −3)
  madd(P, q)      P + q with q affine (x, y), madd-2007-bl; P may be ∞ or ±q
  affine(P)       (x, y) of a Jacobian point not at ∞
  base_mul(k)     [k]G for 0 <= k < 2**256 by a comb of 3 teeth 86 bits apart

Points are Jacobian (X:Y:Z), x = X/Z², y = Y/Z³; ∞ is (1, 1, 0). The functions are
closures over ``p``: the prime is a cell read, as fast on MicroPython as a constant.

The comb table is one bytes literal: entry j (1..7) = the sum of [2**(86 t)]G over the
bits t set in j, affine, two 32-byte big-endian numbers a line (each curve module's
test rebuilds its table from G).

``rfc6979_nonces`` is RFC 6979 §3.2 over any HMAC, for qlen = hlen = 256.

Not constant-time (see ed25519/sign.py).
"""
try:
    from micropython import const
except ImportError:  # CPython
    const = int

# Comb for [k]G, k < 2**256: 3 teeth 86 bits apart, so 86 doublings + <= 86 additions
# (4 teeth: 8 more points, 512 B more heap, ~0.5 ms less per signature on x86-64).
_SPACING = const(86)


def inv(a, m):
    """a**-1 mod m (0 for a = 0) by the extended Euclidean algorithm: ~7x faster than
    pow(a, m-2, m) on MicroPython, whose pow(a, -1, m) silently returns 0."""
    x0, x1, b = 0, 1, m
    while a:
        q = b // a
        b, a = a, b - q * a
        x0, x1 = x1, x0 - q * x1
    return x0 % m


def curve(_P, comb):
    """(double, madd, affine, base_mul) for the a = −3 curve over GF(_P) with ``comb``; what
    each does and by which formulas: the module docstring."""

    def double(p):
        X1, Y1, Z1 = p
        if Z1 == 0:
            return p
        delta = Z1 * Z1 % _P
        gamma = Y1 * Y1 % _P
        beta = X1 * gamma % _P
        alpha = 3 * (X1 - delta) * (X1 + delta) % _P
        X3 = (alpha * alpha - 8 * beta) % _P
        Z3 = ((Y1 + Z1) * (Y1 + Z1) - gamma - delta) % _P
        Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % _P
        return (X3, Y3, Z3)

    def madd(p, q):
        X1, Y1, Z1 = p
        x2, y2 = q
        if Z1 == 0:
            return (x2, y2, 1)
        z1z1 = Z1 * Z1 % _P
        u2 = x2 * z1z1 % _P
        s2 = y2 * Z1 % _P * z1z1 % _P
        h = (u2 - X1) % _P
        r = 2 * (s2 - Y1) % _P
        if h == 0:  # p = q: double; p = -q: ∞
            return double(p) if r == 0 else (1, 1, 0)
        hh = h * h % _P
        i = 4 * hh % _P
        j = h * i % _P
        v = X1 * i % _P
        X3 = (r * r - j - 2 * v) % _P
        Y3 = (r * (v - X3) - 2 * Y1 * j) % _P
        Z3 = ((Z1 + h) * (Z1 + h) - z1z1 - hh) % _P
        return (X3, Y3, Z3)

    def affine(p):
        X, Y, Z = p
        zi = inv(Z, _P)
        zi2 = zi * zi % _P
        return (X * zi2 % _P, Y * zi2 % _P * zi % _P)

    def base_mul(k):
        kb = k.to_bytes(33, "little")  # bits 256, 257: zero
        acc = (1, 1, 0)  # ∞
        for i in range(_SPACING - 1, -1, -1):
            acc = double(acc)
            j = 0
            for t in range(3):
                bit = i + t * _SPACING
                j |= ((kb[bit >> 3] >> (bit & 7)) & 1) << t
            if j:
                o = 64 * (j - 1)
                acc = madd(acc, (int.from_bytes(comb[o:o + 32], "big"),
                                 int.from_bytes(comb[o + 32:o + 64], "big")))
        return acc

    return double, madd, affine, base_mul


def rfc6979_nonces(d, h1, n, mac):
    """RFC 6979 §3.2 candidate k values (steps b-h) for qlen = hlen = 256.

    ``d`` the private scalar, ``h1`` the 32-byte bits2octets(H(m)) (the digest reduced mod
    ``n``), ``mac(key, data)`` the HMAC of the hash H (32 bytes).
    """
    x = d.to_bytes(32, "big")
    V = b"\x01" * 32
    K = b"\x00" * 32
    K = mac(K, V + b"\x00" + x + h1)  # step d
    V = mac(K, V)  # step e
    K = mac(K, V + b"\x01" + x + h1)  # step f
    V = mac(K, V)  # step g
    while True:
        V = mac(K, V)  # step h.2 (tlen = qlen: one block)
        k = int.from_bytes(V, "big")  # bits2int: qlen = 256, no shift
        if 1 <= k < n:
            yield k
        K = mac(K, V + b"\x00")  # step h.3
        V = mac(K, V)

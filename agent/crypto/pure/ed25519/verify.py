"""Pure-Python Ed25519 verification (RFC 8032 §5.1.7), for MicroPython.

A board signs and never verifies, so its image leaves this module out. Arithmetic as in
``sign.py`` (whose curve functions this module reuses); variable-base [k]A is a 4-bit
fixed window. Not constant-time.
"""
from edgeledger.agent.crypto.pure.ed25519.sign import L, base_mul, double, encode
from edgeledger.agent.crypto.pure.sha512 import sha512

# edwards25519: field prime p, curve constant d, sqrt(-1) mod p.
P = 2 ** 255 - 19
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752


def _cached(p):
    """Extended p in cached form (Y+X, Y-X, 2Z, 2dT)."""
    X, Y, Z, T = p
    return ((Y + X) % P, (Y - X) % P, 2 * Z % P, T * 2 * D % P)


def _add(p, q):
    """p + q, q in cached form: add-2008-hwcd-3 (a = -1), complete on edwards25519."""
    X1, Y1, Z1, T1 = p
    ypx, ymx, z2, t2d = q
    a = (Y1 - X1) * ymx % P
    b = (Y1 + X1) * ypx % P
    c = T1 * t2d % P
    d = Z1 * z2 % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _decode(s):
    """RFC 8032 §5.1.3; returns an extended point or None if ``s`` is not one."""
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    yy = y * y % P
    u = (yy - 1) % P
    v = (D * yy + 1) % P
    v3 = v * v % P * v % P
    x = u * v3 % P * pow(u * v3 % P * v3 % P * v % P, (P - 5) // 8, P) % P
    vxx = v * x % P * x % P
    if vxx != u:
        if vxx != P - u:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def verify(pub, msg, sig):
    """RFC 8032 §5.1.7: True iff [S]B = R + [k]A (checked as encode([S]B - [k]A) == R).

    Returns False for a non-canonical S (S >= L), an undecodable A, or a
    signature that does not verify.
    """
    if len(sig) != 64 or len(pub) != 32:
        return False
    S = int.from_bytes(bytes(sig[32:]), "little")
    if S >= L:
        return False
    A = _decode(bytes(pub))
    if A is None:
        return False
    R = bytes(sig[:32])
    k = int.from_bytes(sha512(R + bytes(pub) + bytes(msg)), "little") % L
    # [k](-A), 4-bit fixed window over the cached multiples 1..15 of -A.
    X, Y, Z, T = A
    q = ((P - X) % P, Y, Z, (P - T) % P)
    cq = _cached(q)
    table = [None, cq]
    for _ in range(14):
        q = _add(q, cq)
        table.append(_cached(q))
    kb = k.to_bytes(32, "little")
    acc = (0, 1, 1, 0)
    for i in range(63, -1, -1):
        acc = double(double(double(double(acc))))
        nib = (kb[i >> 1] >> (4 * (i & 1))) & 15
        if nib:
            acc = _add(acc, table[nib])
    return encode(_add(base_mul(S), _cached(acc))) == R



"""Pure-Python Ed25519 (RFC 8032 §5.1) on the pure SHA-512, for MicroPython.

Points are kept in extended twisted-Edwards coordinates (X:Y:Z:T), x=X/Z,
y=Y/Z, xy=T/Z (Hisil-Wong-Carter-Dawson 2008); the addition law used is
complete for edwards25519, so no special cases. Fixed-base multiplication
([s]B) uses a comb of ``COMB_TEETH`` teeth (a table of 2**COMB_TEETH - 1
points built on first use, ~3 KB of heap); variable-base ([k]A, verify only)
uses a 4-bit fixed window. Inverses are ``pow(x, p-2, p)`` (MicroPython's
``pow(x, -1, p)`` silently returns 0).

This is not constant-time: it is for boards that have no native Ed25519, where
the alternative is no signature at all. Use a secure element where side
channels matter.
"""
from edgeledger.firmware.sha512 import Sha512

# RFC 8032 §5.1: edwards25519 parameters.
P = 2 ** 255 - 19
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
D2 = (2 * D) % P
L = 2 ** 252 + 27742317777372353535851937790883648493  # order of B
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960

SEED_LEN = 32
PUB_LEN = 32
SIG_LEN = 64

COMB_TEETH = 4  # table of 2**4-1 = 15 points; 64 doublings + 64 additions per [s]B
_COMB_SPACING = (256 + COMB_TEETH - 1) // COMB_TEETH
_WINDOW = 4  # variable-base window: table of 15 multiples of A

_IDENTITY = (0, 1, 1, 0)


def _add(p, q):
    """p + q, q in cached form (Y+X, Y-X, 2Z, 2dT): add-2008-hwcd-3 (a = -1)."""
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


def _madd(p, q):
    """p + q, q affine in Niels form (y+x, y-x, 2dxy), Z2 = 1: one multiplication less."""
    X1, Y1, Z1, T1 = p
    ypx, ymx, t2d = q
    a = (Y1 - X1) * ymx % P
    b = (Y1 + X1) * ypx % P
    c = T1 * t2d % P
    d = 2 * Z1
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p):
    """2p: dbl-2008-hwcd (a = -1)."""
    X1, Y1, Z1, _ = p
    a = X1 * X1 % P
    b = Y1 * Y1 % P
    c = 2 * Z1 * Z1 % P
    h = a + b
    s = X1 + Y1
    e = (h - s * s) % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _cached(p):
    X, Y, Z, T = p
    return ((Y + X) % P, (Y - X) % P, 2 * Z % P, T * D2 % P)


_comb = None


def _comb_table():
    """Entry j (1..15) = sum of 2**(64 t) B over the bits t set in j, affine Niels form.

    15 points x 3 coordinates, built once (one inversion) and kept as one buffer
    of 32-byte little-endian numbers (1.4 KB; as 45 ints and 15 tuples it
    would hold ~4 KB of a 64-bit MicroPython heap). ``_comb_entry`` unpacks one.
    """
    global _comb
    if _comb is None:
        n = 1 << COMB_TEETH
        table = bytearray(96 * n)  # first, while the heap has room in one piece; entry 0 unused
        rows = []
        q = (BX, BY, 1, BX * BY % P)
        for t in range(COMB_TEETH):
            rows.append(_cached(q))
            for _ in range(_COMB_SPACING):
                q = _double(q)
        full = [_IDENTITY] * n
        for j in range(1, n):
            low = j & -j
            t = 0
            while (1 << t) != low:
                t += 1
            full[j] = _add(full[j ^ low], rows[t])
        # Montgomery's trick: one pow() for all 15 Z inverses.
        acc = [1] * n
        prod = 1
        for j in range(1, n):
            prod = prod * full[j][2] % P
            acc[j] = prod
        inv = pow(prod, P - 2, P)
        for j in range(n - 1, 0, -1):
            X, Y, Z, _ = full[j]
            zi = inv * acc[j - 1] % P
            inv = inv * Z % P
            x = X * zi % P
            y = Y * zi % P
            table[96 * j:96 * j + 96] = (((y + x) % P).to_bytes(32, "little")
                                         + ((y - x) % P).to_bytes(32, "little")
                                         + (x * y % P * D2 % P).to_bytes(32, "little"))
        _comb = table
    return _comb


def _comb_entry(table, j):
    """Entry j of the comb table as a Niels-form point (three ints)."""
    o = 96 * j
    return (int.from_bytes(table[o:o + 32], "little"), int.from_bytes(table[o + 32:o + 64], "little"),
            int.from_bytes(table[o + 64:o + 96], "little"))


def _base_mul(s):
    """[s]B for 0 <= s < 2**256 by the comb (Lim-Lee with one table)."""
    table = _comb_table()
    sb = s.to_bytes(32, "little")
    acc = _IDENTITY
    spacing = _COMB_SPACING
    for i in range(spacing - 1, -1, -1):
        acc = _double(acc)
        j = 0
        for t in range(COMB_TEETH):
            bit = i + t * spacing
            if bit < 256 and (sb[bit >> 3] >> (bit & 7)) & 1:
                j |= 1 << t
        if j:
            acc = _madd(acc, _comb_entry(table, j))
    return acc


def _var_mul(k, p):
    """[k]p for 0 <= k < 2**256, 4-bit fixed window."""
    cp = _cached(p)
    table = [None, cp]
    q = p
    for _ in range(2, 1 << _WINDOW):
        q = _add(q, cp)
        table.append(_cached(q))
    kb = k.to_bytes(32, "little")
    acc = _IDENTITY
    for i in range(63, -1, -1):
        acc = _double(_double(_double(_double(acc))))
        nib = (kb[i >> 1] >> (4 * (i & 1))) & 15
        if nib:
            acc = _add(acc, table[nib])
    return acc


def _encode(p):
    """RFC 8032 §5.1.2: y little-endian, top bit = x mod 2."""
    X, Y, Z, _ = p
    zi = pow(Z, P - 2, P)
    x = X * zi % P
    y = Y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


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


def _h(*parts):
    h = Sha512()
    for part in parts:
        h.update(part)
    return int.from_bytes(h.digest(), "little")


_last = None  # (seed, s, prefix, public): signing one key repeatedly skips [s]B


def _expand(seed):
    """RFC 8032 §5.1.5: (clamped scalar s, prefix, public key bytes)."""
    global _last
    seed = bytes(seed)
    if _last is not None and _last[0] == seed:
        return _last[1], _last[2], _last[3]
    h = Sha512(seed).digest()
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    s = int.from_bytes(bytes(a), "little")
    prefix = h[32:]
    pub = _encode(_base_mul(s))
    _last = (seed, s, prefix, pub)
    return s, prefix, pub


def public_key(seed):
    """The 32-byte public key of a 32-byte seed."""
    return _expand(seed)[2]


def sign(seed, msg):
    """RFC 8032 §5.1.6 signature R ‖ S of ``msg`` (64 bytes)."""
    s, prefix, pub = _expand(seed)
    msg = bytes(msg)
    r = _h(prefix, msg) % L
    R = _encode(_base_mul(r))
    k = _h(R, pub, msg) % L
    S = (r + k * s) % L
    return R + S.to_bytes(32, "little")


def verify(pub, msg, sig):
    """RFC 8032 §5.1.7: True iff [S]B = R + [k]A (checked as encode([S]B - [k]A) == R).

    Returns False for a non-canonical S (S >= L), an undecodable A, or a
    signature that does not verify.
    """
    if len(sig) != SIG_LEN or len(pub) != PUB_LEN:
        return False
    S = int.from_bytes(bytes(sig[32:]), "little")
    if S >= L:
        return False
    A = _decode(bytes(pub))
    if A is None:
        return False
    R = bytes(sig[:32])
    k = _h(R, bytes(pub), bytes(msg)) % L
    X, Y, Z, T = A
    minus_kA = _var_mul(k, ((P - X) % P, Y, Z, (P - T) % P))
    q = _add(_base_mul(S), _cached(minus_kA))
    return _encode(q) == R

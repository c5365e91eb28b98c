"""Pure-Python ECDSA over P-256 (FIPS 186-4 §6, SEC 1 §4.1) for MicroPython.

Used by the crypto shim for COSE ES256 (RFC 9053 §2.1) on boards without a
native ECDSA. The nonce k is deterministic (RFC 6979 §3.2, HMAC-DRBG over
SHA-256), so no RNG is needed to sign and both runtimes give the same bytes.

Points are Jacobian (X:Y:Z), x = X/Z², y = Y/Z³, with a = -3 doubling
(dbl-2001-b) and mixed addition against affine table points (madd-2007-bl).
[k]G uses a comb with ``COMB_TEETH`` teeth (15 affine points built on first use);
[u]Q (verify only) a 4-bit window. Inverses are ``pow(x, m-2, m)``.

Scalars and digests come in already checked by the shim: ``d`` an int in
[1, n-1], ``digest`` 32 bytes of SHA-256. Not constant-time (see ed25519.py).
"""
from edgeledger.firmware.hmac import hmac_sha256

# SEC 2 §2.4.2 / FIPS 186-4 D.1.2.3: curve P-256 (secp256r1).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

PUB_LEN = 65  # SEC 1 §2.3.3 uncompressed: 0x04 ‖ X ‖ Y
SIG_LEN = 64  # RFC 9053 §2.1: r ‖ s
COMB_TEETH = 4
_COMB_SPACING = (256 + COMB_TEETH - 1) // COMB_TEETH
_WINDOW = 4

_INF = (1, 1, 0)


def _double(p):
    """2p, dbl-2001-b (a = -3)."""
    X1, Y1, Z1 = p
    if Z1 == 0:
        return p
    delta = Z1 * Z1 % P
    gamma = Y1 * Y1 % P
    beta = X1 * gamma % P
    alpha = 3 * (X1 - delta) * (X1 + delta) % P
    X3 = (alpha * alpha - 8 * beta) % P
    Z3 = ((Y1 + Z1) * (Y1 + Z1) - gamma - delta) % P
    Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % P
    return (X3, Y3, Z3)


def _madd(p, q):
    """p + q with q affine (x, y), madd-2007-bl; handles p = ∞ and p = ±q."""
    X1, Y1, Z1 = p
    x2, y2 = q
    if Z1 == 0:
        return (x2, y2, 1)
    z1z1 = Z1 * Z1 % P
    u2 = x2 * z1z1 % P
    s2 = y2 * Z1 % P * z1z1 % P
    h = (u2 - X1) % P
    r = 2 * (s2 - Y1) % P
    if h == 0:
        if r == 0:
            return _double(p)
        return _INF
    hh = h * h % P
    i = 4 * hh % P
    j = h * i % P
    v = X1 * i % P
    X3 = (r * r - j - 2 * v) % P
    Y3 = (r * (v - X3) - 2 * Y1 * j) % P
    Z3 = ((Z1 + h) * (Z1 + h) - z1z1 - hh) % P
    return (X3, Y3, Z3)


def _to_affine_many(points):
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


def _to_affine(p):
    return _to_affine_many([p])[0]


_comb = None


def _comb_table():
    """Entry j (1..15) = sum of 2**(64 t) G over the bits t set in j, affine.

    Kept as one buffer of 32-byte big-endian coordinates (960 B; as 30 ints
    and 15 tuples it would hold ~3 KB of a 64-bit MicroPython heap).
    """
    global _comb
    if _comb is None:
        table = bytearray(64 * (1 << COMB_TEETH))  # first, while the heap has room in one piece
        rows = []
        q = (GX, GY, 1)
        for t in range(COMB_TEETH):
            rows.append(_to_affine(q))
            for _ in range(_COMB_SPACING):
                q = _double(q)
        full = [_INF] * (1 << COMB_TEETH)
        for j in range(1, 1 << COMB_TEETH):
            low = j & -j
            t = 0
            while (1 << t) != low:
                t += 1
            full[j] = _madd(full[j ^ low], rows[t])
        o = 64  # entry 0 (∞) is never read
        for x, y in _to_affine_many(full[1:]):
            table[o:o + 64] = x.to_bytes(32, "big") + y.to_bytes(32, "big")
            o += 64
        _comb = table
    return _comb


def _comb_entry(table, j):
    """Entry j of the comb table as an affine point (x, y)."""
    o = 64 * j
    return (int.from_bytes(table[o:o + 32], "big"), int.from_bytes(table[o + 32:o + 64], "big"))


def _base_mul(k):
    """[k]G for 0 <= k < 2**256 (comb), Jacobian."""
    table = _comb_table()
    kb = k.to_bytes(32, "little")
    acc = _INF
    spacing = _COMB_SPACING
    for i in range(spacing - 1, -1, -1):
        acc = _double(acc)
        j = 0
        for t in range(COMB_TEETH):
            bit = i + t * spacing
            if bit < 256 and (kb[bit >> 3] >> (bit & 7)) & 1:
                j |= 1 << t
        if j:
            acc = _madd(acc, _comb_entry(table, j))
    return acc


def _var_mul(k, q):
    """[k]Q for affine Q and 0 <= k < 2**256, 4-bit window over an affine table."""
    jac = [(q[0], q[1], 1)]
    for _ in range(2, 1 << _WINDOW):
        jac.append(_madd(jac[-1], q))
    # Q has prime order n > 15, so no multiple here is ∞.
    table = [None] + _to_affine_many(jac)
    kb = k.to_bytes(32, "little")
    acc = _INF
    for i in range(63, -1, -1):
        acc = _double(_double(_double(_double(acc))))
        nib = (kb[i >> 1] >> (4 * (i & 1))) & 15
        if nib:
            acc = _madd(acc, table[nib])
    return acc


def decode_point(pub):
    """(x, y) of a SEC 1 uncompressed point (§2.3.4), checked to be on the curve.

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


def _encode(pt):
    x, y = pt
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def public_key(d):
    """SEC 1 uncompressed [d]G (65 bytes) for the scalar ``d`` (int, 1 <= d < n)."""
    return _encode(_to_affine(_base_mul(d)))


def rfc6979_nonces(d, digest):
    """RFC 6979 §3.2 candidate k values for qlen = hlen = 256 (steps b-h)."""
    x = d.to_bytes(32, "big")
    h1 = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")  # bits2octets(H(m))
    V = b"\x01" * 32
    K = b"\x00" * 32
    K = hmac_sha256(K, V + b"\x00" + x + h1)  # step d
    V = hmac_sha256(K, V)  # step e
    K = hmac_sha256(K, V + b"\x01" + x + h1)  # step f
    V = hmac_sha256(K, V)  # step g
    while True:
        V = hmac_sha256(K, V)  # step h.2 (tlen = qlen: one block)
        k = int.from_bytes(V, "big")  # bits2int: qlen = 256, no shift
        if 1 <= k < N:
            yield k
        K = hmac_sha256(K, V + b"\x00")  # step h.3
        V = hmac_sha256(K, V)


def sign(d, digest):
    """ECDSA signature r ‖ s (64 bytes) of a 32-byte ``digest`` with scalar ``d``."""
    e = int.from_bytes(digest, "big")  # qlen = 256 bits: the whole digest (SEC 1 §4.1.3 step 5)
    for k in rfc6979_nonces(d, digest):
        x, _ = _to_affine(_base_mul(k))
        r = x % N
        if r == 0:
            continue
        s = pow(k, N - 2, N) * (e + r * d) % N
        if s == 0:
            continue
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(pub, digest, sig):
    """SEC 1 §4.1.4 verification of r ‖ s over ``digest``.

    Returns bool; raises ValueError (from decode_point) for a malformed key.
    """
    q = decode_point(pub)
    if len(sig) != SIG_LEN:
        return False
    r = int.from_bytes(bytes(sig[:32]), "big")
    s = int.from_bytes(bytes(sig[32:]), "big")
    if not (1 <= r < N and 1 <= s < N):
        return False
    e = int.from_bytes(digest, "big")
    w = pow(s, N - 2, N)
    u1 = e * w % N
    u2 = r * w % N
    acc = _var_mul(u2, q)
    if u1:
        acc = _madd(acc, _to_affine(_base_mul(u1))) if acc[2] else _base_mul(u1)
    X, _, Z = acc
    if Z == 0:
        return False
    # x(R) mod n == r without an inversion: X == r' Z² for r' = r or r + n (< p).
    zz = Z * Z % P
    if X == r * zz % P:
        return True
    return r + N < P and X == (r + N) * zz % P

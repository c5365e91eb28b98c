"""Pure-Python Ed25519 signing (RFC 8032 §5.1) on the pure SHA-512, for MicroPython.

Points are kept in extended twisted-Edwards coordinates (X:Y:Z:T), x=X/Z,
y=Y/Z, xy=T/Z (Hisil-Wong-Carter-Dawson 2008). Fixed-base multiplication
([s]B) uses a comb of 3 teeth over a precomputed table of 7 points.

Verification (RFC 8032 §5.1.7: point decoding, variable-base [k]A) is ``verify.py``, on
top of this module's curve arithmetic (``double``, ``base_mul``, ``encode``): a board signs,
it never verifies, and its image leaves that module out.

Heap (64-bit MicroPython, where a 256-bit int is a ~64 B heap object): curve
constants are private ``const`` (inlined, no global or name) and the comb table
is one bytes literal, not 21 ints in 7 tuples.

This is not constant-time: it is for boards that have no native Ed25519, where
the alternative is no signature at all. Use a secure element where side
channels matter.
"""
from edgeledger.agent.crypto.pure.sha512 import sha512

try:
    from micropython import const
except ImportError:  # CPython
    const = int

# RFC 8032 §5.1: edwards25519.
_P = const(2 ** 255 - 19)
L = 2 ** 252 + 27742317777372353535851937790883648493  # order of B

# Comb for [s]B, s < 2**256: 3 teeth 86 bits apart, so 86 doublings + <= 86 additions
# (4 teeth: 8 more points, 768 B more heap, ~0.5 ms less per signature on x86-64).
_SPACING = const(86)

# Entry j (1..7) = sum of [2**(86 t)]B over the bits t set in j, affine, in Niels
# form (y+x, y-x, 2dxy): three 32-byte little-endian numbers, one a line.
# tests/agent/crypto/test_ed25519.py rebuilds it from B.
_COMB = (
    b"\x85\x3b\x8c\xf5\xc6\x93\xbc\x2f\x19\x0e\x8c\xfb\xc6\x2d\x93\xcf\xc2\x42\x3d\x64\x98\x48\x0b\x27\x65\xba\xd4\x33\x3a\x9d\xcf\x07"
    b"\x3e\x91\x40\xd7\x05\x39\x10\x9d\xb3\xbe\x40\xd1\x05\x9f\x39\xfd\x09\x8a\x8f\x68\x34\x84\xc1\xa5\x67\x12\xf8\x98\x92\x2f\xfd\x44"
    b"\x68\xaa\x7a\x87\x05\x12\xc9\xab\x9e\xc4\xaa\xcc\x23\xe8\xd9\x26\x8c\x59\x43\xdd\xcb\x7d\x1b\x5a\xa8\x65\x0c\x9f\x68\x7b\x11\x6f"
    b"\x5f\xa2\x87\xd0\xdd\x0f\x0f\xee\xee\x34\x3e\x5c\x55\x31\x75\x9c\xb5\x3a\xab\x8f\x2e\x57\x0c\x66\xb2\xd3\x4c\x54\x44\xfc\x54\x08"
    b"\xd2\xa0\x15\xc7\xe3\xa4\x16\x16\x4d\x1d\x34\xf8\xb0\x3c\x62\x53\xcb\x99\xe8\xc7\x29\x53\xef\x96\xa6\xba\x68\xa6\xbb\x8d\x4e\x3d"
    b"\x19\xad\xed\x55\xc5\xa0\xeb\x61\xe6\x3d\xa8\xf0\xfe\x33\xb5\x24\xf8\xa5\xba\x83\x28\x04\x77\x3b\x8d\x7e\xa4\x98\xb8\x82\x8f\x67"
    b"\x7c\xb0\x9e\xe6\xc5\xbf\xfa\x13\x8e\x0d\x22\xde\xc8\xd1\xce\x52\x02\xd5\x62\x31\x71\x0e\x8e\x9d\xb0\xd6\x00\xa5\x5a\x0e\xce\x72"
    b"\x1a\x8e\x5c\xdc\xa4\xb3\x6c\x51\x18\xa0\x09\x80\x9a\x46\x33\xd5\xe0\x3c\x4d\x3b\xfc\x49\xa2\x43\x29\xe1\x29\xa9\x93\xea\x7c\x35"
    b"\x08\x46\x6f\x68\x7f\x0b\x7c\x9e\xad\xba\x07\x61\x74\x83\x2f\xfc\x26\xd6\x09\xb9\x00\x34\x36\x4f\x01\xf3\x48\xdb\x43\xba\x04\x44"
    b"\x47\x62\xa3\x93\xa2\xcb\x8e\x35\x65\xfd\x68\xb2\x62\x98\x8f\xaf\x89\x1c\xa0\x68\x99\x7e\x2f\x41\x24\x45\x75\xcd\x12\xf3\x86\x57"
    b"\x3e\x0d\xc2\x7e\x0c\xd5\xa2\xb5\x63\x72\xc9\xa0\x6e\xdd\x4b\xc6\x4d\x73\xff\xc1\x52\x90\xe8\x56\xba\xfa\x2f\x2b\xf7\xc6\x29\x49"
    b"\x2c\x03\x14\xca\xff\x88\x77\x33\xe3\x1e\x7f\x44\x28\x10\x92\xf3\xad\xcc\x1b\x23\x1f\x07\x14\x8b\x83\x47\x34\xf2\x4b\x7b\x81\x4c"
    b"\x4c\xda\x0d\x13\x66\xfd\x82\x84\x9f\x75\x5b\xa2\x17\xfe\x34\xbf\x1f\xcb\xba\x90\x55\x80\x83\xfd\x63\xb9\x18\xf8\x5b\x5d\x94\x1e"
    b"\xb9\xdb\x6c\x04\x88\x22\xd8\x79\x83\x2f\x8d\x65\x6b\xd2\xab\x1b\xdd\x65\xe5\x93\x63\xf8\xa2\xd8\x3c\xf1\x4b\xc5\x99\xd1\xf2\x12"
    b"\x05\x4c\xb8\x3b\xfe\xf5\x9f\x2e\xd1\xb2\xb8\xff\xfe\x6d\xd9\x37\xe0\xae\xb4\x5a\x51\x80\x7e\x9b\x1d\xd1\x8d\x8c\x56\xb1\x84\x35"
    b"\xb8\x6c\x57\x4e\xd3\xa5\x45\x87\xdf\x7a\xe5\x18\x92\xcf\xcf\x5a\xdc\xb2\xe2\xbe\x49\xa6\xfc\xdf\xab\xf8\xaf\x56\x1a\xc1\x02\x7b"
    b"\xfd\xe8\x3f\x26\xc1\x22\xd1\xdb\x0a\xfa\x10\x8c\x15\x8a\x34\x21\xa7\x13\x47\xbf\xd2\xf7\x96\xb8\x4c\xfb\x42\x66\xd1\x8a\x75\x2b"
    b"\xbe\x47\x64\xa1\x11\x9c\x5a\xd4\xd8\x54\x68\x17\x73\x45\x9a\xe1\x2e\xf4\x0c\x6b\xe1\x01\x4f\xdc\x90\x5d\xcb\x1c\x41\x54\xcd\x63"
    b"\x39\x71\x43\x34\xe3\x42\x45\xa1\xf2\x68\x71\xa7\xe8\x23\xfd\x9f\x86\x48\xff\xe5\x96\x74\xcf\x05\x49\xe2\xb3\x6c\x17\x77\x2f\x6d"
    b"\x73\x3f\xc1\xc7\x6a\x66\xa1\x20\xdd\x11\xfb\x7a\x6e\xa8\x51\xb8\x3f\x9d\xa2\x97\x84\xb5\xc7\x90\x7c\xab\x48\xd6\x84\xa3\xd5\x1a"
    b"\x63\x27\x3c\x49\x4b\xfc\x22\xf2\x0b\x50\xc2\x0f\xb4\x1f\x31\x0c\x2f\x53\xab\xaa\x75\x6f\xe0\x69\x39\x56\xe0\x3b\xb7\xa8\xbf\x45"
)


def double(p):
    """2p: dbl-2008-hwcd (a = -1)."""
    X1, Y1, Z1, _ = p
    a = X1 * X1 % _P
    b = Y1 * Y1 % _P
    c = 2 * Z1 * Z1 % _P
    h = a + b
    s = X1 + Y1
    e = (h - s * s) % _P
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def base_mul(s):
    """[s]B for 0 <= s < 2**256 by the comb (Lim-Lee with one table)."""
    sb = s.to_bytes(33, "little")  # bits 256, 257: zero
    X1, Y1, Z1, T1 = (0, 1, 1, 0)
    for i in range(_SPACING - 1, -1, -1):
        X1, Y1, Z1, T1 = double((X1, Y1, Z1, T1))
        j = 0
        for t in range(3):
            bit = i + t * _SPACING
            if (sb[bit >> 3] >> (bit & 7)) & 1:
                j |= 1 << t
        if j:
            # + entry j: madd-2008-hwcd-3 (a = -1, Z2 = 1)
            o = 96 * (j - 1)
            a = (Y1 - X1) * int.from_bytes(_COMB[o + 32:o + 64], "little") % _P
            b = (Y1 + X1) * int.from_bytes(_COMB[o:o + 32], "little") % _P
            c = T1 * int.from_bytes(_COMB[o + 64:o + 96], "little") % _P
            d = 2 * Z1
            e = b - a
            f = d - c
            g = d + c
            h = b + a
            X1, Y1, Z1, T1 = e * f % _P, g * h % _P, f * g % _P, e * h % _P
    return (X1, Y1, Z1, T1)


def encode(p):
    """RFC 8032 §5.1.2: y little-endian, top bit = x mod 2."""
    X, Y, Z, _ = p
    # 1/Z by the extended Euclidean algorithm: ~7x faster than pow(Z, p-2, p) on
    # MicroPython (whose pow(Z, -1, p) silently returns 0).
    a, b, zi, x1 = Z, _P, 0, 1
    while a:
        q = b // a
        b, a = a, b - q * a
        zi, x1 = x1, zi - q * x1
    x = X * zi % _P
    y = Y * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_last = None  # (seed, s, prefix, public): signing one key repeatedly skips [s]B


def _expand(seed):
    """RFC 8032 §5.1.5: (seed, clamped scalar s, prefix, public key bytes)."""
    global _last
    seed = bytes(seed)
    if _last is None or _last[0] != seed:
        h = sha512(seed)
        a = bytearray(h[:32])
        a[0] &= 248
        a[31] &= 127
        a[31] |= 64
        s = int.from_bytes(bytes(a), "little")
        _last = (seed, s, h[32:], encode(base_mul(s)))
    return _last


def public_key(seed):
    """The 32-byte public key of a 32-byte seed."""
    return _expand(seed)[3]


def sign(seed, msg):
    """RFC 8032 §5.1.6 signature R ‖ S of ``msg`` (64 bytes)."""
    _, s, prefix, pub = _expand(seed)
    msg = bytes(msg)
    r = int.from_bytes(sha512(prefix + msg), "little") % L
    R = encode(base_mul(r))
    k = int.from_bytes(sha512(R + pub + msg), "little") % L
    return R + ((r + k * s) % L).to_bytes(32, "little")


"""Pure-Python SHA-512 (FIPS 180-4 §6.4) for MicroPython, which has no sha512.

One-shot ``sha512(data)`` and an incremental ``Sha512`` (update/digest), as
Ed25519 (RFC 8032) hashes a prefix and the message in one stream.
"""
import struct

_M = 0xFFFFFFFFFFFFFFFF

# FIPS 180-4 §4.2.3: the 80 round constants, packed as bytes (640 B) rather than
# a tuple of 80 long ints (~5 KB of heap on 64-bit MicroPython); each is unpacked
# in its round, so no block ever holds all 80 as ints at once.
_K_HEX = (
    "428a2f98d728ae227137449123ef65cdb5c0fbcfec4d3b2fe9b5dba58189dbbc"
    "3956c25bf348b53859f111f1b605d019923f82a4af194f9bab1c5ed5da6d8118"
    "d807aa98a303024212835b0145706fbe243185be4ee4b28c550c7dc3d5ffb4e2"
    "72be5d74f27b896f80deb1fe3b1696b19bdc06a725c71235c19bf174cf692694"
    "e49b69c19ef14ad2efbe4786384f25e30fc19dc68b8cd5b5240ca1cc77ac9c65"
    "2de92c6f592b02754a7484aa6ea6e4835cb0a9dcbd41fbd476f988da831153b5"
    "983e5152ee66dfaba831c66d2db43210b00327c898fb213fbf597fc7beef0ee4"
    "c6e00bf33da88fc2d5a79147930aa72506ca6351e003826f142929670a0e6e70"
    "27b70a8546d22ffc2e1b21385c26c9264d2c6dfc5ac42aed53380d139d95b3df"
    "650a73548baf63de766a0abb3c77b2a881c2c92e47edaee692722c851482353b"
    "a2bfe8a14cf10364a81a664bbc423001c24b8b70d0f89791c76c51a30654be30"
    "d192e819d6ef5218d69906245565a910f40e35855771202a106aa07032bbd1b8"
    "19a4c116b8d2d0c81e376c085141ab532748774cdf8eeb9934b0bcb5e19b48a8"
    "391c0cb3c5c95a634ed8aa4ae3418acb5b9cca4f7763e373682e6ff3d6b2b8a3"
    "748f82ee5defb2fc78a5636f43172f6084c87814a1f0ab728cc702081a6439ec"
    "90befffa23631e28a4506cebde82bde9bef9a3f7b2c67915c67178f2e372532b"
    "ca273eceea26619cd186b8c721c0c207eada7dd6cde0eb1ef57d4f7fee6ed178"
    "06f067aa72176fba0a637dc5a2c898a6113f9804bef90dae1b710b35131c471b"
    "28db77f523047d8432caab7b40c724933c9ebe0a15c9bebc431d67c49c100d4c"
    "4cc5d4becb3e42b6597f299cfc657e2a5fcb6fab3ad6faec6c44198c4a475817"
)
_K = bytes.fromhex(_K_HEX)
del _K_HEX

# FIPS 180-4 §5.3.5: initial hash value.
_H0 = (
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
    0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
)

BLOCK_SIZE = 128
DIGEST_SIZE = 64
_BLOCK_FMT = ">16Q"


def _compress(h, block, off, M=_M):
    """FIPS 180-4 §6.4.2 on the 128-byte block at ``block[off:]``; updates list ``h``.

    The message schedule W is kept as a 16-word ring (W[t] overwrites W[t-16]).
    """
    w = list(struct.unpack_from(_BLOCK_FMT, block, off))
    a, b, c, d, e, f, g, hh = h
    for t in range(80):
        if t >= 16:
            x = w[(t - 15) & 15]
            s0 = (((x >> 1) | (x << 63)) ^ ((x >> 8) | (x << 56)) ^ (x >> 7)) & M
            x = w[(t - 2) & 15]
            s1 = (((x >> 19) | (x << 45)) ^ ((x >> 61) | (x << 3)) ^ (x >> 6)) & M
            w[t & 15] = (w[t & 15] + s0 + w[(t - 7) & 15] + s1) & M
        S1 = (((e >> 14) | (e << 50)) ^ ((e >> 18) | (e << 46)) ^ ((e >> 41) | (e << 23))) & M
        ch = (e & f) ^ (~e & g)
        t1 = hh + S1 + ch + struct.unpack_from(">Q", _K, t << 3)[0] + w[t & 15]
        S0 = (((a >> 28) | (a << 36)) ^ ((a >> 34) | (a << 30)) ^ ((a >> 39) | (a << 25))) & M
        maj = (a & b) ^ (a & c) ^ (b & c)
        hh = g
        g = f
        f = e
        e = (d + t1) & M
        d = c
        c = b
        b = a
        a = (t1 + S0 + maj) & M
    h[0] = (h[0] + a) & M
    h[1] = (h[1] + b) & M
    h[2] = (h[2] + c) & M
    h[3] = (h[3] + d) & M
    h[4] = (h[4] + e) & M
    h[5] = (h[5] + f) & M
    h[6] = (h[6] + g) & M
    h[7] = (h[7] + hh) & M


class Sha512:
    """Incremental SHA-512: ``Sha512(data).update(more).digest()``."""

    digest_size = DIGEST_SIZE
    block_size = BLOCK_SIZE

    def __init__(self, data=b""):
        self._h = list(_H0)
        self._buf = b""
        self._len = 0
        if data:
            self.update(data)

    def update(self, data):
        self._len += len(data)
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        n = len(buf)
        off = 0
        h = self._h
        while n - off >= BLOCK_SIZE:
            _compress(h, buf, off)
            off += BLOCK_SIZE
        self._buf = buf[off:]
        return self

    def digest(self):
        # FIPS 180-4 §5.1.2: 0x80, zeros to 112 mod 128, then the 128-bit bit length.
        h = list(self._h)
        n = len(self._buf)
        pad = (111 - n) % BLOCK_SIZE
        tail = self._buf + b"\x80" + bytes(pad) + (self._len * 8).to_bytes(16, "big")
        for off in range(0, len(tail), BLOCK_SIZE):
            _compress(h, tail, off)
        return struct.pack(">8Q", *h)


def sha512(data):
    """SHA-512 of ``data`` (64 bytes)."""
    return Sha512(data).digest()

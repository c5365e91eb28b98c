"""Pure-Python SM3 hash (GB/T 32905-2016, GM/T 0004-2012) for MicroPython, which has none.

``sm3(data)`` is the (one-shot) hash and ``hmac_sm3`` HMAC-SM3 (RFC 2104 over SM3,
64-byte block): SM2 signing derives its nonces with it (``sm2.py``). What a device hashes
is short (a signed reading, Z_A ‖ M), so there is no incremental form.

SM3 is a Merkle-Damgård hash of 64-byte blocks, with SHA-256's padding (§5.2: a 1 bit,
zeros, the bit length as a 64-bit big-endian number) and a 32-byte state of eight 32-bit
words. Words are Python ints kept below 2**32 (masked after additions and rotations): a
small int on the 64-bit unix port, a heap integer on a 32-bit board (31-bit small ints).

Digest size and interface match ``hashlib.sha256``'s one-shot use, so SM3 can serve where
the Merkle and chain code hash with SHA-256 (a deployment's hash choice).
"""
import struct
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = int

_M32 = const(0xFFFFFFFF)
BLOCK = 64  # GB/T 32905 §5.2: message block, bytes
DIGEST_LEN = 32
# §4.1: initial value IV.
_IV = (0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600,
       0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E)
# §4.2: round constants T_j (j 0..15, j 16..63).
_T0 = const(0x79CC4519)
_T1 = const(0x7A879D8A)


def _rotl(x, n):
    """x <<< n for a 32-bit x, 0 <= n < 32."""
    return ((x << n) | (x >> (32 - n))) & _M32


def _compress(v, block, off):
    """§5.3 CF(V, B) on the 64-byte block at ``block[off:]``; updates the list ``v``."""
    w = array("I", bytes(272))  # §5.3.2: W0..W67 (W'j = Wj ^ Wj+4 is formed per round)
    for i, x in enumerate(struct.unpack_from(">16I", block, off)):
        w[i] = x
    for j in range(16, 68):
        x = w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)
        w[j] = (x ^ _rotl(x, 15) ^ _rotl(x, 23)) ^ _rotl(w[j - 13], 7) ^ w[j - 6]  # P1
    a, b, c, d, e, f, g, h = v
    for j in range(64):
        if j < 16:  # §5.3.3: FF_j, GG_j = X ^ Y ^ Z and T_j for 0 <= j <= 15
            ff = a ^ b ^ c
            gg = e ^ f ^ g
            t = _T0
        else:  # 16 <= j <= 63: majority, choice
            ff = (a & b) | (a & c) | (b & c)
            gg = (e & f) | (~e & g)
            t = _T1
        a12 = _rotl(a, 12)
        ss1 = _rotl((a12 + e + _rotl(t, j & 31)) & _M32, 7)
        tt1 = (ff + d + (ss1 ^ a12) + (w[j] ^ w[j + 4])) & _M32
        tt2 = (gg + h + ss1 + w[j]) & _M32
        d = c
        c = _rotl(b, 9)
        b = a
        a = tt1
        h = g
        g = _rotl(f, 19)
        f = e
        e = tt2 ^ _rotl(tt2, 9) ^ _rotl(tt2, 17)  # P0
    v[0] ^= a
    v[1] ^= b
    v[2] ^= c
    v[3] ^= d
    v[4] ^= e
    v[5] ^= f
    v[6] ^= g
    v[7] ^= h


def _final(v, tail, length):
    """Pad the last partial block ``tail`` of a ``length``-byte message (§5.2) and digest."""
    pad = bytes(tail) + b"\x80" + bytes((55 - len(tail)) % 64) + struct.pack(">Q", length << 3)
    for off in range(0, len(pad), BLOCK):
        _compress(v, pad, off)
    return struct.pack(">8I", *v)


def sm3(data):
    """SM3 of ``data`` (bytes-like): 32 bytes."""
    data = bytes(data)
    v = list(_IV)
    n = len(data) - len(data) % BLOCK
    for off in range(0, n, BLOCK):
        _compress(v, data, off)
    return _final(v, data[n:], len(data))


def hmac_sm3(key, data):
    """HMAC-SM3 (RFC 2104 with H = SM3, B = 64): 32 bytes."""
    from edgeledger.firmware.hmac import hmac_oneshot

    return hmac_oneshot(sm3, BLOCK, key, data)

"""Pure-Python SM3 hash (GB/T 32905-2016, GM/T 0004-2012) for MicroPython, which has none.

``sm3(data)`` is the (one-shot) hash and ``hmac_sm3`` HMAC-SM3 (RFC 2104 over SM3,
64-byte block): SM2 signing derives its nonces with it (``sm2/sign.py``). What a device hashes
is short (a signed reading, Z_A ‖ M), so there is no incremental form.

SM3 is a Merkle-Damgård hash of 64-byte blocks, with SHA-256's padding (§5.2: a 1 bit,
zeros, the bit length as a 64-bit big-endian number) and a 32-byte state of eight 32-bit
words, which this code keeps as 16-bit halves (see ``_compress``): on a 32-bit MicroPython
(31-bit small ints) whole words are heap integers, one allocated by each operation, where
halves are never. It costs ~2x the time of whole words on the 64-bit unix port.

Digest size and interface match ``hashlib.sha256``'s one-shot use, so SM3 can serve where
the Merkle and chain code hash with SHA-256 (a deployment's hash choice).
"""
import struct
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = int

_M16 = const(0xFFFF)
BLOCK = 64  # GB/T 32905 §5.2: message block, bytes
DIGEST_LEN = 32
# §4.1: the initial value IV, as 16-bit halves (high, low) of its eight words.
_IV = (0x7380, 0x166F, 0x4914, 0xB2B9, 0x1724, 0x42D7, 0xDA8A, 0x0600,
       0xA96F, 0x30BC, 0x1631, 0x38AA, 0xE38D, 0xEE4D, 0xB0FB, 0x0E4E)


def _rh(h, lo, n):
    """The high half of the 32-bit word h:l rotated left by n, 0 <= n < 32."""
    if n >= 16:
        h, lo = lo, h
        n -= 16
    return ((h & (_M16 >> n)) << n) | (lo >> (16 - n))  # masked first: never above 2**16


def _rl(h, lo, n):
    """The low half of h:l <<< n."""
    if n >= 16:
        h, lo = lo, h
        n -= 16
    return ((lo & (_M16 >> n)) << n) | (h >> (16 - n))


# §4.2: T_j <<< (j mod 32), j = 0..63 (T_j = 79CC4519 for j < 16, 7A879D8A after), 4 bytes
# each, big-endian: the round constants the rounds add. A bytes literal: in ROMFS it costs a
# board no heap (an array built at import held 256 B; tests/agent/crypto/test_sm3.py
# rebuilds the table from the standard's two constants).
_T = (
    b"\x79\xcc\x45\x19\xf3\x98\x8a\x32\xe7\x31\x14\x65\xce\x62\x28\xcb"
    b"\x9c\xc4\x51\x97\x39\x88\xa3\x2f\x73\x11\x46\x5e\xe6\x22\x8c\xbc"
    b"\xcc\x45\x19\x79\x98\x8a\x32\xf3\x31\x14\x65\xe7\x62\x28\xcb\xce"
    b"\xc4\x51\x97\x9c\x88\xa3\x2f\x39\x11\x46\x5e\x73\x22\x8c\xbc\xe6"
    b"\x9d\x8a\x7a\x87\x3b\x14\xf5\x0f\x76\x29\xea\x1e\xec\x53\xd4\x3c"
    b"\xd8\xa7\xa8\x79\xb1\x4f\x50\xf3\x62\x9e\xa1\xe7\xc5\x3d\x43\xce"
    b"\x8a\x7a\x87\x9d\x14\xf5\x0f\x3b\x29\xea\x1e\x76\x53\xd4\x3c\xec"
    b"\xa7\xa8\x79\xd8\x4f\x50\xf3\xb1\x9e\xa1\xe7\x62\x3d\x43\xce\xc5"
    b"\x7a\x87\x9d\x8a\xf5\x0f\x3b\x14\xea\x1e\x76\x29\xd4\x3c\xec\x53"
    b"\xa8\x79\xd8\xa7\x50\xf3\xb1\x4f\xa1\xe7\x62\x9e\x43\xce\xc5\x3d"
    b"\x87\x9d\x8a\x7a\x0f\x3b\x14\xf5\x1e\x76\x29\xea\x3c\xec\x53\xd4"
    b"\x79\xd8\xa7\xa8\xf3\xb1\x4f\x50\xe7\x62\x9e\xa1\xce\xc5\x3d\x43"
    b"\x9d\x8a\x7a\x87\x3b\x14\xf5\x0f\x76\x29\xea\x1e\xec\x53\xd4\x3c"
    b"\xd8\xa7\xa8\x79\xb1\x4f\x50\xf3\x62\x9e\xa1\xe7\xc5\x3d\x43\xce"
    b"\x8a\x7a\x87\x9d\x14\xf5\x0f\x3b\x29\xea\x1e\x76\x53\xd4\x3c\xec"
    b"\xa7\xa8\x79\xd8\x4f\x50\xf3\xb1\x9e\xa1\xe7\x62\x3d\x43\xce\xc5"
)


def _compress(v, wh, wl, block, off):
    """§5.3 CF(V, B) on the 64-byte block at ``block[off:]``; updates ``v`` (16 halves).
    ``wh``, ``wl``: 68-entry uint16 arrays for the high and low halves of W (§5.3.2),
    the caller's, reused for every block.

    Every 32-bit word is two 16-bit halves (high, low), so no value ever exceeds a small
    int, on a 64-bit port or a 32-bit one (31-bit small ints: a whole 32-bit word would
    be a heap integer, allocated anew by each operation). A sum mod 2**32 adds the low
    halves, carries (>> 16) into the sum of the high halves and masks both; a rotation
    is ``_rh``/``_rl``, which mask before they shift.
    """
    for i in range(16):
        o = off + 4 * i
        wh[i] = (block[o] << 8) | block[o + 1]
        wl[i] = (block[o + 2] << 8) | block[o + 3]
    for j in range(16, 68):
        h, lo = wh[j - 3], wl[j - 3]
        xh = wh[j - 16] ^ wh[j - 9] ^ _rh(h, lo, 15)
        xl = wl[j - 16] ^ wl[j - 9] ^ _rl(h, lo, 15)
        h, lo = wh[j - 13], wl[j - 13]
        # P1(x) = x ^ (x <<< 15) ^ (x <<< 23)
        wh[j] = xh ^ _rh(xh, xl, 15) ^ _rh(xh, xl, 23) ^ _rh(h, lo, 7) ^ wh[j - 6]
        wl[j] = xl ^ _rl(xh, xl, 15) ^ _rl(xh, xl, 23) ^ _rl(h, lo, 7) ^ wl[j - 6]
    ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl = v
    t = _T
    for j in range(64):
        if j < 16:  # §5.3.3: FF_j, GG_j = X ^ Y ^ Z for 0 <= j <= 15
            ffh, ffl = ah ^ bh ^ ch, al ^ bl ^ cl
            ggh, ggl = eh ^ fh ^ gh, el ^ fl ^ gl
        else:  # 16 <= j <= 63: majority, choice
            ffh, ffl = (ah & bh) | (ah & ch) | (bh & ch), (al & bl) | (al & cl) | (bl & cl)
            ggh, ggl = (eh & fh) | ((eh ^ _M16) & gh), (el & fl) | ((el ^ _M16) & gl)
        a12h, a12l = _rh(ah, al, 12), _rl(ah, al, 12)
        o = 4 * j
        sl = a12l + el + ((t[o + 2] << 8) | t[o + 3])  # SS1 = ((A <<< 12) + E + (T_j <<< j)) <<< 7
        sh = (a12h + eh + ((t[o] << 8) | t[o + 1]) + (sl >> 16)) & _M16
        sl &= _M16
        s1h, s1l = _rh(sh, sl, 7), _rl(sh, sl, 7)
        # TT1 = FF + D + SS2 + W'_j, SS2 = SS1 ^ (A <<< 12), W'_j = W_j ^ W_j+4
        xl = ffl + dl + (s1l ^ a12l) + (wl[j] ^ wl[j + 4])
        xh = (ffh + dh + (s1h ^ a12h) + (wh[j] ^ wh[j + 4]) + (xl >> 16)) & _M16
        # TT2 = GG + H + SS1 + W_j
        yl = ggl + hl + s1l + wl[j]
        yh = (ggh + hh + s1h + wh[j] + (yl >> 16)) & _M16
        yl &= _M16
        dh, dl = ch, cl
        ch, cl = _rh(bh, bl, 9), _rl(bh, bl, 9)
        bh, bl = ah, al
        ah, al = xh, xl & _M16
        hh, hl = gh, gl
        gh, gl = _rh(fh, fl, 19), _rl(fh, fl, 19)
        fh, fl = eh, el
        # E = P0(TT2) = TT2 ^ (TT2 <<< 9) ^ (TT2 <<< 17)
        eh = yh ^ _rh(yh, yl, 9) ^ _rh(yh, yl, 17)
        el = yl ^ _rl(yh, yl, 9) ^ _rl(yh, yl, 17)
    x = (ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl)  # once a block
    for i in range(16):
        v[i] ^= x[i]


def sm3(data):
    """SM3 of ``data`` (bytes-like): 32 bytes."""
    v = list(_IV)
    wh = array("H", bytes(136))  # W0..W67 (§5.3.2), high and low halves apart
    wl = array("H", bytes(136))
    n = len(data) - len(data) % BLOCK
    for off in range(0, n, BLOCK):
        _compress(v, wh, wl, data, off)
    # §5.2: the last partial block, a 1 bit, zeros and the bit length (64 bits, big-endian)
    pad = bytes(data[n:]) + b"\x80" + bytes((55 - len(data) + n) % 64) + struct.pack(
        ">Q", len(data) << 3)
    for off in range(0, len(pad), BLOCK):
        _compress(v, wh, wl, pad, off)
    return struct.pack(">16H", *v)


def hmac_sm3(key, data):
    """HMAC-SM3 (RFC 2104 with H = SM3, B = 64): 32 bytes."""
    from edgeledger.agent.crypto.pure.hmac import hmac_oneshot

    return hmac_oneshot(sm3, BLOCK, key, data)

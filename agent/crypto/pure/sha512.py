"""Pure-Python SHA-512 (FIPS 180-4 §6.4) for MicroPython, which has no sha512.

One-shot ``sha512(data)``: what a device hashes (an Ed25519 seed, a message to sign) is
whole and short, so there is no incremental form.

Heap (64-bit MicroPython): the constants are bytes literals, not tuples of long
ints (~64 B each) or hex strings (a module's string constants stay alive as long
as any of its functions); private int constants are ``const`` (no global, no name).
The arithmetic runs on 32-bit halves of the 64-bit words (see ``_compress``): a whole
word above 2**62 is a heap object, so each operation on it would allocate.
"""
import struct
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = int

_M32 = const(0xFFFFFFFF)
_BLOCK = const(128)

# FIPS 180-4 §4.2.3: the 80 round constants K0..K79, 8 bytes each, big-endian
# (four a line); each is unpacked in its round.
_K = (
    b"\x42\x8a\x2f\x98\xd7\x28\xae\x22\x71\x37\x44\x91\x23\xef\x65\xcd\xb5\xc0\xfb\xcf\xec\x4d\x3b\x2f\xe9\xb5\xdb\xa5\x81\x89\xdb\xbc"
    b"\x39\x56\xc2\x5b\xf3\x48\xb5\x38\x59\xf1\x11\xf1\xb6\x05\xd0\x19\x92\x3f\x82\xa4\xaf\x19\x4f\x9b\xab\x1c\x5e\xd5\xda\x6d\x81\x18"
    b"\xd8\x07\xaa\x98\xa3\x03\x02\x42\x12\x83\x5b\x01\x45\x70\x6f\xbe\x24\x31\x85\xbe\x4e\xe4\xb2\x8c\x55\x0c\x7d\xc3\xd5\xff\xb4\xe2"
    b"\x72\xbe\x5d\x74\xf2\x7b\x89\x6f\x80\xde\xb1\xfe\x3b\x16\x96\xb1\x9b\xdc\x06\xa7\x25\xc7\x12\x35\xc1\x9b\xf1\x74\xcf\x69\x26\x94"
    b"\xe4\x9b\x69\xc1\x9e\xf1\x4a\xd2\xef\xbe\x47\x86\x38\x4f\x25\xe3\x0f\xc1\x9d\xc6\x8b\x8c\xd5\xb5\x24\x0c\xa1\xcc\x77\xac\x9c\x65"
    b"\x2d\xe9\x2c\x6f\x59\x2b\x02\x75\x4a\x74\x84\xaa\x6e\xa6\xe4\x83\x5c\xb0\xa9\xdc\xbd\x41\xfb\xd4\x76\xf9\x88\xda\x83\x11\x53\xb5"
    b"\x98\x3e\x51\x52\xee\x66\xdf\xab\xa8\x31\xc6\x6d\x2d\xb4\x32\x10\xb0\x03\x27\xc8\x98\xfb\x21\x3f\xbf\x59\x7f\xc7\xbe\xef\x0e\xe4"
    b"\xc6\xe0\x0b\xf3\x3d\xa8\x8f\xc2\xd5\xa7\x91\x47\x93\x0a\xa7\x25\x06\xca\x63\x51\xe0\x03\x82\x6f\x14\x29\x29\x67\x0a\x0e\x6e\x70"
    b"\x27\xb7\x0a\x85\x46\xd2\x2f\xfc\x2e\x1b\x21\x38\x5c\x26\xc9\x26\x4d\x2c\x6d\xfc\x5a\xc4\x2a\xed\x53\x38\x0d\x13\x9d\x95\xb3\xdf"
    b"\x65\x0a\x73\x54\x8b\xaf\x63\xde\x76\x6a\x0a\xbb\x3c\x77\xb2\xa8\x81\xc2\xc9\x2e\x47\xed\xae\xe6\x92\x72\x2c\x85\x14\x82\x35\x3b"
    b"\xa2\xbf\xe8\xa1\x4c\xf1\x03\x64\xa8\x1a\x66\x4b\xbc\x42\x30\x01\xc2\x4b\x8b\x70\xd0\xf8\x97\x91\xc7\x6c\x51\xa3\x06\x54\xbe\x30"
    b"\xd1\x92\xe8\x19\xd6\xef\x52\x18\xd6\x99\x06\x24\x55\x65\xa9\x10\xf4\x0e\x35\x85\x57\x71\x20\x2a\x10\x6a\xa0\x70\x32\xbb\xd1\xb8"
    b"\x19\xa4\xc1\x16\xb8\xd2\xd0\xc8\x1e\x37\x6c\x08\x51\x41\xab\x53\x27\x48\x77\x4c\xdf\x8e\xeb\x99\x34\xb0\xbc\xb5\xe1\x9b\x48\xa8"
    b"\x39\x1c\x0c\xb3\xc5\xc9\x5a\x63\x4e\xd8\xaa\x4a\xe3\x41\x8a\xcb\x5b\x9c\xca\x4f\x77\x63\xe3\x73\x68\x2e\x6f\xf3\xd6\xb2\xb8\xa3"
    b"\x74\x8f\x82\xee\x5d\xef\xb2\xfc\x78\xa5\x63\x6f\x43\x17\x2f\x60\x84\xc8\x78\x14\xa1\xf0\xab\x72\x8c\xc7\x02\x08\x1a\x64\x39\xec"
    b"\x90\xbe\xff\xfa\x23\x63\x1e\x28\xa4\x50\x6c\xeb\xde\x82\xbd\xe9\xbe\xf9\xa3\xf7\xb2\xc6\x79\x15\xc6\x71\x78\xf2\xe3\x72\x53\x2b"
    b"\xca\x27\x3e\xce\xea\x26\x61\x9c\xd1\x86\xb8\xc7\x21\xc0\xc2\x07\xea\xda\x7d\xd6\xcd\xe0\xeb\x1e\xf5\x7d\x4f\x7f\xee\x6e\xd1\x78"
    b"\x06\xf0\x67\xaa\x72\x17\x6f\xba\x0a\x63\x7d\xc5\xa2\xc8\x98\xa6\x11\x3f\x98\x04\xbe\xf9\x0d\xae\x1b\x71\x0b\x35\x13\x1c\x47\x1b"
    b"\x28\xdb\x77\xf5\x23\x04\x7d\x84\x32\xca\xab\x7b\x40\xc7\x24\x93\x3c\x9e\xbe\x0a\x15\xc9\xbe\xbc\x43\x1d\x67\xc4\x9c\x10\x0d\x4c"
    b"\x4c\xc5\xd4\xbe\xcb\x3e\x42\xb6\x59\x7f\x29\x9c\xfc\x65\x7e\x2a\x5f\xcb\x6f\xab\x3a\xd6\xfa\xec\x6c\x44\x19\x8c\x4a\x47\x58\x17"
)

# FIPS 180-4 §5.3.5: initial hash value H0..H7, 8 bytes each, big-endian.
_H0 = (
    b"\x6a\x09\xe6\x67\xf3\xbc\xc9\x08\xbb\x67\xae\x85\x84\xca\xa7\x3b\x3c\x6e\xf3\x72\xfe\x94\xf8\x2b\xa5\x4f\xf5\x3a\x5f\x1d\x36\xf1"
    b"\x51\x0e\x52\x7f\xad\xe6\x82\xd1\x9b\x05\x68\x8c\x2b\x3e\x6c\x1f\x1f\x83\xd9\xab\xfb\x41\xbd\x6b\x5b\xe0\xcd\x19\x13\x7e\x21\x79"
)


def _compress(h, block, off):
    """FIPS 180-4 §6.4.2 on the 128-byte block at ``block[off:]``; updates ``h``: the eight
    64-bit words as 16 32-bit halves H0hi, H0lo, ..., H7lo. On halves no intermediate reaches
    2**62, 64-bit MicroPython's small-int limit (the one rotation by 1 masks first); a 64-bit
    sum adds the lo halves and carries (``>> 32``) into the hi sum, masked once at the end:
    4-5x faster than whole words, no allocation but K[t]'s 2-tuple a round (a pair assignment
    makes none). The schedule W is a 16-word ring of uint32 halves (W[t] overwrites W[t-16];
    hi at ``w[2i]``): 128 B, loaded from the block one word a round.
    """
    w = array("I", bytes(128))
    ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl = h
    for t in range(80):
        j = (t & 15) << 1
        if t < 16:
            w[j], w[j + 1] = struct.unpack_from(">II", block, off + (t << 3))
        else:
            # W[t] = sigma1(W[t-2]) + W[t-7] + sigma0(W[t-15]) + W[t-16]
            i = ((t - 15) & 15) << 1
            xh, xl = w[i], w[i + 1]
            # sigma0 = rotr 1 ^ rotr 8 ^ shr 7
            s0h = (xh >> 1 | (xl & 1) << 31) ^ (xh >> 8 | xl << 24) ^ xh >> 7
            s0l = (xl >> 1 | (xh & 1) << 31) ^ (xl >> 8 | xh << 24) ^ (xl >> 7 | xh << 25)
            i = ((t - 2) & 15) << 1
            xh, xl = w[i], w[i + 1]
            # sigma1 = rotr 19 ^ rotr 61 ^ shr 6
            s1h = (xh >> 19 | xl << 13) ^ (xl >> 29 | xh << 3) ^ xh >> 6
            s1l = (xl >> 19 | xh << 13) ^ (xh >> 29 | xl << 3) ^ (xl >> 6 | xh << 26)
            i = ((t - 7) & 15) << 1
            xl = w[j + 1] + (s0l & _M32) + w[i + 1] + (s1l & _M32)
            w[j] = (w[j] + s0h + w[i] + s1h + (xl >> 32)) & _M32
            w[j + 1] = xl & _M32
        # Sigma1(e) = rotr 14 ^ rotr 18 ^ rotr 41
        xh = (eh >> 14 | el << 18) ^ (eh >> 18 | el << 14) ^ (el >> 9 | eh << 23)
        xl = (el >> 14 | eh << 18) ^ (el >> 18 | eh << 14) ^ (eh >> 9 | el << 23)
        kh, kl = struct.unpack_from(">II", _K, t << 3)
        # T1 = h + Sigma1(e) + Ch(e, f, g) + K[t] + W[t], hi part not yet masked
        t1l = hl + (xl & _M32) + (gl ^ (el & (fl ^ gl))) + kl + w[j + 1]
        t1h = hh + xh + (gh ^ (eh & (fh ^ gh))) + kh + w[j] + (t1l >> 32)
        t1l &= _M32
        # Sigma0(a) = rotr 28 ^ rotr 34 ^ rotr 39
        xh = (ah >> 28 | al << 4) ^ (al >> 2 | ah << 30) ^ (al >> 7 | ah << 25)
        xl = (al >> 28 | ah << 4) ^ (ah >> 2 | al << 30) ^ (ah >> 7 | al << 25)
        hh, hl = gh, gl
        gh, gl = fh, fl
        fh, fl = eh, el
        el = dl + t1l
        eh = (dh + t1h + (el >> 32)) & _M32
        el &= _M32
        dh, dl = ch, cl
        ch, cl = bh, bl
        bh, bl = ah, al
        # T1 + Sigma0(a) + Maj(a, b, c); b, c are the old a, b
        al = t1l + (xl & _M32) + ((bl & cl) | (dl & (bl | cl)))
        ah = (t1h + (xh & _M32) + ((bh & ch) | (dh & (bh | ch))) + (al >> 32)) & _M32
        al &= _M32
    v = (ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl)
    for i in range(0, 16, 2):
        xl = h[i + 1] + v[i + 1]
        h[i] = (h[i] + v[i] + (xl >> 32)) & _M32
        h[i + 1] = xl & _M32


def _final(h, tail, n):
    """The digest: state ``h`` (list of 16 32-bit halves) run over ``tail``, the last
    bytes of an ``n``-byte message, padded per FIPS 180-4 §5.1.2 (0x80, zeros to 112
    mod 128, then the 128-bit bit length).

    Whole blocks are hashed in place; only the rest is copied, into the padded block(s).
    """
    off = len(tail) & -_BLOCK
    for i in range(0, off, _BLOCK):
        _compress(h, tail, i)
    i = len(tail) - off
    buf = bytearray(_BLOCK if i < 112 else 2 * _BLOCK)
    buf[:i] = tail[off:]
    buf[i] = 0x80
    buf[-16:] = (8 * n).to_bytes(16, "big")
    for i in range(0, len(buf), _BLOCK):
        _compress(h, buf, i)
    return struct.pack(">16I", *h)


def sha512(data):
    """SHA-512 of ``data`` (64 bytes)."""
    return _final(list(struct.unpack(">16I", _H0)), data, len(data))


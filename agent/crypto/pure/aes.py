"""Pure-Python AES-128 forward cipher (FIPS 197) for ports without ``cryptolib``.

Only encryption is needed: CCM (RFC 3610) uses the forward cipher for both
directions. Byte-oriented (S-box and xtime tables, 512 bytes) so that no value
exceeds a small int on 32-bit boards. Slow and not constant-time: a fallback.
"""
BLOCK = 16
KEY_LEN = 16
ROUNDS = 10  # FIPS 197 §5: Nr = 10 for a 128-bit key


def _xtime(b):
    b <<= 1
    return (b ^ 0x11B) if b & 0x100 else b


def _build_tables():
    """FIPS 197 §5.1.1: S-box = affine map of the inverse in GF(2^8)."""
    exp = bytearray(256)
    log = bytearray(256)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x ^= _xtime(x)  # multiply by the generator 0x03
    sbox = bytearray(256)
    for a in range(256):
        inv = exp[(255 - log[a]) % 255] if a else 0
        s = inv
        for _ in range(4):
            inv = ((inv << 1) | (inv >> 7)) & 0xFF
            s ^= inv
        sbox[a] = s ^ 0x63
    xt = bytearray(256)
    for a in range(256):
        xt[a] = _xtime(a)
    return bytes(sbox), bytes(xt)


SBOX, _XT = _build_tables()
# FIPS 197 §5.1.2 ShiftRows on the column-major state: output byte i takes input byte _SHIFT[i].
_SHIFT = (0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11)
_RCON = (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1B, 0x36)


def expand_key(key):
    """FIPS 197 §5.2 KeyExpansion: 176 bytes of round keys. Raises ValueError on length."""
    if len(key) != KEY_LEN:
        raise ValueError("AES key: expected %d bytes, found %d" % (KEY_LEN, len(key)))
    w = bytearray(key)
    for i in range(4, 4 * (ROUNDS + 1)):
        t0, t1, t2, t3 = w[4 * i - 4], w[4 * i - 3], w[4 * i - 2], w[4 * i - 1]
        if i % 4 == 0:
            t0, t1, t2, t3 = SBOX[t1] ^ _RCON[i // 4 - 1], SBOX[t2], SBOX[t3], SBOX[t0]
        w.append(w[4 * i - 16] ^ t0)
        w.append(w[4 * i - 15] ^ t1)
        w.append(w[4 * i - 14] ^ t2)
        w.append(w[4 * i - 13] ^ t3)
    return bytes(w)


class Aes:
    """AES-128 with the key schedule kept: ``Aes(key).encrypt_block(block16)``."""

    def __init__(self, key):
        self._rk = expand_key(bytes(key))

    def encrypt_block(self, block):
        """FIPS 197 §5.1 Cipher. Raises ValueError unless ``block`` is 16 bytes."""
        if len(block) != BLOCK:
            raise ValueError("AES block: expected %d bytes, found %d" % (BLOCK, len(block)))
        rk = self._rk
        sbox = SBOX
        xt = _XT
        shift = _SHIFT
        s = bytearray(16)
        for i in range(16):
            s[i] = block[i] ^ rk[i]
        t = bytearray(16)
        for rnd in range(1, ROUNDS + 1):
            for i in range(16):  # SubBytes + ShiftRows
                t[i] = sbox[s[shift[i]]]
            off = 16 * rnd
            if rnd == ROUNDS:
                for i in range(16):
                    s[i] = t[i] ^ rk[off + i]
                break
            for c in range(0, 16, 4):  # MixColumns (§5.1.3) + AddRoundKey
                a0, a1, a2, a3 = t[c], t[c + 1], t[c + 2], t[c + 3]
                e = a0 ^ a1 ^ a2 ^ a3
                s[c] = a0 ^ e ^ xt[a0 ^ a1] ^ rk[off + c]
                s[c + 1] = a1 ^ e ^ xt[a1 ^ a2] ^ rk[off + c + 1]
                s[c + 2] = a2 ^ e ^ xt[a2 ^ a3] ^ rk[off + c + 2]
                s[c + 3] = a3 ^ e ^ xt[a3 ^ a0] ^ rk[off + c + 3]
        return bytes(s)

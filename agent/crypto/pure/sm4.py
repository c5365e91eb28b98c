"""Pure-Python SM4 block cipher (GB/T 32907-2016, GM/T 0002-2012) for MicroPython.

SM4 is a 128-bit block cipher with a 128-bit key and 32 rounds of an unbalanced Feistel
network over four 32-bit words (§6, §7). CCM (``aesccm.py``, RFC 3610) needs only the
forward cipher, so SM4-CCM is ``aesccm`` over ``Sm4(key).encrypt_block``; decryption is
here for completeness of the cipher (the round keys in reverse order, §7.2).

Slow and not constant-time (the S-box is a table): a fallback where no native SM4 exists.
"""
BLOCK = 16
KEY_LEN = 16
ROUNDS = 32  # §6.1

# §6.2: the S-box τ applies to each byte.
SBOX = (
    b"\xd6\x90\xe9\xfe\xcc\xe1\x3d\xb7\x16\xb6\x14\xc2\x28\xfb\x2c\x05\x2b\x67\x9a\x76\x2a\xbe\x04\xc3\xaa\x44\x13\x26\x49\x86\x06\x99"
    b"\x9c\x42\x50\xf4\x91\xef\x98\x7a\x33\x54\x0b\x43\xed\xcf\xac\x62\xe4\xb3\x1c\xa9\xc9\x08\xe8\x95\x80\xdf\x94\xfa\x75\x8f\x3f\xa6"
    b"\x47\x07\xa7\xfc\xf3\x73\x17\xba\x83\x59\x3c\x19\xe6\x85\x4f\xa8\x68\x6b\x81\xb2\x71\x64\xda\x8b\xf8\xeb\x0f\x4b\x70\x56\x9d\x35"
    b"\x1e\x24\x0e\x5e\x63\x58\xd1\xa2\x25\x22\x7c\x3b\x01\x21\x78\x87\xd4\x00\x46\x57\x9f\xd3\x27\x52\x4c\x36\x02\xe7\xa0\xc4\xc8\x9e"
    b"\xea\xbf\x8a\xd2\x40\xc7\x38\xb5\xa3\xf7\xf2\xce\xf9\x61\x15\xa1\xe0\xae\x5d\xa4\x9b\x34\x1a\x55\xad\x93\x32\x30\xf5\x8c\xb1\xe3"
    b"\x1d\xf6\xe2\x2e\x82\x66\xca\x60\xc0\x29\x23\xab\x0d\x53\x4e\x6f\xd5\xdb\x37\x45\xde\xfd\x8e\x2f\x03\xff\x6a\x72\x6d\x6c\x5b\x51"
    b"\x8d\x1b\xaf\x92\xbb\xdd\xbc\x7f\x11\xd9\x5c\x41\x1f\x10\x5a\xd8\x0a\xc1\x31\x88\xa5\xcd\x7b\xbd\x2d\x74\xd0\x12\xb8\xe5\xb4\xb0"
    b"\x89\x69\x97\x4a\x0c\x96\x77\x7e\x65\xb9\xf1\x09\xc5\x6e\xc6\x84\x18\xf0\x7d\xec\x3a\xdc\x4d\x20\x79\xee\x5f\x3e\xd7\xcb\x39\x48"
)
# §7.3: system parameter FK.
_FK = (0xA3B1BAC6, 0x56AA3350, 0x677D9197, 0xB27022DC)
_M32 = 0xFFFFFFFF


def _tau(x):
    """§6.2.1 τ: the S-box on each byte of a 32-bit word."""
    s = SBOX
    return (s[x >> 24] << 24) | (s[(x >> 16) & 255] << 16) | (s[(x >> 8) & 255] << 8) | s[x & 255]


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & _M32


def expand_key(key):
    """§7.3 key expansion: the 32 round keys rk_0..rk_31 (a list of ints).

    Raises ValueError unless ``key`` is 16 bytes.
    """
    if len(key) != KEY_LEN:
        raise ValueError("SM4 key: expected %d bytes, found %d" % (KEY_LEN, len(key)))
    k = [int.from_bytes(bytes(key[4 * i:4 * i + 4]), "big") ^ _FK[i] for i in range(4)]
    rk = []
    for i in range(ROUNDS):
        # CK_i = (ck_i,0, ..., ck_i,3), ck_i,j = (4i + j) * 7 mod 256
        ck = 0
        for j in range(4):
            ck = (ck << 8) | ((4 * i + j) * 7 & 255)
        b = _tau(k[1] ^ k[2] ^ k[3] ^ ck)
        nk = k[0] ^ b ^ _rotl(b, 13) ^ _rotl(b, 23)  # T' = L'(τ(.))
        rk.append(nk)
        k = [k[1], k[2], k[3], nk]
    return rk


def _crypt(rk, block):
    """§6.3: 32 rounds of F, then the reverse transformation R."""
    if len(block) != BLOCK:
        raise ValueError("SM4 block: expected %d bytes, found %d" % (BLOCK, len(block)))
    block = bytes(block)
    x0 = int.from_bytes(block[0:4], "big")
    x1 = int.from_bytes(block[4:8], "big")
    x2 = int.from_bytes(block[8:12], "big")
    x3 = int.from_bytes(block[12:16], "big")
    for i in range(ROUNDS):
        b = _tau(x1 ^ x2 ^ x3 ^ rk[i])
        # F: X_{i+4} = X_i ^ L(τ(X_{i+1} ^ X_{i+2} ^ X_{i+3} ^ rk_i)), §6.2.2 L
        x0, x1, x2, x3 = x1, x2, x3, (x0 ^ b ^ _rotl(b, 2) ^ _rotl(b, 10) ^ _rotl(b, 18)
                                      ^ _rotl(b, 24))
    return (x3.to_bytes(4, "big") + x2.to_bytes(4, "big") + x1.to_bytes(4, "big")
            + x0.to_bytes(4, "big"))


class Sm4:
    """SM4 with the round keys kept: ``Sm4(key).encrypt_block(block16)``.

    Raises ValueError for a key that is not 16 bytes or a block that is not 16.
    """

    def __init__(self, key):
        self._rk = expand_key(key)
        self._rk_dec = None

    def encrypt_block(self, block):
        return _crypt(self._rk, block)

    def decrypt_block(self, block):
        if self._rk_dec is None:
            self._rk_dec = self._rk[::-1]  # §7.2: decryption uses rk_31 .. rk_0
        return _crypt(self._rk_dec, block)

"""CCM (RFC 3610) over any 128-bit block cipher's encrypt function (AES, SM4).

Counter with CBC-MAC needs only the forward block cipher, so this module takes
``encrypt_block(block16) -> block16`` and works the same over MicroPython's
``cryptolib.aes(key, 1)`` (ECB), the pure ``aes``/``sm4`` modules or ``cryptography``.

COSE algorithm 10, AES-CCM-16-64-128 (RFC 9053 §4.2), is L=2 (13-byte nonce),
M=8 (8-byte tag), 128-bit key: the defaults here.
"""
from edgeledger.agent.crypto.errors import CcmAuthError

BLOCK = 16
# RFC 3610 §2: the nonce is 15-L bytes with 2 <= L <= 8, so 7..13 bytes.
NONCE_MIN = 7
NONCE_MAX = 13
# RFC 3610 §2: M (tag length) is one of 4, 6, 8, 10, 12, 14, 16.
TAG_LENGTHS = (4, 6, 8, 10, 12, 14, 16)
# Bound on the additional data we will MAC: the 2-byte and 6-byte length
# encodings of RFC 3610 §2.2 cover up to 2**32-1; a device never needs more.
AAD_MAX = 0xFFFFFFFF


def _check(nonce, tag_len):
    n = len(nonce)
    if n < NONCE_MIN or n > NONCE_MAX:
        raise ValueError("CCM nonce: expected %d..%d bytes, found %d" % (NONCE_MIN, NONCE_MAX, n))
    if tag_len not in TAG_LENGTHS:
        raise ValueError("CCM tag length: expected one of %r, found %r" % (TAG_LENGTHS, tag_len))
    return 15 - n  # L


def _xor_into(dst, src, n):
    for i in range(n):
        dst[i] ^= src[i]


def _cbc_mac(encrypt_block, nonce, L, tag_len, aad, msg):
    """RFC 3610 §2.2: CBC-MAC over B0, the encoded AAD and the message."""
    mlen = len(msg)
    if L < 8 and mlen >> (8 * L):
        raise ValueError("CCM message: expected < 2**%d bytes for a %d-byte nonce, found %d"
                         % (8 * L, len(nonce), mlen))
    # Flags = 64*Adata + 8*M' + L', M' = (M-2)/2, L' = L-1.
    flags = (64 if aad else 0) | (((tag_len - 2) // 2) << 3) | (L - 1)
    b0 = bytes([flags]) + bytes(nonce) + mlen.to_bytes(L, "big")
    x = bytearray(encrypt_block(b0))
    if aad:
        alen = len(aad)
        # RFC 3610 §2.2: 0 < l(a) < 2^16-2^8 -> 2 bytes; < 2^32 -> 0xfffe ‖ 4 bytes.
        if alen < 0xFF00:
            head = alen.to_bytes(2, "big")
        elif alen <= AAD_MAX:
            head = b"\xff\xfe" + alen.to_bytes(4, "big")
        else:
            raise ValueError("CCM aad: expected <= %d bytes, found %d" % (AAD_MAX, alen))
        x = _mac_blocks(encrypt_block, x, head + bytes(aad))
    if mlen:
        x = _mac_blocks(encrypt_block, x, msg)
    return bytes(x[:tag_len])


def _mac_blocks(encrypt_block, x, data):
    """Chain ``data`` zero-padded to whole blocks into the CBC-MAC state ``x``."""
    n = len(data)
    for off in range(0, n, BLOCK):
        chunk = data[off:off + BLOCK]
        _xor_into(x, chunk, len(chunk))
        x = bytearray(encrypt_block(bytes(x)))
    return x


def _ctr(encrypt_block, nonce, L, data):
    """RFC 3610 §2.3: returns (data XOR S_1 S_2 ..., S_0)."""
    prefix = bytes([L - 1]) + bytes(nonce)
    s0 = encrypt_block(prefix + (0).to_bytes(L, "big"))
    out = bytearray(data)
    n = len(out)
    i = 1
    for off in range(0, n, BLOCK):
        s = encrypt_block(prefix + i.to_bytes(L, "big"))
        end = off + BLOCK if off + BLOCK < n else n
        for j in range(off, end):
            out[j] ^= s[j - off]
        i += 1
    return bytes(out), s0


def ccm_encrypt(encrypt_block, nonce, plaintext, aad=b"", tag_len=8):
    """Return ciphertext ‖ tag. Raises ValueError on a bad nonce/tag length."""
    L = _check(nonce, tag_len)
    t = _cbc_mac(encrypt_block, nonce, L, tag_len, aad, plaintext)
    ct, s0 = _ctr(encrypt_block, nonce, L, plaintext)
    u = bytearray(t)
    _xor_into(u, s0, tag_len)
    return ct + bytes(u)


def ccm_decrypt(encrypt_block, nonce, data, aad=b"", tag_len=8):
    """Return the plaintext of ``ciphertext ‖ tag``.

    Raises CcmAuthError when the tag does not match (RFC 3610 §2.5: nothing of
    the plaintext is released), ValueError on bad nonce/tag lengths or input
    shorter than the tag.
    """
    L = _check(nonce, tag_len)
    if len(data) < tag_len:
        raise ValueError("CCM input: expected at least the %d-byte tag, found %d bytes"
                         % (tag_len, len(data)))
    ct = data[:len(data) - tag_len]
    u = data[len(data) - tag_len:]
    pt, s0 = _ctr(encrypt_block, nonce, L, ct)
    t = _cbc_mac(encrypt_block, nonce, L, tag_len, aad, pt)
    diff = 0
    for i in range(tag_len):
        diff |= t[i] ^ s0[i] ^ u[i]
    if diff:
        raise CcmAuthError("CCM tag mismatch: expected a tag computed over this nonce, aad and "
                           "ciphertext, found a different %d-byte tag" % tag_len)
    return pt

"""Pure-Python SM2 signatures (GB/T 32918.2-2016, GM/T 0003.2-2012) with SM3, for MicroPython.

Curve sm2p256v1 (GB/T 32918.5-2017, GM/T 0003.5-2012), a = p − 3: the Jacobian arithmetic
of ``ecc/curve.py`` (shared with P-256), a comb of 3 teeth over 7 precomputed points for [k]G.

Signing (GB/T 32918.2 §6.1), for private key d in [1, n−2] and public key P = [d]G:

  Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)   (§5.5; ENTL_A = bit length of ID_A)
  e   = SM3(Z_A ‖ M)
  (x1, y1) = [k]G;  r = (e + x1) mod n, retried if r = 0 or r + k = n
  s   = (1 + d)⁻¹ (k − r d) mod n, retried if s = 0;  signature r ‖ s (32 + 32 bytes)

ID_A is the default user id ``1234567812345678`` (GB/T 35276-2017 §10, GM/T 0009-2012 §10)
unless a caller names another.

The nonce k is deterministic: RFC 6979 §3.2 with H = SM3 (HMAC-SM3, h1 = e mod n).
GB/T 32918.2 draws k at random; a verifier cannot tell the two apart, and a
deterministic k needs no RNG on the board (no nonce reuse from a weak one) and gives
the same bytes on every runtime. ``sign_with_nonce`` takes k from the caller: the
standards' worked examples fix it.

Verification and point decoding (§7.1) are ``verify.py``, on top of this module's curve:
a board signs, it never verifies, and its image leaves that module out.

Scalars come in already checked by ``crypto/sign.py`` (``sm2_sign``): ``d`` an int in
[1, n−2]. Not constant-time (see ed25519/sign.py).
"""
from edgeledger.agent.crypto.pure.ecc import curve as ecc
from edgeledger.agent.crypto.pure.sm3 import hmac_sm3, sm3

try:
    from micropython import const
except ImportError:  # CPython
    const = int

# GB/T 32918.5 §3 (GM/T 0003.5 §3): curve sm2p256v1.
_P = const(0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF)
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123  # order of G

# a ‖ b, 32 bytes each, big-endian: part of Z_A (x_G ‖ y_G is the comb's first entry).
_AB = (
    b"\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfc"
    b"\x28\xe9\xfa\x9e\x9d\x9f\x5e\x34\x4d\x5a\x9e\x4b\xcf\x65\x09\xa7\xf3\x97\x89\xf5\x15\xab\x8f\x92\xdd\xbc\xbd\x41\x4d\x94\x0e\x93"
)

# The comb for [k]G (ecc/curve.py): entry j (1..7) = sum of [2**(86 t)]G over the bits t set in j,
# affine (x, y): two 32-byte big-endian numbers, one a line; entry 1 is G.
# tests/agent/crypto/test_sm2.py rebuilds it from G.
_COMB = (
    b"\x32\xc4\xae\x2c\x1f\x19\x81\x19\x5f\x99\x04\x46\x6a\x39\xc9\x94\x8f\xe3\x0b\xbf\xf2\x66\x0b\xe1\x71\x5a\x45\x89\x33\x4c\x74\xc7"
    b"\xbc\x37\x36\xa2\xf4\xf6\x77\x9c\x59\xbd\xce\xe3\x6b\x69\x21\x53\xd0\xa9\x87\x7c\xc6\x2a\x47\x40\x02\xdf\x32\xe5\x21\x39\xf0\xa0"
    b"\xc3\xfd\x77\xaa\xa8\x34\xc8\xd7\x08\x17\x2c\x75\xe8\xfc\xd7\x23\xc9\x15\xb8\x30\x30\xbe\xe9\x51\xba\xdf\x32\x31\x8c\x21\x82\x04"
    b"\x41\x9a\x3c\xb9\x89\x5b\x4a\x54\x9e\xb6\x11\x2e\x0f\x05\x9c\xa5\xd1\x74\x59\x39\x3e\xf8\xdf\xd0\x4a\x37\x59\x68\x6d\xdd\x1a\x8d"
    b"\xd1\x86\x9b\x3f\xff\x5b\x3e\x6d\x3d\x88\x5b\x4e\xb1\x85\xa8\xae\x2d\xfb\x51\x7e\x81\xc0\xe3\x52\x6e\xe0\xba\xba\xd9\xe3\xdf\x53"
    b"\x47\xae\xc3\x1d\x3d\x5c\x26\x44\x68\xfd\x44\x13\x7c\xa2\xd1\xca\xc1\xf7\xf0\x9d\x12\x1a\xe3\x6b\x2d\x76\xff\xa5\xc3\x96\xf9\xb0"
    b"\x06\x68\x7d\x10\x78\xba\x09\x03\xa5\xee\xe9\xd4\xa6\x35\xff\x82\xb5\xd6\xb5\x76\x5e\x42\xdc\x7a\xc8\x97\xa6\xb9\x34\x29\x78\x3d"
    b"\x61\xa5\x57\xd8\x49\x0c\x51\xdd\x1a\x7c\x23\xce\x96\x52\xdf\x72\xa8\x13\x3f\x73\xad\xa6\x3d\xb3\x03\x6e\x43\x94\xee\x35\x2a\x7f"
    b"\x8e\xf2\xfe\xa5\x42\x88\x85\x5b\x21\xef\x2c\xee\x93\x22\xac\x95\x40\xe6\x9e\xb3\xfa\x9a\x8e\x9c\x0c\x02\x22\x20\xa5\x60\xe0\xec"
    b"\x40\x48\x37\xce\x7f\x67\x69\xc3\x17\x92\x52\x55\xa8\x42\xf0\x6f\xb2\xb9\xc5\x2c\x58\xd6\x71\xa1\xbe\x9d\x68\xa9\x14\x98\xea\x63"
    b"\x6f\x88\xc5\xd3\x87\x0f\xda\x46\x15\x6a\xb4\x3c\xfb\xf7\xe8\xb7\xb2\xbb\x63\xce\xab\xab\x6d\x62\x34\xe2\xc8\x29\xea\xeb\x27\x69"
    b"\x77\x46\x17\x3c\x72\xf5\xfb\x73\x88\x8a\xe6\x51\x66\x3e\x97\x31\x01\xa1\xb8\xea\x36\x11\x74\x13\x41\xa6\xbb\xdb\xc9\x1c\xab\x81"
    b"\x1b\xc8\x53\xc6\x58\x82\x4f\xf4\x92\x9e\x86\xae\xd8\x02\xae\xe5\x75\x18\x1c\x03\xad\x9c\x7d\x4d\x20\x13\x9a\xef\x6b\xaf\x95\x3c"
    b"\x4b\x80\x57\x7f\xba\x0b\x8b\xd9\x23\xe2\xd1\x1a\xce\xc5\xc4\xff\xc0\x59\xf4\x4c\x71\x17\x7b\x9f\x4e\x4c\xfd\xe1\x97\xc4\x63\x86"
)

double, madd, affine, base_mul = ecc.curve(_P, _COMB)

DEFAULT_UID = b"1234567812345678"  # GB/T 35276-2017 §10: ID_A when none is agreed
# ENTL_A is two bytes of bit length (§5.5): an id of at most 8191 bytes.
UID_MAX = 8191

# Z_A of the last key signed with (d, Z_A): a board signs with one key, and Z_A needs the
# public key, one [d]G (as costly as the signature itself). One entry, so a bound of one.
_last = None


def public_key(d):
    """SEC 1 uncompressed [d]G (65 bytes) for the scalar ``d`` (int, 1 <= d <= n-2)."""
    x, y = affine(base_mul(d))
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def z_a(pub, uid=DEFAULT_UID, curve=None):
    """Z_A (§5.5) of the 65-byte SEC 1 uncompressed public key ``pub`` and id ``uid``.

    ``curve`` is a ‖ b ‖ x_G ‖ y_G (128 bytes) of another curve (for the GB/T 32918.2
    annex example); sm2p256v1 by default. Raises ValueError for an id over UID_MAX bytes.
    """
    if len(uid) > UID_MAX:
        raise ValueError("SM2 user id: expected at most %d bytes, found %d" % (UID_MAX, len(uid)))
    entl = len(uid) * 8
    head = bytes((entl >> 8, entl & 255)) + bytes(uid)
    return sm3(head + (curve or _AB + _COMB[:64]) + bytes(pub[1:65]))


def sign_with_nonce(d, digest, k):
    """r ‖ s for the 32-byte ``digest`` e with nonce ``k`` (1 <= k < n), or None if this k
    is one GB/T 32918.2 §6.1 steps A5/A6 reject (r = 0, r + k = n, s = 0)."""
    e = int.from_bytes(digest, "big")
    r = (e + affine(base_mul(k))[0]) % N
    if r == 0 or r + k == N:
        return None
    s = ecc.inv(1 + d, N) * (k - r * d) % N
    if s == 0:
        return None
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign(d, digest):
    """SM2 signature r ‖ s (64 bytes) of the 32-byte ``digest`` e = SM3(Z_A ‖ M), RFC 6979 k."""
    h1 = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")  # bits2octets(e)
    for k in ecc.rfc6979_nonces(d, h1, N, hmac_sm3):
        sig = sign_with_nonce(d, digest, k)
        if sig:
            return sig


def sign_message(d, msg):
    """SM2 signature of the message ``msg`` with the default user id: Z_A, e, then ``sign``."""
    global _last
    if _last is None or _last[0] != d:
        _last = (d, z_a(public_key(d)))
    return sign(d, sm3(_last[1] + msg))


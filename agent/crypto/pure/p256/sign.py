"""Pure-Python ECDSA signing over P-256 (FIPS 186-4 §6, SEC 1 §4.1) for MicroPython.

Used by the crypto package (``sign.py``) for COSE ES256 (RFC 9053 §2.1) on boards without a
native ECDSA. The nonce k is deterministic (RFC 6979 §3.2, HMAC-DRBG over
SHA-256), so no RNG is needed to sign and both runtimes give the same bytes.

Points are Jacobian (X:Y:Z), x = X/Z², y = Y/Z³, with a = -3 doubling
(dbl-2001-b) and mixed addition against affine table points (madd-2007-bl).
[k]G uses a comb with 3 teeth over a precomputed table of 7 affine points.
That arithmetic is shared with SM2 (whose curve also has a = -3) in ``ecc/curve.py``.

Verification and point decoding (SEC 1 §4.1.4, §2.3.4) are ``verify.py``, on top of this
module's curve (``N``, ``double``, ``madd``, ``affine``, ``base_mul``): a board signs, it
never verifies, and its image leaves that module out.

Heap (64-bit MicroPython, where a 256-bit int is a ~64 B heap object): private
constants are ``const`` (inlined, no global or name) and the comb table is one
bytes literal, not 14 ints in 7 tuples.

Scalars and digests come in already checked by ``crypto/sign.py``: ``d`` an int in
[1, n-1], ``digest`` 32 bytes of SHA-256. Not constant-time (see ed25519/sign.py).
"""

from edgeledger.agent.crypto.pure.ecc import curve as ecc

try:
    from micropython import const
except ImportError:  # CPython
    const = int

# SEC 2 §2.4.2 / FIPS 186-4 D.1.2.3: curve P-256 (secp256r1).
_P = const(0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF)
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of G

# The comb for [k]G (ecc/curve.py): entry j (1..7) = sum of [2**(86 t)]G over the bits t set in j,
# affine (x, y): two 32-byte big-endian numbers, one a line. tests/agent/crypto/test_p256.py
# rebuilds it from G.
_COMB = (
    b"\x6b\x17\xd1\xf2\xe1\x2c\x42\x47\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96"
    b"\x4f\xe3\x42\xe2\xfe\x1a\x7f\x9b\x8e\xe7\xeb\x4a\x7c\x0f\x9e\x16\x2b\xce\x33\x57\x6b\x31\x5e\xce\xcb\xb6\x40\x68\x37\xbf\x51\xf5"
    b"\x6e\xec\x95\x67\x0d\x54\x65\x0c\xc1\x4b\x66\xdd\x02\x43\x68\x93\xff\xdc\x67\x94\x2d\x66\x68\x17\xfd\xc7\x3e\x83\xbf\x78\x0c\x2c"
    b"\x14\xbb\x53\x50\x99\x77\x32\xc2\xfc\x28\x1d\xe0\x65\xea\x01\x05\x79\xab\x66\x15\x3a\x07\xff\x89\x08\x9e\xc1\xa1\xed\xbf\xcd\x32"
    b"\x13\xcc\xca\x34\x55\xfa\x62\x5c\xbf\x66\x4d\x2f\x09\x9c\x20\x2b\x41\x0b\xec\x28\xca\x16\x70\x99\xae\xc9\x02\x64\x73\x18\x18\x8e"
    b"\x4b\x5b\xa5\xa5\xaf\x46\x89\x3d\xe9\x04\x46\xb1\xfb\x21\x6a\x5e\x6b\x64\x75\x21\x6c\xdb\x0d\x71\xaa\x84\xc2\x31\x05\x42\x1c\x0c"
    b"\x45\xa5\x11\xc9\x7f\x60\x8b\xf7\x6d\xbc\x41\x89\xd9\x91\xec\xe6\x18\xc4\x52\xb1\xb4\x2a\x62\x7f\x3c\xd5\xf4\xe4\xa9\xaa\x52\xdf"
    b"\x73\xbe\x0e\xc7\x73\xea\x9b\x6d\x3f\xe3\x33\x7f\xcb\x62\x5a\xd2\x5a\x91\x9b\x27\xd2\x29\x55\xce\x7b\x52\xbd\x12\x12\x5e\xc1\x6c"
    b"\xdf\x6b\x47\x2f\xb5\x2a\xcd\x25\x19\x75\xb7\x1e\xcb\xe4\x90\xd2\x71\xb9\xa7\xe5\xd4\xec\x25\x10\xc6\xe4\xb6\xd0\x01\x64\x76\xea"
    b"\xb4\x26\x39\xe1\xa8\x8f\xd5\x93\x3c\x9a\x13\x37\x1b\xb5\x11\x19\xcc\xc7\xb0\xb3\xb8\x7d\x39\x9e\xf1\x73\x87\x16\x78\x40\x55\xeb"
    b"\x4f\xb6\xe5\x62\x41\xf4\x2b\xf6\xda\x24\xeb\x0b\x66\x4e\xc1\x9c\x05\x44\xde\x81\xa9\x39\x44\x0a\x48\xd6\x37\x48\xb5\x6b\xc4\x51"
    b"\xa9\x23\x27\x76\x4d\x6d\x91\xd8\x6f\x95\xf5\xf2\xbc\xe2\xd4\x18\xa4\x12\x39\x24\xd2\x5b\xd4\x1b\x21\xb2\xc8\x0e\x66\xbb\x5d\x6b"
    b"\x57\xa4\x62\x57\xa8\x6a\x91\x16\x0a\x89\x61\x32\x45\x9f\x70\xb4\x03\xb7\xd5\x23\x8a\xfc\x69\x6a\x54\x6a\x08\xe7\xf1\x19\xb8\xcc"
    b"\x7c\x4b\x12\x7d\x66\x21\xec\x11\x1a\x3c\x56\x52\x43\x78\x50\xd6\xf4\xe6\x1f\x40\x74\x79\x5c\x6d\xfa\xa5\x6f\xef\xbb\x31\x4c\x65"
)

double, madd, affine, base_mul = ecc.curve(_P, _COMB)


def public_key(d):
    """SEC 1 uncompressed [d]G (65 bytes) for the scalar ``d`` (int, 1 <= d < n)."""
    x, y = affine(base_mul(d))
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def rfc6979_nonces(d, digest):
    """RFC 6979 §3.2 candidate k values for qlen = hlen = 256, HMAC-SHA-256."""
    from edgeledger.agent.crypto.pure.hmac import hmac_sha256  # loaded by the first sign

    h1 = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")  # bits2octets(H(m))
    return ecc.rfc6979_nonces(d, h1, N, hmac_sha256)


def sign(d, digest):
    """ECDSA signature r ‖ s (64 bytes) of a 32-byte ``digest`` with scalar ``d``."""
    e = int.from_bytes(digest, "big")  # qlen = 256 bits: the whole digest (SEC 1 §4.1.3 step 5)
    for k in rfc6979_nonces(d, digest):
        r = affine(base_mul(k))[0] % N
        if r == 0:
            continue
        s = ecc.inv(k, N) * (e + r * d) % N
        if s == 0:
            continue
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


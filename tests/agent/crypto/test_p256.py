"""ES256 / P-256 ECDSA (RFC 6979 A.2.5 vectors): pure module, shim, cross-runtime with `cryptography`."""
import hashlib
import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edgeledger.agent import crypto
from edgeledger.agent.crypto.pure.p256 import sign as pure
from edgeledger.agent.crypto.pure.p256 import verify as pure_verify
from edgeledger.agent.crypto.verify import es256_verify
from edgeledger.protocols.cose import verify as cose_verify
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines

D = bytes.fromhex(vectors.P256_PRIVATE)
PUB = bytes.fromhex(vectors.P256_PUBLIC)


def _raw(der):
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _low_s(s_hex):
    """The s an ES256 signer returns: s, or n - s when s > n/2 (the canonical form)."""
    s = int(s_hex, 16)
    return "%064x" % (cose_verify.P256_N - s if s > cose_verify.P256_N // 2 else s)


def _verify_with_cryptography(pub, msg, sig):
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.verify(der, msg, ec.ECDSA(hashes.SHA256()))


def test_rfc6979_public_key():
    assert pure.public_key(int.from_bytes(D, "big")) == PUB
    assert crypto.p256_public_key(D) == PUB


@pytest.mark.parametrize("msg,k,r,s", vectors.P256_SHA256, ids=["sample", "test"])
def test_rfc6979_deterministic_signatures(msg, k, r, s):
    digest = hashlib.sha256(msg).digest()
    assert next(pure.rfc6979_nonces(int.from_bytes(D, "big"), digest)) == int(k, 16)
    assert pure.sign(int.from_bytes(D, "big"), digest).hex() == r + s  # the raw RFC 6979 (r, s)
    # the signer (cryptography with deterministic_signing) returns its low-S twin
    assert crypto.es256_sign(D, msg).hex() == r + _low_s(s)
    for sig in (bytes.fromhex(r + s), bytes.fromhex(r + _low_s(s))):  # both verify
        assert pure_verify.verify(PUB, digest, sig) is True
        assert es256_verify(PUB, msg, sig) is True


def test_rfc6979_sample_is_high_s_and_the_signer_flips_it():
    # guards the test above: one vector must exercise the n - s branch
    assert [int(s, 16) > cose_verify.P256_N // 2 for _, _, _, s in vectors.P256_SHA256] == [True, False]


def test_es256_signatures_are_low_s_on_both_backends():
    """Every ES256 signature a signer makes has s <= n/2, whichever backend made it."""
    half = cose_verify.P256_N // 2
    flipped = 0
    for i in range(64):
        d = hashlib.sha256(b"key %d" % i).digest()
        msg = b"reading %d" % i
        sig = crypto.es256_sign(d, msg)
        raw = pure.sign(int.from_bytes(d, "big"), hashlib.sha256(msg).digest())
        assert sig == crypto.es256_low_s(raw)  # both backends: the same bytes
        assert int.from_bytes(sig[32:], "big") <= half
        flipped += raw != sig
    assert flipped > 10  # RFC 6979 is deterministic: about half of these come out high
    assert crypto.es256_low_s(sig) == sig  # idempotent


@pytest.mark.parametrize("verify", [
    lambda pub, m, s: pure_verify.verify(pub, hashlib.sha256(m).digest(), s),
    es256_verify], ids=["pure", "shim"])
def test_tampering_is_refused(verify):
    msg, _, r, s = vectors.P256_SHA256[0]
    sig = bytes.fromhex(r + s)
    bad = bytearray(sig)
    bad[40] ^= 0x01
    assert verify(PUB, msg + b"!", sig) is False
    assert verify(PUB, msg, bytes(bad)) is False
    assert verify(PUB, msg, sig[:63]) is False
    assert verify(PUB, msg, bytes(64)) is False  # r = s = 0 is out of range
    other = crypto.p256_public_key(bytes(31) + b"\x07")
    assert verify(other, msg, sig) is False


@pytest.mark.parametrize("verify", [pure_verify.verify, es256_verify], ids=["pure", "shim"])
def test_malformed_public_key_raises(verify):
    sig = bytes(64)
    with pytest.raises(ValueError, match="expected 65 bytes"):
        verify(PUB[:64], b"m", sig)
    with pytest.raises(ValueError, match="uncompressed"):
        verify(b"\x02" + PUB[1:], b"m", sig)
    off_curve = PUB[:-1] + bytes([PUB[-1] ^ 1])
    with pytest.raises(ValueError, match="on the curve"):
        verify(off_curve, b"m", sig)


def test_private_key_range_is_checked():
    for bad in (bytes(32), pure.N.to_bytes(32, "big"), b"\xff" * 32):
        with pytest.raises(ValueError, match=r"\[1, n-1\]"):
            crypto.p256_public_key(bad)
        with pytest.raises(ValueError, match=r"\[1, n-1\]"):
            crypto.es256_sign(bad, b"m")


def test_pure_agrees_with_cryptography_on_random_keys():
    for n in (0, 1, 100, 1000):
        key = ec.generate_private_key(ec.SECP256R1())
        d = key.private_numbers().private_value
        pub = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        msg = os.urandom(n)
        assert pure.public_key(d) == pub
        digest = hashlib.sha256(msg).digest()
        _verify_with_cryptography(pub, msg, pure.sign(d, digest))
        assert pure_verify.verify(pub, digest, _raw(key.sign(msg, ec.ECDSA(hashes.SHA256()))))


def test_comb_table_is_sums_of_powers_of_g():
    """p256._COMB entry j = [sum of 2**(86 t) over the bits t of j]G, affine (cryptography's points)."""
    table = b""
    for j in range(1, 8):
        s = sum(1 << (86 * t) for t in range(3) if j >> t & 1)
        n = ec.derive_private_key(s, ec.SECP256R1()).public_key().public_numbers()
        table += n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
    assert pure._COMB == table


@pytest.mark.micropython
def test_rfc6979_vectors_under_micropython():
    out = run_lines("""
import hashlib
from edgeledger.agent import crypto
from edgeledger.agent.crypto.verify import es256_verify
from edgeledger.agent.crypto.pure.p256 import sign as p256
print("impl|" + crypto.implementation()["p256"])
d = bytes.fromhex(P256_PRIVATE); pub = bytes.fromhex(P256_PUBLIC)
print("pub|" + crypto.p256_public_key(d).hex())
for msg, k, r, s in P256_SHA256:
    name = msg.decode()
    digest = hashlib.sha256(msg).digest()
    print(name + ".k|%x" % next(p256.rfc6979_nonces(int.from_bytes(d, "big"), digest)))
    print(name + ".sig|" + crypto.es256_sign(d, msg).hex())
    sig = bytes.fromhex(r + s)
    print(name + ".verify|%r" % es256_verify(pub, msg, sig))
    bad = bytearray(sig); bad[40] ^= 1
    print(name + ".tampered_sig|%r" % es256_verify(pub, msg, bytes(bad)))
    print(name + ".tampered_msg|%r" % es256_verify(pub, msg + b"!", sig))
try:
    es256_verify(pub[:-1] + bytes([pub[-1] ^ 1]), b"m", bytes(64))
    print("offcurve|accepted")
except ValueError:
    print("offcurve|ValueError")
""")
    assert out["impl"] == "pure"
    assert out["pub"] == vectors.P256_PUBLIC
    for msg, k, r, s in vectors.P256_SHA256:
        name = msg.decode()
        assert out[name + ".k"] == k
        assert out[name + ".sig"] == r + _low_s(s)
        assert out[name + ".verify"] == "True"
        assert out[name + ".tampered_sig"] == "False"
        assert out[name + ".tampered_msg"] == "False"
    assert out["offcurve"] == "ValueError"


@pytest.mark.micropython
def test_cross_runtime_signatures():
    """MicroPython signs, `cryptography` verifies; `cryptography` signs (random k), MicroPython verifies."""
    key = ec.generate_private_key(ec.SECP256R1())
    d = key.private_numbers().private_value.to_bytes(32, "big")
    pub = crypto.p256_public_key(d)
    msgs = [os.urandom(n) for n in (0, 33, 150, 700)]
    cpy_sigs = [_raw(key.sign(m, ec.ECDSA(hashes.SHA256()))) for m in msgs]
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.verify import es256_verify
print("pub|" + crypto.p256_public_key(D).hex())
for i in range(len(MSGS)):
    m = bytes.fromhex(MSGS[i]); s = bytes.fromhex(SIGS[i])
    print("mpy_sig.%d|%s" % (i, crypto.es256_sign(D, m).hex()))
    print("verify.%d|%r" % (i, es256_verify(PUB, m, s)))
    bad = bytearray(s); bad[10] ^= 0x80
    print("tampered.%d|%r" % (i, es256_verify(PUB, m, bytes(bad))))
    print("othermsg.%d|%r" % (i, es256_verify(PUB, m + b"x", s)))
""", extra="D = %r\nPUB = %r\nMSGS = %r\nSIGS = %r\n" % (
        d, pub, [m.hex() for m in msgs], [s.hex() for s in cpy_sigs]))
    assert out["pub"] == pub.hex()
    for i, m in enumerate(msgs):
        mpy_sig = bytes.fromhex(out["mpy_sig.%d" % i])
        _verify_with_cryptography(pub, m, mpy_sig)  # raises InvalidSignature if wrong
        with pytest.raises(InvalidSignature):
            _verify_with_cryptography(pub, m + b"x", mpy_sig)
        assert mpy_sig == crypto.es256_sign(d, m)  # RFC 6979: same bytes on both runtimes
        assert out["verify.%d" % i] == "True"
        assert out["tampered.%d" % i] == "False"
        assert out["othermsg.%d" % i] == "False"

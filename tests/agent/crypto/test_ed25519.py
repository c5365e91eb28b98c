"""Ed25519 (RFC 8032 §7.1 vectors): pure module, shim, and cross-runtime with `cryptography`."""
import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeledger.agent import crypto
from edgeledger.agent.crypto.pure.ed25519 import sign as pure
from edgeledger.agent.crypto.pure.ed25519 import verify as pure_verify
from edgeledger.agent.crypto.verify import ed25519_verify
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines

IDS = [v[0] for v in vectors.ED25519]


@pytest.mark.parametrize("name,seed,pub,msg,sig", vectors.ED25519, ids=IDS)
def test_rfc8032_vectors_pure_and_shim(name, seed, pub, msg, sig):
    seed, pub, msg, sig = (bytes.fromhex(x) for x in (seed, pub, msg, sig))
    for impl in (pure, None):
        if impl is pure:
            got_pub, got_sig = pure.public_key(seed), pure.sign(seed, msg)
            ok = pure_verify.verify(pub, msg, sig)
        else:
            got_pub, got_sig = crypto.ed25519_public_key(seed), crypto.ed25519_sign(seed, msg)
            ok = ed25519_verify(pub, msg, sig)
        assert got_pub == pub, name
        assert got_sig == sig, name
        assert ok is True, name


def _tampered(sig, msg):
    bad_sig = bytearray(sig)
    bad_sig[5] ^= 0x01
    return bytes(bad_sig), msg + b"!"


@pytest.mark.parametrize("verify", [pure_verify.verify, ed25519_verify], ids=["pure", "shim"])
def test_tampering_is_refused(verify):
    _, seed, pub, msg, sig = (bytes.fromhex(x) if i else x
                              for i, x in enumerate(vectors.ED25519[2]))
    bad_sig, bad_msg = _tampered(sig, msg)
    assert verify(pub, bad_msg, sig) is False
    assert verify(pub, msg, bad_sig) is False
    assert verify(pub, msg, sig[:63]) is False
    other_pub = bytes.fromhex(vectors.ED25519[1][2])
    assert verify(other_pub, msg, sig) is False


def test_pure_refuses_non_canonical_s_and_non_points():
    _, seed, pub, msg, sig = (bytes.fromhex(x) if i else x
                              for i, x in enumerate(vectors.ED25519[1]))
    s_plus_l = (int.from_bytes(sig[32:], "little") + pure.L).to_bytes(32, "little")
    assert pure_verify.verify(pub, msg, sig[:32] + s_plus_l) is False  # RFC 8032 §5.1.7: S < L
    assert pure_verify.verify(b"\xff" * 31 + b"\x7f", msg, sig) is False  # y >= p
    assert pure_verify.verify(bytes(31) + b"\x80", msg, sig) is False  # x = 0 with the sign bit set


def test_shim_rejects_wrong_key_lengths():
    with pytest.raises(ValueError, match="expected 32 bytes, found 31"):
        crypto.ed25519_sign(bytes(31), b"m")
    with pytest.raises(ValueError, match="Ed25519 public key"):
        ed25519_verify(bytes(33), b"m", bytes(64))


def test_pure_agrees_with_cryptography_on_random_keys():
    for n in (0, 1, 64, 200, 1000):
        seed, msg = os.urandom(32), os.urandom(n)
        key = Ed25519PrivateKey.from_private_bytes(seed)
        sig = pure.sign(seed, msg)
        assert sig == key.sign(msg)
        key.public_key().verify(sig, msg)
        assert pure_verify.verify(pure.public_key(seed), msg, key.sign(msg))


def test_comb_table_is_sums_of_powers_of_b():
    """ed25519._COMB entry j = [sum of 2**(86 t) over the bits t of j]B, Niels form (libsodium's points)."""
    from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp

    p, d = pure_verify.P, pure_verify.D
    table = b""
    for j in range(1, 8):
        s = sum(1 << (86 * t) for t in range(3) if j >> t & 1)
        x, y, _, _ = pure_verify._decode(crypto_scalarmult_ed25519_base_noclamp(s.to_bytes(32, "little")))
        table += b"".join(v.to_bytes(32, "little") for v in ((y + x) % p, (y - x) % p, 2 * d * x * y % p))
    assert pure._COMB == table


@pytest.mark.micropython
def test_rfc8032_vectors_under_micropython():
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.verify import ed25519_verify
print("impl|" + crypto.implementation()["ed25519"])
for name, seed, pub, msg, sig in ED25519:
    seed = bytes.fromhex(seed); pub = bytes.fromhex(pub); msg = bytes.fromhex(msg)
    sig = bytes.fromhex(sig)
    print(name + ".pub|" + crypto.ed25519_public_key(seed).hex())
    print(name + ".sig|" + crypto.ed25519_sign(seed, msg).hex())
    print(name + ".verify|%r" % ed25519_verify(pub, msg, sig))
    bad = bytearray(sig); bad[5] ^= 1
    print(name + ".tampered_sig|%r" % ed25519_verify(pub, msg, bytes(bad)))
    print(name + ".tampered_msg|%r" % ed25519_verify(pub, msg + b"!", sig))
""")
    assert out["impl"] == "pure"
    for name, _, pub, _, sig in vectors.ED25519:
        assert out[name + ".pub"] == pub
        assert out[name + ".sig"] == sig
        assert out[name + ".verify"] == "True"
        assert out[name + ".tampered_sig"] == "False"
        assert out[name + ".tampered_msg"] == "False"


@pytest.mark.micropython
def test_cross_runtime_signatures():
    """MicroPython signs, `cryptography` verifies; `cryptography` signs, MicroPython verifies."""
    seed = os.urandom(32)
    msgs = [os.urandom(n) for n in (0, 33, 150, 700)]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = key.public_key().public_bytes_raw()
    cpy_sigs = [key.sign(m) for m in msgs]
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.verify import ed25519_verify
for i in range(len(MSGS)):
    m = bytes.fromhex(MSGS[i]); s = bytes.fromhex(SIGS[i])
    print("mpy_sig.%d|%s" % (i, crypto.ed25519_sign(SEED, m).hex()))
    print("verify.%d|%r" % (i, ed25519_verify(PUB, m, s)))
    bad = bytearray(s); bad[40] ^= 0x80
    print("tampered.%d|%r" % (i, ed25519_verify(PUB, m, bytes(bad))))
    print("othermsg.%d|%r" % (i, ed25519_verify(PUB, m + b"x", s)))
""", extra="SEED = %r\nPUB = %r\nMSGS = %r\nSIGS = %r\n" % (
        seed, pub, [m.hex() for m in msgs], [s.hex() for s in cpy_sigs]))
    for i, m in enumerate(msgs):
        mpy_sig = bytes.fromhex(out["mpy_sig.%d" % i])
        Ed25519PublicKey.from_public_bytes(pub).verify(mpy_sig, m)  # raises if invalid
        with pytest.raises(InvalidSignature):
            Ed25519PublicKey.from_public_bytes(pub).verify(mpy_sig, m + b"x")
        assert out["verify.%d" % i] == "True"
        assert out["tampered.%d" % i] == "False"
        assert out["othermsg.%d" % i] == "False"

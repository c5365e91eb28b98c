"""SM2 signatures with SM3 and Z_A (GB/T 32918.2-2016): the standards' worked examples, the
pure module (agent/crypto/pure/sm2) and the shim (tongsuopy on CPython), the canonical form, and
both runtimes against each other."""
import os

import pytest

from edgeledger.agent import crypto
from edgeledger.agent.crypto.pure import sm3
from edgeledger.agent.crypto.pure.ecc import curve as ecc
from edgeledger.agent.crypto.pure.sm2 import sign as pure
from edgeledger.agent.crypto.pure.sm2 import verify as pure_verify
from edgeledger.agent.crypto.verify import sm2_verify
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines
from tests.agent.crypto.sm2_reference import SM2P256V1, Curve

G = vectors.SM2_GMT
D = bytes.fromhex(G["d"])
PUB = bytes.fromhex(G["pub"])
SIG = bytes.fromhex(G["sig"])
N = pure.N


def _scalar():
    """A random private scalar in [1, n-2]."""
    return int.from_bytes(os.urandom(32), "big") % (N - 2) + 1


def _tongsuo():
    """tongsuopy as the gateway uses it (a project dependency): sign/verify/public key."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
    from tongsuopy.crypto import hashes, serialization
    from tongsuopy.crypto.asymciphers import ec
    from tongsuopy.crypto.exceptions import InvalidSignature

    alg = ec.ECDSA(hashes.SM3())

    def public(d):
        return ec.derive_private_key(d, ec.SM2()).public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def sign(d, msg):
        r, s = decode_dss_signature(ec.derive_private_key(d, ec.SM2()).sign(msg, alg))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(pub, msg, sig):
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), pub)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            key.verify(der, msg, alg)
            return True
        except InvalidSignature:
            return False

    return public, sign, verify


# -- the standards' examples -------------------------------------------------------------

def test_gmt0003_5_annex_example_pure():
    """GM/T 0003.5-2012 annex A on sm2p256v1: public key, Z_A, e and (r, s) with its k."""
    d = int(G["d"], 16)
    assert pure.public_key(d) == PUB
    assert pure.z_a(PUB).hex() == G["za"]
    e = sm3.sm3(bytes.fromhex(G["za"]) + G["msg"])
    assert e.hex() == G["e"]
    assert pure.sign_with_nonce(d, e, int(G["k"], 16)) == SIG
    assert pure_verify.verify(PUB, e, SIG) is True
    assert pure_verify.verify_message(PUB, G["msg"], SIG) is True


def test_gmt0003_5_annex_example_shim():
    assert crypto.implementation()["sm2"] == "tongsuopy"
    assert crypto.sm2_public_key(D) == PUB
    assert sm2_verify(PUB, G["msg"], SIG) is True
    assert sm2_verify(PUB, G["msg"] + b"!", SIG) is False


def test_gbt32918_2_annex_a_example_on_its_own_curve():
    """GB/T 32918.2-2016 annex A uses a 256-bit curve that is not sm2p256v1: our Z_A (with
    that curve's a, b, G and the id ALICE123@YAHOO.COM) and SM3 give the published Z_A and
    e, and the textbook reference gives the published key and (r, s) with the published k.
    The reference then vouches for the optimised code (test below)."""
    v = vectors.SM2_GBT_ANNEX_A
    curve = Curve.from_hex(v)
    d, k = int(v["d"], 16), int(v["k"], 16)
    pub = curve.public_key(d)
    assert pub.hex() == v["pub"]
    za = pure.z_a(pub, v["uid"], curve.curve_bytes())
    assert za.hex() == v["za"] == curve.z_a(pub, v["uid"]).hex()
    e = sm3.sm3(za + v["msg"])
    assert e.hex() == v["e"]
    r, s = curve.sign(d, int.from_bytes(e, "big"), k)
    assert (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex() == v["sig"]
    assert curve.verify(pub, int.from_bytes(e, "big"), r, s)
    assert not curve.verify(pub, int.from_bytes(e, "big") + 1, r, s)


def test_pure_agrees_with_the_textbook_reference_on_random_keys_and_nonces():
    for _ in range(4):
        d, k = _scalar(), _scalar()
        e = os.urandom(32)
        pub = pure.public_key(d)
        assert pub == SM2P256V1.public_key(d)
        want = SM2P256V1.sign(d, int.from_bytes(e, "big"), k)
        got = pure.sign_with_nonce(d, e, k)
        assert got == (want[0].to_bytes(32, "big") + want[1].to_bytes(32, "big"))
        assert pure_verify.verify(pub, e, got)


def test_comb_table_is_sums_of_powers_of_g():
    """sm2._COMB entry j = [sum of 2**(86 t) over the bits t of j]G (the reference's points)."""
    table = b""
    for j in range(1, 8):
        s = sum(1 << (86 * t) for t in range(3) if j >> t & 1)
        table += SM2P256V1.public_key(s)[1:]
    assert pure._COMB == table
    assert pure._AB + pure._COMB[:64] == SM2P256V1.curve_bytes()


# -- deterministic nonces, canonical form, refusals ----------------------------------------

def test_pure_signatures_are_deterministic_rfc6979_with_hmac_sm3():
    d = int(G["d"], 16)
    e = bytes.fromhex(G["e"])
    h1 = (int.from_bytes(e, "big") % N).to_bytes(32, "big")
    k = next(ecc.rfc6979_nonces(d, h1, N, sm3.hmac_sm3))
    assert 1 <= k < N
    assert pure.sign(d, e) == pure.sign_with_nonce(d, e, k) == pure.sign(d, e)
    assert pure.sign(d, e) != pure.sign(d, bytes(32))
    assert pure.sign_message(d, G["msg"]) == pure.sign(d, e)


@pytest.mark.parametrize("verify", [
    lambda pub, m, s: pure_verify.verify_message(pub, m, s), sm2_verify], ids=["pure", "shim"])
def test_tampering_is_refused(verify):
    msg = G["msg"]
    bad = bytearray(SIG)
    bad[40] ^= 0x01
    assert verify(PUB, msg, SIG) is True
    assert verify(PUB, msg + b"!", SIG) is False
    assert verify(PUB, msg, bytes(bad)) is False
    assert verify(PUB, msg, SIG[:63]) is False
    assert verify(PUB, msg, SIG + b"\x00") is False
    assert verify(PUB, msg, bytes(64)) is False  # r = s = 0
    assert verify(crypto.sm2_public_key(bytes(31) + b"\x07"), msg, SIG) is False


@pytest.mark.parametrize("verify", [
    lambda pub, m, s: pure_verify.verify_message(pub, m, s), sm2_verify], ids=["pure", "shim"])
def test_out_of_range_scalars_are_refused(verify):
    """r, s must lie in [1, n-1], and t = r + s must not be 0 mod n (§7.1 B1, B2, B5)."""
    r, s = SIG[:32], SIG[32:]
    n = N.to_bytes(32, "big")
    for sig in (bytes(32) + s, r + bytes(32), n + s, r + n, b"\xff" * 32 + s, r + b"\xff" * 32,
                r + (N - int.from_bytes(r, "big")).to_bytes(32, "big")):
        assert verify(PUB, G["msg"], sig) is False


def test_unreduced_scalars_are_refused_where_they_would_otherwise_verify():
    """The canonical form is r, s < n: r + n or s + n (which still fit 32 bytes when r or s
    is below 2**256 - n) would verify under a verifier that reduces them mod n, so a third
    party could re-encode a signature. Chosen digests make such signatures (the message
    level cannot: e is a hash), so this runs at the digest level of the pure verifier."""
    d = _scalar()
    pub = pure.public_key(d)
    small = 12345  # a target r < 2**256 - n
    k = _scalar()
    x1 = pure.affine(pure.base_mul(k))[0]
    e = ((small - x1) % N).to_bytes(32, "big")  # so that r = (e + x1) mod n = small
    sig = pure.sign_with_nonce(d, e, k)
    assert int.from_bytes(sig[:32], "big") == small and pure_verify.verify(pub, e, sig)
    assert small + N < 2 ** 256
    assert pure_verify.verify(pub, e, (small + N).to_bytes(32, "big") + sig[32:]) is False
    s = int.from_bytes(sig[32:], "big")
    if s + N < 2 ** 256:  # s is not under our control; r + n covers the rule when s is large
        assert pure_verify.verify(pub, e, sig[:32] + (s + N).to_bytes(32, "big")) is False


@pytest.mark.parametrize("verify", [pure_verify.verify_message, sm2_verify], ids=["pure", "shim"])
def test_malformed_public_key_raises(verify):
    with pytest.raises(ValueError, match="expected 65 bytes"):
        verify(PUB[:64], b"m", SIG)
    with pytest.raises(ValueError, match="uncompressed"):
        verify(b"\x02" + PUB[1:], b"m", SIG)
    with pytest.raises(ValueError, match="on the curve"):
        verify(PUB[:-1] + bytes([PUB[-1] ^ 1]), b"m", SIG)


def test_private_key_range_is_checked():
    """GB/T 32918.1 §6.1: d in [1, n-2] (1 + d must be invertible mod n)."""
    for bad in (bytes(32), (N - 1).to_bytes(32, "big"), N.to_bytes(32, "big"), b"\xff" * 32):
        with pytest.raises(ValueError, match=r"\[1, n-2\]"):
            crypto.sm2_public_key(bad)
        with pytest.raises(ValueError, match=r"\[1, n-2\]"):
            crypto.sm2_sign(bad, b"m")
    with pytest.raises(ValueError, match="expected 32 bytes, found 31"):
        crypto.sm2_sign(bytes(31), b"m")
    top = (N - 2).to_bytes(32, "big")
    assert sm2_verify(crypto.sm2_public_key(top), b"m", crypto.sm2_sign(top, b"m"))


def test_user_id_is_part_of_the_signature():
    """Z_A binds the id: a signature over the same message with another id does not verify
    under the default id, and an id whose bit length does not fit ENTL's 16 bits is refused."""
    d = _scalar()
    pub = pure.public_key(d)
    e_other = sm3.sm3(pure.z_a(pub, b"ALICE123@YAHOO.COM") + b"m")
    sig = pure.sign(d, e_other)
    assert pure_verify.verify_message(pub, b"m", sig, b"ALICE123@YAHOO.COM") is True
    assert pure_verify.verify_message(pub, b"m", sig) is False
    assert sm2_verify(pub, b"m", sig) is False
    with pytest.raises(ValueError, match="at most 8191 bytes"):
        pure.z_a(pub, bytes(8192))


# -- against tongsuopy, and across runtimes -------------------------------------------------

@pytest.mark.interop
def test_pure_and_tongsuopy_verify_each_other():
    public, sign, verify = _tongsuo()
    for n in (0, 1, 64, 300):
        d = _scalar()
        msg = os.urandom(n)
        pub = pure.public_key(d)
        assert public(d) == pub
        ours = pure.sign_message(d, msg)
        assert verify(pub, msg, ours) and not verify(pub, msg + b"x", ours)
        theirs = sign(d, msg)
        assert pure_verify.verify_message(pub, msg, theirs)
        assert not pure_verify.verify_message(pub, msg + b"x", theirs)


@pytest.mark.micropython
def test_gmt_example_under_micropython():
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.verify import sm2_verify
from edgeledger.agent.crypto.pure.sm2 import sign as sm2
from edgeledger.agent.crypto.pure import sm3
print("impl|" + crypto.implementation()["sm2"])
d = bytes.fromhex(SM2_GMT["d"]); pub = bytes.fromhex(SM2_GMT["pub"])
print("pub|" + crypto.sm2_public_key(d).hex())
print("za|" + sm2.z_a(pub).hex())
e = sm3.sm3(sm2.z_a(pub) + SM2_GMT["msg"])
print("sig|" + sm2.sign_with_nonce(int.from_bytes(d, "big"), e, int(SM2_GMT["k"], 16)).hex())
sig = bytes.fromhex(SM2_GMT["sig"])
print("verify|%r" % sm2_verify(pub, SM2_GMT["msg"], sig))
bad = bytearray(sig); bad[40] ^= 1
print("tampered_sig|%r" % sm2_verify(pub, SM2_GMT["msg"], bytes(bad)))
print("tampered_msg|%r" % sm2_verify(pub, SM2_GMT["msg"] + b"!", sig))
try:
    sm2_verify(pub[:-1] + bytes([pub[-1] ^ 1]), b"m", sig)
    print("offcurve|accepted")
except ValueError:
    print("offcurve|ValueError")
""")
    assert out["impl"] == "pure"
    assert out["pub"] == G["pub"] and out["za"] == G["za"] and out["sig"] == G["sig"]
    assert out["verify"] == "True"
    assert out["tampered_sig"] == out["tampered_msg"] == "False"
    assert out["offcurve"] == "ValueError"


@pytest.mark.micropython
@pytest.mark.interop
def test_cross_runtime_signatures():
    """MicroPython signs (RFC 6979 k: the same bytes as the pure code on CPython), tongsuopy
    verifies; tongsuopy signs (random k), MicroPython verifies."""
    public, sign, verify = _tongsuo()
    d = _scalar()
    db = d.to_bytes(32, "big")
    pub = public(d)
    msgs = [os.urandom(n) for n in (0, 33, 150, 700)]
    theirs = [sign(d, m) for m in msgs]
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.verify import sm2_verify
print("pub|" + crypto.sm2_public_key(D).hex())
for i in range(len(MSGS)):
    m = bytes.fromhex(MSGS[i]); s = bytes.fromhex(SIGS[i])
    print("mpy_sig.%d|%s" % (i, crypto.sm2_sign(D, m).hex()))
    print("verify.%d|%r" % (i, sm2_verify(PUB, m, s)))
    bad = bytearray(s); bad[10] ^= 0x80
    print("tampered.%d|%r" % (i, sm2_verify(PUB, m, bytes(bad))))
""", extra="D = %r\nPUB = %r\nMSGS = %r\nSIGS = %r\n" % (
        db, pub, [m.hex() for m in msgs], [s.hex() for s in theirs]))
    assert out["pub"] == pub.hex()
    for i, m in enumerate(msgs):
        mpy_sig = bytes.fromhex(out["mpy_sig.%d" % i])
        assert verify(pub, m, mpy_sig) and not verify(pub, m + b"x", mpy_sig)
        assert mpy_sig == pure.sign_message(d, m)  # RFC 6979: the same bytes on CPython
        assert out["verify.%d" % i] == "True"
        assert out["tampered.%d" % i] == "False"

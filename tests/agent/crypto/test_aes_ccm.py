"""AES-128 (FIPS 197) and AES-CCM (RFC 3610; COSE alg 10, RFC 9053 §4.2) on both runtimes."""
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from edgeledger.agent.crypto.cipher import AesEcb, aes_ccm_decrypt, aes_ccm_encrypt, aes_ecb_encrypt_block
from edgeledger.agent.crypto.errors import CcmAuthError
from edgeledger.agent.crypto.pure import aes as pure_aes
from edgeledger.agent.crypto.pure import ccm as aesccm
from edgeledger.protocols.errors import SignatureError
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines

KEY = bytes.fromhex(vectors.CCM_KEY)


def _cryptography_ecb(key):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update


BLOCK_FUNCS = {
    "cryptography-ecb": _cryptography_ecb,
    "pure-aes": lambda key: pure_aes.Aes(key).encrypt_block,
    "shim-AesEcb": lambda key: AesEcb(key).encrypt_block,
}


def test_fips197_c1():
    key, pt, ct = (bytes.fromhex(x) for x in vectors.AES128)
    assert pure_aes.Aes(key).encrypt_block(pt).hex() == vectors.AES128[2]
    assert aes_ecb_encrypt_block(key, pt) == ct
    assert AesEcb(key).encrypt_block(pt) == ct


def test_pure_aes_matches_cryptography_on_random_blocks():
    for _ in range(50):
        key, block = os.urandom(16), os.urandom(16)
        assert pure_aes.Aes(key).encrypt_block(block) == _cryptography_ecb(key)(block)


@pytest.mark.parametrize("block_func", sorted(BLOCK_FUNCS))
@pytest.mark.parametrize("name,m,nonce,aad,pt,out", vectors.CCM, ids=[v[0] for v in vectors.CCM])
def test_rfc3610_packet_vectors_pure_ccm(block_func, name, m, nonce, aad, pt, out):
    enc = BLOCK_FUNCS[block_func](KEY)
    nonce, aad, pt, out = (bytes.fromhex(x) for x in (nonce, aad, pt, out))
    assert aesccm.ccm_encrypt(enc, nonce, pt, aad, m) == out
    assert aesccm.ccm_decrypt(enc, nonce, out, aad, m) == pt


@pytest.mark.parametrize("name,m,nonce,aad,pt,out", vectors.CCM, ids=[v[0] for v in vectors.CCM])
def test_rfc3610_packet_vectors_shim(name, m, nonce, aad, pt, out):
    nonce, aad, pt, out = (bytes.fromhex(x) for x in (nonce, aad, pt, out))
    assert aes_ccm_encrypt(KEY, nonce, pt, aad, m) == out
    assert aes_ccm_decrypt(KEY, nonce, out, aad, m) == pt


def test_pure_ccm_matches_cryptography_aesccm_on_random_inputs():
    """COSE alg 10 shape (13-byte nonce, 8-byte tag) and other nonce/tag sizes."""
    for i in range(120):
        key = os.urandom(16)
        nlen = 13 if i % 2 else 7 + i % 7
        tag = (4, 6, 8, 10, 12, 14, 16)[i % 7]
        nonce = os.urandom(nlen)
        pt = os.urandom(i % 50 if i % 3 else 16 * (i % 4))
        aad = os.urandom(i % 37) if i % 5 else b""
        want = AESCCM(key, tag).encrypt(nonce, pt, aad or None)
        enc = _cryptography_ecb(key)
        assert aesccm.ccm_encrypt(enc, nonce, pt, aad, tag) == want, i
        assert aesccm.ccm_decrypt(enc, nonce, want, aad, tag) == pt, i
    big_aad = os.urandom(0xFF00 + 3)  # RFC 3610 §2.2: the 0xFFFE ‖ 4-byte length form
    key, nonce = os.urandom(16), os.urandom(13)
    assert (aesccm.ccm_encrypt(_cryptography_ecb(key), nonce, b"pt", big_aad)
            == AESCCM(key, 8).encrypt(nonce, b"pt", big_aad))


@pytest.mark.parametrize("decrypt", [
    lambda key, n, d, a: aesccm.ccm_decrypt(_cryptography_ecb(key), n, d, a),
    aes_ccm_decrypt], ids=["pure", "shim"])
def test_bad_tag_raises_typed_error(decrypt):
    _, m, nonce, aad, pt, out = vectors.CCM[0]
    nonce, aad, out = (bytes.fromhex(x) for x in (nonce, aad, out))
    for bad_out, bad_aad in ((out[:-1] + bytes([out[-1] ^ 1]), aad),
                             (bytes([out[0] ^ 1]) + out[1:], aad),
                             (out, aad + b"\x00")):
        with pytest.raises(aesccm.CcmAuthError, match="tag mismatch") as info:
            decrypt(KEY, nonce, bad_out, bad_aad)
        assert isinstance(info.value, SignatureError)
    assert CcmAuthError is aesccm.CcmAuthError


def test_bad_parameters_raise_value_error():
    enc = _cryptography_ecb(KEY)
    with pytest.raises(ValueError, match="nonce: expected 7..13 bytes, found 14"):
        aesccm.ccm_encrypt(enc, bytes(14), b"", b"")
    with pytest.raises(ValueError, match="tag length"):
        aesccm.ccm_encrypt(enc, bytes(13), b"", b"", 5)
    with pytest.raises(ValueError, match="at least the 8-byte tag"):
        aesccm.ccm_decrypt(enc, bytes(13), b"1234567", b"")
    with pytest.raises(ValueError, match="AES key: expected 16 bytes"):
        aes_ccm_encrypt(bytes(15), bytes(13), b"", b"")
    with pytest.raises(ValueError, match="AES block"):
        AesEcb(KEY).encrypt_block(bytes(15))


@pytest.mark.micropython
def test_aes_and_ccm_under_micropython():
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.cipher import aes_ccm_decrypt, aes_ccm_encrypt, aes_ecb_encrypt_block
from edgeledger.agent.crypto.errors import CcmAuthError
from edgeledger.agent.crypto.pure import aes
from edgeledger.agent.crypto.pure import ccm as aesccm
print("impl|%s,%s" % (crypto.implementation()["aes"], crypto.implementation()["ccm"]))
k, p, c = [bytes.fromhex(x) for x in AES128]
print("aes.shim|" + aes_ecb_encrypt_block(k, p).hex())
print("aes.pure|" + aes.Aes(k).encrypt_block(p).hex())
key = bytes.fromhex(CCM_KEY)
for name, m, nonce, aad, pt, o in CCM:
    nonce = bytes.fromhex(nonce); aad = bytes.fromhex(aad); pt = bytes.fromhex(pt)
    o = bytes.fromhex(o)
    print(name + ".shim|" + aes_ccm_encrypt(key, nonce, pt, aad, m).hex())
    print(name + ".pure|" + aesccm.ccm_encrypt(aes.Aes(key).encrypt_block, nonce, pt, aad, m).hex())
    print(name + ".open|%r" % (aes_ccm_decrypt(key, nonce, o, aad, m) == pt))
    try:
        aes_ccm_decrypt(key, nonce, o[:-1] + bytes([o[-1] ^ 1]), aad, m)
        print(name + ".badtag|accepted")
    except CcmAuthError:
        print(name + ".badtag|CcmAuthError")
""")
    assert out["impl"] == "cryptolib,pure"
    assert out["aes.shim"] == out["aes.pure"] == vectors.AES128[2]
    for name, _, _, _, _, o in vectors.CCM:
        assert out[name + ".shim"] == o
        assert out[name + ".pure"] == o
        assert out[name + ".open"] == "True"
        assert out[name + ".badtag"] == "CcmAuthError"

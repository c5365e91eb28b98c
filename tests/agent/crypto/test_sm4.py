"""SM4 (GB/T 32907-2016) and SM4-CCM (RFC 3610 over SM4; RFC 8998 A.2's vector): the pure
block cipher, the shim, the same CCM code the AES path uses, against OpenSSL's SM4 (through
`cryptography`) and Tongsuo's SM4-CCM, and under MicroPython."""
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from edgeledger.agent.crypto.cipher import Sm4Ecb, sm4_ccm_decrypt, sm4_ccm_encrypt, sm4_ecb_encrypt_block
from edgeledger.agent.crypto.errors import CcmAuthError
from edgeledger.agent.crypto.pure import ccm as aesccm
from edgeledger.agent.crypto.pure import sm4 as pure
from edgeledger.protocols.errors import SignatureError
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines

KEY, CT1, CT1M = (bytes.fromhex(x) for x in vectors.SM4)
C_KEY, C_NONCE, C_AAD, C_PT, C_CT, C_TAG = (bytes.fromhex(x) for x in vectors.SM4_CCM)


def _openssl_sm4(key):
    return Cipher(algorithms.SM4(key), modes.ECB()).encryptor().update


def test_gbt32907_example_one_block():
    """Annex A example 1: key = plaintext = 0123...3210."""
    c = pure.Sm4(KEY)
    assert c.encrypt_block(KEY) == CT1
    assert c.decrypt_block(CT1) == KEY
    assert sm4_ecb_encrypt_block(KEY, KEY) == CT1
    assert Sm4Ecb(KEY).encrypt_block(KEY) == CT1


def test_gbt32907_example_a_million_encryptions_through_the_shim():
    """Annex A example 2: the same block encrypted 1,000,000 times. Through the shim's
    CPython backend (OpenSSL's SM4, ~1 s); the pure module would take minutes, so it meets
    example 1 and random blocks against OpenSSL instead."""
    enc = Sm4Ecb(KEY).encrypt_block
    x = KEY
    for _ in range(1000000):
        x = enc(x)
    assert x == CT1M


def test_pure_matches_openssl_on_random_blocks():
    for _ in range(50):
        key, block = os.urandom(16), os.urandom(16)
        want = _openssl_sm4(key)(block)
        assert pure.Sm4(key).encrypt_block(block) == want
        assert pure.Sm4(key).decrypt_block(want) == block


@pytest.mark.parametrize("encrypt_block", [
    lambda key: pure.Sm4(key).encrypt_block, _openssl_sm4], ids=["pure-sm4", "openssl-sm4"])
def test_rfc8998_sm4_ccm_vector(encrypt_block):
    enc = encrypt_block(C_KEY)
    assert aesccm.ccm_encrypt(enc, C_NONCE, C_PT, C_AAD, 16) == C_CT + C_TAG
    assert aesccm.ccm_decrypt(enc, C_NONCE, C_CT + C_TAG, C_AAD, 16) == C_PT


def test_rfc8998_sm4_ccm_vector_shim():
    assert sm4_ccm_encrypt(C_KEY, C_NONCE, C_PT, C_AAD) == C_CT + C_TAG  # 16-byte tag default
    assert sm4_ccm_decrypt(C_KEY, C_NONCE, C_CT + C_TAG, C_AAD) == C_PT


@pytest.mark.interop
def test_sm4_ccm_matches_tongsuo_on_random_inputs():
    """An independent SM4-CCM (Tongsuo's, through tongsuopy) in both directions, over the
    nonce and tag sizes RFC 3610 allows and the AAD length forms (§2.2)."""
    from tongsuopy.crypto.ciphers.aead import SM4CCM

    for i in range(40):
        key = os.urandom(16)
        nonce = os.urandom(7 + i % 7)
        tag = (4, 6, 8, 10, 12, 14, 16)[i % 7]
        pt = os.urandom(i * 3)
        aad = os.urandom(i % 23) if i % 4 else b""
        theirs = SM4CCM(key, tag).encrypt(nonce, pt, aad or None)
        assert sm4_ccm_encrypt(key, nonce, pt, aad, tag) == theirs, i
        assert SM4CCM(key, tag).decrypt(nonce, theirs, aad or None) == pt
    big_aad = os.urandom(0xFF00 + 1)  # the 0xFFFE ‖ 4-byte length form
    key, nonce = os.urandom(16), os.urandom(12)
    assert (sm4_ccm_encrypt(key, nonce, b"pt", big_aad)
            == SM4CCM(key, 16).encrypt(nonce, b"pt", big_aad))


@pytest.mark.parametrize("decrypt", [
    lambda k, n, d, a: aesccm.ccm_decrypt(pure.Sm4(k).encrypt_block, n, d, a, 16),
    sm4_ccm_decrypt], ids=["pure", "shim"])
def test_bad_tag_raises_typed_error(decrypt):
    data = C_CT + C_TAG
    for bad_data, bad_aad, bad_nonce in ((data[:-1] + bytes([data[-1] ^ 1]), C_AAD, C_NONCE),
                                         (bytes([data[0] ^ 1]) + data[1:], C_AAD, C_NONCE),
                                         (data, C_AAD + b"\x00", C_NONCE),
                                         (data, C_AAD, bytes(12))):
        with pytest.raises(CcmAuthError, match="tag mismatch") as info:
            decrypt(C_KEY, bad_nonce, bad_data, bad_aad)
        assert isinstance(info.value, SignatureError)


def test_bad_parameters_raise_value_error():
    with pytest.raises(ValueError, match="SM4 key: expected 16 bytes, found 15"):
        sm4_ccm_encrypt(bytes(15), C_NONCE, b"")
    with pytest.raises(ValueError, match="SM4 key: expected 16 bytes, found 17"):
        pure.Sm4(bytes(17))
    with pytest.raises(ValueError, match="SM4 block"):
        Sm4Ecb(KEY).encrypt_block(bytes(15))
    with pytest.raises(ValueError, match="SM4 block"):
        pure.Sm4(KEY).encrypt_block(bytes(17))
    with pytest.raises(ValueError, match="nonce: expected 7..13 bytes, found 14"):
        sm4_ccm_encrypt(KEY, bytes(14), b"")
    with pytest.raises(ValueError, match="at least the 16-byte tag"):
        sm4_ccm_decrypt(KEY, C_NONCE, bytes(15))


@pytest.mark.micropython
def test_sm4_and_ccm_under_micropython():
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.cipher import sm4_ccm_decrypt, sm4_ccm_encrypt, sm4_ecb_encrypt_block
from edgeledger.agent.crypto.errors import CcmAuthError
from edgeledger.agent.crypto.pure import sm4
print("impl|" + crypto.implementation()["sm4"])
k, ct1 = bytes.fromhex(SM4[0]), bytes.fromhex(SM4[1])
print("block|" + sm4_ecb_encrypt_block(k, k).hex())
print("dec|" + sm4.Sm4(k).decrypt_block(ct1).hex())
key, nonce, aad, pt, ct, tag = [bytes.fromhex(x) for x in SM4_CCM]
print("ccm|" + sm4_ccm_encrypt(key, nonce, pt, aad).hex())
print("open|%r" % (sm4_ccm_decrypt(key, nonce, ct + tag, aad) == pt))
try:
    sm4_ccm_decrypt(key, nonce, ct + tag[:-1] + bytes([tag[-1] ^ 1]), aad)
    print("badtag|accepted")
except CcmAuthError:
    print("badtag|CcmAuthError")
""")
    assert out["impl"] == "pure"
    assert out["block"] == vectors.SM4[1]
    assert out["dec"] == vectors.SM4[0]
    assert out["ccm"] == (C_CT + C_TAG).hex()
    assert out["open"] == "True"
    assert out["badtag"] == "CcmAuthError"

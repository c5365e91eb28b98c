"""docs/wire-format.md Vectors E1 and E2 (encrypted readings), byte for byte, and their CCM
output against independent implementations: AES-CCM against `cryptography`'s AESCCM
(OpenSSL), SM4-CCM against Tongsuo's SM4CCM and against a CCM written for the test in
JavaScript over npm sm-crypto's SM4 (tests/interop/sm4_ccm_check.js)."""
import hashlib
import hmac
import json
import os
import shutil
import subprocess

import pytest

from edgeledger.agent.content_key import ContentKey
from edgeledger.agent.signer import KeySigner
from edgeledger.protocols import cbor, chain, cose
from edgeledger.protocols.cose import encrypt as cose_encrypt
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.protocols import wire_vectors

V = wire_vectors.load()
KEY = bytes(range(16))
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PACK1 = [{0: "meter-01/energy_import", 1: "kWh", 2: 1234.5, 6: 1764093000}]
LABEL = b"edgeledger/v1 CCM nonce key"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALGS = {"aes": ("AES-CCM-16-64-128", hashlib.sha256), "sm4": ("SM4-CCM-16-64-128", "sm3")}


def _hmac(digest, key, data):
    return hmac.new(key, data, digest).digest()  # Python's hmac; "sm3" is OpenSSL's SM3


@pytest.mark.parametrize("short", sorted(ALGS))
def test_vector_byte_for_byte(short):
    alg, digest = ALGS[short]
    pt = cbor.encode(PACK1)
    assert pt == V["enc-plaintext"]
    ck = ContentKey(alg, KEY)
    assert ck.kid == V["enc-content-kid"] == hashlib.sha256(b"edgeledger/v1 content key id" + KEY).digest()[:16]
    nonce_key = _hmac(digest, KEY, LABEL)
    assert nonce_key == V["enc-%s-nonce-key" % short]
    nonce = _hmac(digest, nonce_key, cbor.encode(["meter-01", 1]) + pt)[:13]
    assert nonce == V["enc-%s-nonce" % short] == ck.nonce("meter-01", 1, pt)
    protected = cose_encrypt.enc_protected(cose_encrypt.ENC_ALG_BY_NAME[alg])
    assert V["enc-%s-aad" % short] == cbor.encode(["Encrypt0", protected, b""]) == cose_encrypt.enc_structure(protected)
    enc = ck.seal("meter-01", 1, pt)
    assert enc == V["enc-%s-encrypt0" % short]
    parsed = cose_verify.parse_encrypt0(enc)
    assert (parsed.iv, parsed.ciphertext, parsed.kid) == (nonce, V["enc-%s-ciphertext" % short], ck.kid)
    assert ck.open(parsed) == pt
    signer = KeySigner(cose.EDDSA, SEED, "meter-01")
    msg = cose.sign1(reading_validate.encode_payload("meter-01", 1, chain.GENESIS, 1, enc=enc), signer)
    assert msg == V["enc-%s-message" % short]
    assert reading_validate.decode_payload(cose_verify.parse_canonical(msg).payload).enc == enc


def test_aes_vector_against_cryptography():
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    theirs = AESCCM(KEY, tag_length=8).encrypt(V["enc-aes-nonce"], V["enc-plaintext"], V["enc-aes-aad"])
    assert theirs == V["enc-aes-ciphertext"]


def test_sm4_vector_against_tongsuo():
    from tongsuopy.crypto.ciphers.aead import SM4CCM

    theirs = SM4CCM(KEY, 8).encrypt(V["enc-sm4-nonce"], V["enc-plaintext"], V["enc-sm4-aad"])
    assert theirs == V["enc-sm4-ciphertext"]
    assert SM4CCM(KEY, 8).decrypt(V["enc-sm4-nonce"], theirs, V["enc-sm4-aad"]) == V["enc-plaintext"]


@pytest.mark.interop
def test_sm4_ccm_against_a_javascript_ccm_over_sm_crypto():
    """The vector and random readings: our SM4-CCM-16-64-128 is a CCM written apart from ours,
    over an SM4 written apart from ours."""
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is missing: the sm-crypto cross-check needs Node (20+)")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "sm-crypto")):
        raise AssertionError("node_modules/sm-crypto is missing: run `make setup` (npm ci)")
    jobs = [(KEY, V["enc-sm4-nonce"], V["enc-sm4-aad"], V["enc-plaintext"])]
    jobs += [(os.urandom(16), os.urandom(13), os.urandom(n % 40), os.urandom(n)) for n in (0, 1, 15, 16, 17, 200, 1000)]
    out = subprocess.run([node, os.path.join(ROOT, "tests", "interop", "sm4_ccm_check.js")],
                         input=json.dumps([{"key": k.hex(), "nonce": n.hex(), "aad": a.hex(), "plaintext": p.hex(),
                                            "tag_len": 8} for k, n, a, p in jobs]),
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    theirs = [bytes.fromhex(h) for h in json.loads(out.stdout)]
    assert theirs[0] == V["enc-sm4-ciphertext"]
    from edgeledger.agent.crypto.cipher import sm4_ccm_encrypt

    assert theirs == [sm4_ccm_encrypt(k, n, p, a, 8) for k, n, a, p in jobs]

"""SHA-512 (FIPS 180-4) and HMAC (RFC 4231) through agent/crypto and its pure modules, both runtimes."""
import os

import pytest

from edgeledger.agent import crypto
from edgeledger.agent.crypto.mac import hmac_sha256, hmac_sha512
from edgeledger.agent.crypto.pure import hmac as pure_hmac
from edgeledger.agent.crypto.pure import sha512 as pure_sha512
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines


@pytest.mark.parametrize("msg,digest", vectors.SHA512)
def test_sha512_fips_examples_pure_and_shim(msg, digest):
    assert pure_sha512.sha512(msg).hex() == digest
    assert crypto.sha512(msg).hex() == digest


def test_sha512_pure_matches_native_across_block_edges():
    data = os.urandom(400)
    for n in (0, 1, 111, 112, 113, 127, 128, 129, 239, 240, 256, 399):
        assert pure_sha512.sha512(data[:n]) == crypto.sha512(data[:n]), n


@pytest.mark.parametrize("key,data,mac256,mac512", vectors.HMAC)
def test_hmac_rfc4231_pure_and_shim(key, data, mac256, mac512):
    key, data = bytes.fromhex(key), bytes.fromhex(data)
    assert pure_hmac.hmac_sha256(key, data).hex() == mac256
    assert pure_hmac.hmac_sha512(key, data).hex() == mac512
    assert hmac_sha256(key, data).hex() == mac256
    assert hmac_sha512(key, data).hex() == mac512


def test_sha256_and_random_bytes():
    assert crypto.sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")  # FIPS 180-4 example
    a, b = crypto.random_bytes(32), crypto.random_bytes(32)
    assert len(a) == 32 and a != b


def test_cpython_shim_uses_native_backends():
    impl = crypto.implementation()
    assert impl["sha512"] == "hashlib" and impl["hmac"] == "hmac"
    assert impl["ed25519"] == impl["p256"] == impl["aes"] == impl["ccm"] == "cryptography"
    assert impl["sm3"] == impl["sm4"] == "cryptography" and impl["sm2"] == "tongsuopy"
    assert set(impl) == {"sha256", "sha512", "hmac", "random", "ed25519", "p256", "aes", "ccm",
                         "sm3", "sm2", "sm4"}


@pytest.mark.micropython
def test_hashes_under_micropython():
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.mac import hmac_sha256, hmac_sha512
print("impl|%s,%s" % (crypto.implementation()["sha512"], crypto.implementation()["hmac"]))
for i, (msg, digest) in enumerate(SHA512):
    print("sha512.%d|%s" % (i, crypto.sha512(msg).hex()))
for i, (k, d, m256, m512) in enumerate(HMAC):
    k = bytes.fromhex(k); d = bytes.fromhex(d)
    print("hmac256.%d|%s" % (i, hmac_sha256(k, d).hex()))
    print("hmac512.%d|%s" % (i, hmac_sha512(k, d).hex()))
""")
    assert out["impl"] == "pure,pure"
    for i, (_, digest) in enumerate(vectors.SHA512):
        assert out["sha512.%d" % i] == digest
    for i, (_, _, m256, m512) in enumerate(vectors.HMAC):
        assert out["hmac256.%d" % i] == m256
        assert out["hmac512.%d" % i] == m512

"""SM3 (GB/T 32905-2016) and HMAC-SM3: the standard's examples, the pure module against
OpenSSL's SM3 (through `cryptography`), the shim, and both under MicroPython."""
import os

import pytest
from cryptography.hazmat.primitives import hashes, hmac

from edgeledger.agent import crypto
from edgeledger.agent.crypto.mac import hmac_sm3
from edgeledger.agent.crypto.pure import sm3 as pure
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines


def _openssl_sm3(data):
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _openssl_hmac_sm3(key, data):
    m = hmac.HMAC(key, hashes.SM3())
    m.update(data)
    return m.finalize()


@pytest.mark.parametrize("msg,digest", vectors.SM3, ids=["abc", "abcd-x16"])
def test_gbt32905_annex_a_examples(msg, digest):
    assert pure.sm3(msg).hex() == digest
    assert crypto.sm3(msg).hex() == digest


def test_round_constant_table_is_gbt32905_4_2():
    # §4.2: T_j = 79CC4519 (0 <= j <= 15), 7A879D8A (16 <= j <= 63); the rounds add T_j <<< (j mod 32)
    table = b""
    for j in range(64):
        t = 0x79CC4519 if j < 16 else 0x7A879D8A
        r = j % 32
        table += (((t << r) | (t >> (32 - r))) & 0xFFFFFFFF).to_bytes(4, "big")
    assert pure._T == table


def test_pure_matches_openssl_across_block_edges():
    data = os.urandom(300)
    # 55 and 56 bytes: the length still fits the last block / needs one more (§5.2)
    for n in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 129, 200, 300):
        assert pure.sm3(data[:n]) == _openssl_sm3(data[:n]), n
        assert pure.sm3(bytearray(data[:n])) == _openssl_sm3(data[:n]), n


@pytest.mark.parametrize("klen", [0, 16, 32, 64, 65, 100])
def test_hmac_sm3_matches_openssl(klen):
    """Keys shorter than, equal to and longer than the 64-byte block (RFC 2104 §2)."""
    key, data = os.urandom(klen), os.urandom(77)
    assert pure.hmac_sm3(key, data) == _openssl_hmac_sm3(key, data)
    assert hmac_sm3(key, data) == _openssl_hmac_sm3(key, data)


def test_sm3_serves_as_a_merkle_hash():
    """Same shape as the SHA-256 the Merkle and chain code use: bytes in, 32 bytes out."""
    assert len(crypto.sm3(b"\x00" + b"leaf")) == 32
    assert crypto.sm3(b"a") != crypto.sm3(b"b")


@pytest.mark.micropython
def test_sm3_under_micropython():
    key, data = os.urandom(70), os.urandom(150)
    out = run_lines("""
from edgeledger.agent import crypto
from edgeledger.agent.crypto.mac import hmac_sm3
from edgeledger.agent.crypto.pure import sm3
print("impl|" + crypto.implementation()["sm3"])
for i, (msg, digest) in enumerate(SM3):
    print("sm3.%d|%s" % (i, crypto.sm3(msg).hex()))
    print("pure.%d|%s" % (i, sm3.sm3(msg).hex()))
print("long|" + crypto.sm3(DATA).hex())
print("hmac|" + hmac_sm3(KEY, DATA).hex())
""", extra="KEY = %r\nDATA = %r\n" % (key, data))
    assert out["impl"] == "pure"
    for i, (_, digest) in enumerate(vectors.SM3):
        assert out["sm3.%d" % i] == out["pure.%d" % i] == digest
    assert out["long"] == _openssl_sm3(data).hex()
    assert out["hmac"] == _openssl_hmac_sm3(key, data).hex()

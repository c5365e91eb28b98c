"""docs/wire-format.md vector 9 (an SM3 deployment: SM3 chain links and Merkle tree), byte for
byte, on CPython and under MicroPython, and the tree against independent SM3 implementations."""
import hashlib

import pytest

from edgeledger.agent.crypto.pure import sm3 as pure_sm3
from edgeledger.agent.crypto.pure.sm2 import sign as sm2
from edgeledger.agent.signer import KeySigner
from edgeledger.gateway.registry import signatures
from edgeledger.protocols import chain, cose, hashes, merkle
from edgeledger.protocols.batch import TREE_SM3, BatchHeader
from edgeledger.protocols.bundle import Bundle, WrongPath, check_offline
from edgeledger.protocols.reading import validate as reading_validate
from tests.protocols import wire_vectors
from tests.support.mpy import run_micropython

V = wire_vectors.load()
SM2_D = bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
PACK2 = [{-2: "meter-01/", -3: 1764093060, 0: "power", 1: "W", 2: 2310}, {0: "voltage_l1", 1: "V", 2: 230.5}]
PACK3 = [{0: "meter-01/energy_import", 1: "kWh", 2: 1235.25, 6: 1764093120}]
GATEWAY = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
SM3 = hashes.function(hashes.SM3)
MESSAGES = (V["sm2-message-1"], V["sm3-message-2"], V["sm3-message-3"])


class Board:
    """The board's SM2 signer (deterministic k): the bytes are reproducible."""

    alg, kid = cose.SM2, KeySigner("SM2", SM2_D).kid

    def sign(self, data):
        return sm2.sign_message(int.from_bytes(SM2_D, "big"), data)


def test_sm3_chain_links_byte_for_byte():
    """Each message names the SM3 (pure code and OpenSSL agree) of the one before it."""
    d1 = pure_sm3.sm3(V["sm2-message-1"])
    assert d1 == SM3(V["sm2-message-1"]) == V["sm3-digest-1"]
    m2 = cose.sign1(reading_validate.encode_payload("meter-01", 2, d1, 1, PACK2), Board())
    assert m2 == V["sm3-message-2"]
    assert pure_sm3.sm3(m2) == SM3(m2) == V["sm3-digest-2"]
    assert cose.sign1(reading_validate.encode_payload("meter-01", 3, V["sm3-digest-2"], 1, PACK3),
                      Board()) == V["sm3-message-3"]


def test_sm3_tree_header_and_bundle_byte_for_byte():
    leaves = [merkle.leaf_hash(m, SM3) for m in MESSAGES]
    assert leaves == [V["sm3-leaf-0"], V["sm3-leaf-1"], V["sm3-leaf-2"]]
    root = merkle.root(leaves, SM3)
    assert root == V["sm3-root-123"]
    assert merkle.empty_root(SM3) == merkle.root([], SM3) == V["sm3-empty-root"]
    path = merkle.inclusion_proof(leaves, 1, SM3)
    assert path == [V["sm3-leaf-0"], V["sm3-leaf-2"]]
    merkle.verify_inclusion(leaves[1], 1, 3, path, root, SM3)
    assert merkle.levels(leaves, SM3)[-1] == [root]
    # the same leaves hashed with SHA-256 make another tree
    assert merkle.root([merkle.leaf_hash(m) for m in MESSAGES]).hex() == \
        "20c4bfc65c1044803765fdbb9fe1c2a2aafe4d147f12e5e62f95b8714b2e87e1"
    h = BatchHeader(GATEWAY, 1, chain.GENESIS, root, 3, 1764093000, 1764093120, tree_alg=TREE_SM3)
    assert h.layout() == V["sm3-header-layout-1"] and h.layout()[1] == 2
    assert h.hash() == V["sm3-header-hash-1"]
    b = Bundle(V["sm3-message-2"], 1, path, h, 31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"),
               bytes(range(32)), 7, bytes(range(32, 64)), cose.SM2, V["sm2-public-key"], "plant-a", 5, 1764092000, 1)
    assert b.encode() == V["sm3-bundle-2"]
    parsed = Bundle.decode(V["sm3-bundle-2"])
    assert parsed.header == h and parsed.header.tree_alg == TREE_SM3
    assert check_offline(parsed, signatures.verify).seq == 2


def _ref_mth(entries, digest):
    """RFC 9162 §2.1.1 MTH, recursive and literal, over ``digest`` (independent of merkle.py)."""
    if not entries:
        return digest(b"")
    if len(entries) == 1:
        return digest(b"\x00" + entries[0])
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return digest(b"\x01" + _ref_mth(entries[:k], digest) + _ref_mth(entries[k:], digest))


def test_sm3_tree_against_cryptography_sm3():
    """Known answer: the documented root is RFC 9162's MTH with `cryptography`'s SM3 (its own
    OpenSSL build), for the vector and for trees of 0..17 leaves."""
    from cryptography.hazmat.primitives import hashes as ch

    def sm3(data):
        h = ch.Hash(ch.SM3())
        h.update(data)
        return h.finalize()

    assert _ref_mth(list(MESSAGES), sm3) == V["sm3-root-123"]
    entries = [bytes([i]) * i for i in range(17)]
    for n in range(18):
        leaves = [merkle.leaf_hash(e, SM3) for e in entries[:n]]
        assert merkle.root(leaves, SM3) == _ref_mth(entries[:n], sm3), n
        for i in range(n):
            merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_proof(leaves, i, SM3), _ref_mth(entries[:n], sm3),
                                    SM3)


@pytest.mark.interop
def test_sm3_tree_against_sm_crypto():
    """The vector's tree, every hash computed by npm's sm-crypto under Node."""
    from tests.interop.test_sm_crypto_js import run_sm_crypto

    def sm3_all(items):
        return [bytes.fromhex(h) for h in run_sm_crypto({"sm3": [x.hex() for x in items], "sm4": []})["sm3"]]

    leaves = sm3_all([b"\x00" + m for m in MESSAGES])
    assert leaves == [V["sm3-leaf-0"], V["sm3-leaf-1"], V["sm3-leaf-2"]]
    (left,) = sm3_all([b"\x01" + leaves[0] + leaves[1]])
    assert sm3_all([b"\x01" + left + leaves[2], b""]) == [V["sm3-root-123"], V["sm3-empty-root"]]


def test_a_header_that_names_the_other_tree_hash_is_refused_with_the_reason():
    good = Bundle.decode(V["sm3-bundle-2"])
    h = good.header
    lied = BatchHeader(h.gateway, h.number, h.prev, h.root, h.tree_size, h.first_time, h.last_time, tree_alg=1)
    b = Bundle.decode(V["sm3-bundle-2"])
    b.header = lied
    with pytest.raises(WrongPath, match="header names tree hash sha256, but the path leads to the batch root only "
                                        "when hashed with sm3"):
        check_offline(b, signatures.verify)
    # a SHA-256 tree of the same messages under an SM3 header: refused too
    sha_leaves = [merkle.leaf_hash(m) for m in MESSAGES]
    sha = Bundle(V["sm3-message-2"], 1, merkle.inclusion_proof(sha_leaves, 1), BatchHeader(
        h.gateway, 1, h.prev, merkle.root(sha_leaves), 3, h.first_time, h.last_time, tree_alg=TREE_SM3), 31337,
        good.contract, good.tx_hash, 7, good.block_hash, cose.SM2, V["sm2-public-key"], "plant-a", 5, 1764092000, 1)
    with pytest.raises(WrongPath, match="header names tree hash sm3, but the path leads .* only when hashed with "
                                        "sha256"):
        check_offline(sha, signatures.verify)


def test_the_hash_table_names_what_each_part_uses():
    assert hashes.alg_for("tree", hashes.SM3) == hashes.alg_for("chain", hashes.SM3) == hashes.SM3
    assert hashes.alg_for("header", hashes.SM3) == hashes.alg_for("kid", hashes.SM3) == hashes.SHA256
    assert hashes.by_name("sm3") == TREE_SM3 == 2 and hashes.name(1) == "sha256"
    with pytest.raises(hashes.UnknownHash, match="expected one of sha256, sm3, found 'sha512'"):
        hashes.by_name("sha512")
    with pytest.raises(ValueError, match=r"tree-hash algorithm must be one of \[1, 2\], found 3"):
        BatchHeader(GATEWAY, 1, chain.GENESIS, bytes(32), 1, 0, 0, tree_alg=3)


@pytest.mark.micropython
def test_sm3_vectors_under_micropython():
    """A board hashes its chain with the pure SM3; merkle.py and batch.py build the same SM3 tree
    and header with it. MicroPython's hashlib has no SM3, so protocols/hashes.py says so (a
    typed error) rather than hash with something else."""
    script = """
import sys
V = %r
from edgeledger.agent import config
assert config.chain_digest("sha256")(b"abc") == V["sha256-abc"]
loaded = [m for m in sys.modules if "sm3" in m or m.endswith(".hashes")]
assert not loaded, "a SHA-256 board loaded %%s" %% loaded
from edgeledger.agent.crypto.pure import sm3
from edgeledger.protocols import hashes, merkle
assert config.chain_digest("sm3")(V["sm2-message-1"]) == V["sm3-digest-1"], "chain digest"
assert sm3.sm3(V["sm3-message-2"]) == V["sm3-digest-2"]
msgs = [V["sm2-message-1"], V["sm3-message-2"], V["sm3-message-3"]]
leaves = [merkle.leaf_hash(m, sm3.sm3) for m in msgs]
assert leaves == [V["sm3-leaf-0"], V["sm3-leaf-1"], V["sm3-leaf-2"]], "leaves"
assert merkle.root(leaves, sm3.sm3) == V["sm3-root-123"], "root"
merkle.verify_inclusion(leaves[1], 1, 3, [V["sm3-leaf-0"], V["sm3-leaf-2"]], V["sm3-root-123"], sm3.sm3)
from edgeledger.protocols.batch import BatchHeader
h = BatchHeader(%r, 1, bytes(32), V["sm3-root-123"], 3, 1764093000, 1764093120, tree_alg=2)
assert h.layout() == V["sm3-header-layout-1"] and h.hash() == V["sm3-header-hash-1"], "header"
try:
    hashes.function(hashes.SM3)
    raise AssertionError("no error")
except hashes.UnknownHash as e:
    assert "SM3" in str(e), str(e)
print("sm3 vectors ok")
""" % (dict(V, **{"sha256-abc": hashlib.sha256(b"abc").digest()}), GATEWAY)
    out = run_micropython(script, heapsize="256K", timeout=300)
    assert "sm3 vectors ok" in out.stdout

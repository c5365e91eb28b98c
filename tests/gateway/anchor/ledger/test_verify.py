"""The contract's RFC 9162 §2.1.3.2 inclusion check against a reference in this file.

Golden vectors: the Certificate Transparency test data as published in
transparency-dev/merkle (testonly/constants.go, proof/verify_test.go): leaf inputs, roots of
the trees of 1..8 leaves and audit paths.
"""
import hashlib
import random

import pytest

H = lambda b: hashlib.sha256(b).digest()  # noqa: E731

CT_LEAVES = [bytes.fromhex(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                          "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = {
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
CT_PATHS = [  # (index, size, path) — verify_test.go inclusionProofs (1-based there)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


# ---- reference (RFC 9162 §2.1.1 MTH, §2.1.3.1 PATH, §2.1.3.2 verification) ----------------

def leaf_hash(data):
    return H(b"\x00" + data)


def node_hash(left, right):
    return H(b"\x01" + left + right)


def _split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes):
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path(m, hashes):
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def verify_ref(lh, index, size, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, lh
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---- tests ---------------------------------------------------------------------------------

def test_reference_reproduces_ct_golden_roots_and_paths():
    hashes = [leaf_hash(x) for x in CT_LEAVES]
    for size, root in CT_ROOTS.items():
        assert mth(hashes[:size]).hex() == root
    for index, size, p in CT_PATHS:
        assert [x.hex() for x in path(index, hashes[:size])] == p


def test_contract_verifies_ct_golden_paths(embedded):
    hashes = [leaf_hash(x) for x in CT_LEAVES]
    for index, size, p in CT_PATHS:
        root = bytes.fromhex(CT_ROOTS[size])
        proof = [bytes.fromhex(x) for x in p]
        assert embedded.verify(hashes[index], index, size, proof, root) is True
        # CT's corruption probes (verify_test.go corruptInclusionProof).
        probes = [(index ^ 1, size, proof), (index, size * 2, proof), (index, size // 2, proof),
                  (index, size, proof + [bytes(32)]), (index, size, [root] + proof), (index, size, proof[:-1])]
        for i in range(len(proof)):
            flipped = list(proof)
            flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
            probes.append((index, size, flipped))
        for pi, ps, pp in probes:
            assert embedded.verify(hashes[index], pi, ps, pp, root) is False, (pi, ps)


def _cases(rng, count, max_size):
    for _ in range(count):
        size = rng.randint(1, max_size)
        hashes = [leaf_hash(rng.randbytes(rng.randint(0, 40))) for _ in range(size)]
        root = mth(hashes)
        index = rng.randrange(size)
        proof = path(index, hashes)
        yield hashes[index], index, size, proof, root
        # corrupted variants: flipped path byte, wrong index, wrong size, wrong leaf
        if proof:
            j = rng.randrange(len(proof))
            bad = list(proof)
            bad[j] = bad[j][:5] + bytes([bad[j][5] ^ 0x40]) + bad[j][6:]
            yield hashes[index], index, size, bad, root
        yield hashes[index], (index + 1) % (size + 1), size, proof, root
        yield hashes[index], index, size + rng.randint(1, 3), proof, root
        if size > 1:
            yield hashes[index], index, rng.randint(1, size - 1), proof, root
        yield H(b"other"), index, size, proof, root


def test_contract_agrees_with_reference_on_random_trees(embedded):
    rng = random.Random(9162)
    verdicts = {True: 0, False: 0}
    for lh, index, size, proof, root in _cases(rng, 60, 300):
        want = verify_ref(lh, index, size, proof, root)
        assert embedded.verify(lh, index, size, proof, root) is want, (index, size)
        verdicts[want] += 1
    assert verdicts[True] >= 60 and verdicts[False] >= 200


def test_verify_anchored_binds_entry_index_and_size_to_the_anchored_header(ledger):
    """verifyAnchored recomputes the header hash from its fields and hashes the entry itself:
    a wrong index, an inner node passed as a leaf, a wrong tree size or an unanchored header
    are all refused (on the embedded chain and on anvil)."""
    from edgeledger.protocols.batch import BatchHeader

    gw = ledger.account
    entries = [b"reading-%d" % i for i in range(13)]
    hashes = [leaf_hash(e) for e in entries]
    root = mth(hashes)
    n, prev = ledger.last_batch(gw)
    n += 1
    ledger.anchor(n, prev, root, 13, 1, 2, wait=True)
    header = BatchHeader(bytes.fromhex(gw[2:]), n, prev, root, 13, 1, 2)
    assert ledger.verify_anchored(header, entries[7], 7, path(7, hashes)) is True
    # wrong index: the path is leaf 7's
    assert ledger.verify_anchored(header, entries[7], 6, path(7, hashes)) is False
    # an inner node as a leaf: node(h4, h5) sits at level 1, index 2 of the 13-leaf tree; with the
    # rest of leaf 4's path it leads to the root (the low-level `verify` over a leaf hash accepts
    # it), but verifyAnchored hashes the entry with the 0x00 prefix, so the node's preimage fails
    inner = node_hash(hashes[4], hashes[5])
    inner_path = path(4, hashes)[1:]
    assert ledger.verify(inner, 2, 7, inner_path, root) is True  # RFC 9162 over 7 level-1 nodes
    assert ledger.verify_anchored(header, b"\x01" + hashes[4] + hashes[5], 4, inner_path) is False
    assert ledger.verify_anchored(header, b"\x01" + hashes[4] + hashes[5], 2, inner_path) is False
    # wrong tree size: the header hash no longer matches the anchored one
    for size in (12, 14, 16):
        other = BatchHeader(header.gateway, n, prev, root, size, 1, 2)
        assert ledger.verify_anchored(other, entries[7], 7, path(7, hashes)) is False, size
    # a different root or batch number that is not anchored
    assert ledger.verify_anchored(BatchHeader(header.gateway, n, prev, hashes[0], 13, 1, 2), entries[7], 7,
                                  path(7, hashes)) is False
    assert ledger.verify_anchored(BatchHeader(header.gateway, n + 1, prev, root, 13, 1, 2), entries[7], 7,
                                  path(7, hashes)) is False


@pytest.mark.ledger
def test_verify_gas_by_depth_on_anvil(anvil_ledger, capsys):
    """Execution gas (estimate minus 21000 and EIP-2028 calldata) on london rules."""
    rng = random.Random(1)
    gas = {}
    for depth in range(1, 21):
        lh = rng.randbytes(32)
        proof = [rng.randbytes(32) for _ in range(depth)]
        r = lh
        for p in proof:  # leftmost leaf of a full tree of 2^depth leaves
            r = node_hash(r, p)
        assert anvil_ledger.verify(lh, 0, 2 ** depth, proof, r) is True
        gas[depth] = anvil_ledger.execution_gas("verify", lh, 0, 2 ** depth, proof, r)
    with capsys.disabled():
        print("\nverify execution gas by depth:", gas)
    assert gas[20] < 30_000
    assert all(gas[d] < gas[d + 1] for d in range(1, 20))

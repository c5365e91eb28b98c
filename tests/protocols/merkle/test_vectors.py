"""protocols.merkle against published vectors (see tests/protocols/merkle/vectors.py for sources)."""
import binascii
import hashlib

import pytest

from edgeledger.protocols import merkle
from tests.protocols.merkle import vectors as V


def h(hexstr):
    return binascii.unhexlify(hexstr)


LEAVES = [merkle.leaf_hash(h(x)) for x in V.LEAF_INPUTS_HEX]


@pytest.mark.parametrize("desc,kind,inputs,want", V.HASHER_VECTORS, ids=[v[0] for v in V.HASHER_VECTORS])
def test_hasher_vectors(desc, kind, inputs, want):
    if kind == "empty":
        got = merkle.EMPTY_ROOT
    elif kind == "leaf":
        got = merkle.leaf_hash(*inputs)
    else:
        got = merkle.node_hash(*inputs)
    assert got.hex() == want


def test_empty_root_is_sha256_of_empty_string():
    assert merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle.root([]) == merkle.EMPTY_ROOT


@pytest.mark.parametrize("size", range(len(V.ROOTS_HEX)))
def test_root_for_every_prefix_size(size):
    assert merkle.root(LEAVES[:size]).hex() == V.ROOTS_HEX[size]


def test_leaf_hashes_are_the_published_level_zero():
    assert [x.hex() for x in LEAVES] == V.NODE_HASHES_HEX[0]


@pytest.mark.parametrize("level", range(1, 4))
def test_complete_subtree_hashes(level):
    width = 1 << level
    got = [merkle.root(LEAVES[i:i + width]).hex() for i in range(0, 8, width)]
    assert got == V.NODE_HASHES_HEX[level]


@pytest.mark.parametrize("leaf,size,proof", V.INCLUSION_PROOFS, ids=["%d/%d" % v[:2] for v in V.INCLUSION_PROOFS])
def test_published_inclusion_proofs(leaf, size, proof):
    index = leaf - 1  # the Go table is 1-based
    path = [h(x) for x in proof]
    assert merkle.inclusion_proof(LEAVES[:size], index) == path
    root, paths = merkle.all_inclusion_proofs(LEAVES[:size])
    assert root.hex() == V.ROOTS_HEX[size]
    assert paths[index] == path
    assert merkle.verify_inclusion(LEAVES[index], index, size, path, h(V.ROOTS_HEX[size])) is None
    assert merkle.is_included(LEAVES[index], index, size, path, h(V.ROOTS_HEX[size]))


@pytest.mark.parametrize("size1,size2,proof", V.CONSISTENCY_PROOFS, ids=["%d-%d" % v[:2] for v in V.CONSISTENCY_PROOFS])
def test_published_consistency_proofs(size1, size2, proof):
    path = [h(x) for x in proof]
    assert merkle.consistency_proof(LEAVES[:size2], size1) == path
    root1, root2 = h(V.ROOTS_HEX[size1]), h(V.ROOTS_HEX[size2])
    assert merkle.verify_consistency(size1, size2, root1, root2, path) is None
    assert merkle.is_consistent(size1, size2, root1, root2, path)


def _bit_ceil(n):
    c = 1
    while c < n:
        c <<= 1
    return c


def _valid_subtrees(limit):
    for end in range(1, limit + 1):
        for start in range(end):
            if start == 0 or start % _bit_ceil(end - start) == 0:
                yield start, end


DRAFT_LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(V.SUBTREE_VECTOR_MAX)]


def test_subtree_hash_accumulated_vector():
    """MTH of every valid subtree of a 130-leaf tree, folded as the draft does."""
    acc = hashlib.sha256()
    for start, end in _valid_subtrees(V.SUBTREE_VECTOR_MAX):
        line = "[%d, %d) %s\n" % (start, end, merkle.root(DRAFT_LEAVES[start:end]).hex())
        acc.update(line.encode())
    assert acc.hexdigest() == V.SUBTREE_HASH_VECTOR


@pytest.mark.parametrize("how", ["inclusion_proof", "all_inclusion_proofs"])
def test_subtree_inclusion_proof_accumulated_vector(how):
    """PATH of every leaf of every valid subtree of a 130-leaf tree, folded as the draft does."""
    acc = hashlib.sha256()
    for start, end in _valid_subtrees(V.SUBTREE_VECTOR_MAX):
        sub = DRAFT_LEAVES[start:end]
        if how == "all_inclusion_proofs":
            root, paths = merkle.all_inclusion_proofs(sub)
        else:
            paths = [merkle.inclusion_proof(sub, i) for i in range(len(sub))]
        for index in range(start, end):
            line = "%d [%d, %d)" % (index, start, end)
            line += "".join(" " + p.hex() for p in paths[index - start]) + "\n"
            acc.update(line.encode())
    assert acc.hexdigest() == V.SUBTREE_INCLUSION_PROOF_VECTOR

"""protocols.merkle against RFC 9162 §2.1 transcribed literally (tests/protocols/merkle/rfc_reference.py).

Every tree size 1..64, every leaf index and every consistency pair.
"""
import pytest

from edgeledger.protocols import merkle
from tests.protocols.merkle.rfc_reference import ref_mth, ref_path, ref_proof

MAX_SIZE = 64
DATA = [b"reading %d" % i for i in range(MAX_SIZE)]
LEAVES = [merkle.leaf_hash(d) for d in DATA]


def test_leaf_hash_is_rfc_leaf():
    for d, leaf in zip(DATA, LEAVES):
        assert leaf == ref_mth([d])


def test_node_hash_is_rfc_node():
    assert merkle.node_hash(LEAVES[0], LEAVES[1]) == ref_mth(DATA[:2])


def test_empty_tree():
    assert merkle.root([]) == ref_mth([]) == merkle.EMPTY_ROOT
    assert merkle.all_inclusion_proofs([]) == (merkle.EMPTY_ROOT, [])


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_root_and_every_path(size):
    data = DATA[:size]
    leaves = LEAVES[:size]
    want_root = ref_mth(data)
    assert merkle.root(leaves) == want_root
    root, paths = merkle.all_inclusion_proofs(leaves)
    assert root == want_root
    assert len(paths) == size
    for m in range(size):
        want = ref_path(m, data)
        assert merkle.inclusion_proof(leaves, m) == want, m
        assert paths[m] == want, m
        assert merkle.inclusion_path_length(m, size) == len(want)
        merkle.verify_inclusion(leaves[m], m, size, want, want_root)


@pytest.mark.parametrize("second", range(1, MAX_SIZE + 1))
def test_every_consistency_proof(second):
    data = DATA[:second]
    leaves = LEAVES[:second]
    second_root = ref_mth(data)
    for first in range(1, second + 1):
        want = ref_proof(first, data)
        assert merkle.consistency_proof(leaves, first) == want, first
        assert merkle.consistency_path_length(first, second) == len(want)
        merkle.verify_consistency(first, second, ref_mth(DATA[:first]), second_root, want)
    # Every tree extends the empty tree, with the empty proof.
    merkle.verify_consistency(0, second, merkle.EMPTY_ROOT, second_root, [])

"""protocols.merkle.levels and path_from_levels: the tree the gateway keeps with each batch
and the paths it reads from it are the published vectors' roots and paths."""
import binascii

import pytest

from edgeledger.protocols import merkle
from tests.protocols.merkle import rfc_reference as ref
from tests.protocols.merkle import vectors as V

LEAVES = [merkle.leaf_hash(binascii.unhexlify(x)) for x in V.LEAF_INPUTS_HEX]


@pytest.mark.parametrize("size", range(1, len(V.ROOTS_HEX)))
def test_levels_end_in_the_published_root(size):
    levels = merkle.levels(LEAVES[:size])
    assert levels[0] == LEAVES[:size] and levels[-1] == [binascii.unhexlify(V.ROOTS_HEX[size])]


def test_levels_are_the_published_node_hashes():
    levels = merkle.levels(LEAVES)
    assert [[x.hex() for x in level] for level in levels[:4]] == V.NODE_HASHES_HEX


@pytest.mark.parametrize("leaf, size, proof", V.INCLUSION_PROOFS)
def test_path_from_levels_is_the_published_path(leaf, size, proof):
    path = merkle.path_from_levels(merkle.levels(LEAVES[:size]), leaf - 1)
    assert [p.hex() for p in path] == list(proof)


def test_every_path_of_every_small_tree_is_the_rfc_definitions():
    data = [b"leaf %d" % i for i in range(40)]
    for n in range(1, len(data) + 1):
        levels = merkle.levels([merkle.leaf_hash(d) for d in data[:n]])
        for m in range(n):
            assert merkle.path_from_levels(levels, m) == ref.ref_path(m, data[:n]), (m, n)


class _View:
    """Levels that are not lists (as a stored tree is read)."""

    def __init__(self, levels):
        self._levels = [tuple(level) for level in levels]

    def __len__(self):
        return len(self._levels)

    def __getitem__(self, k):
        return self._levels[k]


def test_any_sequence_of_levels_will_do():
    levels = merkle.levels(LEAVES[:7])
    assert merkle.path_from_levels(_View(levels), 6) == merkle.inclusion_proof(LEAVES[:7], 6)


def test_empty_tree_and_a_leaf_outside_the_tree():
    assert merkle.levels([]) == []
    with pytest.raises(merkle.MerkleError, match="leaf index 0 out of range for a tree of 0 leaves"):
        merkle.path_from_levels([], 0)
    with pytest.raises(merkle.MerkleError, match="leaf index 3 out of range for a tree of 3 leaves"):
        merkle.path_from_levels(merkle.levels(LEAVES[:3]), 3)
    with pytest.raises(merkle.MerkleError):
        merkle.levels([b"short"])

"""Every way an inclusion or consistency proof can be wrong raises a typed error.

The probe sets mirror corruptInclusionProof / corruptConsistencyProof and the
tables of TestVerifyInclusion, TestVerifyInclusionSingleEntry and
TestVerifyConsistency in transparency-dev/merkle proof/verify_test.go, run over
the published vectors; the targeted tests below them check that the message
says what mismatched.
"""
import binascii

import pytest

from edgeledger.protocols import merkle
from edgeledger.protocols.errors import ProtocolError
from tests.protocols.merkle import vectors as V

InclusionProofError = merkle.InclusionProofError
ConsistencyProofError = merkle.ConsistencyProofError


def h(hexstr):
    return binascii.unhexlify(hexstr)


LEAVES = [merkle.leaf_hash(h(x)) for x in V.LEAF_INPUTS_HEX]
ROOTS = [h(x) for x in V.ROOTS_HEX]
SOME_HASH = h(V.SOME_HASH_HEX)


def flip(path, i, mask):
    out = list(path)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


def inclusion_probes(index, size, path, root, leaf):
    """(description, index, size, leaf, path, root) for every corruption."""
    probes = [
        ("leafIndex - 1", index - 1, size, leaf, path, root),
        ("leafIndex + 1", index + 1, size, leaf, path, root),
        ("leafIndex ^ 2", index ^ 2, size, leaf, path, root),
        ("treeSize * 2", index, size * 2, leaf, path, root),
        ("treeSize / 2", index, size // 2, leaf, path, root),
        ("wrong leaf (not a hash)", index, size, b"WrongLeaf", path, root),
        ("wrong leaf", index, size, merkle.leaf_hash(b"WrongLeaf"), path, root),
        ("empty root", index, size, leaf, path, merkle.EMPTY_ROOT),
        ("random root", index, size, leaf, path, SOME_HASH),
        ("trailing garbage", index, size, leaf, path + [b""], root),
        ("trailing root", index, size, leaf, path + [root], root),
        ("preceding garbage", index, size, leaf, [b""] + path, root),
        ("preceding root", index, size, leaf, [root] + path, root),
    ]
    for i in range(len(path)):
        probes.append(("modified proof[%d] bit 3" % i, index, size, leaf, flip(path, i, 8), root))
    if path:
        probes.append(("removed component", index, size, leaf, path[:-1], root))
    if len(path) > 1:
        probes.append(("inserted component", index, size, leaf, [path[0], SOME_HASH] + path[1:], root))
    return probes


def _inclusion_cases():
    for leaf, size, proof in V.INCLUSION_PROOFS:
        index = leaf - 1
        path = [h(x) for x in proof]
        for probe in inclusion_probes(index, size, path, ROOTS[size], LEAVES[index]):
            yield pytest.param(*probe[1:], id="%d/%d %s" % (index, size, probe[0]))


@pytest.mark.parametrize("index,size,leaf,path,root", list(_inclusion_cases()))
def test_corrupted_inclusion_proof_is_rejected(index, size, leaf, path, root):
    with pytest.raises(InclusionProofError):
        merkle.verify_inclusion(leaf, index, size, path, root)
    assert not merkle.is_included(leaf, index, size, path, root)


@pytest.mark.parametrize("index,size", [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_verify_inclusion_empty_proof_probes(index, size):
    # proof/verify_test.go TestVerifyInclusion: empty proof, bad leaf/root pairs.
    for leaf, root in [(SOME_HASH, b""), (b"", merkle.EMPTY_ROOT), (SOME_HASH, merkle.EMPTY_ROOT)]:
        with pytest.raises(InclusionProofError):
            merkle.verify_inclusion(leaf, index, size, [], root)


def test_single_entry_tree():
    # proof/verify_test.go TestVerifyInclusionSingleEntry: root == leaf hash.
    leaf = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    for lh, root in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(InclusionProofError, match="32 bytes"):
            merkle.verify_inclusion(lh, 0, 1, [], root)


# -- targeted: the message says what mismatched (8-leaf published tree) -----

IDX, SIZE = 5, 8
PATH = [h(x) for x in V.INCLUSION_PROOFS[2][2]]  # leaf 6 (index 5) of 8
ROOT = ROOTS[8]


def test_good_proof_verifies():
    assert V.INCLUSION_PROOFS[2][:2] == (6, 8)
    merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, PATH, ROOT)


@pytest.mark.parametrize("i", range(3))
@pytest.mark.parametrize("byte", [0, 17, 31])
def test_flipped_byte_in_path_is_root_mismatch(i, byte):
    path = list(PATH)
    path[i] = path[i][:byte] + bytes([path[i][byte] ^ 1]) + path[i][byte + 1:]
    with pytest.raises(InclusionProofError, match="root mismatch"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, path, ROOT)


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 6, 7])
def test_wrong_index_in_range_is_root_mismatch(index):
    with pytest.raises(InclusionProofError, match="root mismatch"):
        merkle.verify_inclusion(LEAVES[IDX], index, SIZE, PATH, ROOT)


@pytest.mark.parametrize("index", [8, 9, -1, 1 << 40])
def test_index_out_of_range(index):
    with pytest.raises(InclusionProofError, match="out of range"):
        merkle.verify_inclusion(LEAVES[IDX], index, SIZE, PATH, ROOT)


def test_tree_size_is_not_bound_by_the_path_alone():
    # RFC 9162 §2.1.3.2 hashes left/right by the index bits only; leaf 5 has
    # the same 3-step shape in trees of 7 and 8 leaves, so the size-8 proof
    # also "verifies" as size 7 against the size-8 root. A verifier must take
    # tree_size from the same authenticated record as the root (the anchored
    # batch header), never from the proof's sender alone.
    assert merkle.inclusion_path_length(IDX, 7) == merkle.inclusion_path_length(IDX, 8)
    merkle.verify_inclusion(LEAVES[IDX], IDX, 7, PATH, ROOT)


def test_wrong_size_other_depth_is_a_length_error():
    with pytest.raises(InclusionProofError, match="path too long: 3 hashes, expected 2"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, 6, PATH, ROOT)
    with pytest.raises(InclusionProofError, match="path too short: 3 hashes, expected 4"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, 9, PATH, ROOT)


def test_truncated_path():
    with pytest.raises(InclusionProofError, match="path too short: 2 hashes, expected 3"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, PATH[:-1], ROOT)
    with pytest.raises(InclusionProofError, match="path too short: 0 hashes"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, [], ROOT)


def test_extra_path_element():
    with pytest.raises(InclusionProofError, match="path too long: 4 hashes, expected 3"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, PATH + [SOME_HASH], ROOT)


def test_wrong_root():
    with pytest.raises(InclusionProofError, match="root mismatch.*expected %s" % V.SOME_HASH_HEX):
        merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, PATH, SOME_HASH)


def test_wrong_leaf():
    with pytest.raises(InclusionProofError, match="root mismatch"):
        merkle.verify_inclusion(LEAVES[IDX - 1], IDX, SIZE, PATH, ROOT)


def test_path_element_of_wrong_size():
    path = list(PATH)
    path[1] = path[1][:31]
    with pytest.raises(InclusionProofError, match=r"path\[1\] must be 32 bytes, found 31 bytes"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, path, ROOT)
    path[1] = "00" * 32
    with pytest.raises(InclusionProofError, match=r"path\[1\] must be 32 bytes, found str"):
        merkle.verify_inclusion(LEAVES[IDX], IDX, SIZE, path, ROOT)


# -- bounds -------------------------------------------------------------------


def _uniform_tree(depth):
    """Leaf hash, per-level node hashes and root of a 2**depth tree of equal leaves."""
    node = merkle.leaf_hash(b"x")
    levels = []
    for _ in range(depth):
        levels.append(node)
        node = merkle.node_hash(node, node)
    return levels[0], levels, node


def test_largest_tree_verifies():
    depth = 32
    assert merkle.MAX_TREE_SIZE == 1 << depth and merkle.MAX_PATH_LENGTH == depth
    leaf, path, root = _uniform_tree(depth)
    for index in (0, 12345, merkle.MAX_TREE_SIZE - 1):
        merkle.verify_inclusion(leaf, index, merkle.MAX_TREE_SIZE, path, root)


def test_tree_size_over_bound():
    leaf, path, root = _uniform_tree(33)
    with pytest.raises(InclusionProofError, match="exceeds MAX_TREE_SIZE"):
        merkle.verify_inclusion(leaf, 0, merkle.MAX_TREE_SIZE * 2, path, root)


def test_path_over_bound_is_rejected_before_hashing():
    path = [SOME_HASH] * (merkle.MAX_PATH_LENGTH + 1)
    with pytest.raises(InclusionProofError, match="MAX_PATH_LENGTH"):
        merkle.verify_inclusion(SOME_HASH, 0, merkle.MAX_TREE_SIZE, path, SOME_HASH)


@pytest.mark.parametrize("size", [-1, 1.5, "8", None])
def test_tree_size_not_an_int(size):
    with pytest.raises(InclusionProofError, match="tree size"):
        merkle.verify_inclusion(LEAVES[0], 0, size, [], LEAVES[0])


class _HugeList:
    def __len__(self):
        return merkle.MAX_TREE_SIZE + 1


@pytest.mark.parametrize("call", [
    lambda x: merkle.root(x),
    lambda x: merkle.all_inclusion_proofs(x),
    lambda x: merkle.inclusion_proof(x, 0),
    lambda x: merkle.consistency_proof(x, 1),
])
def test_producer_refuses_tree_over_bound(call):
    with pytest.raises(merkle.MerkleError, match="more than MAX_TREE_SIZE"):
        call(_HugeList())


@pytest.mark.parametrize("bad", [b"\x00" * 31, b"\x00" * 33, b"", "00" * 32, 7])
def test_producer_refuses_leaf_that_is_not_a_hash(bad):
    leaves = LEAVES[:3] + [bad] + LEAVES[3:]
    for call in (merkle.root, merkle.all_inclusion_proofs, lambda x: merkle.inclusion_proof(x, 0)):
        with pytest.raises(merkle.MerkleError, match="leaf hash 3 must be 32 bytes"):
            call(leaves)


@pytest.mark.parametrize("index", [-1, 8, 100])
def test_inclusion_proof_index_out_of_range(index):
    with pytest.raises(merkle.MerkleError, match="out of range"):
        merkle.inclusion_proof(LEAVES, index)


def test_inclusion_proof_of_empty_tree():
    with pytest.raises(merkle.MerkleError, match="out of range for a tree of 0 leaves"):
        merkle.inclusion_proof([], 0)


@pytest.mark.parametrize("first", [0, -1, 9])
def test_consistency_proof_first_out_of_range(first):
    with pytest.raises(merkle.MerkleError, match="out of range 1..8"):
        merkle.consistency_proof(LEAVES, first)


def test_error_hierarchy():
    assert issubclass(merkle.MerkleError, ProtocolError)
    assert issubclass(merkle.MerkleError, ValueError)
    assert issubclass(InclusionProofError, merkle.MerkleError)
    assert issubclass(ConsistencyProofError, merkle.MerkleError)


# -- consistency ----------------------------------------------------------------


def consistency_probes(size1, size2, root1, root2, path):
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, path),
        ("size1 + 1", size1 + 1, size2, root1, root2, path),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, path),
        ("size2 * 2", size1, size2 * 2, root1, root2, path),
        ("size2 / 2", size1, size2 // 2, root1, root2, path),
        ("wrong root1 (not a hash)", size1, size2, b"WrongRoot", root2, path),
        ("wrong root2 (not a hash)", size1, size2, root1, b"WrongRoot", path),
        ("wrong root1", size1, size2, SOME_HASH, root2, path),
        ("wrong root2", size1, size2, root1, SOME_HASH, path),
        ("swapped roots", size1, size2, root2, root1, path),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, path + [b""]),
        ("trailing root1", size1, size2, root1, root2, path + [root1]),
        ("trailing root2", size1, size2, root1, root2, path + [root2]),
        ("preceding garbage", size1, size2, root1, root2, [b""] + path),
        ("preceding root1", size1, size2, root1, root2, [root1] + path),
        ("preceding root2", size1, size2, root1, root2, [root2] + path),
        ("preceding proof[0]", size1, size2, root1, root2, [path[0]] + path),
        ("truncated proof", size1, size2, root1, root2, path[:-1]),
    ]
    for i in range(len(path)):
        probes.append(("modified proof[%d] bit 4" % i, size1, size2, root1, root2, flip(path, i, 16)))
    return probes


def _consistency_cases():
    for size1, size2, proof in V.CONSISTENCY_PROOFS:
        if not proof:  # the Go test probes only non-trivial proofs
            continue
        path = [h(x) for x in proof]
        for probe in consistency_probes(size1, size2, ROOTS[size1], ROOTS[size2], path):
            yield pytest.param(*probe[1:], id="%d-%d %s" % (size1, size2, probe[0]))


@pytest.mark.parametrize("size1,size2,root1,root2,path", list(_consistency_cases()))
def test_corrupted_consistency_proof_is_rejected(size1, size2, root1, root2, path):
    with pytest.raises(ConsistencyProofError):
        merkle.verify_consistency(size1, size2, root1, root2, path)
    assert not merkle.is_consistent(size1, size2, root1, root2, path)


EMPTY = merkle.EMPTY_ROOT
R1, R2 = merkle.leaf_hash(b"don't care 1"), merkle.leaf_hash(b"don't care 2")


@pytest.mark.parametrize("size1,size2,root1,root2,path", [
    # proof/verify_test.go TestVerifyConsistency rows with wantErr == true
    # (roots there are short "don't care" strings; 32-byte stand-ins here).
    (0, 0, R1, R2, []),
    (1, 1, R1, R2, []),
    (1, 0, R1, R2, []),        # time travel to the past
    (2, 1, R1, R2, []),
    (1, 2, R1, R2, []),        # empty proof
    (0, 0, EMPTY, R2, []),     # roots don't match
    (1, 1, EMPTY, R2, []),
    (0, 0, EMPTY, EMPTY, [EMPTY]),  # roots match but the proof is not empty
    (0, 1, EMPTY, EMPTY, [EMPTY]),
    (1, 1, EMPTY, EMPTY, [EMPTY]),
    # Stricter than the Go verifier, which accepts any root1 for size1 == 0:
    # the empty tree has exactly one root.
    (0, 1, R1, R2, []),
])
def test_verify_consistency_table_errors(size1, size2, root1, root2, path):
    with pytest.raises(ConsistencyProofError):
        merkle.verify_consistency(size1, size2, root1, root2, path)


@pytest.mark.parametrize("size1,size2,root1,root2", [
    # proof/verify_test.go TestVerifyConsistency rows with wantErr == false.
    (0, 0, EMPTY, EMPTY),
    (0, 1, EMPTY, R2),
    (1, 1, R2, R2),
])
def test_verify_consistency_table_trivial_accepts(size1, size2, root1, root2):
    merkle.verify_consistency(size1, size2, root1, root2, [])


def test_consistency_messages():
    size1, size2, proof = V.CONSISTENCY_PROOFS[2]
    assert (size1, size2) == (6, 8)
    path = [h(x) for x in proof]
    r1, r2 = ROOTS[6], ROOTS[8]
    merkle.verify_consistency(6, 8, r1, r2, path)
    with pytest.raises(ConsistencyProofError, match="first root mismatch"):
        merkle.verify_consistency(6, 8, SOME_HASH, r2, path)
    with pytest.raises(ConsistencyProofError, match="second root mismatch"):
        merkle.verify_consistency(6, 8, r1, SOME_HASH, path)
    with pytest.raises(ConsistencyProofError, match="path too short: 2 hashes, expected 3"):
        merkle.verify_consistency(6, 8, r1, r2, path[:-1])
    with pytest.raises(ConsistencyProofError, match="path too long: 4 hashes, expected 3"):
        merkle.verify_consistency(6, 8, r1, r2, path + [SOME_HASH])
    with pytest.raises(ConsistencyProofError, match="first tree size 8 is larger than second tree size 6"):
        merkle.verify_consistency(8, 6, r2, r1, path)
    with pytest.raises(ConsistencyProofError, match="exceeds MAX_TREE_SIZE"):
        merkle.verify_consistency(6, merkle.MAX_TREE_SIZE + 1, r1, r2, path)
    with pytest.raises(ConsistencyProofError, match="at most 33"):
        merkle.verify_consistency(6, 8, r1, r2, [SOME_HASH] * 34)

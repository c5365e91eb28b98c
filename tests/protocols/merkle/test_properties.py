"""Hypothesis: random trees; every proof the module makes verifies, every tamper fails."""
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeledger.protocols import merkle
from tests.protocols.merkle.rfc_reference import ref_mth, ref_path, ref_proof

# Distinct messages: with duplicate leaves a proof for one copy is, rightly,
# also a proof for the other, so "wrong index fails" would not hold.
messages = st.lists(st.binary(max_size=40), min_size=1, max_size=300, unique=True)


@settings(max_examples=150, deadline=None)
@given(messages)
def test_every_inclusion_proof_verifies(msgs):
    leaves = [merkle.leaf_hash(m) for m in msgs]
    n = len(leaves)
    root, paths = merkle.all_inclusion_proofs(leaves)
    assert root == merkle.root(leaves)
    for i, path in enumerate(paths):
        merkle.verify_inclusion(leaves[i], i, n, path, root)
        assert len(path) == merkle.inclusion_path_length(i, n) <= merkle.MAX_PATH_LENGTH


@settings(max_examples=60, deadline=None)
@given(messages.filter(lambda m: len(m) <= 64), st.data())
def test_matches_rfc_reference(msgs, data):
    leaves = [merkle.leaf_hash(m) for m in msgs]
    i = data.draw(st.integers(0, len(msgs) - 1), label="index")
    first = data.draw(st.integers(1, len(msgs)), label="first")
    assert merkle.root(leaves) == ref_mth(msgs)
    assert merkle.inclusion_proof(leaves, i) == ref_path(i, msgs)
    assert merkle.consistency_proof(leaves, first) == ref_proof(first, msgs)


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_tampered_inclusion_proof_fails(msgs, data):
    leaves = [merkle.leaf_hash(m) for m in msgs]
    n = len(leaves)
    i = data.draw(st.integers(0, n - 1), label="index")
    root = merkle.root(leaves)
    path = merkle.inclusion_proof(leaves, i)
    merkle.verify_inclusion(leaves[i], i, n, path, root)
    kind = data.draw(st.sampled_from(["flip", "index", "leaf", "root", "drop", "extra"]), label="kind")
    leaf = leaves[i]
    index = i
    if kind == "flip":
        if not path:
            return
        j = data.draw(st.integers(0, len(path) - 1), label="element")
        b = data.draw(st.integers(0, 31), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        e = path[j]
        path = path[:j] + [e[:b] + bytes([e[b] ^ (1 << bit)]) + e[b + 1:]] + path[j + 1:]
    elif kind == "index":
        if n == 1:
            return
        index = data.draw(st.integers(0, n - 1).filter(lambda x: x != i), label="wrong index")
    elif kind == "leaf":
        leaf = merkle.leaf_hash(msgs[i] + b"!")
    elif kind == "root":
        root = merkle.node_hash(root, root)
    elif kind == "drop":
        if not path:
            return
        j = data.draw(st.integers(0, len(path) - 1), label="element")
        path = path[:j] + path[j + 1:]
    else:
        j = data.draw(st.integers(0, len(path)), label="position")
        path = path[:j] + [root] + path[j:]
    assert not merkle.is_included(leaf, index, n, path, root)


@settings(max_examples=150, deadline=None)
@given(messages, st.data())
def test_every_consistency_proof_verifies_and_tamper_fails(msgs, data):
    leaves = [merkle.leaf_hash(m) for m in msgs]
    n = len(leaves)
    first = data.draw(st.integers(1, n), label="first")
    r1, r2 = merkle.root(leaves[:first]), merkle.root(leaves)
    path = merkle.consistency_proof(leaves, first)
    assert len(path) == merkle.consistency_path_length(first, n)
    merkle.verify_consistency(first, n, r1, r2, path)
    if path:
        j = data.draw(st.integers(0, len(path) - 1), label="element")
        bad = list(path)
        bad[j] = bytes([bad[j][0] ^ 0x80]) + bad[j][1:]
        assert not merkle.is_consistent(first, n, r1, r2, bad)
        assert not merkle.is_consistent(first, n, r1, r2, path[:-1])
        assert not merkle.is_consistent(first, n, r1, r2, path + [r1])
    if first < n:
        # A different older tree (last leaf changed) is not a prefix.
        other = merkle.root(leaves[:first - 1] + [merkle.leaf_hash(msgs[first - 1] + b"!")])
        assert not merkle.is_consistent(first, n, other, r2, path)

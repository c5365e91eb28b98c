"""The published vectors and the RFC reference comparison, under real MicroPython.

The script is the source of tests/protocols/merkle/vectors.py (data) and
tests/protocols/merkle/rfc_reference.py (the RFC definitions) followed by the checks
below, run by the unix port against the staged ``edgeledger.protocols``.
"""
import os

import pytest

from tests.support.mpy import run_micropython

HERE = os.path.dirname(os.path.abspath(__file__))

CHECKS = r'''
import binascii
import hashlib
from edgeledger.protocols import merkle
from edgeledger.protocols.errors import ProtocolError

def h(x):
    return binascii.unhexlify(x)

def hx(b):
    return binascii.hexlify(b).decode()

def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return str(e)
    raise AssertionError("%s not raised by %r" % (exc.__name__, args))

checked = 0

# transparency-dev/merkle rfc6962_test.go hasher vectors
for desc, kind, inputs, want in HASHER_VECTORS:
    if kind == "empty":
        got = merkle.EMPTY_ROOT
    elif kind == "leaf":
        got = merkle.leaf_hash(*inputs)
    else:
        got = merkle.node_hash(*inputs)
    assert hx(got) == want, desc
    checked += 1

leaves = [merkle.leaf_hash(h(x)) for x in LEAF_INPUTS_HEX]
for size in range(len(ROOTS_HEX)):
    assert hx(merkle.root(leaves[:size])) == ROOTS_HEX[size], size
    checked += 1
assert [hx(x) for x in leaves] == NODE_HASHES_HEX[0]
for level in range(1, 4):
    w = 1 << level
    assert [hx(merkle.root(leaves[i:i + w])) for i in range(0, 8, w)] == NODE_HASHES_HEX[level]
    checked += 1

some = h(SOME_HASH_HEX)
for leaf, size, proof in INCLUSION_PROOFS:
    i = leaf - 1
    path = [h(x) for x in proof]
    root = h(ROOTS_HEX[size])
    assert merkle.inclusion_proof(leaves[:size], i) == path
    r, paths = merkle.all_inclusion_proofs(leaves[:size])
    assert r == root and paths[i] == path
    merkle.verify_inclusion(leaves[i], i, size, path, root)
    raises(merkle.InclusionProofError, merkle.verify_inclusion, leaves[i], i, size, path, some)
    raises(merkle.InclusionProofError, merkle.verify_inclusion, leaves[i], size, size, path, root)
    raises(merkle.InclusionProofError, merkle.verify_inclusion, leaves[i], i, size, path + [some], root)
    for j in range(len(path)):
        bad = list(path)
        bad[j] = bytes([bad[j][0] ^ 8]) + bad[j][1:]
        assert "root mismatch" in raises(merkle.InclusionProofError, merkle.verify_inclusion,
                                         leaves[i], i, size, bad, root)
    if path:
        assert "too short" in raises(merkle.InclusionProofError, merkle.verify_inclusion,
                                     leaves[i], i, size, path[:-1], root)
    checked += 1

for size1, size2, proof in CONSISTENCY_PROOFS:
    path = [h(x) for x in proof]
    r1, r2 = h(ROOTS_HEX[size1]), h(ROOTS_HEX[size2])
    assert merkle.consistency_proof(leaves[:size2], size1) == path
    merkle.verify_consistency(size1, size2, r1, r2, path)
    for j in range(len(path)):
        bad = list(path)
        bad[j] = bytes([bad[j][0] ^ 16]) + bad[j][1:]
        raises(merkle.ConsistencyProofError, merkle.verify_consistency, size1, size2, r1, r2, bad)
    checked += 1

# draft-ietf-plants-merkle-tree-certs accumulated subtree vectors
def bit_ceil(n):
    c = 1
    while c < n:
        c <<= 1
    return c

dl = [merkle.leaf_hash(bytes([i])) for i in range(SUBTREE_VECTOR_MAX)]
acc_h = hashlib.sha256()
acc_p = hashlib.sha256()
for end in range(1, SUBTREE_VECTOR_MAX + 1):
    for start in range(end):
        if start and start % bit_ceil(end - start):
            continue
        r, paths = merkle.all_inclusion_proofs(dl[start:end])
        acc_h.update(("[%d, %d) %s\n" % (start, end, hx(r))).encode())
        for index in range(start, end):
            line = "%d [%d, %d)" % (index, start, end)
            for p in paths[index - start]:
                line += " " + hx(p)
            acc_p.update((line + "\n").encode())
assert hx(acc_h.digest()) == SUBTREE_HASH_VECTOR
assert hx(acc_p.digest()) == SUBTREE_INCLUSION_PROOF_VECTOR
checked += 2

# RFC 9162 reference, every size 1..24, every index and consistency pair
data = [b"reading %d" % i for i in range(24)]
lh = [merkle.leaf_hash(d) for d in data]
for n in range(1, len(data) + 1):
    root = ref_mth(data[:n])
    r, paths = merkle.all_inclusion_proofs(lh[:n])
    assert r == root == merkle.root(lh[:n])
    for m in range(n):
        assert paths[m] == ref_path(m, data[:n]) == merkle.inclusion_proof(lh[:n], m)
        merkle.verify_inclusion(lh[m], m, n, paths[m], root)
        checked += 1
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(lh[:n], m)
        assert proof == ref_proof(m, data[:n])
        merkle.verify_consistency(m, n, ref_mth(data[:m]), root, proof)
        checked += 1

# bounds: a 2**32-leaf tree of equal leaves needs big ints on small ports
node = merkle.leaf_hash(b"x")
leaf = node
path = []
for _ in range(32):
    path.append(node)
    node = merkle.node_hash(node, node)
merkle.verify_inclusion(leaf, merkle.MAX_TREE_SIZE - 1, merkle.MAX_TREE_SIZE, path, node)
assert "MAX_TREE_SIZE" in raises(merkle.InclusionProofError, merkle.verify_inclusion,
                                 leaf, 0, merkle.MAX_TREE_SIZE + 1, path, node)
assert isinstance(merkle.InclusionProofError("x"), ProtocolError)
assert isinstance(merkle.InclusionProofError("x"), ValueError)
print("merkle ok", checked)
'''


def _source(name):
    with open(os.path.join(HERE, name)) as f:
        return f.read()


@pytest.mark.micropython
def test_merkle_vectors_under_micropython():
    source = _source("vectors.py") + "\n" + _source("rfc_reference.py") + "\n" + CHECKS
    proc = run_micropython(source, heapsize="256K", timeout=300)
    assert "merkle ok" in proc.stdout, proc.stdout

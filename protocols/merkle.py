"""RFC 9162 Merkle trees: tree hash, inclusion and consistency proofs.

The gateway batches the signed messages it has stored into one Merkle tree per
batch and anchors the root; every reading gets the audit path that leads from
its leaf to that root. Hashing follows RFC 9162 §2.1.1 (unchanged from
RFC 6962 §2.1), with SHA-256::

    MTH({})      = SHA-256()                                   (EMPTY_ROOT)
    MTH({d(0)})  = SHA-256(0x00 || d(0))                       (leaf_hash)
    MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  (node_hash)
                   where k is the largest power of two smaller than n

The 0x00/0x01 prefixes keep a leaf from ever being mistaken for an inner node
(second-preimage resistance). A tree of n leaves is "left-balanced"; hashed
level by level, the last node of an odd-length level is carried up unchanged::

    n = 7            root
                   /      \\
                  k        l
                 / \\      / \\
                g   h    i   j        <- j = leaf 6, carried up one level
               /\\  /\\   /\\
               a b c d  e f  (j)

Every function works on a list of 32-byte *leaf hashes*: the caller hashes the
stored message bytes with ``leaf_hash`` once (the bytes are the evidence and
are never re-encoded). All arithmetic is on Python ints, without
``int.bit_length``, so the module runs unchanged on MicroPython.

The hash. SHA-256 is the default and its fast path. A deployment that hashes with SM3
(protocols/hashes.py, the batch header's tree-hash byte 0x02) passes ``digest``, its
function from bytes to 32 bytes, to every function that hashes: the same construction
with SHA-256 swapped for it, prefixes and all. The empty tree's root is then
``digest(b"")`` (``empty_root``).

Errors: ``MerkleError`` (a ``ProtocolError``) for arguments a producer should
never pass (index out of range, tree too large, a hash that is not 32 bytes);
``InclusionProofError`` and ``ConsistencyProofError`` (both ``MerkleError``)
when a proof does not verify. Their messages say what was expected and what
was found.
"""
import binascii
import hashlib

from edgeledger.protocols.errors import ProtocolError

# RFC 9162 §2.1.1 domain-separation prefixes.
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

# SHA-256 output length; every leaf hash, path element and root has this size.
HASH_SIZE = 32

# MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Largest tree this module builds or accepts a proof for. 2**32 leaves is
# about 4.3e9 messages in one batch: at the ~10k msg/s one gateway process
# ingests (shared/NOTES.md) that is five days of readings, while a batch is
# anchored every few seconds to minutes. The bound stops a hostile proof
# bundle from claiming an absurd tree size, and caps the path length below.
MAX_TREE_SIZE = 1 << 32

# An audit path has one hash per level between leaf and root: at most
# ceil(log2(MAX_TREE_SIZE)) = 32. A path longer than this is rejected before
# any hashing is done (RFC 9162 §2.1.3.2 would fail it anyway, but only after
# hashing it all).
MAX_PATH_LENGTH = 32


class MerkleError(ProtocolError):
    """A Merkle tree operation got an impossible argument."""


class InclusionProofError(MerkleError):
    """An inclusion proof (audit path) does not prove the leaf is in the tree."""


class ConsistencyProofError(MerkleError):
    """A consistency proof does not prove the older tree is a prefix of the newer."""


_sha256 = hashlib.sha256


def _sha256_digest(data):
    return _sha256(data).digest()


def _hex(h):
    return binascii.hexlify(h).decode()


def empty_root(digest=None):
    """MTH({}): the hash of the empty string (``EMPTY_ROOT`` for SHA-256)."""
    return EMPTY_ROOT if digest is None else digest(b"")


def leaf_hash(data, digest=None):
    """Return the RFC 9162 leaf hash HASH(0x00 || data) of message bytes."""
    return (digest or _sha256_digest)(LEAF_PREFIX + data)


def node_hash(left, right, digest=None):
    """Return the RFC 9162 interior node hash HASH(0x01 || left || right)."""
    return (digest or _sha256_digest)(NODE_PREFIX + left + right)


def _split(n):
    """Largest power of two strictly smaller than n (n >= 2): RFC 9162 §2.1.1 k."""
    k = 1
    while (k << 1) < n:
        k <<= 1
    return k


def _check_size(n, what):
    if n > MAX_TREE_SIZE:
        raise MerkleError(
            "%s has %d leaves, more than MAX_TREE_SIZE=%d" % (what, n, MAX_TREE_SIZE)
        )


def _check_hash(h, what, error):
    if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
        if isinstance(h, (bytes, bytearray)):
            found = "%d bytes" % len(h)
        else:
            found = type(h).__name__
        raise error("%s must be %d bytes, found %s" % (what, HASH_SIZE, found))


def _check_leaves(leaf_hashes):
    _check_size(len(leaf_hashes), "tree")
    for i, h in enumerate(leaf_hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            _check_hash(h, "leaf hash %d" % i, MerkleError)


def _next_level(level, digest=None):
    """Hash one level into the next: pairs become nodes, an odd tail moves up."""
    it = iter(level)
    one = NODE_PREFIX
    if digest is None:
        sha = _sha256
        nxt = [sha(one + a + b).digest() for a, b in zip(it, it)]
    else:
        nxt = [digest(one + a + b) for a, b in zip(it, it)]
    if len(level) & 1:
        nxt.append(level[-1])
    return nxt


def root(leaf_hashes, digest=None):
    """Return the Merkle Tree Hash MTH (RFC 9162 §2.1.1) of a list of leaf hashes.

    Iterative, one SHA-256 per interior node (n - 1 in all). An empty list
    gives ``EMPTY_ROOT``.

    Raises MerkleError if there are more than MAX_TREE_SIZE leaves or a leaf
    hash is not 32 bytes.
    """
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return empty_root(digest)
    level = leaf_hashes
    while len(level) > 1:
        level = _next_level(level, digest)
    return level[0]


def levels(leaf_hashes, digest=None):
    """Return every level of the tree of ``leaf_hashes``: the leaves first, then each level
    hashed from the one below as ``root`` hashes it (pairs become nodes, an odd last node is
    carried up), and last ``[root]``. An empty list gives ``[]``.

    The gateway keeps these levels with each batch, so an audit path is read from them
    (``path_from_levels``) instead of hashed again. n - 1 hashes in all.

    Raises MerkleError for the conditions ``root`` raises on.
    """
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return []
    out = [list(leaf_hashes)]
    while len(out[-1]) > 1:
        out.append(_next_level(out[-1], digest))
    return out


def path_from_levels(tree_levels, index):
    """Return PATH(index, D[n]) of RFC 9162 §2.1.3.1 read from a tree's levels, no hashing.

    ``tree_levels`` is what ``levels`` returns, or any sequence of levels (each a sequence
    of hashes, with ``len``) laid out the same way, such as a view over a stored tree. At
    each level below the root the path takes the sibling of the node above the leaf, when
    that node has one (a carried-up last node has none).

    Raises MerkleError if ``index`` is not a leaf of the tree.
    """
    n = len(tree_levels[0]) if len(tree_levels) else 0
    if not 0 <= index < n:
        raise MerkleError(
            "leaf index %d out of range for a tree of %d leaves" % (index, n)
        )
    path = []
    m = index
    for k in range(len(tree_levels) - 1):
        level = tree_levels[k]
        sibling = m ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        m >>= 1
    return path


def inclusion_proof(leaf_hashes, index, digest=None):
    """Return the audit path PATH(index, D[n]) of RFC 9162 §2.1.3.1.

    The path lists sibling hashes from the leaf's level up to just below the
    root (the order RFC 9162 defines and ``verify_inclusion`` consumes). A
    tree of one leaf has the empty path. O(n) hashing: ``levels`` then
    ``path_from_levels``, the code the gateway proves its batches with.

    Raises MerkleError if ``index`` is not in 0..n-1, or for the conditions
    ``root`` raises on.
    """
    _check_leaves(leaf_hashes)
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise MerkleError(
            "leaf index %d out of range for a tree of %d leaves" % (index, n)
        )
    return path_from_levels(levels(leaf_hashes, digest), index)


def all_inclusion_proofs(leaf_hashes, digest=None):
    """Return ``(root, paths)`` where ``paths[i] == inclusion_proof(leaf_hashes, i)``.

    Every level of the tree is hashed once (n - 1 hashes); then each node's
    hash is appended to the path of every leaf under its sibling, level by
    level, so the total work is O(n log n) list appends and no subtree is
    hashed twice.

    Raises MerkleError for the conditions ``root`` raises on.
    """
    _check_leaves(leaf_hashes)
    n = len(leaf_hashes)
    if n == 0:
        return empty_root(digest), []
    paths = [[] for _ in range(n)]
    level = leaf_hashes
    width = 1  # leaves under one node of the current level
    while len(level) > 1:
        count = len(level)
        if width == 1:
            # Leaf level: each leaf's sibling is its neighbour. Done with
            # strided slices, this is half the cost of the general loop.
            pairs = count - (count & 1)
            for p, s in zip(paths[0:pairs:2], level[1:pairs:2]):
                p.append(s)
            for p, s in zip(paths[1:pairs:2], level[0:pairs:2]):
                p.append(s)
            level = _next_level(level, digest)
            width = 2
            continue
        for j in range(0, count - 1, 2):
            start = j * width
            mid = start + width
            end = mid + width
            if end > n:
                end = n
            right = level[j + 1]
            for p in paths[start:mid]:
                p.append(right)
            left = level[j]
            for p in paths[mid:end]:
                p.append(left)
        level = _next_level(level, digest)
        width <<= 1
    return level[0], paths


def inclusion_path_length(index, tree_size):
    """Number of hashes in PATH(index, D[tree_size]), from RFC 9162 §2.1.3.1.

    Walks the RFC's recursion on sizes only (no hashing): one hash per split.
    The caller guarantees 0 <= index < tree_size.
    """
    count = 0
    m = index
    n = tree_size
    while n > 1:
        k = _split(n)
        count += 1
        if m < k:
            n = k
        else:
            m -= k
            n -= k
    return count


def _check_tree_size(tree_size, what, error):
    if not isinstance(tree_size, int) or tree_size < 0:
        raise error("%s must be a non-negative int, found %r" % (what, tree_size))
    if tree_size > MAX_TREE_SIZE:
        raise error(
            "%s %d exceeds MAX_TREE_SIZE=%d" % (what, tree_size, MAX_TREE_SIZE)
        )


def _check_path(path, expected, error, context):
    if len(path) != expected:
        if len(path) > expected:
            kind = "too long"
        else:
            kind = "too short"
        raise error(
            "path %s: %d hashes, expected %d for %s"
            % (kind, len(path), expected, context)
        )
    for i, p in enumerate(path):
        _check_hash(p, "path[%d]" % i, error)


def root_from_inclusion_proof(leaf_hash, index, tree_size, path, digest=None):
    """Return the root that ``path`` leads to from ``leaf_hash`` (RFC 9162 §2.1.3.2).

    Checks everything but the root itself: the index is in range, the tree
    size is within MAX_TREE_SIZE, the path has exactly the length the RFC's
    PATH(index, D[tree_size]) has, and every hash is 32 bytes.

    Raises InclusionProofError naming what is wrong.
    """
    _check_tree_size(tree_size, "tree size", InclusionProofError)
    if not isinstance(index, int) or not 0 <= index < tree_size:
        # RFC 9162 §2.1.3.2 step 1: leaf_index >= tree_size fails.
        raise InclusionProofError(
            "leaf index %r out of range for a tree of %d leaves" % (index, tree_size)
        )
    _check_hash(leaf_hash, "leaf hash", InclusionProofError)
    if len(path) > MAX_PATH_LENGTH:
        raise InclusionProofError(
            "path too long: %d hashes, MAX_PATH_LENGTH is %d"
            % (len(path), MAX_PATH_LENGTH)
        )
    _check_path(
        path,
        inclusion_path_length(index, tree_size),
        InclusionProofError,
        "leaf index %d in a tree of %d leaves" % (index, tree_size),
    )
    # RFC 9162 §2.1.3.2 steps 2-4.
    fn = index
    sn = tree_size - 1
    r = leaf_hash
    sha = digest or _sha256_digest
    for p in path:
        if sn == 0:  # step 4a; unreachable after the length check above
            raise InclusionProofError("path too long: hashes left above the root")
        if fn & 1 or fn == sn:
            r = sha(NODE_PREFIX + p + r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha(NODE_PREFIX + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 5; unreachable after the length check above
        raise InclusionProofError("path too short: the root was not reached")
    return r


def verify_inclusion(leaf_hash, index, tree_size, path, root, digest=None):
    """Check that ``path`` proves leaf ``index`` of a ``tree_size`` tree has ``root``.

    The RFC 9162 §2.1.3.2 verification algorithm. Returns None on success.

    The path commits to the index and the root, but only to the *shape* of
    the tree: a proof for leaf 5 of 8 also passes as leaf 5 of 7 against the
    same root. Take ``tree_size`` from the same authenticated record as
    ``root`` (the anchored batch header), not from whoever sent the path.

    Raises InclusionProofError when the index is out of range, the path is
    too long or too short for (index, tree_size), a hash is not 32 bytes, or
    the computed root differs from ``root`` (a flipped bit anywhere, a wrong
    leaf or a wrong index of the same depth).
    """
    _check_hash(root, "root", InclusionProofError)
    computed = root_from_inclusion_proof(leaf_hash, index, tree_size, path, digest)
    if computed != root:
        raise InclusionProofError(
            "root mismatch for leaf index %d in a tree of %d leaves: "
            "expected %s, computed %s"
            % (index, tree_size, _hex(root), _hex(computed))
        )


def is_included(leaf_hash, index, tree_size, path, root, digest=None):
    """Boolean form of ``verify_inclusion``: True if the proof verifies."""
    try:
        verify_inclusion(leaf_hash, index, tree_size, path, root, digest)
    except MerkleError:
        return False
    return True


def consistency_proof(leaf_hashes, first, digest=None):
    """Return PROOF(first, D[n]) of RFC 9162 §2.1.4.1 for n = len(leaf_hashes).

    Proves that the tree of the first ``first`` leaves is a prefix of the
    tree of all of them. ``first == n`` gives the empty proof. O(n) hashing.

    Raises MerkleError unless 0 < first <= n, or for the conditions ``root``
    raises on.
    """
    _check_leaves(leaf_hashes)
    n = len(leaf_hashes)
    if not isinstance(first, int) or not 0 < first <= n:
        raise MerkleError(
            "first tree size %r out of range 1..%d for a consistency proof"
            % (first, n)
        )
    # SUBPROOF(m, D[lo:hi], complete), unrolled: each step recurses into one
    # side and appends the hash of the other *after* the recursion's output,
    # so the hashes are collected top-down and reversed at the end.
    proof = []
    lo = 0
    hi = n
    m = first
    complete = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(root(leaf_hashes[lo + k:hi], digest))
            hi = lo + k
        else:
            proof.append(root(leaf_hashes[lo:lo + k], digest))
            lo += k
            m -= k
            complete = False
    if not complete:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        proof.append(root(leaf_hashes[lo:hi], digest))
    proof.reverse()
    return proof


def consistency_path_length(first, second):
    """Number of hashes in PROOF(first, D[second]), from RFC 9162 §2.1.4.1.

    The caller guarantees 0 < first <= second.
    """
    count = 0
    m = first
    n = second
    complete = True
    while m != n:
        k = _split(n)
        count += 1
        if m <= k:
            n = k
        else:
            m -= k
            n -= k
            complete = False
    if not complete:
        count += 1
    return count


def verify_consistency(first, second, first_hash, second_hash, path, digest=None):
    """Check that ``path`` proves tree (first, first_hash) is a prefix of (second, second_hash).

    The RFC 9162 §2.1.4.2 verification algorithm, with the two cases the RFC
    leaves to the caller made explicit: ``first == second`` needs an empty
    path and equal roots; ``first == 0`` needs an empty path and
    ``first_hash == EMPTY_ROOT`` (every tree extends the empty tree). Returns
    None on success.

    Raises ConsistencyProofError when the sizes are out of order or over
    MAX_TREE_SIZE, the path has the wrong length for (first, second), a hash
    is not 32 bytes, or either computed root differs from the one given.
    """
    _check_consistency_inputs(first, second, first_hash, second_hash, path)
    context = "tree sizes %d -> %d" % (first, second)
    if first == second or first == 0:
        _check_path(path, 0, ConsistencyProofError, context)
        if first == 0 and first_hash != empty_root(digest):
            raise ConsistencyProofError(
                "first root mismatch for %s: the empty tree's root is %s, found %s"
                % (context, _hex(empty_root(digest)), _hex(first_hash))
            )
        if first == second and first_hash != second_hash:
            raise ConsistencyProofError(
                "root mismatch for %s: equal sizes need equal roots, found %s and %s"
                % (context, _hex(first_hash), _hex(second_hash))
            )
        return
    _check_path(
        path, consistency_path_length(first, second), ConsistencyProofError, context
    )
    fr, sr = _consistency_roots(first, second, first_hash, path, digest)
    if fr != first_hash:
        raise ConsistencyProofError(
            "first root mismatch for %s: expected %s, computed %s"
            % (context, _hex(first_hash), _hex(fr))
        )
    if sr != second_hash:
        raise ConsistencyProofError(
            "second root mismatch for %s: expected %s, computed %s"
            % (context, _hex(second_hash), _hex(sr))
        )


def _check_consistency_inputs(first, second, first_hash, second_hash, path):
    """The sizes in order and in range, the roots 32 bytes, the path not longer than any
    tree allows; raises ConsistencyProofError."""
    _check_tree_size(first, "first tree size", ConsistencyProofError)
    _check_tree_size(second, "second tree size", ConsistencyProofError)
    if first > second:
        raise ConsistencyProofError(
            "first tree size %d is larger than second tree size %d"
            % (first, second)
        )
    _check_hash(first_hash, "first root", ConsistencyProofError)
    _check_hash(second_hash, "second root", ConsistencyProofError)
    if len(path) > MAX_PATH_LENGTH + 1:
        raise ConsistencyProofError(
            "path too long: %d hashes, at most %d are possible"
            % (len(path), MAX_PATH_LENGTH + 1)
        )


def _consistency_roots(first, second, first_hash, path, digest=None):
    """RFC 9162 §2.1.4.2 steps 2-7 for 0 < first < second and a path of the right length:
    the (first, second) roots the path computes."""
    # Step 2: a first tree of exact power-of-two size is a complete subtree of the
    # second; its root is the proof's implicit seed.
    if first & (first - 1) == 0:
        path = [first_hash] + list(path)
    # Steps 3-5.
    fn = first - 1
    sn = second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = path[0]
    sr = path[0]
    sha = digest or _sha256_digest
    # Step 6.
    for c in path[1:]:
        if sn == 0:  # step 6a; unreachable after the length check
            raise ConsistencyProofError("path too long: hashes left above the root")
        if fn & 1 or fn == sn:
            fr = sha(NODE_PREFIX + c + fr)
            sr = sha(NODE_PREFIX + c + sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha(NODE_PREFIX + sr + c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:  # unreachable after the length check
        raise ConsistencyProofError("path too short: the second root was not reached")
    return fr, sr


def is_consistent(first, second, first_hash, second_hash, path, digest=None):
    """Boolean form of ``verify_consistency``: True if the proof verifies."""
    try:
        verify_consistency(first, second, first_hash, second_hash, path, digest)
    except MerkleError:
        return False
    return True

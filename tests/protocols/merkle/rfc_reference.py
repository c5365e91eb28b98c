"""RFC 9162 §2.1 definitions, transcribed as literally as Python allows.

Recursive, slow (every call rehashes its subtrees) and independent of
``edgeledger.protocols.merkle``: the tests compare the fast module against
these for every tree size and index they cover. Plain code with only
``hashlib``, so the MicroPython test can prepend this file's source too.
"""
import hashlib


def ref_hash(data):
    return hashlib.sha256(data).digest()


def ref_k(n):
    """RFC 9162 §2.1.1: "the largest power of two smaller than n" (n > 1)."""
    k = 1
    while k * 2 < n:
        k = k * 2
    return k


def ref_mth(d):
    """RFC 9162 §2.1.1 MTH(D[n]) over a list of data entries."""
    n = len(d)
    if n == 0:
        # "The hash of an empty list is the hash of an empty string"
        return ref_hash(b"")
    if n == 1:
        # "MTH({d(0)}) = HASH(0x00 || d(0))"
        return ref_hash(b"\x00" + d[0])
    k = ref_k(n)
    # "MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))"
    return ref_hash(b"\x01" + ref_mth(d[0:k]) + ref_mth(d[k:n]))


def ref_path(m, d):
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    n = len(d)
    if n == 1:
        # "The path for the single leaf in a tree with a one-element input
        # list D[1] = {d(0)} is empty: PATH(0, {d(0)}) = {}"
        return []
    k = ref_k(n)
    if m < k:
        # "PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])"
        return ref_path(m, d[0:k]) + [ref_mth(d[k:n])]
    # "PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])"
    return ref_path(m - k, d[k:n]) + [ref_mth(d[0:k])]


def ref_subproof(m, d, b):
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        # "SUBPROOF(m, D[m], true) = {}" / "SUBPROOF(m, D[m], false) = {MTH(D[m])}"
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        # "SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])"
        return ref_subproof(m, d[0:k], b) + [ref_mth(d[k:n])]
    # "SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])"
    return ref_subproof(m - k, d[k:n], False) + [ref_mth(d[0:k])]


def ref_proof(m, d):
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return ref_subproof(m, d, True)

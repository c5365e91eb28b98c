"""Published RFC 6962 / RFC 9162 Merkle tree test vectors (data only).

Copied verbatim (hex) from the Go implementation used by Certificate
Transparency and Trillian, github.com/transparency-dev/merkle (formerly
google/trillian merkle/rfc6962 and merkle/testonly). RFC 9162 keeps RFC 6962's
tree hashing unchanged for SHA-256, so these are RFC 9162 vectors too.

This file is plain data so the MicroPython test can prepend its source to a
script run under the real interpreter: keep it free of imports and of
anything MicroPython lacks.
"""

# transparency-dev/merkle, testonly/constants.go: LeafInputs().
LEAF_INPUTS_HEX = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]

# transparency-dev/merkle, testonly/constants.go: RootHashes(), indexed by
# tree size 0..8 over the leaves above (size 0 is EmptyRootHash()).
ROOTS_HEX = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# transparency-dev/merkle, testonly/constants.go: NodeHashes(), the hashes of
# every complete subtree of the 8-leaf tree; NODE_HASHES_HEX[level][index].
NODE_HASHES_HEX = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    [
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ],
]

# transparency-dev/merkle, proof/verify_test.go: inclusionProofs, as
# (leaf, size, proof). NB: `leaf` there is 1-based (the test verifies
# leaf index leaf-1); the entry {0, 0, nil} is an invalid path the Go test
# skips, and is left out here.
INCLUSION_PROOFS = [
    (1, 1, []),
    (1, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (6, 8, [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (3, 3, [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    ]),
    (2, 5, [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
]

# transparency-dev/merkle, proof/verify_test.go: consistencyProofs, as
# (size1, size2, proof); the roots are ROOTS_HEX[size1], ROOTS_HEX[size2].
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (1, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (6, 8, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 5, [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
    (6, 7, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
]

# transparency-dev/merkle, proof/verify_test.go: sha256SomeHash, an
# arbitrary 32-byte value used there as a wrong root / inserted component.
SOME_HASH_HEX = "abacaba000000000000000000000000000000000000000000060061e00123456"

# transparency-dev/merkle, rfc6962/rfc6962_test.go: TestRFC6962Hasher, as
# (description, kind, inputs, expected hex) with kind "empty", "leaf" or "node".
HASHER_VECTORS = [
    ("RFC6962 Empty", "empty", (), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("RFC6962 Empty Leaf", "leaf", (b"",), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    ("RFC6962 Leaf", "leaf", (b"L123456",), "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"),
    ("RFC6962 Node", "node", (b"N123", b"N456"), "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"),
]

# transparency-dev/merkle, testonly/vectors_test.go, reproducing the
# "Subtree Test Vectors" appendix of draft-ietf-plants-merkle-tree-certs:
# over the tree D with d[i] = bytes([i]) for i < 130, every valid subtree
# [start, end) (start a multiple of BIT_CEIL(end - start)) is written as one
# line into a single running SHA-256:
#   subtree hashes:   "[%d, %d) %x\n" % (start, end, MTH(D[start:end]))
#   inclusion proofs: "%d [%d, %d)" % (index, start, end), then " %x" per
#                     proof hash, then "\n", for every start <= index < end,
#                     proof = PATH(index - start, D[start:end])
SUBTREE_VECTOR_MAX = 130
SUBTREE_HASH_VECTOR = "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f"
SUBTREE_INCLUSION_PROOF_VECTOR = "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f"

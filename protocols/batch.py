"""The batch header: what a gateway anchors on the ledger for each Merkle batch.

Its hash is SHA-256 over a fixed 118-byte layout, so that the anchor contract
(gateway/contracts/EdgeLedgerAnchor.sol, version 2) computes the same hash from
its call arguments without parsing CBOR. This module is the one place the layout
is written down in Python::

    offset size  field
    0      1     version (2)
    1      1     tree-hash algorithm: 0x01 SHA-256, 0x02 SM3, RFC 9162 (TREE_ALGS)
    2      20    gateway address (the account that anchors)
    22     8     batch number, big-endian, 1, 2, 3, ... per gateway
    30     32    hash of the previous batch header (zeros for batch 1)
    62     32    Merkle root of the batch's messages
    94     8     tree size (number of messages)
    102    8     first record time (Unix seconds, floor)
    110    8     last record time (Unix seconds, ceiling)

In a proof bundle the header travels as a CBOR map: keys 1..8 are version,
gateway, number, prev, root, tree size, first time, last time; key 9 is the
tree-hash algorithm.

The header hash itself is SHA-256 whatever the tree hash (protocols/hashes.py, part
"header"): the contract recomputes it with its sha256 precompile.
"""
import hashlib

from edgeledger.protocols import hashes
from edgeledger.protocols.errors import DecodeError

VERSION = 2
LAYOUT_LEN = 118
ZERO_HASH = b"\x00" * 32
# Tree-hash algorithms a header may name (one byte): the ids of protocols/hashes.py. The
# contract's verifyAnchored checks only 0x01 trees (it has the sha256 precompile, no SM3);
# an SM3 tree is verified off chain, by ``edgeledger verify`` (docs/national-crypto.md).
TREE_SHA256 = hashes.SHA256
TREE_SM3 = hashes.SM3
TREE_ALGS = {TREE_SHA256: "SHA-256 (RFC 9162)", TREE_SM3: "SM3 (RFC 9162 with SM3)"}
# Field order of the CBOR map (keys 1..9); the layout puts tree_alg second.
FIELDS = ("version", "gateway", "number", "prev", "root", "tree_size", "first_time", "last_time", "tree_alg")
BYTE_FIELDS = ("gateway", "prev", "root")


class HeaderError(DecodeError):
    """A batch header has a missing or malformed field."""


class BatchHeader:
    __slots__ = FIELDS

    def __init__(self, gateway, number, prev, root, tree_size, first_time, last_time, version=VERSION,
                 tree_alg=TREE_SHA256):
        self.version = version
        self.tree_alg = tree_alg
        self.gateway = bytes(gateway)
        self.number = number
        self.prev = bytes(prev)
        self.root = bytes(root)
        self.tree_size = tree_size
        self.first_time = first_time
        self.last_time = last_time
        self.check()

    def check(self):
        if self.version != VERSION:
            raise HeaderError("batch header version must be %d, found %r" % (VERSION, self.version))
        if self.tree_alg not in TREE_ALGS:
            raise HeaderError("batch header tree-hash algorithm must be one of %s, found %r"
                              % (sorted(TREE_ALGS), self.tree_alg))
        for name, size in (("gateway", 20), ("prev", 32), ("root", 32)):
            if len(getattr(self, name)) != size:
                raise HeaderError("batch header %s must be %d bytes, found %d"
                                  % (name, size, len(getattr(self, name))))
        for name in ("number", "tree_size", "first_time", "last_time"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2 ** 64:
                raise HeaderError("batch header %s must be an unsigned 64-bit integer, found %r" % (name, v))
        if self.number < 1 or self.tree_size < 1 or self.first_time > self.last_time:
            raise HeaderError("batch header needs number >= 1, tree_size >= 1, first_time <= last_time")

    def layout(self):
        return (bytes([self.version, self.tree_alg]) + self.gateway + self.number.to_bytes(8, "big")
                + self.prev + self.root + self.tree_size.to_bytes(8, "big") + self.first_time.to_bytes(8, "big")
                + self.last_time.to_bytes(8, "big"))

    def hash(self):
        return hashlib.sha256(self.layout()).digest()

    def to_map(self):
        return dict((i + 1, getattr(self, name)) for i, name in enumerate(FIELDS))

    @classmethod
    def from_map(cls, m):
        """A BatchHeader from its CBOR map (keys 1..8). Raises HeaderError, nothing else:
        the types are checked before any conversion (``bytes(n)`` of an integer would
        allocate n bytes)."""
        if not hasattr(m, "get"):
            raise HeaderError("batch header must be a map, found %s" % type(m).__name__)
        values = [m.get(i + 1) for i in range(len(FIELDS))]
        if None in values:
            raise HeaderError("batch header is missing field %s" % FIELDS[values.index(None)])
        for i, name in enumerate(FIELDS):
            want = bytes if name in BYTE_FIELDS else int
            if not isinstance(values[i], want) or isinstance(values[i], bool):
                raise HeaderError("batch header %s must be %s, found %s"
                                  % (name, "a byte string" if want is bytes else "an integer",
                                     type(values[i]).__name__))
        return cls(values[1], values[2], values[3], values[4], values[5], values[6], values[7], values[0],
                   values[8])

    def __eq__(self, other):
        return isinstance(other, BatchHeader) and self.layout() == other.layout()

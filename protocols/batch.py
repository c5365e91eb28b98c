"""The batch header: what a gateway anchors on the ledger for each Merkle batch.

Its hash is SHA-256 over a fixed 117-byte layout, so that the anchor contract
computes the same hash from its call arguments without parsing CBOR::

    offset size  field
    0      1     version (1)
    1      20    gateway address (the account that anchors)
    21     8     batch number, big-endian, 1, 2, 3, ... per gateway
    29     32    hash of the previous batch header (zeros for batch 1)
    61     32    RFC 9162 Merkle root of the batch's messages
    93     8     tree size (number of messages)
    101    8     first record time (Unix seconds, floor)
    109    8     last record time (Unix seconds, ceiling)

In a proof bundle the header travels as a CBOR map with the same fields
(keys 1..8 in that order).
"""
import hashlib

from edgeledger.protocols.errors import DecodeError

VERSION = 1
LAYOUT_LEN = 117
ZERO_HASH = b"\x00" * 32
FIELDS = ("version", "gateway", "number", "prev", "root", "tree_size", "first_time", "last_time")
BYTE_FIELDS = ("gateway", "prev", "root")


class HeaderError(DecodeError):
    """A batch header has a missing or malformed field."""


class BatchHeader:
    __slots__ = FIELDS

    def __init__(self, gateway, number, prev, root, tree_size, first_time, last_time, version=VERSION):
        self.version = version
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
        return (bytes([self.version]) + self.gateway + self.number.to_bytes(8, "big") + self.prev + self.root
                + self.tree_size.to_bytes(8, "big") + self.first_time.to_bytes(8, "big")
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
        return cls(values[1], values[2], values[3], values[4], values[5], values[6], values[7], values[0])

    def __eq__(self, other):
        return isinstance(other, BatchHeader) and self.layout() == other.layout()

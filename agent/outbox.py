"""The durable outbox: signed messages wait here until the gateway has stored them.

Layout of the outbox folder (flash on a board, a directory on Linux)::

    0000000000000001.seg   segment files, named by the first seq they hold
    0000000000000513.seg
    acked.log              append-only log of end-to-end acks

A segment is an append-only sequence of records::

    +----------+----------+-----------+----------------+
    | len u32  | crc u32  | seq u64   | message bytes  |   little-endian
    +----------+----------+-----------+----------------+
      crc = CRC-32 over the seq field and the message bytes

Rules:

* ``append`` writes one record at the end of the active segment and flushes it to
  the medium before returning: a seq is persisted before it is used. Nothing is
  ever rewritten in place (flash wears out), so a record costs one append.
* Recovery after power loss or ``kill -9`` scans every segment; a segment ends at
  its first incomplete or corrupt record (a torn write) and is never appended to
  again. Every complete record before it is kept.
* ``ack(seq)`` appends to ``acked.log``; whole segments whose records are all
  acked are deleted, except the newest one, which holds the chain head (the last
  seq and the hash the next message must name as ``prev``).
* The outbox is bounded by ``max_bytes``. When a new record does not fit, the
  configured policy decides: ``drop_new`` (the default) refuses the record with
  ``OutboxFull`` before it is signed, so the device's chain stays gap-free; the
  caller counts it and reports the count in its next signed pack.
"""
import os
import struct

from edgeledger.agent import port
from edgeledger.agent import errors

HEADER = "<IIQ"
HEADER_LEN = 16
ACK_RECORD = "<QI"
ACK_LEN = 12
SEGMENT_SUFFIX = ".seg"
ACK_LOG = "acked.log"

# One signed message: a pack of 1000 samples is about 12 KB; 64 KB bounds a corrupt length field.
MAX_RECORD_BYTES = 65536
# Linux default; boards pass their own (a few hundred KB of flash at most).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Small enough that freeing acked data is quick on a board; large enough to keep few files.
DEFAULT_SEGMENT_BYTES = 256 * 1024
# The ack log is rewritten (once) when it grows past this: 340 acks per rewrite.
ACK_LOG_ROTATE_BYTES = 4096

POLICIES = ("drop_new",)

ZERO_HASH = b"\x00" * 32


def check_sizes(max_bytes, segment_bytes):
    """Raise ConfigError unless ``max_bytes`` leaves room to move on. The newest segment is
    always kept (it holds the chain head), so the bound must hold a full segment and one
    largest record besides; below that, once a segment filled, every new pack would be
    refused for good although everything was acknowledged."""
    if max_bytes <= 0 or segment_bytes <= 0:
        raise errors.ConfigError("outbox max_bytes and segment_bytes must be positive, found %r and %r"
                                 % (max_bytes, segment_bytes))
    need = segment_bytes + MAX_RECORD_BYTES + HEADER_LEN
    if max_bytes < need:
        raise errors.ConfigError(
            "outbox max_bytes %d is below %d = segment_bytes %d + the largest record %d: the newest segment is "
            "always kept, so the outbox would stall for good once one segment filled; raise max_bytes or lower "
            "segment_bytes" % (max_bytes, need, segment_bytes, MAX_RECORD_BYTES + HEADER_LEN))


class _Segment:
    __slots__ = ("first", "last", "name", "size", "sealed")

    def __init__(self, first, name):
        self.first = first
        self.last = first - 1  # no record yet
        self.name = name
        self.size = 0
        self.sealed = False


class Outbox:
    """A bounded, durable queue of (seq, message bytes) in seq order.

    Raises OutboxError for an unknown policy; OSError from the filesystem.
    """

    def __init__(self, path, max_bytes=DEFAULT_MAX_BYTES, segment_bytes=DEFAULT_SEGMENT_BYTES,
                 policy="drop_new", hash_fn=None):
        if policy not in POLICIES:
            raise errors.OutboxError("outbox policy must be one of %s, got %r" % (POLICIES, policy))
        self.path = path
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max_bytes)
        self.policy = policy
        self._hash = hash_fn
        self.counters = {"appended": 0, "refused_full": 0, "torn_records": 0, "acked": 0}
        self._segments = []
        self._active = None  # open file of the last segment
        self.head_seq = 0
        self.head_hash = ZERO_HASH
        self._cursor = None  # (segment name, offset, seq) of the next record to read
        port.makedirs(path)
        # -- recovery: scan every segment; a segment ends at its first incomplete or
        # corrupt record (a torn write) and is sealed there.
        names = [n for n in os.listdir(path) if n.endswith(SEGMENT_SUFFIX)]
        names.sort()
        last = None
        for name in names:
            seg = _Segment(int(name[:-len(SEGMENT_SUFFIX)]), name)
            full = path + "/" + name
            with open(full, "rb") as f:
                while True:
                    header = f.read(HEADER_LEN)
                    if not header:
                        break
                    ok = len(header) == HEADER_LEN
                    if ok:
                        length, crc, seq = struct.unpack(HEADER, header)
                        ok = length <= MAX_RECORD_BYTES and seq == seg.last + 1
                    if ok:
                        data = f.read(length)
                        ok = len(data) == length and port.crc32(data, port.crc32(header[8:])) == crc
                    if not ok:
                        self.counters["torn_records"] += 1
                        seg.sealed = True
                        break
                    seg.last = seq
                    last = data
            seg.size = port.file_size(full)
            if seg.last < seg.first:
                # Torn before its first record was complete: nothing to keep, and its
                # name must be free for the segment that will hold that seq again.
                os.remove(full)
                continue
            self._segments.append(seg)
        if self._segments:
            self.head_seq = self._segments[-1].last
        if last is not None and hash_fn is not None:
            self.head_hash = hash_fn(last)
        last = None
        self.acked = 0
        try:
            with open(path + "/" + ACK_LOG, "rb") as f:
                while True:
                    rec = f.read(ACK_LEN)
                    if len(rec) < ACK_LEN:
                        break
                    seq, crc = struct.unpack(ACK_RECORD, rec)
                    if port.crc32(rec[:8]) == crc and seq > self.acked:
                        self.acked = seq
        except OSError:
            pass
        if self.head_seq < self.acked:
            # Every record was acked and its segment deleted: impossible by construction
            # (the newest segment is kept), but never let seq go backwards.
            self.head_seq = self.acked

    # -- writing ----------------------------------------------------------------------------

    def used_bytes(self):
        return sum(s.size for s in self._segments)

    def append(self, seq, data, digest=None):
        """Persist one record. ``seq`` must be ``head_seq + 1``; ``digest`` (its hash,
        computed with ``hash_fn`` when not given) becomes ``head_hash``.

        Raises OutboxFull (counted) when the record does not fit under the policy,
        OutboxError for a wrong seq or an oversized record.
        """
        if seq != self.head_seq + 1:
            raise errors.OutboxError("outbox expects seq %d next, got %d" % (self.head_seq + 1, seq))
        size = HEADER_LEN + len(data)
        if size > MAX_RECORD_BYTES + HEADER_LEN:
            raise errors.OutboxError("record of %d bytes exceeds MAX_RECORD_BYTES" % len(data))
        if self.used_bytes() + size > self.max_bytes:
            self._collect()
            if self.used_bytes() + size > self.max_bytes:
                self.counters["refused_full"] += 1
                raise errors.OutboxFull("outbox full: %d of %d bytes used, %d unacked records"
                                 % (self.used_bytes(), self.max_bytes, self.pending_count()))
        seg = self._segments[-1] if self._segments else None
        if seg is None or seg.sealed or seg.size + size > self.segment_bytes:
            self.close()
            if seg is not None:
                seg.sealed = True
            seg = _Segment(seq, "%016d%s" % (seq, SEGMENT_SUFFIX))
            self._segments.append(seg)
        if self._active is None:
            self._active = open(self.path + "/" + seg.name, "ab")
        crc = port.crc32(data, port.crc32(struct.pack("<Q", seq)))
        # header and message written one after the other: no joined copy of the message
        self._active.write(struct.pack(HEADER, len(data), crc, seq))
        self._active.write(data)
        port.fsync(self._active)
        seg.size += size
        seg.last = seq
        self.head_seq = seq
        if digest is None:
            digest = self._hash(data) if self._hash else ZERO_HASH
        self.head_hash = digest
        self.counters["appended"] += 1

    # -- reading ----------------------------------------------------------------------------

    def pending_count(self):
        return self.head_seq - self.acked

    def read(self, from_seq, limit):
        """Return up to ``limit`` records ``(seq, data)`` with seq >= from_seq, in order."""
        out = []
        if from_seq <= self.acked:
            from_seq = self.acked + 1
        if self._active is not None:
            self._active.flush()
        for seg in self._segments:
            if len(out) >= limit:
                break
            if seg.last < from_seq:
                continue
            cur = self._cursor
            offset = cur[1] if cur and cur[0] == seg.name and cur[2] <= from_seq else 0
            seq = cur[2] if offset else seg.first
            with open(self.path + "/" + seg.name, "rb") as f:
                f.seek(offset)
                while seq <= seg.last and len(out) < limit:
                    header = f.read(HEADER_LEN)
                    if len(header) < HEADER_LEN:
                        break
                    length = struct.unpack(HEADER, header)[0]
                    offset += HEADER_LEN + length
                    if seq >= from_seq:
                        out.append((seq, f.read(length)))
                        self._cursor = (seg.name, offset, seq + 1)
                    else:
                        f.seek(length, 1)
                    seq += 1
            from_seq = max(from_seq, seq)
        return out

    # -- acks -------------------------------------------------------------------------------

    def ack(self, seq):
        """The gateway has stored everything up to ``seq``: record it and free space."""
        if seq > self.head_seq:
            seq = self.head_seq  # never believe an ack for something not sent
        if seq <= self.acked:
            return
        self.counters["acked"] += seq - self.acked
        self.acked = seq
        name = self.path + "/" + ACK_LOG
        rec = struct.pack("<Q", seq)
        rec += struct.pack("<I", port.crc32(rec))
        rotate = port.file_size(name) >= ACK_LOG_ROTATE_BYTES
        with open(name + ".new" if rotate else name, "wb" if rotate else "ab") as f:
            f.write(rec)
            port.fsync(f)
        if rotate:
            os.rename(name + ".new", name)
        self._collect()

    def _collect(self):
        """Delete segments whose records are all acked, never the newest one."""
        while len(self._segments) > 1 and self._segments[0].last <= self.acked:
            seg = self._segments.pop(0)
            try:
                os.remove(self.path + "/" + seg.name)
            except OSError:
                pass
            if self._cursor and self._cursor[0] == seg.name:
                self._cursor = None

    def close(self):
        if self._active is not None:
            self._active.close()
            self._active = None


def next_epoch(state_dir):
    """Increment and persist the device's boot counter in ``state_dir/epoch``.

    Written to a new file and renamed over the old one, so a power cut leaves either
    the old or the new count, never a torn one.
    """
    path = state_dir + "/epoch"
    try:
        with open(path) as f:
            epoch = int(f.read().strip() or 0) + 1
    except (OSError, ValueError):
        epoch = 1
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("%d\n" % epoch)
        port.fsync(f)
    try:
        os.rename(tmp, path)
    except OSError:  # FAT will not rename over an existing file
        os.remove(path)
        os.rename(tmp, path)
    return epoch

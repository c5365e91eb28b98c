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
from edgeledger.agent.errors import OutboxError, OutboxFull

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


class _Segment:
    __slots__ = ("first", "last", "name", "size", "sealed")

    def __init__(self, first, name):
        self.first = first
        self.last = first - 1  # no record yet
        self.name = name
        self.size = 0
        self.sealed = False


class Outbox:
    """A bounded, durable queue of (seq, message bytes) in seq order."""

    def __init__(self, path, max_bytes=DEFAULT_MAX_BYTES, segment_bytes=DEFAULT_SEGMENT_BYTES,
                 policy="drop_new", hash_fn=None):
        if policy not in POLICIES:
            raise OutboxError("outbox policy must be one of %s, got %r" % (POLICIES, policy))
        if segment_bytes > max_bytes:
            segment_bytes = max_bytes
        self.path = path
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.policy = policy
        self._hash = hash_fn
        self.counters = {"appended": 0, "refused_full": 0, "torn_records": 0, "acked": 0}
        self._segments = []
        self._active = None  # open file of the last segment
        self.acked = 0
        self.head_seq = 0
        self.head_hash = ZERO_HASH
        self._cursor = None  # (segment name, offset, seq) of the next record to read
        port.makedirs(path)
        self._recover()

    # -- recovery ---------------------------------------------------------------------------

    def _recover(self):
        names = [n for n in os.listdir(self.path) if n.endswith(SEGMENT_SUFFIX)]
        names.sort()
        last_record = None
        for name in names:
            seg = _Segment(int(name[: -len(SEGMENT_SUFFIX)]), name)
            for seq, offset, data in self._scan(seg):
                seg.last = seq
                last_record = data
            if seg.last < seg.first:
                # Torn before its first record was complete: nothing to keep, and its
                # name must be free for the segment that will hold that seq again.
                os.remove(self.path + "/" + name)
                continue
            self._segments.append(seg)
        if self._segments:
            last = self._segments[-1]
            self.head_seq = last.last if last.last >= last.first else last.first - 1
        if last_record is not None and self._hash is not None:
            self.head_hash = self._hash(last_record)
        self.acked = self._read_acks()
        if self.head_seq < self.acked:
            # Every record was acked and its segment deleted: impossible by construction
            # (the newest segment is kept), but never let seq go backwards.
            self.head_seq = self.acked

    def _scan(self, seg):
        """Yield (seq, offset, data) of the complete records of ``seg``; seal it at a torn tail."""
        full = self.path + "/" + seg.name
        offset = 0
        expected = seg.first
        with open(full, "rb") as f:
            while True:
                header = f.read(HEADER_LEN)
                if not header:
                    break
                ok = len(header) == HEADER_LEN
                if ok:
                    length, crc, seq = struct.unpack(HEADER, header)
                    ok = length <= MAX_RECORD_BYTES and seq == expected
                if ok:
                    data = f.read(length)
                    ok = len(data) == length and port.crc32(data, port.crc32(header[8:])) == crc
                if not ok:
                    self.counters["torn_records"] += 1
                    seg.sealed = True
                    break
                yield seq, offset, data
                offset += HEADER_LEN + length
                expected += 1
        seg.size = port.file_size(full)

    def _read_acks(self):
        best = 0
        try:
            with open(self.path + "/" + ACK_LOG, "rb") as f:
                while True:
                    rec = f.read(ACK_LEN)
                    if len(rec) < ACK_LEN:
                        break
                    seq, crc = struct.unpack(ACK_RECORD, rec)
                    if port.crc32(rec[:8]) == crc and seq > best:
                        best = seq
        except OSError:
            pass
        return best

    # -- writing ----------------------------------------------------------------------------

    def used_bytes(self):
        return sum(s.size for s in self._segments)

    def has_room(self, length):
        """True if a record of ``length`` message bytes fits (after freeing acked segments)."""
        need = HEADER_LEN + length
        if self.used_bytes() + need <= self.max_bytes:
            return True
        self._collect()
        return self.used_bytes() + need <= self.max_bytes

    def append(self, seq, data, digest=None):
        """Persist one record. ``seq`` must be ``head_seq + 1``.

        Raises OutboxFull (counted) when the record does not fit under the policy.
        """
        if seq != self.head_seq + 1:
            raise OutboxError("outbox expects seq %d next, got %d" % (self.head_seq + 1, seq))
        if len(data) > MAX_RECORD_BYTES:
            raise OutboxError("record of %d bytes exceeds MAX_RECORD_BYTES %d" % (len(data), MAX_RECORD_BYTES))
        if not self.has_room(len(data)):
            self.counters["refused_full"] += 1
            raise OutboxFull("outbox full: %d of %d bytes used, %d unacked records"
                             % (self.used_bytes(), self.max_bytes, self.pending_count()))
        seg = self._segments[-1] if self._segments else None
        if seg is None or seg.sealed or seg.size + HEADER_LEN + len(data) > self.segment_bytes:
            seg = self._new_segment(seq)
        if self._active is None:
            self._active = open(self.path + "/" + seg.name, "ab")
        seq_bytes = struct.pack("<Q", seq)
        crc = port.crc32(data, port.crc32(seq_bytes))
        self._active.write(struct.pack(HEADER, len(data), crc, seq) + data)
        port.fsync(self._active)
        seg.size += HEADER_LEN + len(data)
        seg.last = seq
        self.head_seq = seq
        self.head_hash = digest if digest is not None else (self._hash(data) if self._hash else ZERO_HASH)
        self.counters["appended"] += 1

    def _new_segment(self, first):
        if self._active is not None:
            self._active.close()
            self._active = None
        if self._segments:
            self._segments[-1].sealed = True
        seg = _Segment(first, "%016d%s" % (first, SEGMENT_SUFFIX))
        self._segments.append(seg)
        return seg

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
            start_seq = cur[2] if offset else seg.first
            with open(self.path + "/" + seg.name, "rb") as f:
                f.seek(offset)
                seq = start_seq
                while seq <= seg.last and len(out) < limit:
                    header = f.read(HEADER_LEN)
                    if len(header) < HEADER_LEN:
                        break
                    length = struct.unpack(HEADER, header)[0]
                    if seq >= from_seq:
                        out.append((seq, f.read(length)))
                        self._cursor = (seg.name, offset + HEADER_LEN + length, seq + 1)
                    else:
                        f.seek(length, 1)
                    offset += HEADER_LEN + length
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
        if port.file_size(name) >= ACK_LOG_ROTATE_BYTES:
            tmp = name + ".new"
            with open(tmp, "wb") as f:
                f.write(rec)
                port.fsync(f)
            os.rename(tmp, name)
        else:
            with open(name, "ab") as f:
                f.write(rec)
                port.fsync(f)
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

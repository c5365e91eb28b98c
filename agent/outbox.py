"""The durable outbox: signed messages wait here until the gateway has stored them.

Layout of the outbox folder (flash on a board, a directory on Linux)::

    0000000000000001.seg   segment files, named by the first seq they hold
    0000000000000513.seg

A segment is an append-only sequence of records, each checked on its own::

    +----------+----------+-----------+-----------+----------------+
    | len u32  | seq u64  | dcrc u32  | hcrc u32  | message bytes  |   little-endian
    +----------+----------+-----------+-----------+----------------+
      dcrc = CRC-32 over the seq field and the message bytes
      hcrc = CRC-32 over the first 16 header bytes (len, seq, dcrc)

The header checksum lets recovery tell a torn write (an intact header whose message
runs past the end of the file) from flash damage, and find the next record after a
damaged one: it scans forward for a header whose ``hcrc`` holds.

Rules:

* ``append`` writes one record at the end of the active segment. It becomes durable
  at the next ``flush`` (``fsync``); only durable records are ever read for sending,
  so a record the gateway may have seen is always on flash. ``flush_interval_s``
  decides when: 0 (the Linux default) flushes every record at once; a board sets
  e.g. 20 s, so that one flash commit carries every record sealed in that time
  (littlefs rewrites a file's partial tail block at every commit: one erase per
  commit, measured by ``edgeledger bench flash``). A power cut loses the records
  sealed since the last flush: they were never published, so their seqs are used
  again after the restart and no one can see a fork. Nothing is rewritten in place.
* Recovery after power loss or ``kill -9`` scans every segment and keeps every
  intact record, also those after a damaged one. What it finds:

  - a *torn write* (an incomplete header or message at the end of a segment): the
    records in it were never flushed, so never sent; the segment is sealed there
    and their seqs are used again;
  - *damaged records* (a header or message whose checksum fails, with intact records
    or a later segment after them): their seqs are *lost*, the range is known exactly;
  - a *damaged head* (the end of the newest segment is damaged, not torn): the last
    records may have been sent, so no seq up to the highest the damaged bytes could
    hold is used again. The next message starts after that range, and its ``prev``
    is the digest of the last intact record (zeros if there is none).

  Lost ranges go into ``lost``, the ``agent/outbox_lost`` record the agent core adds to
  its next signed pack (``docs/wire-format.md``), so the gateway
  records an explained gap instead of waiting for seqs that will never come. They
  follow from the flash itself, so a restart before that pack is sent reports them
  again.
* ``ack(seq)`` is kept in RAM and frees whole segments whose records are all acked,
  except the newest one (it holds the chain head). Acks are not written to flash:
  after a restart the records of the segments still there are sent again and the
  gateway stores duplicates once (its retained ack usually arrives first).
* The outbox is bounded by ``max_bytes``. When a new record does not fit, the
  configured policy decides: ``drop_new`` (the default) refuses the record with
  ``OutboxFull`` before it is signed, so the device's chain stays gap-free; the
  caller counts it and reports the count in its next signed pack.
"""
import os
import struct

from edgeledger.agent import errors, port

HEADER = "<IQII"
HEADER_LEN = 20
SEGMENT_SUFFIX = ".seg"

# One signed message: a pack of 1000 samples is about 12 KB; 64 KB bounds a corrupt length field.
MAX_RECORD_BYTES = 65536
# Linux default; boards pass their own (a few hundred KB of flash at most).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Small enough that freeing acked data is quick on a board; large enough to keep few files.
DEFAULT_SEGMENT_BYTES = 256 * 1024

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
        self.last = first - 1  # last intact seq; none yet
        self.name = name
        self.size = 0
        self.sealed = False


def _read_record(f, pos, size, after):
    """(len, seq, message) of the record at ``pos`` if it is intact and its seq is above
    ``after``, else None (damage, a torn write or the end: ``recovery`` finds what follows)."""
    if pos + HEADER_LEN > size:
        return None
    f.seek(pos)
    h = f.read(HEADER_LEN)
    if len(h) < HEADER_LEN:
        return None
    length, seq, dcrc, hcrc = struct.unpack(HEADER, h)
    if port.crc32(h[:16]) != hcrc or length > MAX_RECORD_BYTES or seq <= after \
            or pos + HEADER_LEN + length > size:
        return None
    data = f.read(length)
    if len(data) != length or port.crc32(data, port.crc32(h[4:12])) != dcrc:
        return None
    return length, seq, data


class Outbox:
    """A bounded, durable queue of (seq, message bytes) in seq order.

    Raises OutboxError for an unknown policy; OSError from the filesystem.
    """

    def __init__(self, path, max_bytes=DEFAULT_MAX_BYTES, segment_bytes=DEFAULT_SEGMENT_BYTES,
                 policy="drop_new", hash_fn=None, flush_interval_s=0.0):
        if policy not in POLICIES:
            raise errors.OutboxError("outbox policy must be one of %s, got %r" % (POLICIES, policy))
        self.path = path
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max_bytes)
        self.policy = policy
        # 0, the Linux default: every record durable before append returns (an SSD or eMMC
        # levels its own wear); boards pass their profile's value
        self.flush_interval_s = flush_interval_s
        self._hash = hash_fn
        self.counters = {"appended": 0, "refused_full": 0, "torn_records": 0, "acked": 0,
                         "damaged_bytes": 0, "head_lost": 0}
        self._segments = []
        self._active = None  # open file of the last segment
        self._flushed_at = None  # monotonic time of the last flush
        self.head_seq = 0
        self.head_hash = ZERO_HASH
        self.durable_seq = 0  # highest seq on flash (flushed)
        self.lost = None  # the agent/outbox_lost record not yet reported (recovery.py)
        self._cursor = None  # (segment name, offset, seq) of the next record to read
        port.makedirs(path)
        if not self._open_intact():
            # damage or a torn write: recovery.py (not loaded on a clean start; a board's
            # start-up drops it afterwards, startup.py)
            from edgeledger.agent import recovery

            self._segments = []
            recovery.recover(self)

    def _open_intact(self):
        """The common start: every segment holds only intact records, in seq order. False
        (nothing kept) if any byte is not so."""
        names = [n for n in os.listdir(self.path) if n.endswith(SEGMENT_SUFFIX)]
        names.sort()
        last = 0
        data = None
        for name in names:
            seg = _Segment(int(name[:-len(SEGMENT_SUFFIX)]), name)
            seg.size = port.file_size(self.path + "/" + name)
            if self._segments and seg.first != last + 1:
                return False
            pos, last = 0, seg.first - 1
            with open(self.path + "/" + name, "rb") as f:
                while pos < seg.size:
                    rec = _read_record(f, pos, seg.size, last)
                    if rec is None or rec[1] != last + 1:
                        return False
                    pos += HEADER_LEN + rec[0]
                    last, data = rec[1], rec[2]
            if last < seg.first:
                return False
            seg.last = last
            self._segments.append(seg)
        if data is not None and self._hash is not None:
            self.head_hash = self._hash(data)
        self.head_seq = self.durable_seq = last
        self.acked = self._segments[0].first - 1 if self._segments else 0
        return True

    # -- writing ----------------------------------------------------------------------------

    def used_bytes(self):
        return sum(s.size for s in self._segments)

    def append(self, seq, data, digest=None):
        """Write one record. ``seq`` must be ``head_seq + 1``; ``digest`` (its hash,
        computed with ``hash_fn`` when not given) becomes ``head_hash``. The record is
        durable when this returns if ``flush_interval_s`` is 0, else at the next
        ``flush``.

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
            self.flush()  # a segment is complete on flash before the next one starts
            self.close()
            if seg is not None:
                seg.sealed = True
            seg = _Segment(seq, "%016d%s" % (seq, SEGMENT_SUFFIX))
            self._segments.append(seg)
        if self._active is None:
            self._active = open(self.path + "/" + seg.name, "ab")
        head = struct.pack("<IQI", len(data), seq, port.crc32(data, port.crc32(struct.pack("<Q", seq))))
        # header and message written one after the other: no joined copy of the message
        self._active.write(head + struct.pack("<I", port.crc32(head)))
        self._active.write(data)
        seg.size += size
        seg.last = seq
        self.head_seq = seq
        if digest is None:
            digest = self._hash(data) if self._hash else ZERO_HASH
        self.head_hash = digest
        self.counters["appended"] += 1
        if self.flush_interval_s <= 0:
            self.flush()

    def flush(self, now=None):
        """Make every appended record durable (one filesystem commit). With ``now`` (the agent
        core passes it every tick), only once ``flush_interval_s`` has passed since the last
        flush: a record after a quiet spell (a meter read every 15 minutes) goes to flash at
        once; a 1 Hz source shares one commit among ``flush_interval_s`` records."""
        if self.durable_seq == self.head_seq:
            return
        if now is not None:
            if self._flushed_at is not None and now - self._flushed_at < self.flush_interval_s:
                return
            self._flushed_at = now
        if self._active is not None:
            port.fsync(self._active)
        self.durable_seq = self.head_seq

    # -- reading ----------------------------------------------------------------------------

    def pending_count(self):
        return self.head_seq - self.acked

    def read(self, from_seq, limit):
        """Up to ``limit`` durable records ``(seq, data)`` with seq >= from_seq, in order.
        Records lost to flash damage are skipped (they are in ``lost``)."""
        out = []
        if from_seq <= self.acked:
            from_seq = self.acked + 1
        for seg in self._segments:
            if len(out) >= limit or from_seq > self.durable_seq:
                break
            if seg.last < from_seq:
                continue
            cur = self._cursor
            offset, after = 0, seg.first - 1
            if cur and cur[0] == seg.name and cur[2] <= from_seq:
                offset, after = cur[1], cur[2] - 1
            with open(self.path + "/" + seg.name, "rb") as f:
                while len(out) < limit and offset < seg.size:
                    rec = _read_record(f, offset, seg.size, after)
                    if rec is None:  # damage (rare): skip to the next intact record
                        from edgeledger.agent import recovery

                        offset = recovery.next_intact(f, offset + 1, seg.size, after)
                        if offset is None:
                            break
                        continue
                    length, seq, data = rec
                    if seq > self.durable_seq or seq > seg.last:
                        break
                    offset += HEADER_LEN + length
                    after = seq
                    if seq >= from_seq:
                        out.append((seq, data))
                        self._cursor = (seg.name, offset, seq + 1)
            from_seq = max(from_seq, seg.last + 1)
        return out

    # -- acks -------------------------------------------------------------------------------

    def ack(self, seq):
        """The gateway has stored everything up to ``seq``: free what it can (no flash write)."""
        if seq > self.durable_seq:
            seq = self.durable_seq  # never believe an ack for something not sent
        if seq <= self.acked:
            return
        self.counters["acked"] += seq - self.acked
        self.acked = seq
        self._collect()

    def _collect(self):
        """Delete segments whose seqs are all acked, never the newest one."""
        while len(self._segments) > 1 and self._segments[1].first - 1 <= self.acked:
            seg = self._segments.pop(0)
            try:
                os.remove(self.path + "/" + seg.name)
            except OSError:
                pass
            if self._cursor and self._cursor[0] == seg.name:
                self._cursor = None

    def close(self):
        """Flush and close the active segment."""
        if self._active is not None:
            self.flush()
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

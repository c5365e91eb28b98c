"""Outbox recovery: what a restart finds on flash (rules in ``outbox.py``).

Runs once when an ``Outbox`` opens, and when a read meets a damaged record. A board's
start-up drops this module from the heap afterwards (``firmware/startup.py``).
"""
import os
import struct

from edgeledger.agent import port
from edgeledger.agent.outbox import HEADER_LEN, MAX_RECORD_BYTES, SEGMENT_SUFFIX, ZERO_HASH, _Segment

# The smallest record a device writes: a header and at least a 64-byte signature. Bounds how
# many seqs a damaged head of N bytes can have held (N / MIN_RECORD_BYTES, rounded up).
MIN_RECORD_BYTES = HEADER_LEN + 64
# Bytes read at a time while scanning damaged flash for the next intact header.
SCAN_WINDOW = 256
# Lost seq ranges kept for the next report; more separate holes than this means the flash is
# failing: further ranges are merged into the last one (a superset, never a silent hole).
MAX_LOST_RANGES = 16

TORN = 1  # an intact header whose message runs past the end: a torn write
DAMAGED = 2  # an intact header whose message fails its checksum


def _header_ok(h):
    return port.crc32(h[:16]) == struct.unpack_from("<I", h, 16)[0]


def _find_header(f, pos, size, after):
    """(offset, len, seq, dcrc) of the first intact header at or after ``pos`` whose seq is
    above ``after``, or None. Reads SCAN_WINDOW bytes at a time."""
    while pos + HEADER_LEN <= size:
        f.seek(pos)
        win = f.read(min(SCAN_WINDOW, size - pos))
        if len(win) < HEADER_LEN:
            return None
        mv = memoryview(win)
        for i in range(len(win) - HEADER_LEN + 1):
            h = mv[i:i + HEADER_LEN]
            if _header_ok(h):
                length, seq, dcrc = struct.unpack_from("<IQI", h, 0)
                if length <= MAX_RECORD_BYTES and seq > after:
                    return pos + i, length, seq, dcrc
        pos += len(win) - HEADER_LEN + 1
    return None


def _records(f, pos, size, after, keep=False):
    """Walk a segment from byte ``pos``: yields ``(offset, len, seq, status, data)`` for
    every record with an intact header (status 0 intact, DAMAGED or TORN; ``data`` the
    message when ``keep`` and intact, else None), and ``(offset, n, None, None, None)`` for
    ``n`` bytes that hold no intact header. Seqs at or below ``after`` are not records
    that can follow (a header that says so is damage)."""
    while pos < size:
        found = _find_header(f, pos, size, after)
        if found is None:
            yield pos, size - pos, None, None, None
            return
        at, length, seq, dcrc = found
        if at > pos:
            yield pos, at - pos, None, None, None
        end = at + HEADER_LEN + length
        if end > size:
            yield at, length, seq, TORN, None
            return
        f.seek(at + 4)
        crc = port.crc32(f.read(8))  # the seq field
        f.seek(at + HEADER_LEN)
        data = None
        if keep:
            data = f.read(length)
            crc = port.crc32(data, crc)
            left = length - len(data)
        else:
            left = length
            while left:  # in pieces: recovery never holds a whole large record
                piece = f.read(min(left, 512))
                if not piece:
                    break
                crc = port.crc32(piece, crc)
                left -= len(piece)
        status = 0 if (crc == dcrc and not left) else DAMAGED
        if status == 0:
            after = seq
        yield at, length, seq, status, data if status == 0 else None
        pos = end


def next_intact(f, pos, size, after):
    """Offset of the first intact record at or after ``pos`` with a seq above ``after``, or None."""
    for at, _, seq, status, _ in _records(f, pos, size, after):
        if status == TORN:
            return None
        if seq is not None and status == 0:
            return at
    return None


def _lose(lost, first, last, reason):
    if first > last:
        return
    if len(lost) >= MAX_LOST_RANGES:
        f0, _, r0 = lost.pop()
        first, reason = f0, r0 if r0 == reason else "damaged"
    lost.append((first, last, reason))



def _set_head(box, last, where, damaged_tail, lost):
    """The head: seq ``last``, the hash of its record ``where`` (segment name, offset,
    length; None: no intact record). ``damaged_tail`` bytes of damaged records after it
    may have been sent: their seqs are skipped and added to ``lost``."""
    if where is not None and box._hash is not None:
        with open(box.path + "/" + where[0], "rb") as f:
            f.seek(where[1] + HEADER_LEN)
            box.head_hash = box._hash(f.read(where[2]))
    box.head_seq = last
    if damaged_tail:
        # The newest records are damaged: they may have been sent. Use no seq they could
        # have held again; the next message names the last intact record as prev.
        skip = (damaged_tail + MIN_RECORD_BYTES - 1) // MIN_RECORD_BYTES
        _lose(lost, last + 1, last + skip, "head")
        box.head_seq = last + skip
        box.counters["head_lost"] += 1
        if where is None:
            box.head_hash = ZERO_HASH


def recover(box):
    """Scan every segment of ``box`` (a new Outbox) and set its segments, head, durable and
    acked seqs, counters and ``lost``: the status record that declares lost seqs
    (``{0: "agent/outbox_lost", 3: "first-last:reason ..."}``; the core adds the time)."""
    lost = []
    names = [n for n in os.listdir(box.path) if n.endswith(SEGMENT_SUFFIX)]
    names.sort()
    last = 0  # last intact seq so far
    where = None  # (segment name, offset, len) of that record
    damaged_tail = 0  # bytes after the last intact record, newest segment, not a torn write
    n = len(names)
    for i in range(n):
        name = names[i]
        seg = _Segment(int(name[:-len(SEGMENT_SUFFIX)]), name)
        full = box.path + "/" + name
        seg.size = port.file_size(full)
        if seg.first > last + 1 and i:
            _lose(lost, last + 1, seg.first - 1, "damaged")  # the previous segment's end
        last = max(last, seg.first - 1)
        damaged_tail = 0  # damage after this segment's last intact record
        torn = False
        with open(full, "rb") as f:
            for at, length, seq, status, _ in _records(f, 0, seg.size, last):
                if status == TORN or (seq is None and at + length == seg.size
                                      and length < HEADER_LEN):
                    torn = True  # a power cut in the middle of a flush: never sent
                    break
                if seq is None:  # bytes with no intact header
                    box.counters["damaged_bytes"] += length
                    damaged_tail += length
                elif status == DAMAGED:  # an intact header, a message failing its check
                    box.counters["damaged_bytes"] += HEADER_LEN + length
                    damaged_tail += HEADER_LEN + length
                else:
                    if seq > last + 1:
                        _lose(lost, last + 1, seq - 1, "damaged")
                    last = seg.last = seq
                    where = (name, at, length)
                    damaged_tail = 0
                    continue
                seg.sealed = True
        if torn:
            box.counters["torn_records"] += 1
            seg.sealed = True
        if seg.last < seg.first and not damaged_tail:
            # Torn before its first record was complete: nothing to keep, and its
            # name must be free for the segment that will hold that seq again.
            os.remove(full)
            continue
        box._segments.append(seg)
    _set_head(box, last, where, damaged_tail, lost)
    box.durable_seq = box.head_seq
    if lost:
        box.lost = {0: "agent/outbox_lost", 3: " ".join(["%d-%d:%s" % r for r in lost])}
    box.acked = box._segments[0].first - 1 if box._segments else box.head_seq

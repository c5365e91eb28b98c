import hashlib
import os
import struct

import pytest

from edgeledger.agent.errors import OutboxError, OutboxFull
from edgeledger.agent.outbox import HEADER_LEN, Outbox
from edgeledger.agent.recovery import MIN_RECORD_BYTES
from edgeledger.protocols.chain import LOST_RECORD, parse_lost


def lost(box):
    """The seq ranges the outbox declares lost, from its agent/outbox_lost record."""
    if box.lost is None:
        return []
    assert box.lost[0] == LOST_RECORD
    return parse_lost(box.lost[3])


def sha(b):
    return hashlib.sha256(b).digest()


def msg(seq, size=40):
    return (b"m%06d-" % seq) * (size // 8 + 1)


def fill(box, first, last):
    for seq in range(first, last + 1):
        box.append(seq, msg(seq))


def test_records_survive_reopen_in_order(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=500)
    fill(box, 1, 30)
    box.close()
    again = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=500)
    assert again.head_seq == 30
    assert again.head_hash == sha(msg(30))
    assert again.read(1, 100) == [(s, msg(s)) for s in range(1, 31)]
    assert again.read(17, 3) == [(s, msg(s)) for s in (17, 18, 19)]


def test_seq_must_follow_head(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha)
    box.append(1, b"a")
    with pytest.raises(OutboxError, match="expects seq 2"):
        box.append(3, b"c")


def test_ack_frees_whole_segments_but_keeps_chain_head(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=300)
    fill(box, 1, 40)
    segs_before = [n for n in os.listdir(tmp_path) if n.endswith(".seg")]
    box.ack(40)
    segs_after = [n for n in os.listdir(tmp_path) if n.endswith(".seg")]
    assert len(segs_before) > 3 and len(segs_after) == 1
    assert box.pending_count() == 0 and box.read(1, 10) == []
    box.close()
    again = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=300)
    # acks are not on flash: the kept segment's records are sent again (stored once)
    (kept,) = segs_after
    first = int(kept[:-4])
    assert (again.head_seq, again.acked) == (40, first - 1)
    assert again.head_hash == sha(msg(40))
    again.ack(40)
    again.append(41, msg(41))
    assert again.read(1, 10) == [(41, msg(41))]


def test_ack_beyond_head_is_clamped(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha)
    fill(box, 1, 3)
    box.ack(99)
    assert box.acked == 3


def test_full_outbox_refuses_new_records_and_counts(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha, max_bytes=1000, segment_bytes=250)
    seq = 0
    with pytest.raises(OutboxFull, match="outbox full"):
        while True:
            box.append(seq + 1, msg(seq + 1))
            seq += 1
    assert box.counters["refused_full"] == 1
    assert box.head_seq == seq  # the refused record consumed no seq
    box.ack(seq)  # everything acked: segments are freed and new records fit again
    box.append(seq + 1, msg(seq + 1))
    assert box.read(1, 10) == [(seq + 1, msg(seq + 1))]


def test_torn_last_record_cut_at_every_byte(tmp_path):
    """Recovery keeps every complete record whatever byte the power cut hit."""
    src = tmp_path / "src"
    box = Outbox(str(src), hash_fn=sha)
    fill(box, 1, 5)
    box.close()
    (seg,) = [n for n in os.listdir(src) if n.endswith(".seg")]
    whole = (src / seg).read_bytes()
    last_len = HEADER_LEN + len(msg(5))
    start = len(whole) - last_len
    for cut in range(start, len(whole)):
        d = tmp_path / ("cut%d" % cut)
        d.mkdir()
        (d / seg).write_bytes(whole[:cut])
        again = Outbox(str(d), hash_fn=sha)
        assert again.head_seq == 4, cut
        assert again.head_hash == sha(msg(4))
        assert again.read(1, 10) == [(s, msg(s)) for s in range(1, 5)]
        assert again.counters["torn_records"] == (1 if cut > start else 0)
        # the next record is written after the torn tail, never into it
        again.append(5, b"fresh")
        again.close()
        third = Outbox(str(d), hash_fn=sha)
        assert third.read(1, 10)[-1] == (5, b"fresh")
        assert third.head_seq == 5


def record_spans(raw):
    """[(seq, start, end)] of the records in a segment's bytes."""
    out, pos = [], 0
    while pos < len(raw):
        length, seq = struct.unpack_from("<IQ", raw, pos)
        out.append((seq, pos, pos + HEADER_LEN + length))
        pos += HEADER_LEN + length
    return out


def test_corrupt_byte_in_middle_keeps_every_intact_record(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha)
    fill(box, 1, 6)
    box.close()
    (seg,) = [n for n in os.listdir(tmp_path) if n.endswith(".seg")]
    raw = bytearray((tmp_path / seg).read_bytes())
    raw[3 * (HEADER_LEN + len(msg(1))) + HEADER_LEN + 2] ^= 0xFF  # inside record 4's data
    (tmp_path / seg).write_bytes(bytes(raw))
    again = Outbox(str(tmp_path), hash_fn=sha)
    assert [s for s, _ in again.read(1, 10)] == [1, 2, 3, 5, 6]
    assert lost(again) == [(4, 4, "damaged")]
    assert again.counters["damaged_bytes"] == HEADER_LEN + len(msg(4))
    assert (again.head_seq, again.head_hash) == (6, sha(msg(6)))  # the chain head is intact


def flip_everywhere(tmp_path, box_args, last):
    """Write records 1..last, then for every byte of every segment flip one bit (bit
    offset % 8) in a copy and recover it. Yields (flipped seq, recovered outbox)."""
    src = tmp_path / "src"
    box = Outbox(str(src), hash_fn=sha, **box_args)
    fill(box, 1, last)
    box.close()
    segs = sorted(n for n in os.listdir(src) if n.endswith(".seg"))
    images = dict((n, (src / n).read_bytes()) for n in segs)
    case = 0
    for name in segs:
        for seq, start, end in record_spans(images[name]):
            for offset in range(start, end):
                case += 1
                d = tmp_path / ("c%d" % case)
                d.mkdir()
                for n in segs:
                    raw = bytearray(images[n])
                    if n == name:
                        raw[offset] ^= 1 << (offset % 8)
                    (d / n).write_bytes(bytes(raw))
                yield seq, Outbox(str(d), hash_fn=sha, **box_args)


def test_flip_a_bit_anywhere_keeps_every_intact_record(tmp_path):
    """Issue 13: a flipped bit anywhere (header, seq, checksums, message) loses exactly the
    record it hit; every other record is read back; the loss is declared; the chain goes on."""
    last = 7
    for hit, again in flip_everywhere(tmp_path, {"segment_bytes": 200}, last):
        got = again.read(1, 100)
        assert got == [(s, msg(s)) for s in range(1, last + 1) if s != hit], hit
        if hit < last:  # intact records on both sides: the range is exact, the head intact
            assert lost(again) == [(hit, hit, "damaged")], hit
            assert (again.head_seq, again.head_hash) == (last, sha(msg(last)))
        else:  # the newest record: it may have been sent, so its seq is never used again
            (first, end, reason), = lost(again)
            assert (first, reason) == (last, "head") and end >= last, hit
            assert again.head_seq == end and again.head_hash == sha(msg(last - 1))
            assert again.counters["head_lost"] == 1
        # the next record follows the recovered head, and survives the next recovery
        again.append(again.head_seq + 1, b"next")
        again.close()
        third = Outbox(again.path, hash_fn=sha, segment_bytes=200)
        assert third.read(again.head_seq, 1) == [(again.head_seq, b"next")]


def test_damaged_head_skips_every_seq_the_damage_could_hold(tmp_path):
    """The newest segment is unreadable: no seq it may have held is used again, and the next
    message names the last intact record (in an older segment) as prev."""
    box = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=200)
    fill(box, 1, 9)
    box.close()
    newest = sorted(n for n in os.listdir(tmp_path) if n.endswith(".seg"))[-1]
    first = int(newest[:-4])
    size = os.path.getsize(tmp_path / newest)
    (tmp_path / newest).write_bytes(b"\xa5" * size)
    again = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=200)
    skip = -(-size // MIN_RECORD_BYTES)
    assert lost(again) == [(first, first + skip - 1, "head")]
    assert skip * MIN_RECORD_BYTES >= size and again.head_seq >= 9
    assert again.head_hash == sha(msg(first - 1))
    assert [s for s, _ in again.read(1, 20)] == list(range(1, first))


def test_acks_write_nothing_to_flash(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=200)
    fill(box, 1, 50)
    before = sorted(os.listdir(tmp_path))
    sizes = dict((n, os.path.getsize(tmp_path / n)) for n in before)
    for seq in range(1, 30):
        box.ack(seq)
    after = sorted(os.listdir(tmp_path))
    assert set(after) < set(before)  # only deletions of whole acked segments
    assert all(os.path.getsize(tmp_path / n) == sizes[n] for n in after)


def test_group_flush_sends_only_durable_records(tmp_path):
    """flush_interval_s: records wait in the file until the interval passes; only flushed
    records are read for sending."""
    box = Outbox(str(tmp_path), hash_fn=sha, flush_interval_s=20.0)
    box.append(1, msg(1))
    box.flush(100.0)  # the first record after a quiet spell goes to flash at once
    assert box.durable_seq == 1
    for seq in range(2, 6):
        box.append(seq, msg(seq))
        box.flush(100.0 + seq)
    assert box.durable_seq == 1 and [s for s, _ in box.read(1, 10)] == [1]
    box.flush(120.0)
    assert box.durable_seq == 5
    assert [s for s, _ in box.read(1, 10)] == [1, 2, 3, 4, 5]
    box.ack(99)
    assert box.acked == 5  # an ack never reaches past what is durable


def test_power_cut_before_flush_loses_only_unsent_records(tmp_path):
    """A cut loses the records appended since the last flush; they were never readable for
    sending, so their seqs are used again after the restart (no fork can exist)."""
    box = Outbox(str(tmp_path / "a"), hash_fn=sha, flush_interval_s=20.0)
    fill(box, 1, 3)
    box.flush(0.0)
    (seg,) = os.listdir(tmp_path / "a")
    durable = os.path.getsize(tmp_path / "a" / seg)
    box.append(4, msg(4))
    box.append(5, msg(5))
    assert [s for s, _ in box.read(1, 10)] == [1, 2, 3]
    # the power cut: the flash holds what was flushed (littlefs commits a file at sync)
    os.makedirs(tmp_path / "b")
    (tmp_path / "b" / seg).write_bytes((tmp_path / "a" / seg).read_bytes()[:durable])
    again = Outbox(str(tmp_path / "b"), hash_fn=sha, flush_interval_s=20.0)
    assert (again.head_seq, again.head_hash, again.lost) == (3, sha(msg(3)), None)
    again.append(4, b"other")
    assert again.read(4, 1) == []  # not durable yet
    again.close()
    assert Outbox(str(tmp_path / "b"), hash_fn=sha).read(4, 1) == [(4, b"other")]

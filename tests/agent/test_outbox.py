import hashlib
import os

import pytest

from edgeledger.agent.errors import OutboxError, OutboxFull
from edgeledger.agent.outbox import HEADER_LEN, Outbox


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
    assert (again.head_seq, again.acked) == (40, 40)
    assert again.head_hash == sha(msg(40))
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


def test_corrupt_byte_in_middle_keeps_records_before_it(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha)
    fill(box, 1, 6)
    box.close()
    (seg,) = [n for n in os.listdir(tmp_path) if n.endswith(".seg")]
    raw = bytearray((tmp_path / seg).read_bytes())
    raw[3 * (HEADER_LEN + len(msg(1))) + HEADER_LEN + 2] ^= 0xFF  # inside record 4's data
    (tmp_path / seg).write_bytes(bytes(raw))
    again = Outbox(str(tmp_path), hash_fn=sha)
    assert [s for s, _ in again.read(1, 10)] == [1, 2, 3]
    assert again.counters["torn_records"] == 1


def test_ack_log_survives_rotation(tmp_path):
    box = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=200)
    fill(box, 1, 800)
    for seq in range(1, 801):
        box.ack(seq)
    box.close()
    assert os.path.getsize(tmp_path / "acked.log") <= 4096 + 12
    again = Outbox(str(tmp_path), hash_fn=sha, segment_bytes=200)
    assert again.acked == 800

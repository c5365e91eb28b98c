"""The agent core without a network: sealing, flow control, resends, failing sources, full outbox."""
import hashlib

import pytest

from edgeledger.agent.core import AgentCore
from edgeledger.agent.outbox import Outbox
from edgeledger.agent.signer import generate
from edgeledger.agent.simulated import SimulatedSource
from edgeledger.protocols import chain
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate


def sha(b):
    return hashlib.sha256(b).digest()


class Broken:
    name = "bus"
    interval_s = 1.0

    def poll(self, now):
        raise OSError("no answer from unit 3")


def make(tmp_path, sources=None, **kw):
    box = Outbox(str(tmp_path / "outbox"), hash_fn=sha, max_bytes=kw.pop("max_bytes", 1 << 20),
                 segment_bytes=kw.pop("segment_bytes", 4096))
    signer = generate("EdDSA", "dev")
    srcs = sources if sources is not None else [SimulatedSource("dev", "meter", interval_s=1.0)]
    return AgentCore("dev", signer, box, srcs, sha, epoch=3, **kw), signer


def payloads(core, upto=100):
    out = []
    for seq, data in core.outbox.read(1, upto):
        out.append((seq, data, reading_validate.decode_payload(cose_verify.parse_sign1(data).payload)))
    return out


def test_one_pack_per_poll_chained_and_signed(tmp_path):
    core, signer = make(tmp_path)
    for t in range(5):
        core.tick(float(t), 1764093000.0 + t)
    msgs = payloads(core)
    assert [s for s, _, _ in msgs] == [1, 2, 3, 4, 5]
    prev = chain.GENESIS
    for seq, data, body in msgs:
        assert (body.seq, body.prev, body.epoch, len(body.pack)) == (seq, prev, 3, 3)
        prev = sha(data)


def test_pack_size_splits_records(tmp_path):
    core, _ = make(tmp_path, pack_size=2)
    core.tick(0.0, 1764093000.0)  # 3 records: one full pack of 2, the rest sealed by age 0
    assert [len(b.pack) for _, _, b in payloads(core)] == [2, 1]


def test_window_limits_in_flight_and_acks_free_it(tmp_path):
    core, _ = make(tmp_path, window=3)
    for t in range(6):
        core.tick(float(t), 1764093000.0 + t)
    core.on_connect(10.0)
    batch = core.to_send(10.0, limit=10)
    assert [s for s, _ in batch] == [1, 2, 3]
    for s, _ in batch:
        core.sent(s)
    assert core.to_send(10.1) == []
    core.on_ack(2, 10.2)
    assert [s for s, _ in core.to_send(10.3)] == [4, 5]
    assert core.outbox.acked == 2


def test_no_ack_progress_rewinds_to_last_ack(tmp_path):
    core, _ = make(tmp_path, resend_after_s=5.0)
    for t in range(3):
        core.tick(float(t), 1764093000.0 + t)
    core.on_connect(0.0)
    for s, _ in core.to_send(0.0):
        core.sent(s)
    core.on_ack(1, 1.0)
    assert core.to_send(2.0) == []
    again = core.to_send(6.5)  # 5 s without the ack moving: send everything after it again
    assert [s for s, _ in again] == [2, 3] and core.counters["resends"] == 1


def test_reconnect_resends_from_last_ack(tmp_path):
    core, _ = make(tmp_path)
    for t in range(4):
        core.tick(float(t), 1764093000.0 + t)
    core.on_connect(0.0)
    for s, _ in core.to_send(0.0):
        core.sent(s)
    core.on_ack(2, 0.5)
    core.on_connect(1.0)
    assert [s for s, _ in core.to_send(1.0)] == [3, 4]


def test_failing_source_becomes_a_signed_status_record(tmp_path):
    core, _ = make(tmp_path, sources=[Broken()])
    core.tick(0.0, 1764093000.0)
    (_, _, body), = payloads(core)
    assert body.pack == [{0: "bus/status", 3: "error: no answer from unit 3", 6: 1764093000.0}]
    assert core.counters["source_errors"] == 1


def test_full_outbox_refuses_before_seq_and_reports_the_count(tmp_path):
    core, _ = make(tmp_path, max_bytes=1200, segment_bytes=400)
    t = 0
    while core.counters["outbox_refused"] < 3:
        core.tick(float(t), 1764093000.0 + t)
        t += 1
    head = core.outbox.head_seq
    assert [s for s, _ in core.outbox.read(1, 100)] == list(range(1, head + 1))  # no gap
    core.on_ack(head, float(t))  # the gateway caught up: room again
    core.tick(float(t), 1764093000.0 + t)
    (_, _, body), = payloads(core)[-1:]
    refused = [r for r in reading_validate.resolve(body.pack) if r["n"] == "agent/outbox_refused"]
    assert refused == [{"n": "agent/outbox_refused", "v": 3, "t": 1764093000.0 + t}]


def test_until_seq_stops_sealing(tmp_path):
    core, _ = make(tmp_path, max_seq=4)
    for t in range(10):
        core.tick(float(t), 1764093000.0 + t)
    assert core.outbox.head_seq == 4 and core.done_sealing()
    assert not core.drained()
    core.on_ack(4, 11.0)
    assert core.drained()


@pytest.mark.parametrize("interval", [0.5, 2.0])
def test_sources_keep_their_cadence(tmp_path, interval):
    core, _ = make(tmp_path, sources=[SimulatedSource("dev", "sensor", interval_s=interval)])
    t = 0.0
    while t < 10.0:
        core.tick(t, 1764093000.0 + t)
        t += 0.1
    assert core.outbox.head_seq == pytest.approx(10.0 / interval, abs=1)


def _damage_newest_record(tmp_path):
    import os

    d = tmp_path / "outbox"
    newest = sorted(n for n in os.listdir(d) if n.endswith(".seg"))[-1]
    raw = bytearray((d / newest).read_bytes())
    raw[-5] ^= 0x10  # inside the last message's signature
    (d / newest).write_bytes(bytes(raw))


def test_damaged_head_starts_a_new_epoch_with_a_declared_gap(tmp_path):
    """Issue 13: the newest record is damaged. The restarted device never reuses a seq it may
    have sent: its first message skips them, names the last intact record as prev and
    declares the range in a signed agent/outbox_lost record, so the gap is explained."""
    core, signer = make(tmp_path)
    for t in range(4):
        core.tick(float(t), 1764093000.0 + t)
    intact = [d for _, d in core.outbox.read(1, 3)]
    core.outbox.close()
    _damage_newest_record(tmp_path)
    box = Outbox(str(tmp_path / "outbox"), hash_fn=sha, segment_bytes=4096)
    core = AgentCore("dev", signer, box, [SimulatedSource("dev", "meter", interval_s=1.0)], sha, epoch=4)
    core.tick(10.0, 1764093010.0)
    (seq, data, body), = [m for m in payloads(core) if m[0] > 3]
    (first, last, reason), = chain.parse_lost(
        [r[3] for r in body.pack if r[0] == chain.LOST_RECORD][0])
    assert (first, reason) == (4, "head") and seq == last + 1
    assert body.prev == sha(intact[-1]) and body.epoch == 4
    # a gateway holding 1..4 (the original 4 was sent) stores it and its mark moves on
    assert chain.classify(seq, body.prev, sha(data), lambda s: (b"x", b"y") if s <= 4 else None)[1] \
        == chain.AHEAD
    core.tick(11.0, 1764093011.0)
    assert not any(r[0] == chain.LOST_RECORD for r in payloads(core)[-1][2].pack)  # said once


def test_lost_records_are_declared_again_after_a_restart_before_sending(tmp_path):
    """The declaration follows from the damaged flash: a restart before the declaring pack
    was durable declares the same range again."""
    import os

    core, signer = make(tmp_path)
    for t in range(5):
        core.tick(float(t), 1764093000.0 + t)
    core.outbox.close()
    d = tmp_path / "outbox"
    (seg,) = [n for n in os.listdir(d) if n.endswith(".seg")]
    raw = bytearray((d / seg).read_bytes())
    raw[30] ^= 1  # inside record 1
    (d / seg).write_bytes(bytes(raw))
    for _ in range(2):
        box = Outbox(str(d), hash_fn=sha, segment_bytes=4096)
        assert box.lost == {0: chain.LOST_RECORD, 3: "1-1:damaged"} and box.head_seq == 5
        box.close()


class FakeLink:
    """The link as AgentCore.step sees it (a unit-test stand-in for PahoLink / the board's Link)."""

    def __init__(self, room=10, refuse_after=None):
        self.connected, self.connects = False, 0
        self.acks, self.published, self.serviced = [], [], []
        self._room, self.refuse_after = room, refuse_after

    def service(self, now, sealed):
        self.serviced.append((now, sealed))

    def take_acks(self):
        acks, self.acks = self.acks, []
        return acks

    def room(self):
        return self._room

    def publish(self, data):
        if self.refuse_after is not None and len(self.published) >= self.refuse_after:
            return False
        self.published.append(data)
        return True


def test_step_publishes_nothing_while_the_link_is_down(tmp_path):
    core, _ = make(tmp_path)
    link = FakeLink()
    assert core.step(0.0, 1764093000.0, link) == (1, 0)
    assert link.serviced == [(0.0, 1)] and link.published == []


def test_step_sends_from_the_last_ack_after_every_connect(tmp_path):
    core, _ = make(tmp_path)
    link = FakeLink()
    core.step(0.0, 1764093000.0, link)
    core.step(1.0, 1764093001.0, link)
    link.connected, link.connects = True, 1
    assert core.step(1.5, 1764093001.5, link) == (0, 2)
    assert [cose_verify.parse_sign1(d).payload for d in link.published] == [
        cose_verify.parse_sign1(d).payload for _, d in core.outbox.read(1, 2)]
    link.acks = [1]
    core.step(1.6, 1764093001.6, link)
    assert core.outbox.acked == 1
    link.connects = 2  # reconnected: seq 2 went out before, unacked: it goes again
    link.published = []
    assert core.step(1.7, 1764093001.7, link) == (0, 1)
    assert link.published == [d for _, d in core.outbox.read(2, 2)]


def test_step_stops_when_the_link_takes_no_more_and_resumes_there(tmp_path):
    core, _ = make(tmp_path)
    for t in range(3):
        core.tick(float(t), 1764093000.0 + t)
    link = FakeLink(refuse_after=1)
    link.connected, link.connects = True, 1
    assert core.step(2.5, 1764093002.5, link) == (0, 1)
    link.refuse_after = None
    assert core.step(2.6, 1764093002.6, link) == (0, 2)
    assert link.published == [d for _, d in core.outbox.read(1, 3)]


def test_step_without_sampling_seals_nothing(tmp_path):
    core, _ = make(tmp_path)
    assert core.step(0.0, 0.0, FakeLink(), False) == (0, 0)  # a board before its clock is set
    assert core.outbox.head_seq == 0


def test_birth_carries_key_head_epoch_and_every_counter(tmp_path):
    from edgeledger.protocols import session

    core, signer = make(tmp_path)
    core.tick(0.0, 1764093000.0)
    birth = session.decode_birth(core.birth("v-test", {"connects": 4}))
    assert (birth["version"], birth["kid"], birth["last_seq"], birth["epoch"]) == ("v-test", signer.kid, 1, 3)
    assert birth["counters"]["sealed"] == 1 and birth["counters"]["connects"] == 4
    assert set(core.outbox.counters) <= set(birth["counters"])

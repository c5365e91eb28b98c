"""A flooding device: token buckets per device, and a quarantine that stops growing."""
import pytest

from edgeledger.gateway import config, errors
from edgeledger.gateway.config import schema
from edgeledger.gateway.ingest import quarantine, ratelimit
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.devices import FakeDevice

pytestmark = pytest.mark.security


def _toml(parsed):
    """A gateway.toml's settings as the gateway reads them."""
    return config.resolve(dict(parsed, ledger={"backend": "none"}), "/")


def test_token_bucket_allows_burst_then_rate():
    rl = ratelimit.RateLimiter(rate=8.0, burst=5)  # times below are exact binary fractions
    assert [rl.allow("d", 100.0) for _ in range(6)] == [True] * 5 + [False]
    assert rl.allow("other", 100.0)  # buckets are per device
    assert not rl.allow("d", 100.0625)  # half a token
    assert rl.allow("d", 100.125)  # one token after 1/rate s
    assert [rl.allow("d", 200.0) for _ in range(6)] == [True] * 5 + [False]  # refills to burst, no more
    assert rl.counters["ratelimit_limited"] == 3
    assert rl.limited_by_device == {"d": 3}


def test_bucket_table_is_bounded_and_drops_idle_devices_first():
    rl = ratelimit.RateLimiter(rate=1.0, burst=2, max_devices=3)
    rl.allow("busy", 0.0)
    rl.allow("busy", 0.0)
    rl.allow("idle1", 0.0)
    rl.allow("idle2", 0.0)
    rl.allow("new", 1.0)  # idle1/idle2 have refilled (dropping them loses nothing), busy has not
    assert set(rl._buckets) == {"busy", "new"}
    assert len(rl._buckets) <= 3 and rl.counters["ratelimit_evicted"] >= 1


@pytest.fixture
def pipe_parts(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    reg = Registry(st)
    dev = FakeDevice("dev-f")
    dev.register(reg)
    return st, reg, dev


def test_flooding_device_is_rate_limited_quarantined_and_counted(pipe_parts):
    st, reg, dev = pipe_parts
    rl = ratelimit.RateLimiter(rate=1.0, burst=3)
    pipe = Pipeline(st, reg, rate_limiter=rl)
    verdicts = []
    now = 1_790_000_000.0
    for _ in range(5):  # five messages in one instant: the burst is 3
        try:
            pipe.process(dev.topic, dev.next(t=now), received_at=now)
            verdicts.append("stored")
        except errors.RateLimited as e:
            verdicts.append(e.reason)
    pipe.commit()
    assert "rate_limited" in errors.REASONS
    assert verdicts == ["stored"] * 3 + ["rate_limited"] * 2
    assert pipe.counters["rejected_rate_limited"] == 2
    assert st.quarantine_reasons() == {"rate_limited": 2}
    assert st.load_counters()["rejected_rate_limited"] == 2


def test_quarantine_stops_storing_bytes_past_its_bound_but_keeps_counting(pipe_parts):
    st, reg, dev = pipe_parts
    pipe = Pipeline(st, reg, quarantine=quarantine.QuarantineBound(max_rows=3, max_bytes=10**6))
    for i in range(10):
        with pytest.raises(errors.MalformedCbor):
            pipe.process(dev.topic, b"\xff\xff garbage %d" % i)
    pipe.commit()
    assert pipe.counters["rejected_malformed_cbor"] == 10
    assert pipe.counters["quarantine_dropped"] == 7
    assert st.quarantine_reasons() == {"malformed_cbor": 3}
    # the byte bound, and the bound survives a restart (primed from the store)
    bound = quarantine.quarantine_bound(st, _toml({"quarantine": {"max_rows": 100, "max_bytes": 60}}).quarantine)
    assert bound.rows == 3 and bound.nbytes == sum(len(b"\xff\xff garbage %d" % i) for i in range(3))
    pipe2 = Pipeline(st, reg, quarantine=bound)
    for _ in range(5):
        with pytest.raises(errors.RejectedMessage):
            pipe2.process(dev.topic, b"\xff" * 10)
    pipe2.commit()
    stored = st.db.execute("SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM quarantine").fetchone()[0]
    room = (60 - sum(len(b"\xff\xff garbage %d" % i) for i in range(3))) // 10  # 10-byte rows that fit
    assert st.quarantine_reasons() == {"malformed_cbor": 3 + room}
    assert stored <= 60
    assert pipe2.counters["quarantine_dropped"] == 7 + 5 - room


def test_rate_limit_is_on_by_default_and_comes_from_gateway_toml(tmp_path):
    rl = ratelimit.from_config(_toml({}).ratelimit)
    assert (rl.rate, rl.burst) == (schema.DEFAULT_RATE, schema.DEFAULT_BURST) == (1000.0, 5000)
    assert ratelimit.from_config(_toml({"ratelimit": {"rate": 0}}).ratelimit) is None  # explicitly off
    rl = ratelimit.from_config(_toml({"ratelimit": {"rate": 50, "burst": 500}}).ratelimit)
    assert (rl.rate, rl.burst) == (50.0, 500.0)


def test_one_device_fills_only_its_share_of_the_quarantine(pipe_parts):
    st, reg, dev = pipe_parts
    other = FakeDevice("dev-o")
    other.register(reg)
    bound = quarantine.QuarantineBound(max_rows=100, max_bytes=10 ** 6, device_rows=5, device_bytes=10 ** 6)
    pipe = Pipeline(st, reg, quarantine=bound)
    for i in range(50):  # the noisy device: 50 rejects, 5 rows
        with pytest.raises(errors.MalformedCbor):
            pipe.process(dev.topic, b"\xff noise %d" % i)
    forged = bytearray(other.next())
    forged[-1] ^= 1
    with pytest.raises(errors.BadSignature):  # later evidence from another device is still kept
        pipe.process(other.topic, bytes(forged))
    pipe.commit()
    rows = dict(st.db.execute("SELECT topic, COUNT(*) FROM quarantine GROUP BY topic").fetchall())
    assert rows == {dev.topic: 5, other.topic: 1}
    tallies = dict((r.device, r) for r in st.device_rejects())
    assert (tallies["dev-f"].rejected, tallies["dev-f"].quarantined, tallies["dev-f"].dropped) == (50, 5, 45)
    assert (tallies["dev-o"].rejected, tallies["dev-o"].quarantined, tallies["dev-o"].dropped) == (1, 1, 0)
    # the shares survive a restart: primed from the store by topic
    again = quarantine.quarantine_bound(st, _toml({"quarantine": {"device_rows": 5}}).quarantine)
    assert again.used["dev-f"][0] == 5 and not again.admit(1, "dev-f") and again.admit(1, "dev-o")


def test_a_byte_share_per_device_too(pipe_parts):
    st, reg, dev = pipe_parts
    bound = quarantine.QuarantineBound(device_rows=1000, device_bytes=100)
    assert [bound.admit(40, "a") for _ in range(3)] == [True, True, False]
    assert bound.admit(40, "b") and bound.admit(40, None)  # another device, and the unattributed account


def test_invented_device_ids_share_one_account(pipe_parts):
    bound = quarantine.QuarantineBound(device_rows=2, max_devices=3)
    assert all(bound.admit(1, "d%d" % i) for i in range(3))
    assert bound.key("d9") == quarantine.OTHERS
    assert [bound.admit(1, "d%d" % i) for i in range(10, 14)] == [True, True, False, False]


class _Outbox:
    """The outbox interface AgentCore uses, in memory (this is a unit test of the pacing)."""

    def __init__(self, n):
        self.head_seq, self.acked, self.head_hash = n, 0, b"\x00" * 32
        self.data = dict((i, b"m%d" % i) for i in range(1, n + 1))

    def read(self, start, n):
        return [(s, self.data[s]) for s in range(start, min(self.head_seq, start + n - 1) + 1)]

    def ack(self, seq):
        self.acked = max(self.acked, seq)

    def pending_count(self):
        return self.head_seq - self.acked


@pytest.mark.parametrize("send_rate, limited", [(None, False), (0, True)])
def test_an_outbox_catching_up_stays_under_the_default_limit(send_rate, limited):
    """A backlog of 20,000 messages (5.5 h of one message per second) replays against the
    gateway's default bucket with acks after 20 ms: the agent's default pacing is never
    limited; unpaced (send_rate 0), the same replay is."""
    from edgeledger.agent.core import AgentCore

    kw = {} if send_rate is None else {"send_rate": send_rate}
    core = AgentCore("dev", None, _Outbox(20000), [], None, **kw)
    rl = ratelimit.from_config(_toml({}).ratelimit)
    now, refused, inflight = 1000.0, 0, []
    core.on_connect(now)
    while core.outbox.acked < 20000 and now < 1000.0 + 3600 and not refused:
        now += 0.005  # the agent loop's idle sleep
        while inflight and inflight[0][0] <= now:  # end-to-end acks 20 ms after a publish
            core.on_ack(inflight.pop(0)[1], now)
        for seq, _data in core.to_send(now, limit=256):
            if rl.allow("dev", now):
                inflight.append((now + 0.02, seq))
            else:
                refused += 1
            core.sent(seq)
    assert (refused > 0) == limited, refused
    if not limited:
        assert core.outbox.acked == 20000


def test_over_the_rate_messages_are_shed_in_front_of_the_queue(pipe_parts):
    """Under the MQTT service the limit runs on the receive thread (pipeline.shed): a message
    over its device's rate is counted there and never queued, decoded or quarantined."""
    st, reg, dev = pipe_parts
    pipe2 = Pipeline(st, reg, rate_limiter=ratelimit.RateLimiter(rate=1.0, burst=3))
    assert not pipe2.shed(dev.topic, now=10.0)  # not in front until the service says so (no token taken)
    pipe2.limit_in_front()
    assert [pipe2.shed(dev.topic, now=10.0) for _ in range(5)] == [False] * 3 + [True] * 2
    assert not pipe2.shed("el/v1/plant-a/dev-f/birth", now=10.0)  # only readings are limited
    for _ in range(3):  # what passed is not limited again by process()
        pipe2.process(dev.topic, dev.next(t=1_790_000_000.0), received_at=1_790_000_000.0)
    pipe2.commit()
    assert pipe2.counters["rejected_rate_limited"] == 2 and pipe2.counters["stored"] == 3
    tally = dict((r.device, r) for r in st.device_rejects())["dev-f"]
    assert (tally.rejected, tally.quarantined, tally.dropped) == (2, 0, 2)
    assert st.quarantine_reasons() == {}

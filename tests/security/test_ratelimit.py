"""A flooding device: token buckets per device, and a quarantine that stops growing."""
import pytest

from edgeledger.gateway import errors, ratelimit
from edgeledger.gateway.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.devices import FakeDevice

pytestmark = pytest.mark.security


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
    pipe = Pipeline(st, reg, quarantine=ratelimit.QuarantineBound(max_rows=3, max_bytes=10**6))
    for i in range(10):
        with pytest.raises(errors.MalformedCbor):
            pipe.process(dev.topic, b"\xff\xff garbage %d" % i)
    pipe.commit()
    assert pipe.counters["rejected_malformed_cbor"] == 10
    assert pipe.counters["quarantine_dropped"] == 7
    assert st.quarantine_reasons() == {"malformed_cbor": 3}
    # the byte bound, and the bound survives a restart (primed from the store)
    bound = ratelimit.quarantine_bound(st, {"quarantine": {"max_rows": 100, "max_bytes": 60}})
    assert bound.rows == 3 and bound.nbytes == sum(len(b"\xff\xff garbage %d" % i) for i in range(3))
    pipe2 = Pipeline(st, reg, quarantine=bound)
    for i in range(5):
        with pytest.raises(errors.RejectedMessage):
            pipe2.process(dev.topic, b"\xff" * 10)
    pipe2.commit()
    stored = st.db.execute("SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM quarantine").fetchone()[0]
    room = (60 - sum(len(b"\xff\xff garbage %d" % i) for i in range(3))) // 10  # 10-byte rows that fit
    assert st.quarantine_reasons() == {"malformed_cbor": 3 + room}
    assert stored <= 60
    assert pipe2.counters["quarantine_dropped"] == 7 + 5 - room


def test_rate_limit_comes_from_gateway_toml(tmp_path):
    assert ratelimit.from_config({}) is None
    rl = ratelimit.from_config({"ratelimit": {"rate": 50, "burst": 500}})
    assert (rl.rate, rl.burst) == (50.0, 500.0)

"""Signed readings from several agents through a real Mosquitto into the gateway store."""
import random
import time

import pytest

from tests.support.net import wait_until
from tests.support.site import count_exactly_once


def test_several_agents_arrive_exactly_once(site):
    n_devices, last = 4, 400
    for i in range(n_devices):
        site.add_device("dev-%d" % i, alg="EdDSA" if i % 2 else "ES256", kind="meter" if i % 2 else "sensor")
    site.start_gateway()
    site.wait_gateway_ready()
    t0 = time.monotonic()
    for name in site.devices:
        site.start_agent(name, last)
    codes = site.wait_agents()
    elapsed = time.monotonic() - t0
    assert codes == dict((name, 0) for name in site.devices), [site.log(n + ".log") for n in site.devices]
    st = site.store()
    expected = dict((name, last) for name in site.devices)
    lost, duplicated, broken = count_exactly_once(st, expected)
    print("agents=%d messages=%d elapsed=%.1fs lost=%d duplicated=%d"
          % (n_devices, st.count_messages(), elapsed, lost, duplicated))
    assert (lost, duplicated, broken) == (0, 0, 0)
    assert st.count_messages() == n_devices * last
    assert st.quarantine_reasons() == {}
    marks = st.device_marks()
    assert all(marks[name] == (last, last) for name in site.devices)


@pytest.mark.faults
def test_gateway_sigkilled_ten_times_loses_nothing(site):
    rng = random.Random(20261125)
    last = 2500
    for i in range(3):
        site.add_device("dev-%d" % i, interval_s=0.004)
    site.start_gateway()
    site.wait_gateway_ready()
    t0 = time.monotonic()
    for name in site.devices:
        site.start_agent(name, last)
    st = site.store()
    kills, stored_at_kill = 0, []
    while kills < 10:
        # Each kill lands on a gateway that has subscribed and ingests (however long its
        # start-up took on this machine), at a random point of its run.
        time.sleep(rng.uniform(0.2, 1.0))
        stored_at_kill.append(st.count_messages())
        site.kill_gateway()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.3))
        site.start_gateway()
        site.wait_gateway_ready()
    codes = site.wait_agents()
    elapsed = time.monotonic() - t0
    assert set(codes.values()) == {0}, [site.log(n + ".log") for n in site.devices]
    lost, duplicated, broken = count_exactly_once(st, dict((n, last) for n in site.devices))
    print("stored at each kill: %s" % stored_at_kill)
    print("gateway SIGKILLs=%d messages=%d in %.1f s (%.0f msgs/s end to end, agent-paced) lost=%d duplicated=%d"
          % (kills, st.count_messages(), elapsed, st.count_messages() / elapsed, lost, duplicated))
    assert (lost, duplicated, broken) == (0, 0, 0)
    assert st.count_messages() == 3 * last
    assert st.quarantine_reasons() == {}


@pytest.mark.faults
def test_broker_down_for_seconds_agents_buffer_and_catch_up(site, broker):
    last = 1500
    st = site.start_fleet(3, last)
    wait_until(lambda: st.count_messages() > 300, 60, what="first readings stored")
    broker.stop()
    # What the gateway had received before the cut is still committed: wait until the
    # count holds still (however long the commits take on this machine).
    down_at = _settled_count(st)
    time.sleep(4)
    assert st.count_messages() == down_at  # nothing can arrive while the broker is away
    broker.start()
    codes = site.wait_agents()
    assert set(codes.values()) == {0}, [site.log(n + ".log") for n in site.devices]
    lost, duplicated, broken = count_exactly_once(st, dict((n, last) for n in site.devices))
    print("broker outage: stored before=%d after=%d lost=%d duplicated=%d"
          % (down_at, st.count_messages(), lost, duplicated))
    assert (lost, duplicated, broken) == (0, 0, 0)


@pytest.mark.faults
def test_agent_sigkilled_resumes_from_outbox_without_gap(site):
    last = 3000  # ~10 s of sealing at 300 messages/s: the kills land mid-stream
    site.add_device("dev-k", interval_s=0.01)
    site.add_device("dev-steady", interval_s=0.01)
    site.start_gateway()
    site.wait_gateway_ready()
    site.start_agent("dev-k", last)
    site.start_agent("dev-steady", last)
    st = site.store()
    for round_ in range(3):
        wait_until(lambda: len(st.seqs("dev-k")) > 300 * (round_ + 1), 60, what="dev-k progress")  # noqa: B023
        site.kill_agent("dev-k")
        time.sleep(0.5)
        site.start_agent("dev-k", last)
    codes = site.wait_agents()
    assert set(codes.values()) == {0}, site.log("dev-k.log")
    lost, duplicated, broken = count_exactly_once(st, {"dev-k": last, "dev-steady": last})
    epochs = [r[0] for r in st.db.execute("SELECT DISTINCT epoch FROM messages WHERE device='dev-k'")]
    print("agent SIGKILLs=3 lost=%d duplicated=%d epochs=%s" % (lost, duplicated, sorted(epochs)))
    assert (lost, duplicated, broken) == (0, 0, 0)
    assert len(epochs) >= 2  # the restarts show up as new boot epochs in the signed payloads


def _settled_count(st, still_s=1.0, timeout=60):
    """The store's message count once it has not changed for ``still_s``."""
    deadline = time.monotonic() + timeout
    last, since = st.count_messages(), time.monotonic()
    while time.monotonic() - since < still_s:
        assert time.monotonic() < deadline, "the message count kept changing for %.0f s" % timeout
        time.sleep(0.1)
        now_count = st.count_messages()
        if now_count != last:
            last, since = now_count, time.monotonic()
    return last

"""The gateway store under faults: acks are durable, and a full disk pauses the site
without losing anything and without a restart.

Real parts: Mosquitto, the gateway and agents as processes, SQLite on a real filesystem
(a small tmpfs of its own for the full-disk test), strace to count fsync calls.
"""
import errno
import os
import signal
import subprocess
import time

import pytest

from edgeledger.gateway.bench import report
from tests.support.net import wait_until
from tests.support.site import count_exactly_once

pytestmark = pytest.mark.faults


def test_every_commit_is_fsynced_before_its_acks(tmp_path, broker):
    """Durable acks: the default store fsyncs at every commit (the ack goes out after the
    commit), so a power cut cannot take back an acknowledged reading. Under strace:
    fsync/fdatasync calls >= commits. With the old default (synchronous=NORMAL) a few
    hundred commits cost a handful of fsyncs (checkpoints only)."""
    from tests.support.site import Site

    site = Site(tmp_path / "site", broker.url, gateway_extra='[ledger]\nbackend = "none"')
    try:
        _count_fsyncs(site)
    finally:
        site.stop()


def _count_fsyncs(site):
    trace = os.path.join(site.root, "fsyncs.txt")
    last = 300
    site.add_device("dev-d", interval_s=0.01)  # ~100 messages/s: most commits hold one message
    site.start_gateway(prefix=report.fsync_tracer(trace))  # no strace: RuntimeError, the test fails
    site.wait_gateway_subscribed()
    site.start_agent("dev-d", last)
    assert site.wait_agents() == {"dev-d": 0}, site.log("dev-d.log")
    # the gateway is strace's child: stop it with SIGTERM so it saves its counters and strace
    # writes its summary
    gateway_pid = report.child_pids(site.gateway.pid)[0]
    os.kill(gateway_pid, signal.SIGTERM)
    site.gateway.wait(timeout=60)
    fsyncs = report.fsync_count(trace)
    st = site.store()
    commits = st.load_counters()["commits"]
    lost, duplicated, broken = count_exactly_once(st, {"dev-d": last})
    print("durable acks: %d messages, %d commits, %d fsync+fdatasync calls" % (last, commits, fsyncs))
    assert (lost, duplicated, broken) == (0, 0, 0)
    assert commits >= 1
    assert fsyncs >= commits, "a commit whose messages were acknowledged was not fsync'd"
    status = site.cli("gateway", "status", "--config", site.gateway_config)
    assert "durability: power_loss" in status.stdout, status.stdout + status.stderr


@pytest.fixture
def small_fs(tmp_path):
    """A 32 MB tmpfs of its own (CI runs as root; mounting needs it)."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail("the full-disk test needs a small filesystem: `mount -t tmpfs` failed (run as root, as CI "
                    "does): %s" % r.stderr.strip())
    yield str(mnt)
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(directory):
    """Write a filler file until the filesystem is full; returns its path and size."""
    path = os.path.join(directory, "filler")
    size = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                size += f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
    return path, size


def test_disk_full_pauses_acks_once_and_resumes_without_restart(tmp_path, broker, small_fs):
    """Disk full at the gateway: commits fail, nothing is acknowledged, the gateway says so
    once and keeps running; when space returns it stores and acknowledges everything it
    held, without a restart: 0 lost, 0 duplicated, every device finishes."""
    from tests.support.site import Site

    site = Site(tmp_path / "site", broker.url, store=os.path.join(small_fs, "gateway.db"))
    try:
        last = 1500
        st = site.start_fleet(2, last)
        wait_until(lambda: st.count_messages() > 300, 120, what="first readings stored")
        filler, filled = _fill(small_fs)
        # the commits now fail: the count stops moving (an unchanged count over a few polls)
        seen = []

        def stalled():
            seen.append(st.count_messages())
            return len(seen) >= 20 and len(set(seen[-20:])) == 1

        wait_until(stalled, 120, interval=0.1, what="ingest to stop on the full disk")
        stalled_at = st.count_messages()
        assert site.gateway.poll() is None, "the gateway must keep running on a full disk"
        wait_until(lambda: "is full" in site.log("gateway.log", tail=None), 60,
                   what="the gateway saying the disk is full")
        freed_at = time.monotonic()
        os.remove(filler)
        wait_until(lambda: st.count_messages() > stalled_at, 120, what="ingest to resume after space returned")
        resumed_s = time.monotonic() - freed_at
        codes = site.wait_agents(timeout=300)
        assert set(codes.values()) == {0}, [site.log(n + ".log") for n in site.devices]
        lost, duplicated, broken = count_exactly_once(st, dict((n, last) for n in site.devices))
        log = site.log("gateway.log", tail=None)
        print("disk full: filled %d bytes, stalled at %d stored, resumed %.1f s after space returned, "
              "lost=%d duplicated=%d stuck devices=0" % (filled, stalled_at, resumed_s, lost, duplicated))
        assert (lost, duplicated, broken) == (0, 0, 0)
        said = [line for line in log.splitlines() if "is full" in line]
        assert sum(1 for line in said if "acknowledging nothing" in line) == 1, "said once, not per retry:\n" + log
        assert len(said) <= 2, "once by ingest and at most once by the batcher:\n" + log
        assert "writable again" in log
        assert site.gateway.poll() is None, "no restart was needed"
        status = site.cli("gateway", "status", "--config", site.gateway_config)
        assert "store_write_failures" in status.stdout and "store_recovered" in status.stdout, status.stdout
    finally:
        site.stop()

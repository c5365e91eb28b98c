"""Gateway worker processes: one that dies is started again and counted; all of them die
with their parent, so a restarted gateway does not fight the old workers over their MQTT
client ids. Real Mosquitto, `gateway run --workers 2`, agents, SIGKILL."""
import os
import signal
import time

import pytest

from tests.support.net import wait_until
from tests.support.site import count_exactly_once

pytestmark = pytest.mark.faults


def _workers(parent_pid):
    """Pids of the ingest worker processes (multiprocessing spawn children) of ``parent_pid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent_pid and b"spawn_main" in cmdline:
            pids.append(int(entry))
    return sorted(pids)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_restart_counted_and_die_with_their_parent(site):
    last = 2000
    for i in range(3):
        site.add_device("dev-%d" % i, interval_s=0.005)
    site.start_gateway("--workers", "2")
    parent = site.gateway.pid
    wait_until(lambda: len(_workers(parent)) == 2, 120, what="two ingest workers")
    for name in site.devices:
        site.start_agent(name, last)
    st = site.store()
    wait_until(lambda: st.count_messages() > 300, 120, what="first readings stored")

    victim = _workers(parent)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(_workers(parent)) == 2 and victim not in _workers(parent), 60,
               what="the dead worker started again")
    wait_until(lambda: st.load_counters().get("worker_restarts") == 1, 30, what="the restart counted")

    workers = _workers(parent)
    site.kill_gateway()  # SIGKILL the parent: its workers must not outlive it
    killed_at = time.monotonic()
    wait_until(lambda: not any(_alive(p) for p in workers), 30, what="the workers to die with their parent")
    orphan_s = time.monotonic() - killed_at
    log_before = len(site.log("gateway.log", tail=None))
    site.start_gateway("--workers", "2")
    codes = site.wait_agents()
    assert set(codes.values()) == {0}, [site.log(n + ".log") for n in site.devices]
    lost, duplicated, broken = count_exactly_once(st, dict((n, last) for n in site.devices))
    fights = site.log("gateway.log", tail=None)[log_before:].count("disconnected from broker")
    status = site.cli("gateway", "status", "--config", site.gateway_config).stdout
    print("workers: one SIGKILLed and restarted; parent SIGKILLed, its workers gone %.1f s later; lost=%d "
          "duplicated=%d reconnect warnings after the restart=%d" % (orphan_s, lost, duplicated, fights))
    assert (lost, duplicated, broken) == (0, 0, 0)
    assert fights <= 4, "old and new workers fought over their client ids"
    assert "worker_restarts" in status and "worker_restart" in status

"""Issue 16 item 4: the outbox on the filesystems boards use (MicroPython's own littlefs v2 and
FAT drivers, under the unix port, over a RAM flash that counts erases and programs).

The counts are deterministic (sizes and the order of writes, not speed): the wear test asserts
the target, the power-cut test cuts the flash at every erase and program of a run."""
import json

import pytest

from edgeledger.gateway.bench import flash as bench_flash
from tests.support.mpy import run_micropython

pytestmark = pytest.mark.micropython


def test_board_default_outbox_wears_littlefs_under_a_tenth_of_an_erase_per_reading():
    rows = bench_flash.measure(seconds=900, warmup=100, configs=(
        ("every record", "lfs", 0.0, "sim1"), ("board default", "lfs", None, "sim1")))
    every, board = rows
    assert board["flush_interval_s"] == bench_flash.board_outbox("esp32")["flush_interval_s"]
    assert board["readings"] == every["readings"] == 900  # one signed message a second
    # a commit per record rewrites littlefs's tail block each time (the old outbox's cost) ...
    assert every["erases_per_reading"] > 0.9
    # ... the board default shares one commit among the readings of 30 s
    assert board["erases_per_reading"] <= 0.1
    assert board["life_years"] >= 10


def test_each_32_bit_configuration_gets_the_flash_wear_of_its_own_workload():
    from edgeledger.gateway.bench import device32

    wear = bench_flash.configuration_wear(device32.CONFIGS, ("ES256", "SM2"), seconds=200)
    assert set(wear) == set(device32.CONFIGS)
    for config, by_alg in wear.items():
        for f in by_alg.values():
            assert f["workload"] == bench_flash.CONFIGURATION_WORKLOADS[config]
            assert (f["filesystem"], f["flush_interval_s"]) == (
                "littlefs", bench_flash.board_outbox()["flush_interval_s"])
            # one pack per poll, and at least MIN_POLLS polls even of a meter read every 15 min
            interval = bench_flash.WORKLOADS[f["workload"]][0]
            assert f["messages"] == f["seconds"] / interval >= bench_flash.MIN_POLLS
            assert f["erases_per_reading_this_workload"] > 0 and f["projected_life_years_this_workload"] > 0
        # the messages are the signer's size: SM2's alg id takes 4 bytes more than ES256's
        assert (by_alg["SM2"]["programmed_bytes_per_reading_this_workload"]
                > by_alg["ES256"]["programmed_bytes_per_reading_this_workload"])


POWER_CUTS = bench_flash.BLOCKDEV + r"""
import os, vfs, hashlib
from edgeledger.agent.outbox import Outbox

def sha(b):
    return hashlib.sha256(b).digest()

def msg(seq):
    return (b"reading %06d " % seq) * 12

FS = vfs.VfsLfs2 if "%(fs)s" == "lfs" else vfs.VfsFat
dev = Counting(4096, 32)
FS.mkfs(dev)
vfs.mount(FS(dev), "/flash")
box = Outbox("/flash/ob", segment_bytes=8192, hash_fn=sha, flush_interval_s=5.0)
box.append(1, msg(1))
box.close()
vfs.umount("/flash")
base = bytes(dev.data)
vfs.mount(FS(dev), "/flash")
box = Outbox("/flash/ob", segment_bytes=8192, hash_fn=sha, flush_interval_s=5.0)
dev.log = []
durable = []  # (number of flash operations so far, durable seq then)
for seq in range(2, 80):
    box.append(seq, msg(seq))
    box.flush(float(seq))
    durable.append((len(dev.log), box.durable_seq))
box.close()
durable.append((len(dev.log), box.durable_seq))
vfs.umount("/flash")
log = dev.log
dev.log = None
cuts = 0
for k in range(len(log) + 1):
    for torn in (False, True):
        if torn and (k == len(log) or log[k][1] is None or len(log[k][1]) < 2):
            continue
        # the flash as a power cut left it: operations before k done, k half-programmed if torn
        img = bytearray(base)
        for a, data in log[:k]:
            if data is None:
                img[a:a + 4096] = b"\xff" * 4096
            else:
                img[a:a + len(data)] = data
        if torn:
            a, data = log[k]
            img[a:a + len(data) // 2] = data[:len(data) // 2]
        must = 1
        for ops, d in durable:
            if ops <= k:
                must = d
        dev.data = img
        vfs.mount(FS(dev), "/flash")
        again = Outbox("/flash/ob", segment_bytes=8192, hash_fn=sha, flush_interval_s=5.0)
        got = again.read(1, 200)
        assert again.head_seq >= must, (k, torn, again.head_seq, must)
        assert got == [(s, msg(s)) for s in range(1, again.head_seq + 1)], (k, torn)
        assert again.lost is None and again.head_hash == sha(msg(again.head_seq)), (k, again.lost)
        again.append(again.head_seq + 1, b"after the cut")  # the outbox goes on
        again.close()
        vfs.umount("/flash")
        cuts += 1
print("cuts|%d|%d" % (cuts, len(log)))
"""


@pytest.mark.parametrize("fs", ["lfs", "fat"])
def test_power_cut_at_every_flash_operation_keeps_every_durable_record(fs):
    """A cut at any erase or program (also half-way through one) leaves every record that was
    durable (flushed) at that moment, and nothing declared lost: littlefs commits atomically;
    FAT writes the data before the directory entry that makes it part of the file."""
    proc = run_micropython(POWER_CUTS.replace("%(fs)s", fs), heapsize="8M", timeout=300)
    line = [x for x in proc.stdout.splitlines() if x.startswith("cuts|")][0]
    cuts, ops = map(int, line.split("|")[1:])
    assert ops > 30 and cuts > ops  # every operation, and torn programs too


def test_bench_flash_command_prints_every_filesystem(capsys):
    from tests.firmware.conftest import cli

    assert cli(["bench", "flash", "--json", "--seconds", "60"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["fs"] for r in rows] == ["lfs", "lfs", "fat", "fat", "lfs", "lfs"]
    assert [r["readings"] for r in rows] == [60, 60, 60, 60, 6, 108]  # SDM630: a poll every 10 s
    for r in rows:
        assert r["erases"] > 0 and r["programmed"] > 0 and r["life_years"] > 0

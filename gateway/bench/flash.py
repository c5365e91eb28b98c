"""``edgeledger bench flash`` (and the flash section of ``bench device``): flash wear of the
outbox, measured on the filesystems boards use.

The real agent core and outbox run under the MicroPython unix port on a filesystem that
MicroPython itself drives: ``vfs.VfsLfs2`` (littlefs v2, the default on ESP32 and RP2040)
and ``vfs.VfsFat`` (FatFs), each over a RAM block device written in Python that counts:

* littlefs: erases (``ioctl(6)``) and bytes programmed (``writeblocks`` with an offset);
* FAT on raw NOR flash, no flash translation layer: every ``writeblocks`` of a 4 KB
  sector erases that sector first (what ``esp32.Partition`` does for a FAT volume), so an
  erase per sector written.

Each run drives the agent core for ``seconds`` of device time (one loop turn per second)
with a workload (``WORKLOADS``: the records one poll of a documented configuration yields,
decoded by the real register map for the SDM630, by the real DSMR and IEC 62056-21 parsers
for the telegram and readout ``device32`` feeds its meters), makes records durable as the
outbox's ``flush_interval_s`` says, and acks each durable record at once (a gateway acks
within milliseconds), so segments are deleted as on a device that keeps up. Packs of several
records are signed with base fields, as a board signs them. Signatures are 64 bytes of hash
output instead of a real one, under the signer's COSE alg id: EdDSA, ES256 and SM2 all sign
with 64 bytes (r ‖ s), so the flash cost depends only on the sizes, which are those of a real
signed message of that signer.

``configuration_wear`` gives ``bench device`` the figures of each 32-bit configuration
(``device32.CONFIGS``) and signer: that configuration's own workload on littlefs with the
board's outbox settings, run for at least ``MIN_POLLS`` polls.

Projected life (an estimate from the measured erase rate, not a measurement): blocks x
ENDURANCE / erases per second. littlefs levels wear dynamically over the whole device (every
write goes to a new block, round robin), so its mean erase rate per block counts; FAT has no
wear levelling, so its hottest block (a FAT or directory sector) counts.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from edgeledger.gateway.boards import image
from edgeledger.gateway.boards.unix_port import micropython_binary, stage_tree

# NOR flash endurance assumed for the projection: 100,000 program/erase cycles per block
# (Winbond W25Q / GigaDevice GD25Q datasheets, the flash on ESP32 and RP2040 modules).
ENDURANCE = 100000
BLOCK_SIZE = 4096  # erase block of SPI NOR flash; littlefs block and FAT sector on ESP32
FS_BYTES = 2 * 1024 * 1024  # the filesystem the issue sizes for (2 MB)
SECONDS_PER_YEAR = 365.25 * 86400
# Workloads: what one poll of a documented configuration puts into the outbox.
#   sim1     the simulated meter, one value a second, one message each (the reference)
#   sdm630   the documented Modbus example (docs/field-buses.md): an Eastron SDM630, its 18
#            values every 10 s, as one pack per poll
#   sdm630x18  the same with pack_size 1: one message per value (18 messages per poll)
# The 32-bit configurations of ``bench device`` (device32.CONFIGS), at the intervals of the
# documented examples (docs/field-buses.md) and the board's pack_size (64: one pack per poll):
#   sim3      the simulated meter's three channels, every second (the source's default)
#   dsmr5     device32's DSMR 5 telegram, every 10 s
#   iec62056  device32's IEC 62056-21 mode C readout, every 15 minutes
WORKLOADS = {"sim1": (1.0, 1), "sdm630": (10.0, 18), "sdm630x18": (10.0, 1),
             "sim3": (1.0, 64), "dsmr5": (10.0, 64), "iec62056": (900.0, 64)}
# Each 32-bit configuration of ``bench device`` and the workload it puts into the outbox.
CONFIGURATION_WORKLOADS = {"simulated": "sim3", "modbus-sdm630": "sdm630", "dsmr5": "dsmr5",
                           "iec62056": "iec62056"}
# ``configuration_wear`` runs each workload for at least this many polls (an IEC 62056-21
# meter read every 15 minutes: 5 hours of device time), so a slow workload's erase rate
# comes from as many commits as a fast one's.
MIN_POLLS = 20
# COSE alg ids of the signers (agent/signer.py): the alg id is the one size they differ in.
ALG_IDS = {"EdDSA": -8, "ES256": -7, "SM2": -65537}
# (name, filesystem, flush_interval_s or None for the board's, workload). 0 makes every record
# durable on its own (the Linux default); 30 s is the board default (firmware/boards/*.json).
CONFIGS = (("littlefs, every record", "lfs", 0.0, "sim1"), ("littlefs, board default", "lfs", None, "sim1"),
           ("FAT, every record", "fat", 0.0, "sim1"), ("FAT, board default", "fat", None, "sim1"),
           ("littlefs, SDM630 pack/10 s", "lfs", None, "sdm630"),
           ("littlefs, SDM630 18 msgs/10 s", "lfs", None, "sdm630x18"))
# Typical values of a loaded three-phase installation, per SenML unit, for the SDM630 poll.
SDM630_VALUES = {"V": 231.7, "A": 12.81, "W": 2954.3, "VA": 3021.9, "var": 431.2, "/": 0.977,
                 "Hz": 49.98, "J": 15234.56, "vars": 812.43}


def workload_records(name: str) -> tuple[list[dict], float, int]:
    """(records of one poll, interval_s, pack_size) of a workload; record times are offsets
    from the poll's time."""
    import struct

    from edgeledger.agent import registermaps
    from edgeledger.agent.simulated import SimulatedSource

    interval, pack = WORKLOADS[name]
    if name in ("sim1", "sim3"):
        src = SimulatedSource("meter-01", "meter", interval_s=interval, channels=1 if name == "sim1" else None)
        return src.poll(0), interval, pack
    if name in ("dsmr5", "iec62056"):
        return _meter_records(name), interval, pack
    m = registermaps.get_map("sdm630")
    records: list[dict] = []
    for start, count, entries in registermaps.plan_blocks(m):
        regs = [0] * count
        for addr, _kind, _order, _scale, unit, _name in entries:  # f32, most significant word first
            hi, lo = struct.unpack(">HH", struct.pack(">f", SDM630_VALUES[unit]))
            regs[addr - start], regs[addr - start + 1] = hi, lo
        records += registermaps.decode_block(start, regs, entries, "hall-a/mains/", 0)
    return records, interval, pack


def _meter_records(name: str) -> list[dict]:
    """The records the real parser makes of the telegram (DSMR 5) or readout (IEC 62056-21)
    ``device32`` feeds its meters, with the prefixes it configures; times as offsets from
    the telegram's own time (DSMR: a gas reading keeps its earlier capture time)."""
    from edgeledger.agent.sources.iec62056 import data_sets_to_records
    from edgeledger.gateway.bench import device32
    from edgeledger.protocols import dsmr, iec62056

    if name == "dsmr5":
        tg = dsmr.parse_telegram(device32.dsmr5_telegram(), "5")
        records = dsmr.to_records(tg, "home/", 0)
        t0 = tg.timestamp or 0
    else:
        records = data_sets_to_records(iec62056.parse_data_sets(device32.IEC_DATA), "sub7/", 0)
        t0 = 0
    for r in records:
        r[6] = r[6] - t0
    return records


# A RAM flash for MicroPython's vfs (run under the unix port): littlefs uses the extended
# block interface (erase by ioctl 6, program with an offset); FAT writes whole sectors, each
# an erase of that block on raw NOR flash. ``log`` (a list) records every erase/program.
BLOCKDEV = r"""
class Counting:
    def __init__(self, bs, n):
        self.bs = bs
        self.n = n
        self.data = bytearray(b"\xff" * (bs * n))
        self.erases = [0] * n
        self.programmed = 0
        self.counting = False
        self.log = None

    def readblocks(self, b, buf, off=0):
        a = b * self.bs + off
        buf[:] = self.data[a:a + len(buf)]

    def writeblocks(self, b, buf, off=None):
        a = b * self.bs + (off or 0)
        self.data[a:a + len(buf)] = buf
        if self.log is not None:
            self.log.append((a, bytes(buf)))
        if self.counting:
            self.programmed += len(buf)
            if off is None:
                for i in range(len(buf) // self.bs):
                    self.erases[b + i] += 1

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return self.bs
        if op == 6:
            if self.counting:
                self.erases[arg] += 1
            a = arg * self.bs
            self.data[a:a + self.bs] = b"\xff" * self.bs
            if self.log is not None:
                self.log.append((a, None))
            return 0
        return 0
"""

SCRIPT = BLOCKDEV + r"""
import os, vfs, json, hashlib
P = json.loads(%(params)r)

from edgeledger.agent.core import AgentCore
from edgeledger.agent.outbox import Outbox

class SizedSigner:
    # a real signed message's size: the signer's alg id, 64-byte signature, 16-byte kid
    alg = P["alg"]
    kid = b"k" * 16
    def sign(self, tbs):
        h = hashlib.sha256(tbs).digest()
        return h + h

class Replay:
    # a source that returns the same records (a field bus's decoded poll) every interval
    def __init__(self, records, interval_s):
        self.name = "replay"
        self.interval_s = interval_s
        self.records = [dict([(int(k), v) for k, v in r.items()]) for r in records]

    def poll(self, now):
        out = []
        for r in self.records:
            r = dict(r)
            r[6] = now + r.get(6, 0)
            out.append(r)
        return out

for fs, flush_s, w, seconds in P["configs"]:
    dev = Counting(P["block"], P["fs_bytes"] // P["block"])
    if fs == "lfs":
        vfs.VfsLfs2.mkfs(dev)
        mnt = vfs.VfsLfs2(dev)
    else:
        vfs.VfsFat.mkfs(dev)
        mnt = vfs.VfsFat(dev)
    vfs.mount(mnt, "/flash")
    os.mkdir("/flash/state")
    box = Outbox("/flash/state/outbox", max_bytes=P["max_bytes"], segment_bytes=P["segment_bytes"],
                 hash_fn=lambda b: hashlib.sha256(b).digest(), flush_interval_s=flush_s)
    work = P["workloads"][w]
    src = Replay(work["records"], work["interval_s"])
    core = AgentCore("meter-01", SizedSigner(), box, [src], lambda b: hashlib.sha256(b).digest(),
                     epoch=1, pack_size=work["pack_size"])
    wall = 1767225600.0
    for i in range(P["warmup"] + seconds):  # one loop turn per second of device time
        if i == P["warmup"]:
            dev.counting = True
            first = box.counters["appended"]
        core.tick(float(i), wall + i)
        core.on_ack(box.durable_seq, float(i))
    box.flush()
    dev.counting = False
    sealed = box.counters["appended"] - first
    size = len(box.read(box.head_seq, 1)[0][1]) if box.head_seq > box.acked else 0
    box.close()
    vfs.umount("/flash")
    print("flash|" + json.dumps({"fs": fs, "flush_interval_s": flush_s, "workload": w, "seconds": seconds,
                                 "readings": sealed, "erases": sum(dev.erases),
                                 "hottest_block_erases": max(dev.erases), "programmed": dev.programmed,
                                 "blocks": dev.n}))
"""


def board_outbox(board: str = "esp32") -> dict[str, Any]:
    """The outbox settings of a board profile (max_bytes, segment_bytes, flush_interval_s)."""
    outbox: dict[str, Any] = image.load_profile(board)["outbox"]
    return outbox


def measure(seconds: float = 2000, warmup: int = 200, board: str = "esp32",
            configs: Sequence[tuple[str, str, float | None, str]] = CONFIGS, timeout: float = 900,
            alg: str = "EdDSA", min_polls: int = 0) -> list[dict[str, Any]]:
    """Run every config for ``seconds`` of device time (at least ``min_polls`` polls of its
    workload) under MicroPython, with messages of ``alg``'s size; returns a list of dicts
    with the raw counts and readings (signed messages), erases_per_reading,
    programmed_per_reading, erases_per_hour, life_years (projected)."""
    ob = board_outbox(board)
    workloads: dict[str, dict[str, Any]] = {}
    for _, _, _, w in configs:
        records, interval, pack = workload_records(w)
        workloads[w] = {"records": records, "interval_s": interval, "pack_size": pack}
    params = {"block": BLOCK_SIZE, "fs_bytes": FS_BYTES, "warmup": warmup, "alg": ALG_IDS[alg],
              "max_bytes": ob["max_bytes"], "segment_bytes": ob["segment_bytes"], "workloads": workloads,
              "configs": [[fs, ob["flush_interval_s"] if s is None else s, w,
                           max(seconds, int(min_polls * workloads[w]["interval_s"]))]
                          for _, fs, s, w in configs]}
    work = tempfile.mkdtemp(prefix="el-flash-")
    try:
        stage_tree(work)
        script = os.path.join(work, "flash.py")
        with open(script, "w") as f:
            f.write(SCRIPT % {"params": json.dumps(params)})
        # the RAM flash (2 MB) and its copy live on the interpreter's heap
        proc = subprocess.run([micropython_binary(), "-X", "heapsize=24M", script], cwd=work,
                              capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, MICROPYPATH=work))
        if proc.returncode != 0:
            raise RuntimeError("flash bench failed:\n" + proc.stdout + proc.stderr)
        rows = [json.loads(line.split("|", 1)[1]) for line in proc.stdout.splitlines()
                if line.startswith("flash|")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for (name, _, _, _), r in zip(configs, rows):
        r["config"] = name
        r["erases_per_reading"] = r["erases"] / r["readings"]
        r["programmed_per_reading"] = r["programmed"] / r["readings"]
        r["erases_per_hour"] = r["erases"] * 3600.0 / r["seconds"]
        if r["fs"] == "lfs":  # wear levelled over every block
            per_block_s = r["erases"] / r["seconds"] / r["blocks"]
        else:  # no levelling: the hottest block wears out first
            per_block_s = r["hottest_block_erases"] / r["seconds"]
        r["life_years"] = (ENDURANCE / per_block_s / SECONDS_PER_YEAR) if per_block_s else float("inf")
    return rows


def configuration_wear(configs: Sequence[str], algs: Iterable[str], board: str = "esp32",
                       seconds: float = 2000) -> dict[str, dict[str, dict[str, Any]]]:
    """{config: {alg: figures}}: for each 32-bit configuration of ``bench device`` (a key of
    CONFIGURATION_WORKLOADS) and signer, its own workload on littlefs with ``board``'s outbox
    settings (the board default flush_interval_s), at least MIN_POLLS polls. The keys say
    what the figures are for: this configuration's workload, a projected (estimated) life."""
    out: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in configs}
    for alg in algs:
        rows = measure(seconds=seconds, board=board, alg=alg, min_polls=MIN_POLLS,
                       configs=[("littlefs, " + c, "lfs", None, CONFIGURATION_WORKLOADS[c]) for c in configs])
        for c, r in zip(configs, rows):
            out[c][alg] = {
                "filesystem": "littlefs", "flush_interval_s": r["flush_interval_s"],
                "workload": r["workload"], "seconds": r["seconds"], "messages": r["readings"],
                "erases_per_reading_this_workload": round(r["erases_per_reading"], 4),
                "erases_per_hour_this_workload": round(r["erases_per_hour"], 1),
                "programmed_bytes_per_reading_this_workload": round(r["programmed_per_reading"]),
                "projected_life_years_this_workload": round(r["life_years"], 1)}
    return out


def report(rows: Sequence[dict[str, Any]], say: Callable[[str], object] = print) -> None:
    say("flash wear, %d MB filesystem, %d B blocks, %d s of device time each (endurance %d cycles; "
        "littlefs levels wear, FAT on raw flash does not); a reading is one signed message:"
        % (FS_BYTES // (1024 * 1024), BLOCK_SIZE, rows[0]["seconds"] if rows else 0, ENDURANCE))
    for r in rows:
        say("  %-30s flush %4.0f s: %.3f erases/reading (%6.1f/h), %5.0f B programmed/reading, "
            "projected life %.1f years (%.0f days)" % (
                r["config"], r["flush_interval_s"], r["erases_per_reading"], r["erases_per_hour"],
                r["programmed_per_reading"], r["life_years"], r["life_years"] * 365.25))


def main(args: argparse.Namespace) -> int:
    """``edgeledger bench flash [--json]``."""
    rows = measure(seconds=args.seconds, board=args.board)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        report(rows)
    return 0


"""``edgeledger bench flash`` (and the flash section of ``bench device``): flash wear of the
outbox, measured on the filesystems boards use.

The real agent core and outbox run under the MicroPython unix port on a filesystem that
MicroPython itself drives: ``vfs.VfsLfs2`` (littlefs v2, the default on ESP32 and RP2040)
and ``vfs.VfsFat`` (FatFs), each over a RAM block device written in Python that counts:

* littlefs: erases (``ioctl(6)``) and bytes programmed (``writeblocks`` with an offset);
* FAT on raw NOR flash, no flash translation layer: every ``writeblocks`` of a 4 KB
  sector erases that sector first (what ``esp32.Partition`` does for a FAT volume), so an
  erase per sector written.

Each run seals ``readings`` one-message readings of the simulated meter at one per second
(``pack_size`` 1, the documented board configuration), makes them durable as the outbox's
``flush_interval_s`` says, and acks each durable record at once (a gateway acks within
milliseconds), so segments are deleted as on a device that keeps up. Signatures are 64
bytes of hash output instead of a real EdDSA/ES256 signature: the flash cost depends only
on the sizes, which are those of a real signed message.

Projected life (an estimate from the measured erase rate, not a measurement): blocks x
ENDURANCE / erases per second. littlefs levels wear dynamically over the whole device (every
write goes to a new block, round robin), so its mean erase rate per block counts; FAT has no
wear levelling, so its hottest block (a FAT or directory sector) counts.
"""
import json
import os
import shutil
import subprocess
import tempfile

# NOR flash endurance assumed for the projection: 100,000 program/erase cycles per block
# (Winbond W25Q / GigaDevice GD25Q datasheets, the flash on ESP32 and RP2040 modules).
ENDURANCE = 100000
BLOCK_SIZE = 4096  # erase block of SPI NOR flash; littlefs block and FAT sector on ESP32
FS_BYTES = 2 * 1024 * 1024  # the filesystem the issue sizes for (2 MB)
SECONDS_PER_YEAR = 365.25 * 86400
# (name, filesystem, flush_interval_s): 0 makes every record durable on its own (Linux
# default); 30 s is the board default (firmware/boards/*.json).
CONFIGS = (("littlefs, every record", "lfs", 0.0), ("littlefs, board default", "lfs", None),
           ("FAT, every record", "fat", 0.0), ("FAT, board default", "fat", None))

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

from edgeledger.agent.core import AgentCore
from edgeledger.agent.outbox import Outbox
from edgeledger.agent.simulated import SimulatedSource

class SizedSigner:
    # a real signed message's size: 64-byte signature, 16-byte kid
    alg = -8
    kid = b"k" * 16
    def sign(self, tbs):
        h = hashlib.sha256(tbs).digest()
        return h + h

P = json.loads(%(params)r)
out = []
for fs, flush_s in P["configs"]:
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
    src = SimulatedSource("meter-01", "meter", interval_s=1.0, channels=1)
    core = AgentCore("meter-01", SizedSigner(), box, [src], lambda b: hashlib.sha256(b).digest(),
                     epoch=1, pack_size=1)
    wall = 1767225600.0
    for i in range(P["warmup"] + P["readings"]):
        if i == P["warmup"]:
            dev.counting = True
        core.tick(float(i), wall + i)
        core.on_ack(box.durable_seq, float(i))
    box.flush()
    dev.counting = False
    n = P["readings"]
    appended = box.counters["appended"]
    box.close()
    vfs.umount("/flash")
    print("flash|" + json.dumps({"fs": fs, "flush_interval_s": flush_s, "readings": n,
                                 "erases": sum(dev.erases), "hottest_block_erases": max(dev.erases),
                                 "programmed": dev.programmed, "blocks": dev.n,
                                 "sealed": appended}))
"""


def _micropython():
    from edgeledger.firmware.bench import micropython_binary

    return micropython_binary()


def _stage(dest):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pkg = os.path.join(dest, "edgeledger")
    os.makedirs(pkg)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for name in ("protocols", "agent", "firmware"):
        os.symlink(os.path.join(root, name), os.path.join(pkg, name))


def board_outbox(board="esp32"):
    """The outbox settings of a board profile (max_bytes, segment_bytes, flush_interval_s)."""
    from edgeledger.firmware import build

    with open(os.path.join(build.BOARDS_DIR, board + ".json")) as f:
        return json.load(f)["outbox"]


def measure(readings=2000, warmup=200, board="esp32", configs=CONFIGS, timeout=900):
    """Run every config under MicroPython; returns a list of dicts with the raw counts and
    erases_per_reading, programmed_per_reading, life_years (projected)."""
    ob = board_outbox(board)
    params = {"block": BLOCK_SIZE, "fs_bytes": FS_BYTES, "readings": readings, "warmup": warmup,
              "max_bytes": ob["max_bytes"], "segment_bytes": ob["segment_bytes"],
              "configs": [[fs, ob["flush_interval_s"] if s is None else s] for _, fs, s in configs]}
    work = tempfile.mkdtemp(prefix="el-flash-")
    try:
        _stage(work)
        script = os.path.join(work, "flash.py")
        with open(script, "w") as f:
            f.write(SCRIPT % {"params": json.dumps(params)})
        # the RAM flash (2 MB) and its copy live on the interpreter's heap
        proc = subprocess.run([_micropython(), "-X", "heapsize=24M", script], cwd=work,
                              capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, MICROPYPATH=work))
        if proc.returncode != 0:
            raise RuntimeError("flash bench failed:\n" + proc.stdout + proc.stderr)
        rows = [json.loads(line.split("|", 1)[1]) for line in proc.stdout.splitlines()
                if line.startswith("flash|")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for (name, _, _), r in zip(configs, rows):
        r["config"] = name
        r["erases_per_reading"] = r["erases"] / r["readings"]
        r["programmed_per_reading"] = r["programmed"] / r["readings"]
        # one reading per second: erases per second = erases per reading
        if r["fs"] == "lfs":
            per_block = r["erases"] / r["readings"] / r["blocks"]
        else:
            per_block = r["hottest_block_erases"] / r["readings"]
        r["life_years"] = (ENDURANCE / per_block / SECONDS_PER_YEAR) if per_block else float("inf")
    return rows


def report(rows, say=print):
    say("flash wear, %d MB filesystem, %d B blocks, one reading per second, %d readings each "
        "(endurance %d cycles; littlefs levels wear, FAT on raw flash does not):"
        % (FS_BYTES // (1024 * 1024), BLOCK_SIZE, rows[0]["readings"] if rows else 0, ENDURANCE))
    for r in rows:
        say("  %-26s flush %4.0f s: %.3f erases/reading, %5.0f B programmed/reading, "
            "projected life %.1f years (%.0f days)" % (
                r["config"], r["flush_interval_s"], r["erases_per_reading"], r["programmed_per_reading"],
                r["life_years"], r["life_years"] * 365.25))


def main_cli(args):
    rows = measure(readings=args.readings, board=args.board)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        report(rows)
    return 0


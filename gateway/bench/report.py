"""Shared output for the bench suites: the machine's description, its same-run baselines
and a plain table.

Every suite reports ``machine`` (what the machine is and how loaded it was) and
``baselines`` (what one core of it does in this run) in its JSON, and prints them under its
table (``print_context``): a figure from another machine compares by its ratio to that
machine's baseline, not by its absolute value (docs/benchmarks.md).
"""
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

# Seconds the one-core verify baseline is timed for: long enough for thousands of
# verifications at any plausible speed (a 2019 laptop core does ~10,000/s), short enough to
# add little to the shortest suite.
BASELINE_S = 1.0


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python version and load averages (1, 5, 15 min) of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram_gib = round(int(line.split()[1]) / 1048576.0, 1)
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": ram_gib,
            "python": "%d.%d.%d" % sys.version_info[:3], "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def verify_rate(alg: int, public_key: bytes, msg: bytes, sig: bytes, seconds: float) -> float:
    """Verifications per CPU second of one signature on one core (the gateway's own verify,
    registry/signatures.py), timed for ``seconds`` of this process's CPU time: on a shared
    machine other jobs stretch the wall clock, not the CPU time one verification takes, and
    the gateway's cost per message is CPU time too. Raises AssertionError if it does not
    verify."""
    from edgeledger.gateway.registry import signatures

    assert signatures.verify(alg, public_key, msg, sig)
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        for _ in range(100):
            signatures.verify(alg, public_key, msg, sig)
        n += 100
    return n / (time.process_time() - t0)


def baselines(seconds: float = BASELINE_S) -> dict[str, float]:
    """What one core of this machine does in this run: ``ed25519_verify_per_s`` (the gateway's
    per-message floor, PyNaCl over a 120-byte message)."""
    from nacl.signing import SigningKey

    from edgeledger.protocols.cose import EDDSA

    msg = os.urandom(120)
    sk = SigningKey.generate()
    return {"ed25519_verify_per_s": verify_rate(EDDSA, bytes(sk.verify_key), msg, sk.sign(msg).signature, seconds)}


def context(seconds: float = BASELINE_S) -> dict[str, Any]:
    """{"machine": ..., "baselines": ...}: what every suite's JSON carries."""
    return {"machine": machine(), "baselines": baselines(seconds)}


def print_context(r: dict[str, Any], out: Callable[[str], object] = print) -> None:
    """The machine and its same-run baselines under a suite's table."""
    m, b = r["machine"], r["baselines"]
    out("  machine: %s, %s CPUs, Python %s, load average %s at the start"
        % (m["cpu"], m["nproc"], m["python"], " / ".join("%.1f" % x for x in m.get("load_average", ()))))
    out("  same-run baseline: Ed25519 verify %s/s on one core (compare machines by ratio to it)"
        % _fmt(b["ed25519_verify_per_s"]))


def table(title: str, rows: Sequence[tuple[object, object, object]], out: Callable[[str], object] = print) -> None:
    """rows: (figure, value, note). Values are formatted with thousands separators."""
    out(title)
    cells = [(str(a), _fmt(b), str(c or "")) for a, b, c in rows]
    w0 = max(len(c[0]) for c in cells)
    w1 = max(len(c[1]) for c in cells)
    for a, b, c in cells:
        out("  %-*s  %*s  %s" % (w0, a, w1, b, c))


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0..100) of ``values`` by nearest rank, None if empty."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def _fmt(v: object) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return "{:,}".format(v)
    if isinstance(v, float):
        if abs(v) >= 100:
            return "{:,.0f}".format(v)
        if abs(v) >= 1:
            return "{:,.2f}".format(v)
        return "{:.3g}".format(v)
    return str(v)


def _stat(pid: int) -> tuple[int, float]:
    """(ppid, cpu seconds) of a process from /proc/<pid>/stat (proc(5): fields 4, 14, 15)."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def _processes() -> dict[int, tuple[int, float]]:
    """{pid: (ppid, cpu seconds)} of every live process."""
    out: dict[int, tuple[int, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            out[int(name)] = _stat(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _tree(root_pid: int, procs: dict[int, tuple[int, float]]) -> list[int]:
    """``root_pid`` and its live descendants in ``procs`` (from ``_processes``)."""
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(p for p, (pp, _) in procs.items() if pp == pid)
    return found


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by ``root_pid`` and its live descendants."""
    procs = _processes()
    return sum(procs[pid][1] for pid in _tree(root_pid, procs) if pid in procs)


def tree_rss_mib(root_pid: int) -> float:
    """Resident memory (VmRSS, MiB) of ``root_pid`` and its live descendants now."""
    total_kib = 0
    for pid in _tree(root_pid, _processes()):
        try:
            with open("/proc/%d/status" % pid) as f:
                total_kib += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total_kib / 1024.0


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if _stat(int(name))[0] == pid:
                    out.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
    return sorted(out)


def fsync_tracer(out_path: str) -> list[str]:
    """The command prefix that runs a program under strace counting its fsync and
    fdatasync calls into ``out_path`` (seccomp-bpf: only those calls stop the program).
    Raises RuntimeError if strace is not installed."""
    import shutil

    path = shutil.which("strace")
    if path is None:
        raise RuntimeError("expected strace on PATH to count fsync calls, found none: apt-get install strace")
    return [path, "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync", "-o", out_path]


def fsync_count(out_path: str) -> int:
    """fsync + fdatasync calls in an ``strace -c`` summary written by ``fsync_tracer``."""
    with open(out_path) as f:
        return sum(int(line.split()[3]) for line in f
                   if line.split()[-1:] in (["fsync"], ["fdatasync"]) and len(line.split()) >= 5)


def machine_busy() -> tuple[int, int]:
    """(busy jiffies, total jiffies) of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)

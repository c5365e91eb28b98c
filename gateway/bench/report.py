"""Shared output for the bench suites: the machine's description and a plain table."""
import os
import platform
import sys


def machine():
    """nproc, CPU model, RAM and Python version of this machine."""
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
            "python": "%d.%d.%d" % sys.version_info[:3], "platform": platform.platform()}


def table(title, rows, out=print):
    """rows: (figure, value, note). Values are formatted with thousands separators."""
    out(title)
    cells = [(str(a), _fmt(b), str(c or "")) for a, b, c in rows]
    w0 = max(len(c[0]) for c in cells)
    w1 = max(len(c[1]) for c in cells)
    for a, b, c in cells:
        out("  %-*s  %*s  %s" % (w0, a, w1, b, c))


def _fmt(v):
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


def _stat(pid):
    """(ppid, cpu seconds) of a process from /proc/<pid>/stat (proc(5): fields 4, 14, 15)."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def tree_cpu_s(root_pid):
    """CPU seconds (user + system) used so far by ``root_pid`` and its live descendants."""
    parents, cpu = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid, secs = _stat(int(name))
        except (OSError, ValueError, IndexError):
            continue
        parents[int(name)] = ppid
        cpu[int(name)] = secs
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(p for p, pp in parents.items() if pp == pid)
    return total


def child_pids(pid):
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


def fsync_tracer(out_path):
    """The command prefix that runs a program under strace counting its fsync and
    fdatasync calls into ``out_path`` (seccomp-bpf: only those calls stop the program).
    Raises RuntimeError if strace is not installed."""
    import shutil

    path = shutil.which("strace")
    if path is None:
        raise RuntimeError("expected strace on PATH to count fsync calls, found none: apt-get install strace")
    return [path, "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync", "-o", out_path]


def fsync_count(out_path):
    """fsync + fdatasync calls in an ``strace -c`` summary written by ``fsync_tracer``."""
    with open(out_path) as f:
        return sum(int(line.split()[3]) for line in f
                   if line.split()[-1:] in (["fsync"], ["fdatasync"]) and len(line.split()) >= 5)


def machine_busy():
    """(busy jiffies, total jiffies) of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)

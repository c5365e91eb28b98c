"""``edgeledger bench curves``: ingest as curves, not points.

Each point is one ``bench ingest`` gateway phase (gateway/bench/ingest.py: a fresh
Mosquitto, a fresh store, the real gateway as its own process(es), presigned Ed25519
messages from two load generator processes, durability ``power_loss``), so every point
reports the same figures: ``msgs_per_s``, ``gateway_cpu_us_per_msg`` (CPU time of the
gateway's processes over the window / messages stored in it), ``gateway_rss_mib`` (their
resident memory at the end of the window), ``lost``, ``duplicated``, ``acks_missing``,
``stock_exhausted``.

Curves, in this order:

1. ``workers``: ``--devices`` devices, flat out, ``gateway run --workers W`` for W = 1 ..
   ``--max-workers`` (default: the cores this process may use).
2. ``devices``: one ingest process (``--workers 1``: a site-wide subscription, so the
   broker's per-device subscriptions do not enter the figure), flat out, for each device
   count of ``--device-counts``. Per-device state (registry key cache, chain marks, recent
   links, rate-limit buckets) must not raise the per-message cost: ``cpu_growth`` is the
   CPU per message at the largest count over that at the smallest, ``rss_kib_per_device``
   the memory the extra devices cost. Devices are registered in one transaction
   (``Registry.register_many``).
3. ``latency``: ``--devices`` devices, the most workers, offered a steady load of each
   fraction of ``--loads`` of the flat-out rate measured in curve 1 (below saturation, so
   the figure is the gateway's latency, not a queue's length). For each message sent after
   the warm-up: seconds from the generator writing it to its socket (a device publishes a
   reading as it is made) to its row being visible in the store (``stored_*``, polled
   every ingest.PROGRESS_POLL_S) and to its end-to-end ack reaching the generator
   (``acked_*``): p50, p95, p99, max. ``kept_up`` = msgs_per_s / offered: well below 1
   the gateway did not keep up with the offered load (it costs more per message when paced
   than flat out: smaller commits, more acks), and the latency measures a growing queue.

``machine`` and ``baselines`` (report.context: the machine, its load, one core's Ed25519
verify rate in this run) come first, so the curves of two machines compare by ratio to it.
``--quick`` runs every curve tiny (the test suite's smoke test); its figures mean nothing.
"""
import json
import os
from typing import Any, Callable

from edgeledger.gateway.bench import ingest, loadgen, report

DEVICE_COUNTS = (10, 100, 1000, 10000, 100000)
# Devices of the workers and latency curves: bench ingest's default, so its figures compare.
CURVE_DEVICES = ingest.DEFAULT_DEVICES
# Measured window per point: long enough for dozens of group commits at any rate seen
# (docs/benchmarks.md), short enough that the default run stays near 5 minutes.
DEFAULT_SECONDS = 8.0
LOADS = (0.5, 0.8)
# --quick: every curve at a tiny size, with a small backlog so that a point's stock and drain
# take a second, not ingest.MAX_BACKLOG's worth.
QUICK = {"seconds": 1.0, "device_counts": (2, 8, 32), "devices": 8, "loads": (0.5,), "backlog": 2000}

Log = Callable[[str], None] | None


def _point(specs: list, seconds: float, bound: float, workers: int, log: Log, backlog: int,
           rate: float | None = None, latency: bool = False) -> dict[str, Any]:
    r = ingest.gateway_phase_full_window(specs, seconds, bound, 1, workers, log, rate=rate, latency=latency,
                                         backlog=backlog)
    keep = ("msgs_per_s", "gateway_cpu_us_per_msg", "broker_cpu_us_per_msg", "machine_busy", "gateway_rss_mib",
            "sent", "acks_per_msg", "lost", "duplicated", "acks_missing", "quarantined", "stock_exhausted",
            "stock_attempts")
    out = dict((k, r[k]) for k in keep)
    out.update(devices=len(specs), workers=workers)
    if latency:
        start = r["go_wall"] + ingest.WARMUP_S
        for name in ("stored", "ack"):
            values = [s for t, s in r[name + "_s"] if t >= start]
            label = "acked" if name == "ack" else name
            out[label + "_timed"] = len(values)
            for p in (50, 95, 99, 100):
                out["%s_%s_s" % (label, "max" if p == 100 else "p%d" % p)] = report.percentile(values, p)
    if log:
        log("  %d devices, %d worker(s)%s: %.0f msgs/s, %.0f µs gateway CPU per message, %.0f MiB"
            % (len(specs), workers, "" if rate is None else ", offered %.0f msgs/s" % rate, out["msgs_per_s"],
               out["gateway_cpu_us_per_msg"], out["gateway_rss_mib"]))
    return out


def run(seconds: float = DEFAULT_SECONDS, device_counts: tuple = DEVICE_COUNTS, devices: int = CURVE_DEVICES,
        max_workers: int | None = None, loads: tuple = LOADS, log: Log = print,
        backlog: int = ingest.MAX_BACKLOG) -> dict[str, Any]:
    """Every curve; returns the figure dict (see the module docstring)."""
    max_workers = max_workers or len(os.sched_getaffinity(0))
    out: dict[str, Any] = {"seconds": seconds, "devices": devices, "max_workers": max_workers, "backlog": backlog}
    out.update(report.context())
    verify = out["baselines"]["ed25519_verify_per_s"]
    specs = loadgen.device_specs(devices)
    if log:
        log("workers curve (%d devices, flat out)..." % devices)
    by_workers = [_point(specs, seconds, ingest.rate_bound(verify, w), w, log, backlog)
                  for w in range(1, max_workers + 1)]
    if log:
        log("devices curve (one ingest process, flat out)...")
    by_devices = []
    for n in sorted(set(device_counts)):
        if n == devices:
            by_devices.append(by_workers[0])
            continue
        by_devices.append(_point(loadgen.device_specs(n, prefix="d%d" % n), seconds, ingest.rate_bound(verify, 1),
                                 1, log, backlog))
    top = max(by_workers, key=lambda p: p["msgs_per_s"])
    if log:
        log("latency at steady loads (%d devices, %d worker(s), flat out %.0f msgs/s)..."
            % (devices, top["workers"], top["msgs_per_s"]))
    by_load = []
    for fraction in loads:
        offered = fraction * top["msgs_per_s"]
        p = _point(loadgen.device_specs(devices, prefix="l%02d" % int(100 * fraction)), seconds, offered,
                   top["workers"], log, backlog, rate=offered, latency=True)
        p.update(load=fraction, offered_msgs_per_s=offered, kept_up=p["msgs_per_s"] / offered)
        by_load.append(p)
    out.update(workers_curve=by_workers, devices_curve=by_devices, latency_curve=by_load)
    points = by_workers + [p for p in by_devices if p is not by_workers[0]] + by_load  # each run once
    for key in ("lost", "duplicated", "acks_missing", "quarantined"):
        out[key] = sum(p[key] for p in points)
    out["stock_exhausted"] = any(p["stock_exhausted"] for p in points)
    lo, hi = by_devices[0], by_devices[-1]
    out["cpu_growth"] = hi["gateway_cpu_us_per_msg"] / lo["gateway_cpu_us_per_msg"]
    out["rss_kib_per_device"] = ((hi["gateway_rss_mib"] - lo["gateway_rss_mib"]) * 1024.0
                                 / max(hi["devices"] - lo["devices"], 1))
    return out


def print_table(r: dict[str, Any], out: Callable[[str], None] = print) -> None:
    rows = []
    for p in r["workers_curve"]:
        rows.append(("%d devices, %d worker(s) (msgs/s)" % (p["devices"], p["workers"]), p["msgs_per_s"],
                     "%.0f µs CPU/msg, %.0f MiB, machine %.0f%% busy"
                     % (p["gateway_cpu_us_per_msg"], p["gateway_rss_mib"], 100 * p["machine_busy"])))
    for p in r["devices_curve"]:
        rows.append(("%d devices, 1 worker (msgs/s)" % p["devices"], p["msgs_per_s"],
                     "%.0f µs CPU/msg, %.0f MiB, %.2f acks/msg"
                     % (p["gateway_cpu_us_per_msg"], p["gateway_rss_mib"], p["acks_per_msg"])))
    rows.append(("CPU/msg at most devices / at fewest", r["cpu_growth"], "1.0 = per-device state costs nothing"))
    rows.append(("memory per extra device (KiB)", r["rss_kib_per_device"], ""))
    for p in r["latency_curve"]:
        rows.append(("%.0f%% load: offered / stored (msgs/s)" % (100 * p["load"]),
                     "%.0f / %.0f" % (p["offered_msgs_per_s"], p["msgs_per_s"]),
                     "kept up %.2f, %.0f µs CPU/msg, %.2f acks/msg"
                     % (p["kept_up"], p["gateway_cpu_us_per_msg"], p["acks_per_msg"])))
        for label in ("stored", "acked"):
            rows.append(("%.0f%% load (%.0f msgs/s): %s p50 / p95 / p99 (ms)"
                         % (100 * p["load"], p["offered_msgs_per_s"], label),
                         "%.1f / %.1f / %.1f" % tuple(1000 * (p["%s_p%d_s" % (label, q)] or 0) for q in (50, 95, 99)),
                         "max %.1f ms, %d messages" % (1000 * (p[label + "_max_s"] or 0), p[label + "_timed"])))
    rows.append(("lost / duplicated / acks missing", "%d / %d / %d" % (r["lost"], r["duplicated"], r["acks_missing"]),
                 "every point"))
    report.table("curves: %.0f s per point" % r["seconds"], rows, out)
    report.print_context(r, out)


def main(args: Any) -> int:
    kw: dict[str, Any] = dict(QUICK) if args.quick else {}
    if args.seconds is not None:
        kw["seconds"] = args.seconds
    if args.device_counts:
        kw["device_counts"] = tuple(int(x) for x in args.device_counts.split(",") if x.strip())
    if args.devices is not None:
        kw["devices"] = args.devices
    if args.loads:
        kw["loads"] = tuple(float(x) for x in args.loads.split(",") if x.strip())
    r = run(max_workers=args.max_workers, log=None if args.json else print, **kw)
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print_table(r)
    return 0 if (r["lost"], r["duplicated"], r["acks_missing"]) == (0, 0, 0) else 1

"""``edgeledger bench flood``: how much one flooding device delays the other devices' acks.

Two phases of ``--seconds`` each, against a real Mosquitto (plain TCP on loopback) and a
real ``edgeledger gateway run`` with its default per-device rate limit (ratelimit.py):

1. *baseline*: ``--devices`` good devices each publish one signed reading every
   ``1/--rate`` s (QoS 1, presigned, raw sockets: loadgen.py) and time each reading from
   its publish to the gateway's end-to-end ack that covers it;
2. *flood*: the same, while one more device publishes garbage QoS 1 messages as fast as
   its socket takes them, from its own process.

Reported: the good readings' ack latency (median, 99th percentile, max) in both phases,
whether any good reading was lost, and what the flood offered and what became of it (the
gateway's counters). The difference of the two phases is the delay one flood costs the
other devices on this machine; docs/benchmarks.md records a run.
"""
import multiprocessing
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from edgeledger.gateway.bench import loadgen, mosquitto, report
from edgeledger.protocols import mqtt, session, topics

DEFAULT_SECONDS = 20.0
DEFAULT_DEVICES = 10
DEFAULT_RATE = 10.0  # readings/s per good device: a fast meter
# After a phase, how long the good devices wait for their last acks.
DRAIN_S = 30.0
# Garbage packets per sendall of the flooder.
FLOOD_CHUNK = 2000


def _flooder(port: int, name: str, stop: Any, sent: Any) -> None:
    """Publish garbage as fast as the socket takes it; drop the PUBACKs."""
    sock, _framer = loadgen.open_session("127.0.0.1", port, "el-bench-flood")
    topic = topics.readings(loadgen.SITE, name)
    packets = [mqtt.publish(topic, b"\xa0flood %d" % i, 1 + i, qos=1) for i in range(FLOOD_CHUNK)]
    blob = b"".join(packets)
    sock.setblocking(False)
    while not stop.is_set():
        try:
            while sock.recv(1 << 18):
                pass
        except BlockingIOError:
            pass
        _r, w, _x = select.select([], [sock], [], 0.1)
        if w:
            sock.setblocking(True)
            sock.sendall(blob)
            sock.setblocking(False)
            sent.value += FLOOD_CHUNK
    sock.close()


class _Good:
    """The good devices of one phase: one raw session each, driven from one thread."""

    def __init__(self, port: int, specs: list, per_device: int) -> None:
        self.devices: list[dict[str, Any]] = []
        for name, seed in specs:
            sock, framer = loadgen.open_session("127.0.0.1", port, "el-bench-good-%s-%d" % (name, os.getpid()))
            sock.sendall(mqtt.subscribe(1, [(topics.ack(loadgen.SITE, name), 0)]))
            self.devices.append({"name": name, "sock": sock, "framer": framer, "stock": loadgen.presign(
                name, seed, per_device), "next": 0, "sent_at": {}, "latency": {}, "acked": 0})
        self.by_sock = dict((d["sock"], d) for d in self.devices)

    def publish_next(self, now: float) -> None:
        for d in self.devices:
            if d["next"] < len(d["stock"]):
                head, msg = d["stock"][d["next"]]
                d["next"] += 1
                seq = d["next"]
                d["sock"].sendall(head + struct.pack("!H", 1 + (seq % 65535)) + msg)
                d["sent_at"][seq] = now

    def read(self, timeout: float) -> None:
        r, _w, _x = select.select(list(self.by_sock), [], [], timeout)
        now = time.monotonic()
        for sock in r:
            d = self.by_sock[sock]
            framer = d["framer"]
            n = sock.recv_into(framer.space())
            if not n:
                raise loadgen.SessionError("the broker closed %s's connection" % d["name"])
            framer.received(n)
            for ptype, flags, body in iter(framer.next_packet, None):
                if ptype != mqtt.PUBLISH:
                    continue
                _topic, _pid, payload = mqtt.publish_fields(flags, body)
                if payload:
                    acked = session.decode_ack(payload)
                    for seq in range(d["acked"] + 1, acked + 1):
                        if seq in d["sent_at"]:
                            d["latency"][seq] = now - d["sent_at"][seq]
                    d["acked"] = max(d["acked"], acked)

    def all_acked(self) -> bool:
        return all(d["acked"] >= d["next"] for d in self.devices)

    def close(self) -> None:
        for d in self.devices:
            d["sock"].close()


def phase(specs: list, flood_name: str, seconds: float, rate: float, flood: bool,
          log: Callable[[str], object] | None) -> dict:
    """One measured phase; returns its figures."""
    from edgeledger.gateway.bench.ingest import _write_site

    root = tempfile.mkdtemp(prefix="el-bench-flood-")
    gw = None
    ctx = multiprocessing.get_context("spawn")
    stop, sent = ctx.Event(), ctx.Value("q", 0)
    per_device = int(seconds * rate) + 1
    try:
        with mosquitto.Mosquitto() as broker:
            cfg = _write_site(root, broker.url, specs + [(flood_name, os.urandom(32))], None, limits=True)
            gw_log = open(os.path.join(root, "gateway.log"), "ab")
            gw = subprocess.Popen([sys.executable, "-m", "edgeledger.gateway.cli", "gateway", "run", "--config", cfg],
                                  stdout=gw_log, stderr=subprocess.STDOUT, cwd=root)
            gw_log.close()
            mosquitto.wait_subscriptions(broker.port, 1 + 3)
            good = _Good(broker.port, specs, per_device)
            flooder = None
            if flood:
                flooder = ctx.Process(target=_flooder, args=(broker.port, flood_name, stop, sent), daemon=True)
                flooder.start()
            window = _drive(good, seconds, rate, stop)
            if flooder is not None:
                flooder.join(10)
            counters, lost = _outcome(gw, root, good)
            lat = [v for d in good.devices for v in d["latency"].values()]
            unacked = sum(d["next"] - d["acked"] for d in good.devices)
            good.close()
    finally:
        stop.set()
        if gw is not None and gw.poll() is None:
            gw.kill()
            gw.wait()
        shutil.rmtree(root, ignore_errors=True)
    out = {"good_sent": sum(d["next"] for d in good.devices), "good_lost": lost, "good_unacked": unacked,
           "latency_p50_s": report.percentile(lat, 50), "latency_p99_s": report.percentile(lat, 99), "latency_max_s": max(lat),
           "flood_sent": sent.value, "flood_per_s": sent.value / window,
           "rejected": counters.get("rejected", 0), "rate_limited": counters.get("rejected_rate_limited", 0),
           "received": counters.get("received", 0)}
    if log:
        log("  %s: good p50 %.3f s, p99 %.3f s; flood %d msgs" % ("flood" if flood else "baseline",
                                                                out["latency_p50_s"], out["latency_p99_s"],
                                                                out["flood_sent"]))
    return out


def _drive(good: _Good, seconds: float, rate: float, stop: Any) -> float:
    """Publish the good devices' readings at ``rate`` for ``seconds``, then stop the flood
    and wait up to DRAIN_S for the last acks; returns the window's length (s)."""
    t0 = time.monotonic()
    next_at = t0
    while time.monotonic() - t0 < seconds:
        now = time.monotonic()
        if now >= next_at:
            good.publish_next(now)
            next_at += 1.0 / rate
        good.read(max(0.0, min(0.01, next_at - time.monotonic())))
    window = time.monotonic() - t0
    stop.set()
    deadline = time.monotonic() + DRAIN_S
    while not good.all_acked() and time.monotonic() < deadline:
        good.read(0.05)
    return window


def _outcome(gw: subprocess.Popen[bytes], root: str, good: _Good) -> tuple[dict[str, int], int]:
    """Stop the gateway (it writes its counters at shutdown) and read its store: (counters,
    good readings never stored). Raises RuntimeError if it had exited."""
    from edgeledger.gateway.ingest.runner import total_counters
    from edgeledger.gateway.store import Store

    if gw.poll() is not None:
        raise RuntimeError("the gateway exited with %s" % gw.returncode)
    gw.send_signal(signal.SIGTERM)
    gw.wait(60)
    st = Store(os.path.join(root, "gateway.db"))
    counters = total_counters(st.load_counters())
    lost = sum(d["next"] - len(st.seqs(d["name"])) for d in good.devices)
    st.close()
    return counters, lost


def run(seconds: float = DEFAULT_SECONDS, devices: int = DEFAULT_DEVICES, rate: float = DEFAULT_RATE,
        log: Callable[[str], object] | None = print) -> dict:
    specs = loadgen.device_specs(devices, prefix="good")
    out = {"seconds": seconds, "devices": devices, "rate": rate, **report.context()}
    out["baseline"] = phase(specs, "flood-0000", seconds, rate, False, log)
    out["flood"] = phase(specs, "flood-0000", seconds, rate, True, log)
    return out


def print_table(r: dict, out: Callable[[str], object] = print) -> None:
    b, f = r["baseline"], r["flood"]
    report.table("flood: %d good devices at %g readings/s each, %.0f s per phase, one device flooding"
                 % (r["devices"], r["rate"], r["seconds"]), [
                     ("good ack latency, median (s)", b["latency_p50_s"], "flood: %.3f" % f["latency_p50_s"]),
                     ("good ack latency, p99 (s)", b["latency_p99_s"], "flood: %.3f" % f["latency_p99_s"]),
                     ("good ack latency, max (s)", b["latency_max_s"], "flood: %.3f" % f["latency_max_s"]),
                     ("good readings lost", b["good_lost"], "flood: %d" % f["good_lost"]),
                     ("flood offered (msgs/s)", f["flood_per_s"], "%d in all" % f["flood_sent"]),
                     ("flood rejected / of them rate_limited", f["rejected"], "%d" % f["rate_limited"]),
                 ], out)
    report.print_context(r, out)


def main(args: Any) -> int:
    import json

    r = run(seconds=args.seconds, devices=args.devices, rate=args.rate, log=None if args.json else print)
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print_table(r)
    lost = r["baseline"]["good_lost"] + r["flood"]["good_lost"]
    return 0 if lost == 0 else 1


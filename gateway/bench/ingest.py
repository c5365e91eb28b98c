"""``edgeledger bench ingest``: signed messages per second through the real gateway.

Set-up, all on this machine: a fresh Mosquitto per phase (gateway/bench/mosquitto.py),
``--devices`` Ed25519 devices (``--alg SM2``: SM2 devices) registered in a fresh store, two load generator
processes publishing pre-signed messages at QoS 1 (gateway/bench/loadgen.py), and
the gateway as its own process(es): ``edgeledger gateway run [--workers N]``, which
verifies, chain-checks, commits, PUBACKs after commit and publishes end-to-end acks.

Phases, in this order:

1. ``ed25519_verify_per_s`` / ``es256_verify_per_s`` / ``sm2_verify_per_s``: verify-only
   rate on one core (gateway/signatures.py): the cost floor of one message.
2. ``generator_alone_msgs_per_s``: the generators publishing flat out with no
   subscriber; it must be far above the gateway's rate, or the figure measures them.
3. ``baseline_msgs_per_s``: a bare paho-mqtt subscriber (QoS 1, counts, no work),
   fed by the same generators with the same pacing.
4. ``msgs_per_s``: the gateway, single-reading messages, over ``--seconds`` (after a
   warm-up), then the generators stop and everything sent must be stored and acked:
   ``lost`` (sent, never stored), ``duplicated`` (stored twice), ``acks_missing``
   (devices whose last end-to-end ack is below their last seq).
5. ``pack10_readings_per_s``: the same with packs of 10 readings per signed message.
6. ``crash_only_msgs_per_s``: phase 4 again with ``durability = "process_crash_only"``
   (no fsync per commit: NOT durable across a power cut), to show what durability costs
   in the same run: ``durable_vs_crash_only`` = msgs_per_s / crash_only_msgs_per_s.
   ``--no-durability-compare`` skips it.

Phases 4 and 5 run the gateway with the default ``durability = "power_loss"`` (every
commit fsync'd before its acks: ``durability`` in the output). With ``--count-fsyncs``
the gateway runs under strace counting its fsync/fdatasync calls: ``fsyncs``,
``commits`` (the gateway's own counter) and ``msgs_per_fsync`` per phase.

``ratio`` = msgs_per_s / baseline_msgs_per_s; ``verify_ratio`` = msgs_per_s / the devices'
algorithm's verify-only rate (``alg``: EdDSA, or SM2 with ``--alg SM2``), which also bounds the
stock below.

Stock: phases 2 and 3 publish a small presigned stock round and round (their receivers
do not verify). The gateway needs every message new, so phases 4 and 5 presign a stock
sized from a bound measured in the same run: the gateway verifies one signature per
message in each ingest process, so it cannot take more than ``min(cores, workers) x
ed25519_verify_per_s`` messages per second; the stock covers the generators' backlog plus
that bound, times ``STOCK_MARGIN``, for the warm-up and the window. Should a phase still run
out (a verify rate measured low on a busy machine), it
is run again with twice the stock, so no figure ever comes from a truncated window;
``stock_exhausted`` reports the phase that counted and ``stock_attempts`` how many runs
it took.
"""
import argparse
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.bench import loadgen, mosquitto, report
from edgeledger.protocols.cose import EDDSA, SM2

if TYPE_CHECKING:
    from edgeledger.gateway.store import Store

Log = Callable[[str], object] | None
Specs = Sequence[tuple[str, bytes]]

DEFAULT_SECONDS = 60.0
DEFAULT_DEVICES = 100
# Messages the broker may hold for the receiver; the generators wait beyond it.
MAX_BACKLOG = 20000
# ... and at most this many seconds of the gateway's rate bound: enough to keep it busy between
# a generator's turns, and no stock presigned for nothing where signing is slow (SM2: about a
# thousand signatures a second per generator, a twentieth of Ed25519's).
BACKLOG_S = 2.0
WARMUP_S = 2.0
# Pre-signed stock of a gateway phase = the measured rate bound x STOCK_MARGIN x (warm-up
# + window); the margin covers a verify rate measured low on a busy machine.
STOCK_MARGIN = 1.25
# A phase that still runs out is run again with twice the stock, at most this many times.
STOCK_ATTEMPTS = 3
# Messages in the recycled stock of the phases whose receiver does not verify (all devices).
CYCLE_STOCK = 20000
BASELINE_MAX_S = 15.0
# The receiver must take its first message within this time of the load starting.
START_TIMEOUT_S = 120.0
GENERATOR_ALONE_S = 3.0
PROGRESS_POLL_S = 0.005
DRAIN_TIMEOUT_S = 120.0
# ``--alg``: what the bench devices sign with -> (COSE alg, the verify-only figure that bounds
# the gateway's rate and is the ``verify_ratio``'s denominator).
DEVICE_ALGS = {"EdDSA": (EDDSA, "ed25519_verify_per_s"), "SM2": (SM2, "sm2_verify_per_s")}


# -- phase 1: verify-only ---------------------------------------------------------------

def verify_rates(seconds: float = 1.0) -> dict[str, float]:
    """Verifications per second on one core for Ed25519 (PyNaCl), ES256 (cryptography) and
    SM2 (tongsuopy; its key and signature from the SM2 device signer)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from nacl.signing import SigningKey

    from edgeledger.agent import signer
    from edgeledger.protocols.cose import ES256

    msg = os.urandom(120)
    sk = SigningKey.generate()
    cases = {"ed25519_verify_per_s": (EDDSA, bytes(sk.verify_key), sk.sign(msg).signature)}
    pk = ec.generate_private_key(ec.SECP256R1())
    r, s = decode_dss_signature(pk.sign(msg, ec.ECDSA(hashes.SHA256())))
    pub = pk.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    cases["es256_verify_per_s"] = (ES256, pub, r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    sm2 = signer.generate(SM2)
    cases["sm2_verify_per_s"] = (SM2, sm2.public_key, sm2.sign(msg))
    return dict((name, report.verify_rate(alg, pub, msg, sig, seconds)) for name, (alg, pub, sig) in cases.items())


# -- phase 2: generator alone -----------------------------------------------------------

def _cycle_stock(devices: Specs) -> int:
    """Messages per device of a recycled stock."""
    return max(1, CYCLE_STOCK // len(devices))


def generator_alone(devices: Specs, seconds: float = GENERATOR_ALONE_S, alg: int = EDDSA) -> dict[str, Any]:
    with mosquitto.Mosquitto() as broker:
        gens = loadgen.Generators(broker.port, devices, _cycle_stock(devices), max_backlog=None, want_acks=False,
                                  cycle=True, alg=alg).start()
        time.sleep(seconds)
        sent = gens.total_sent()
        elapsed = time.monotonic() - gens.t0
        r = gens.stop()
    return {"generator_alone_msgs_per_s": sent / elapsed, "generator_pubacks_ok": r["pubacks"] == r["sent"]}


# -- phase 3: bare subscriber -----------------------------------------------------------

def _bare_subscriber(port: int, progress: Any, ready: Any, stop: Any) -> None:
    import paho.mqtt.client as mqtt

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        progress.value += 1

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe("el/v1/%s/+/r" % loadgen.SITE, qos=1)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="el-bench-bare", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.on_message = on_message
    c.on_connect = on_connect
    c.on_subscribe = lambda *a: ready.set()
    c.connect("127.0.0.1", port)
    while not stop.is_set():
        c.loop(0.05)
    c.disconnect()


def bare_subscriber(devices: Specs, seconds: float, alg: int = EDDSA) -> dict[str, float]:
    ctx = multiprocessing.get_context("fork")
    with mosquitto.Mosquitto() as broker:
        gens = loadgen.Generators(broker.port, devices, _cycle_stock(devices), max_backlog=MAX_BACKLOG,
                                  want_acks=False, cycle=True, alg=alg)
        ready, stop = ctx.Event(), ctx.Event()
        sub = ctx.Process(target=_bare_subscriber, args=(broker.port, gens.progress, ready, stop), daemon=True)
        sub.start()
        if not ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the bare subscriber did not subscribe")
        gens.start()
        rate, _, _cpu = _window(lambda: gens.progress.value, seconds, gens, {})
        stop.set()
        gens.stop_ev.set()
        sub.join(5)
        gens.kill()
    return {"baseline_msgs_per_s": rate}


def _next_step(count: Callable[[], int], than: int, timeout: float = START_TIMEOUT_S) -> tuple[int, float]:
    """Wait until ``count()`` differs from ``than``; returns (count, monotonic time).

    The gateway commits in groups (up to service.MAX_GROUP messages), so its stored count
    moves in steps; on a loaded machine one step can take longer than a short window. A
    window that opens and closes on steps measures whole commits, never a flat stretch."""
    deadline = time.monotonic() + timeout
    while True:
        c = count()
        if c != than:
            return c, time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError("the receiver took no message for %.0f s" % timeout)
        time.sleep(0.002)


def _window(count: Callable[[], int], seconds: float, gens: loadgen.Generators,
            pids: dict[str, int]) -> tuple[float, bool, dict[str, float]]:
    """Rate of ``count()`` over at least ``seconds``: the window opens at the first step of
    the count after the receiver's first message and a warm-up (its start-up takes as long as
    the machine makes it, so no fixed delay can cover it) and closes at the first step after
    ``seconds``. It ends early once the receiver has taken the whole stock (``exhausted``:
    the caller runs the phase again with more).
    Returns (rate, exhausted, {name: CPU µs per counted message} for ``pids`` and
    ``machine_busy`` (fraction of all cores busy over the window))."""
    _next_step(count, count())
    time.sleep(WARMUP_S)
    c0, t0 = _next_step(count, count())
    cpu0 = dict((name, report.tree_cpu_s(pid)) for name, pid in pids.items())
    busy0 = report.machine_busy()
    deadline = t0 + seconds
    exhausted = False
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if count() >= gens.stock:
            exhausted = True
            break
    c1, t1 = (count(), time.monotonic()) if exhausted else _next_step(count, count())
    busy1 = report.machine_busy()
    n = max(c1 - c0, 1)
    cpu = dict((name + "_cpu_us_per_msg", (report.tree_cpu_s(pid) - cpu0[name]) * 1e6 / n)
               for name, pid in pids.items())
    cpu["machine_busy"] = (busy1[0] - busy0[0]) / float(max(busy1[1] - busy0[1], 1))
    return (c1 - c0) / (t1 - t0), exhausted, cpu


# -- phases 4 and 5: the gateway --------------------------------------------------------

DURABLE = "power_loss"
NOT_DURABLE = "process_crash_only"


def _write_site(root: str, broker_url: str, devices: Specs, workers: int | None, durability: str = DURABLE,
                limits: bool = False, alg: int = EDDSA) -> str:
    from edgeledger.gateway.registry import Registry
    from edgeledger.gateway.store import Store

    cfg = os.path.join(root, "gateway.toml")
    with open(cfg, "w") as f:
        # the load generator publishes flat out, unlike paced agents: no per-device limit
        # unless ``limits`` (bench flood measures the defaults)
        f.write('gateway_id = "gw-bench"\nstore = "gateway.db"\nbroker = "%s"\nsites = ["%s"]\ndurability = "%s"\n'
                '[ledger]\nbackend = "none"\n%s' % (broker_url, loadgen.SITE, durability,
                                                     "" if limits else "[ratelimit]\nrate = 0\n"))
    st = Store(os.path.join(root, "gateway.db"))
    import hashlib

    keys = [(name, loadgen.public_key(seed, alg)) for name, seed in devices]
    Registry(st).register_many(loadgen.SITE, [(name, alg, pub, hashlib.sha256(pub).digest()[:16])
                                              for name, pub in keys])
    st.close()
    return cfg


def rate_bound(verify_per_s: float, workers: int | None) -> float:
    """Messages/s the gateway cannot exceed: one verification per message on each core it
    can use (one per ingest process, no more than this process may run on)."""
    cores = min(len(os.sched_getaffinity(0)), max(1, workers or 1))
    return cores * verify_per_s


def stock_per_device(bound: float, seconds: float, devices: Specs, scale: int = 1, backlog: int = MAX_BACKLOG) -> int:
    """Presigned messages per device: the generators' backlog (sent before the window opens)
    plus the bound's worth for the warm-up and the window."""
    total = backlog + bound * STOCK_MARGIN * scale * (seconds + WARMUP_S)
    return int(total / len(devices)) + 1


def gateway_phase_full_window(devices: Specs, seconds: float, bound: float, records: int = 1,
                              workers: int | None = None, log: Log = None, durability: str = DURABLE,
                              count_fsyncs: bool = False, rate: float | None = None, latency: bool = False,
                              backlog: int = MAX_BACKLOG, alg: int = EDDSA) -> dict[str, Any]:
    """``gateway_phase`` with a stock for ``bound`` msgs/s, doubled and run again while the
    stock ran out before the window ended (at most STOCK_ATTEMPTS runs)."""
    for attempt in range(1, STOCK_ATTEMPTS + 1):
        per_device = stock_per_device(bound, seconds, devices, 2 ** (attempt - 1), backlog)
        out = gateway_phase(devices, seconds, records, workers, log, per_device, durability, count_fsyncs,
                            rate, latency, backlog, alg)
        out["stock_attempts"] = attempt
        if not out["stock_exhausted"]:
            break
        if log:
            log("  the stock of %d messages ran out before the window ended; again with twice as many"
                % (per_device * len(devices)))
    return out


def gateway_phase(devices: Specs, seconds: float, records: int, workers: int | None, log: Log, per_device: int,
                  durability: str = DURABLE, count_fsyncs: bool = False, rate: float | None = None,
                  latency: bool = False, backlog: int = MAX_BACKLOG, alg: int = EDDSA) -> dict[str, Any]:
    """One gateway run over ``seconds``; ``per_device`` presigned messages per device, offered
    flat out or at ``rate`` msgs/s. ``gateway_rss_mib``: the resident memory of the gateway's
    processes at the end of the window. ``backlog``: messages the broker may hold for the
    gateway (loadgen's pacing). With ``latency``, ``stored_s`` and ``ack_s`` list
    (sent at, seconds) per message: from the generator writing it to its socket to its row
    being visible to a reader of the store (polled every PROGRESS_POLL_S), and to its
    end-to-end ack reaching the generator."""
    from edgeledger.gateway.store import Store

    root = tempfile.mkdtemp(prefix="el-bench-gw-")
    gw = None
    trace = os.path.join(root, "fsyncs.txt")
    try:
        with mosquitto.Mosquitto() as broker:
            cfg = _write_site(root, broker.url, devices, workers, durability, alg=alg)
            gens = loadgen.Generators(broker.port, devices, per_device, records=records, max_backlog=backlog,
                                      rate=rate, latency=latency, alg=alg)
            gw = _start_gateway(root, cfg, workers, trace if count_fsyncs else None)
            # the gateway subscribes to r, birth and death: per device with workers, else per site
            # (+1: the $SYS probe itself); only then may the load start, or the broker drops it
            mosquitto.wait_subscriptions(broker.port, 1 + 3 * (len(devices) if workers and workers > 1 else 1))
            st = Store(os.path.join(root, "gateway.db"))
            follower = _Follower(st, gens, latency)
            gens.start()
            if log:
                log("  generators ready (%d messages presigned), measuring %.0f s" % (gens.stock, seconds))
            assert broker.proc is not None  # running inside the with
            rate, exhausted, cpu = _window(follower.stored, seconds, gens, {"gateway": gw.pid,
                                                                           "broker": broker.proc.pid})
            rss = report.tree_rss_mib(gw.pid)
            if gw.poll() is not None:
                raise RuntimeError("the gateway exited with %s:\n%s" % (gw.returncode, _tail(root)))
            t_stop = time.monotonic()
            r = gens.stop()
            drain_s = time.monotonic() - t_stop
            follower.stop()
            outcome = _outcome(st, r)
            if latency:
                outcome.update({"stored_s": _stored_latency(st, follower.seen, r["sent_at"]), "ack_s": r["ack_s"],
                                "go_wall": r["go_wall"]})
            if count_fsyncs:
                outcome.update(_fsyncs(gw, st, trace, r["sent"]))
            st.close()
    finally:
        if gw is not None:
            _stop(gw, [gw.pid])
        shutil.rmtree(root, ignore_errors=True)
    out = dict(cpu, durability=durability, gateway_rss_mib=rss, **outcome)
    out.update({"msgs_per_s": rate, "readings_per_s": rate * records, "sent": r["sent"],
                "acks_per_msg": r["ack_msgs"] / float(max(r["sent"], 1)),
                "drain_s": drain_s, "stock_exhausted": exhausted, "presign_s": r["presign_s"]})
    return out


def _start_gateway(root: str, cfg: str, workers: int | None, trace: str | None) -> subprocess.Popen[bytes]:
    """``edgeledger gateway run`` on ``cfg`` in ``root`` (its log there), under strace counting
    its fsyncs into ``trace`` if one is given."""
    cmd = [sys.executable, "-m", "edgeledger.gateway.cli", "gateway", "run", "--config", cfg]
    if workers:
        cmd += ["--workers", str(workers)]
    if trace is not None:
        cmd = report.fsync_tracer(trace) + cmd
    gw_log = open(os.path.join(root, "gateway.log"), "ab")
    gw = subprocess.Popen(cmd, stdout=gw_log, stderr=subprocess.STDOUT, cwd=root)
    gw_log.close()
    return gw


class _Follower:
    """A thread that copies the store's highest message id into the generators' ``progress``
    (their pacing) every PROGRESS_POLL_S; with ``latency`` it notes in ``seen`` (highest stored
    id, wall time it was first seen)."""

    def __init__(self, st: "Store", gens: loadgen.Generators, latency: bool) -> None:
        self.st, self.gens, self.latency = st, gens, latency
        self.seen: list[tuple[int, float]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def stored(self) -> int:
        return self.st.last_message_id()

    def _follow(self) -> None:
        seen = self.seen
        while not self.done.is_set():
            self.gens.progress.value = n = self.stored()
            if self.latency and (not seen or n > seen[-1][0]):
                seen.append((n, time.time()))
            time.sleep(PROGRESS_POLL_S)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(1)


def _outcome(st: "Store", r: dict[str, Any]) -> dict[str, Any]:
    """What became of the messages the generators sent (report ``r``): ``lost`` (never
    stored), ``duplicated`` (stored twice), ``quarantined``, ``acks_missing`` (devices whose
    last end-to-end ack is below their last seq)."""
    lost = duplicated = 0
    for name, last in r["last_seq"].items():
        rows, distinct = st.seq_counts(name, last)
        duplicated += rows - distinct
        lost += last - distinct
    acks_missing = sum(1 for n, last in r["last_seq"].items() if r["acked"].get(n, 0) < last)
    return {"lost": lost, "duplicated": duplicated, "quarantined": st.count_quarantine(),
            "acks_missing": acks_missing}


def _fsyncs(gw: subprocess.Popen[bytes], st: "Store", trace: str, sent: int) -> dict[str, Any]:
    """Stop the gateway under strace (it saves its counters, strace its summary): its fsyncs,
    commits and messages per fsync."""
    from edgeledger.gateway.ingest.runner import total_counters

    _stop(gw, report.child_pids(gw.pid))
    commits = total_counters(st.load_counters()).get("commits", 0)
    n = report.fsync_count(trace)
    return {"fsyncs": n, "commits": commits, "msgs_per_fsync": sent / float(max(n, 1))}


def _stored_latency(st: "Store", seen: Sequence[tuple[int, float]],
                    sent_at: dict[str, list[float]]) -> list[tuple[float, float]]:
    """(sent at, seconds to visible in the store) of every stored message the generators timed:
    a row is visible from the first poll whose highest id reached its id."""
    import bisect

    ids = [n for n, _ in seen]
    out = []
    for row_id, device, seq in st.message_places():
        times = sent_at.get(device)
        i = bisect.bisect_left(ids, row_id)
        if times and seq <= len(times) and i < len(seen):
            sent = times[seq - 1]
            out.append((sent, seen[i][1] - sent))
    return out


def _stop(gw: subprocess.Popen[bytes], pids: Sequence[int]) -> None:
    """SIGTERM ``pids`` (the gateway, or the gateway under strace), wait for ``gw``."""
    if gw.poll() is not None:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        gw.wait(30)
    except subprocess.TimeoutExpired:
        gw.kill()
        gw.wait()


def _tail(root: str) -> str:
    try:
        with open(os.path.join(root, "gateway.log"), "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")
    except OSError:
        return ""


# -- the suite --------------------------------------------------------------------------

def run(seconds: float = DEFAULT_SECONDS, devices: int = DEFAULT_DEVICES, workers: int | None = None,
        packs: bool = True, log: Log = print, compare_durability: bool = True,
        count_fsyncs: bool = False, alg: str = "EdDSA") -> dict[str, Any]:
    """All phases, with devices signing with ``alg`` (a name in DEVICE_ALGS); returns the flat
    figure dict (see the module docstring)."""
    log = log or (lambda *a: None)
    cose_alg, verify_key = DEVICE_ALGS[alg]
    specs = loadgen.device_specs(devices, alg=cose_alg)
    out: dict[str, Any] = {"seconds": seconds, "devices": devices, "workers": workers, "alg": alg,
                           "machine": report.machine()}
    log("verify-only rates (one core)...")
    out.update(verify_rates(min(1.0, max(0.5, seconds / 10))))
    out["baselines"] = {"ed25519_verify_per_s": out["ed25519_verify_per_s"]}  # report.context's, measured above
    log("load generator alone...")
    out.update(generator_alone(specs, min(GENERATOR_ALONE_S, max(1.0, seconds / 4)), cose_alg))
    log("bare paho subscriber baseline...")
    out.update(bare_subscriber(specs, min(seconds, BASELINE_MAX_S), cose_alg))
    bound = rate_bound(out[verify_key], workers)
    backlog = int(min(MAX_BACKLOG, max(1000, bound * BACKLOG_S)))
    log("gateway, single-reading %s messages (durability %s)..." % (alg, DURABLE))
    single = gateway_phase_full_window(specs, seconds, bound, 1, workers, log, count_fsyncs=count_fsyncs,
                                       backlog=backlog, alg=cose_alg)
    out.update(single)
    out["ratio"] = _ratio(out["msgs_per_s"], out["baseline_msgs_per_s"])
    out["verify_ratio"] = _ratio(out["msgs_per_s"], out[verify_key])
    if packs:
        log("gateway, packs of 10 readings...")
        specs10 = loadgen.device_specs(devices, prefix="pk", alg=cose_alg)
        p = gateway_phase_full_window(specs10, seconds, bound, 10, workers, log, count_fsyncs=count_fsyncs,
                                      backlog=backlog, alg=cose_alg)
        for k, v in p.items():
            out["pack10_" + k] = v
        out["lost"] += p["lost"]
        out["duplicated"] += p["duplicated"]
    if compare_durability:
        log("gateway, single-reading messages (durability %s: not durable across a power cut)..." % NOT_DURABLE)
        specs_c = loadgen.device_specs(devices, prefix="nd", alg=cose_alg)
        c = gateway_phase_full_window(specs_c, seconds, bound, 1, workers, log, NOT_DURABLE, count_fsyncs,
                                      backlog=backlog, alg=cose_alg)
        for k, v in c.items():
            out["crash_only_" + k] = v
        out["durable_vs_crash_only"] = _ratio(out["msgs_per_s"], c["msgs_per_s"])
        out["lost"] += c["lost"]
        out["duplicated"] += c["duplicated"]
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def print_table(r: dict[str, Any], out: Callable[[str], object] = print) -> None:
    rows: list[tuple[object, object, object]] = [
        ("Ed25519 verify only, one core (msgs/s)", r["ed25519_verify_per_s"], "floor of the per-message cost"),
        ("ES256 verify only, one core (msgs/s)", r["es256_verify_per_s"], ""),
        ("SM2 verify only, one core (msgs/s)", r["sm2_verify_per_s"], "GB/T 32918.2 with SM3, tongsuopy"),
        ("load generator alone (msgs/s)", r["generator_alone_msgs_per_s"],
         "%.1fx the gateway" % (_ratio(r["generator_alone_msgs_per_s"], r["msgs_per_s"]) or 0)),
        ("bare paho subscriber, QoS 1 (msgs/s)", r["baseline_msgs_per_s"], "baseline"),
        ("gateway, single %s readings (msgs/s), durability %s" % (r.get("alg", "EdDSA"), r.get("durability", DURABLE)),
         r["msgs_per_s"], "%.2fx baseline, %.2fx one-core %s verify" % (r["ratio"] or 0, r["verify_ratio"] or 0,
                                                                       r.get("alg", "EdDSA"))),
        ("  lost / duplicated / acks missing", "%d / %d / %d" % (r["lost"], r["duplicated"], r["acks_missing"]), ""),
        ("  gateway CPU per message (µs, all its processes)", r["gateway_cpu_us_per_msg"],
         "%.1fx one Ed25519 verify" % (r["gateway_cpu_us_per_msg"] * r["ed25519_verify_per_s"] / 1e6)),
        ("  broker CPU per message (µs)", r["broker_cpu_us_per_msg"], ""),
        ("  machine busy during the window", "%.0f%%" % (100 * r["machine_busy"]), "all cores"),
    ]
    if "pack10_msgs_per_s" in r:
        rows += [("gateway, packs of 10 (msgs/s)", r["pack10_msgs_per_s"], ""),
                 ("gateway, packs of 10 (readings/s)", r["pack10_readings_per_s"],
                  "%.2fx baseline msgs/s" % (_ratio(r["pack10_readings_per_s"], r["baseline_msgs_per_s"]) or 0))]
    if "crash_only_msgs_per_s" in r:
        rows += [("gateway, single readings (msgs/s), durability %s (NOT durable)" % NOT_DURABLE,
                  r["crash_only_msgs_per_s"], "durable / not durable = %.2f" % (r["durable_vs_crash_only"] or 0))]
    for prefix, label in (("", "single readings"), ("crash_only_", "not durable"), ("pack10_", "packs of 10")):
        if prefix + "fsyncs" in r:
            rows.append(("  fsyncs / commits, %s" % label, "%d / %d" % (r[prefix + "fsyncs"], r[prefix + "commits"]),
                         "%.1f messages per fsync" % r[prefix + "msgs_per_fsync"]))
    report.table("ingest: %d devices, %.0f s, gateway workers %s" % (r["devices"], r["seconds"], r["workers"] or 1),
                 rows, out)
    report.print_context(r, out)


def main(args: argparse.Namespace) -> int:
    r = run(seconds=args.seconds, devices=args.devices, workers=args.workers, packs=not args.no_packs,
            log=None if args.json else print, compare_durability=not args.no_durability_compare,
            count_fsyncs=args.count_fsyncs, alg=args.alg)
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print_table(r)
    return 0 if r["lost"] == 0 and r["duplicated"] == 0 else 1

"""``edgeledger bench anchor``: what anchoring costs on chain and how long it takes.

On anvil (``--hardfork london``) with ``--block-time`` (default 1 s) blocks, using the
product's Batcher (gateway/batcher.py) and JsonRpcLedger, never a shortcut:

* ``gas_per_batch`` / ``gas_per_reading`` at each ``--sizes`` (1k, 10k, 100k readings):
  one anchor transaction per batch whatever its size, so gas per reading falls as
  1/size. Each size runs on a fresh contract, after one warm-up batch, so the measured
  batch is a steady-state one (not the cheaper first batch of a gateway).
* ``baseline_gas_per_reading``: anchoring every reading in its own transaction
  (batches of 1, steady state); ``ratio`` = gas_per_reading at the largest size /
  baseline.
* ``anchors_per_min``: anchoring transactions confirmed per minute by one gateway
  (one account, batches in order, ``max_in_flight`` 8), from a backlog of small batches.
* ``p50/p95/p99_latency_s``: reading creation (its record time) to anchored and
  confirmed (2 confirmations), with ``max_age_s = --batch-age``, readings signed
  and put through the real Pipeline at ~200/s. Target: p95 <= batch age + 3 blocks.

Synthetic message rows are used for the size runs (the batcher hashes whatever bytes
are stored; signing 100k messages would only slow the bench down).
"""
import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.anchor.lifecycle import ANCHORED
from edgeledger.gateway.bench import report
from edgeledger.gateway.bench.anvil import Anvil

if TYPE_CHECKING:
    from edgeledger.gateway.anchor.batcher import Batcher
    from edgeledger.gateway.anchor.ledger import JsonRpcLedger
    from edgeledger.gateway.store import Store

ANCHOR_TIMEOUT_S = 120.0
STEP_S = 0.2
THROUGHPUT_BATCHES = 40
LATENCY_DEVICES = 10
LATENCY_RATE = 200.0  # readings/s fed during the latency run
CONFIRMATIONS = 2


def _store(root: str, name: str) -> "Store":
    from edgeledger.gateway.store import Store

    return Store(os.path.join(root, name + ".db"))


def _insert_synthetic(store: "Store", first_seq: int, n: int, now: float | None = None) -> None:
    from edgeledger.gateway.store import MessageRow

    now = time.time() if now is None else now
    rows = [MessageRow("bench-dev", s, b"\0" * 32, b"\1" * 32, 1, b"\2" * 16, now, now, now, b"msg %012d" % s + b"." * 140)
            for s in range(first_seq, first_seq + n)]
    with store.lock:
        store.begin()
        store.insert_messages(rows)
        store.commit()


def _anchor_all(batcher: "Batcher", timeout: float = ANCHOR_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while batcher.backlog():
        if time.monotonic() > deadline:
            raise RuntimeError("batches still not anchored after %.0f s" % timeout)
        if not batcher.step():
            time.sleep(STEP_S)


def _gas_of(store: "Store", ledger: "JsonRpcLedger", number: int) -> int:
    batch = store.batch(number)
    if batch is None or batch.tx_hash is None:
        raise RuntimeError("batch %d has no anchoring transaction" % number)
    gas: int = ledger.receipt(bytes(batch.tx_hash))["gasUsed"]
    return gas


def gas_for_size(node: Anvil, root: str, size: int) -> tuple[int, float]:
    """(gas of one steady-state batch of ``size`` readings, seconds to build its tree)."""
    from edgeledger.gateway.anchor.batcher import Batcher

    ledger = node.ledger()
    st = _store(root, "size-%d" % size)
    b = Batcher(st, ledger, max_size=size, confirmations=1)
    _insert_synthetic(st, 1, 1)
    b.close_due(force=True)  # warm-up batch 1
    _insert_synthetic(st, 2, size)
    t0 = time.perf_counter()
    b.close_due()
    build_s = time.perf_counter() - t0
    _anchor_all(b)
    gas = _gas_of(st, ledger, 2)
    st.close()
    return gas, build_s


def baseline_gas(node: Anvil, root: str, n: int = 4) -> float:
    """Gas per reading when each reading is anchored by its own transaction (steady state)."""
    from edgeledger.gateway.anchor.batcher import Batcher

    ledger = node.ledger()
    st = _store(root, "baseline")
    b = Batcher(st, ledger, max_size=1, confirmations=1)
    _insert_synthetic(st, 1, n)
    b.close_due()
    _anchor_all(b)
    gases = [_gas_of(st, ledger, k) for k in range(2, n + 1)]
    st.close()
    return sum(gases) / float(len(gases))


def anchors_per_minute(node: Anvil, root: str, batches: int = THROUGHPUT_BATCHES) -> float:
    from edgeledger.gateway.anchor.batcher import Batcher

    ledger = node.ledger()
    st = _store(root, "throughput")
    b = Batcher(st, ledger, max_size=10, confirmations=CONFIRMATIONS)
    _insert_synthetic(st, 1, 10 * batches)
    b.close_due()
    t0 = time.monotonic()
    _anchor_all(b, timeout=ANCHOR_TIMEOUT_S * 3)
    elapsed = time.monotonic() - t0
    st.close()
    return batches * 60.0 / elapsed


def latency(node: Anvil, root: str, batch_age: float, seconds: float,
            log: Callable[[str], object] | None = None) -> dict[str, Any]:
    """Percentiles of reading creation -> anchored with CONFIRMATIONS, through the Pipeline."""
    from edgeledger.gateway.anchor import thread as anchoring
    from edgeledger.gateway.config import BatchConfig
    from edgeledger.gateway.bench import loadgen
    from edgeledger.gateway.ingest.pipeline import Pipeline
    from edgeledger.gateway.registry import Registry
    from edgeledger.protocols.cose import EDDSA

    ledger = node.ledger()
    st = _store(root, "latency")
    reg = Registry(st)
    devices = [loadgen.DeviceChain(name, seed) for name, seed in loadgen.device_specs(LATENCY_DEVICES, "lat")]
    for d in devices:
        reg.register(d.name, loadgen.SITE, EDDSA, d.public_key, d.kid)
    pipe = Pipeline(st, reg)
    bt = anchoring.BatcherThread(st.path, ledger, BatchConfig(max_size=100000, max_age_s=batch_age), CONFIRMATIONS)
    bt.start()
    try:
        interval = len(devices) / LATENCY_RATE
        t_end = time.monotonic() + seconds
        next_t = time.monotonic()
        while time.monotonic() < t_end:
            for d in devices:
                msg = d.next()
                pipe.process(d.topic, msg)
            pipe.commit()
            next_t += interval
            time.sleep(max(0.0, next_t - time.monotonic()))
        fed = sum(d.seq for d in devices)
        deadline = time.monotonic() + batch_age + ANCHOR_TIMEOUT_S
        while True:
            anchored = st.messages_in_batches(ANCHORED)
            if anchored >= fed:
                break
            if time.monotonic() > deadline or bt.error:
                raise RuntimeError("only %d of %d readings anchored (%s)" % (anchored, fed, bt.error))
            time.sleep(0.1)
    finally:
        bt.stop()
    lat = st.reading_latencies()
    nb = st.count_batches()
    st.close()
    return {"p50_latency_s": _pct(lat, 50), "p95_latency_s": _pct(lat, 95), "p99_latency_s": _pct(lat, 99),
            "latency_readings": len(lat), "latency_batches": nb}


def _pct(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def run(sizes: Sequence[int] = (1000, 10000, 100000), batch_age: float = 5.0, latency_seconds: float = 30.0,
        block_time: int = 1, log: Callable[[str], object] | None = print) -> dict[str, Any]:
    log = log or (lambda *a: None)
    root = tempfile.mkdtemp(prefix="el-bench-anchor-")
    out: dict[str, Any] = {"sizes": list(sizes), "block_time_s": block_time, "batch_age_s": batch_age, **report.context()}
    try:
        with Anvil(block_time=block_time) as node:
            log("baseline: one transaction per reading...")
            out["baseline_gas_per_reading"] = baseline_gas(node, root)
            by: dict[int, dict[str, float]] = {}
            for size in sizes:
                log("one batch of %d readings..." % size)
                gas, build_s = gas_for_size(node, root, size)
                by[size] = {"gas_per_batch": gas, "gas_per_reading": gas / float(size), "tree_build_s": build_s}
            out["by_size"] = dict((str(k), v) for k, v in by.items())
            top = max(sizes)
            out["gas_per_batch"] = by[top]["gas_per_batch"]
            out["gas_per_reading"] = by[top]["gas_per_reading"]
            out["ratio"] = out["gas_per_reading"] / out["baseline_gas_per_reading"]
            log("anchoring throughput (%d batches)..." % THROUGHPUT_BATCHES)
            out["anchors_per_min"] = anchors_per_minute(node, root)
            log("latency, batch age %.1f s, %.0f s of readings..." % (batch_age, latency_seconds))
            out.update(latency(node, root, batch_age, latency_seconds))
            out["latency_target_s"] = batch_age + 3 * block_time
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def print_table(r: dict[str, Any], out: Callable[[str], object] = print) -> None:
    rows: list[tuple[object, object, object]] = [
        ("anchor gas, one reading per transaction", r["baseline_gas_per_reading"], "baseline")]
    for size in r["sizes"]:
        s = r["by_size"][str(size)]
        rows.append(("batch of %d: gas per batch" % size, s["gas_per_batch"],
                     "tree built in %.2f s" % s["tree_build_s"]))
        rows.append(("batch of %d: gas per reading" % size, s["gas_per_reading"],
                     "%.2g x baseline" % (s["gas_per_reading"] / r["baseline_gas_per_reading"])))
    rows += [("anchoring transactions per minute", r["anchors_per_min"], "one gateway account"),
             ("latency p50 (s)", r["p50_latency_s"], "reading created -> anchored, %d confirmations" % CONFIRMATIONS),
             ("latency p95 (s)", r["p95_latency_s"], "target <= %.1f s (batch age + 3 blocks)" % r["latency_target_s"]),
             ("latency p99 (s)", r["p99_latency_s"], "%d readings in %d batches" % (r["latency_readings"],
                                                                                   r["latency_batches"]))]
    report.table("anchor: anvil, %d s blocks, batch age %.1f s" % (r["block_time_s"], r["batch_age_s"]), rows, out)
    report.print_context(r, out)


def main(args: argparse.Namespace) -> int:
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    r = run(sizes, args.batch_age, args.latency_seconds, args.block_time, log=None if args.json else print)
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print_table(r)
    return 0

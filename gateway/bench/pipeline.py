"""``edgeledger bench pipeline``: the gateway's CPU per message, in process, next to one
Ed25519 verification measured in the same run.

No broker and no MQTT: presigned chained messages of one registered device go through
``Pipeline.process`` (every check of docs/architecture.md: decoding, canonical form,
payload rules, key window, signature, chain) and ``Pipeline.commit`` in groups of
``COMMIT_GROUP``, into a fresh SQLite store. The figure is this process's CPU time
(``time.process_time``: the fsync a commit waits for is not CPU) divided by the messages;
the share spent in ``commit`` is reported beside it.
The baseline is one Ed25519 verification with PyNaCl's public API (``VerifyKey.verify``)
of the same Sig_structure bytes, timed the same way, between the pipeline runs.

Two phases: single readings, and packs of 10 readings per message. Each is run
``--repeats`` times (a fresh store and device each time) and the median is reported, so
the ratio is of two figures measured minutes apart at most on the same machine.
``--profile N`` adds the top N functions of a cProfile run of each phase (by own time).
What the MQTT receive path costs on top is ``bench ingest``'s figure.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import tempfile
import time
from typing import Any, Callable

from nacl.signing import VerifyKey

from edgeledger.gateway.bench import loadgen, report
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry, signatures
from edgeledger.gateway.store import Store
from edgeledger.protocols import cose
from edgeledger.protocols.cose import verify as cose_verify

DEFAULT_MESSAGES = 3000
DEFAULT_REPEATS = 3
# Messages per commit: the MQTT service commits what arrived within 5 ms (service.py
# GROUP_WINDOW_S), about 100 messages at 20,000 msg/s; like the service, which saves its counters
# once a second (COUNTER_SAVE_S), the run saves them with its last commit only.
COMMIT_GROUP = 100
PACK = 10  # readings per message in the packs phase (issue 17's pack figure)
# Record time of the presigned readings and the gateway clock of the run (fixed: the run
# takes the same path whenever it starts).
T0 = 1_790_000_000.0


def _presign(count: int, records: int) -> tuple[loadgen.DeviceChain, list[bytes]]:
    dev = loadgen.DeviceChain("bench-pipe", os.urandom(32))
    return dev, [dev.next(records=records, t=T0) for _ in range(count)]


def _run_once(count: int, records: int, profile: cProfile.Profile | None = None) -> tuple[float, float]:
    """CPU µs per message of one pipeline run over ``count`` fresh messages: all of it, and
    the part spent in ``commit``."""
    root = tempfile.mkdtemp(prefix="el-bench-pipe-")
    try:
        store = Store(os.path.join(root, "gateway.db"))
        try:
            dev, msgs = _presign(count, records)
            registry = Registry(store)
            pub = dev.public_key
            registry.register(dev.name, loadgen.SITE, cose.EDDSA, pub, signatures.key_id(pub), valid_from=0)
            pipe = Pipeline(store, registry)
            topic = dev.topic
            if profile is not None:
                profile.enable()
            in_commit = 0.0
            clock = time.process_time
            t0 = clock()
            for i, m in enumerate(msgs):
                pipe.process(topic, m, received_at=T0)
                if i % COMMIT_GROUP == COMMIT_GROUP - 1 or i == count - 1:
                    c0 = clock()
                    pipe.commit(save_counters=i == count - 1)  # as the service: counters once a second
                    in_commit += clock() - c0
            cpu = clock() - t0
            if profile is not None:
                profile.disable()
            stored = store.count_messages()
            if stored != count:
                raise RuntimeError("expected %d messages stored, found %d" % (count, stored))
        finally:
            store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return cpu / count * 1e6, in_commit / count * 1e6


def _verify_us(count: int, records: int) -> float:
    """CPU µs of one Ed25519 verification (PyNaCl) of a message like the phase's."""
    dev, msgs = _presign(1, records)
    msg = cose_verify.parse_sign1(msgs[0])
    vk = VerifyKey(dev.public_key)
    tbs, sig = msg.to_be_signed(), msg.signature
    t0 = time.process_time()
    for _ in range(count):
        vk.verify(tbs, sig)
    return (time.process_time() - t0) / count * 1e6


def _profile_top(count: int, records: int, top: int) -> str:
    prof = cProfile.Profile()
    _run_once(count, records, prof)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run(messages: int = DEFAULT_MESSAGES, repeats: int = DEFAULT_REPEATS, profile: int = 0,
        log: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """The figures as a dict (keys in docs/benchmarks.md)."""
    out: dict[str, Any] = {"messages": messages, "repeats": repeats, "commit_group": COMMIT_GROUP,
                           "pack_records": PACK, "machine": report.machine()}
    busy0 = report.machine_busy()
    for name, records in (("single", 1), ("pack10", PACK)):
        pipe_us, commit_us, verify_us = [], [], []
        for _ in range(repeats):
            verify_us.append(_verify_us(messages, records))
            total, in_commit = _run_once(messages, records)
            pipe_us.append(total)
            commit_us.append(in_commit)
        us, v = statistics.median(pipe_us), statistics.median(verify_us)
        out[name + "_us_per_msg"] = us
        out[name + "_commit_us_per_msg"] = statistics.median(commit_us)
        out[name + "_ed25519_verify_us"] = v
        out[name + "_ratio"] = us / v
        out[name + "_msgs_per_s"] = 1e6 / us
        out[name + "_readings_per_s"] = records * 1e6 / us
        if profile and log is not None:
            log("cProfile, %s (%d messages, top %d by own time):" % (name, messages, profile))
            log(_profile_top(messages, records, profile))
    out["ed25519_verify_us"] = statistics.median([out["single_ed25519_verify_us"], out["pack10_ed25519_verify_us"]])
    out["ed25519_verify_per_s"] = 1e6 / out["ed25519_verify_us"]
    busy1 = report.machine_busy()
    total = busy1[1] - busy0[1]
    out["machine_busy"] = (busy1[0] - busy0[0]) / total if total else None
    return out


def print_table(r: dict[str, Any], out: Callable[[str], Any] = print) -> None:
    rows = [
        ("one Ed25519 verification (µs CPU, PyNaCl)", r["ed25519_verify_us"], "baseline, same run"),
        ("pipeline, single readings (µs CPU per message)", r["single_us_per_msg"],
         "%.2fx one verification" % r["single_ratio"]),
        ("  of which in commit (µs)", r["single_commit_us_per_msg"], "groups of %d" % r["commit_group"]),
        ("  messages/s on one core", r["single_msgs_per_s"],
         "%.2fx one core's verify rate" % (r["single_msgs_per_s"] / r["ed25519_verify_per_s"])),
        ("pipeline, packs of %d (µs CPU per message)" % r["pack_records"], r["pack10_us_per_msg"],
         "%.2fx one verification" % r["pack10_ratio"]),
        ("  of which in commit (µs)", r["pack10_commit_us_per_msg"], ""),
        ("  readings/s on one core", r["pack10_readings_per_s"], ""),
        ("machine busy during the run", "%.0f%%" % (100 * (r["machine_busy"] or 0)), "all cores"),
    ]
    report.table("pipeline: %d messages per run, median of %d, commit every %d"
                 % (r["messages"], r["repeats"], r["commit_group"]), rows, out)


def main(args: argparse.Namespace) -> int:
    r = run(messages=args.messages, repeats=args.repeats, profile=0 if args.json else args.profile)
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print_table(r)
    return 0

"""``edgeledger gateway run``: wire the store, registry, pipeline and MQTT service.

``--workers N`` (N >= 2) runs N ingest worker processes beside this one, which keeps
the batcher. Worker k owns the devices whose ``zlib.crc32(device id) % N == k`` and
subscribes to exactly their topics (service.py ``owns``), so each device's messages
reach one process in order and its chain state lives there. The workers share the
SQLite store (WAL; commits serialise on its write lock, so message ids stay contiguous
in commit order) and keep their counters under ``<name>@w<k>``. A worker that dies is
started again; the broker redelivers what it had not PUBACKed. Messages from devices
that are not registered are not subscribed to in this mode: confine devices with the
broker ACL (``edgeledger broker config``), which refuses such publishes at the broker.
"""
import logging
import multiprocessing
import signal
import threading
import time
import zlib

from edgeledger.gateway import anchoring, config, keystore, ratelimit
from edgeledger.gateway.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.service import IngestService
from edgeledger.gateway.store import Store

log = logging.getLogger("edgeledger.gateway")


# How often the parent checks that its workers are alive.
WORKER_CHECK_S = 0.5
WORKER_STOP_TIMEOUT_S = 30.0


class _WorkerCounters:
    """The store as one worker sees it: its counters live under ``<name>@w<k>``."""

    def __init__(self, store, index):
        self._store = store
        self._suffix = "@w%d" % index

    def load_counters(self):
        n = len(self._suffix)
        return dict((k[:-n], v) for k, v in self._store.load_counters().items() if k.endswith(self._suffix))

    def save_counters(self, counters):
        self._store.save_counters(dict((k + self._suffix, v) for k, v in counters.items()))

    def __getattr__(self, name):
        return getattr(self._store, name)


def owner(device, workers):
    """The worker index that owns ``device`` among ``workers``."""
    return zlib.crc32(device.encode()) % workers


def build(cfg, worker=None):
    """Store and IngestService; ``worker=(k, n)`` builds worker k of n."""
    # Refuse to start with a secret (TLS key, MQTT password, ledger keystore) others can read.
    keystore.check_secret_files(cfg)
    store = Store(cfg["store"], cfg["synchronous"])
    registry = Registry(store)
    owns, client_id = None, cfg["client_id"]
    pstore = store
    if worker is not None:
        k, n = worker
        owns = lambda device: owner(device, n) == k  # noqa: E731
        client_id = "%s-w%d" % (client_id, k)
        pstore = _WorkerCounters(store, k)
    pipeline = Pipeline(pstore, registry, max_message_bytes=int(cfg["max_message_bytes"]),
                        clock_skew_s=float(cfg["clock_skew_s"]),
                        rate_limiter=ratelimit.from_config(cfg),
                        quarantine=ratelimit.quarantine_bound(store, cfg))
    mq = cfg.get("mqtt", {})
    password = None
    if mq.get("password_file"):
        with open(mq["password_file"]) as f:
            password = f.read().strip()
    service = IngestService(pipeline, cfg["broker"], client_id, sites=cfg["sites"], owns=owns,
                            username=mq.get("username"), password=password,
                            ca_file=mq.get("ca_file"), cert_file=mq.get("cert_file"),
                            key_file=mq.get("key_file"))
    return store, service


def _worker_main(config_path, k, n):
    """One ingest worker process (k of n): runs until SIGTERM."""
    cfg = config.load(config_path)
    store, service = build(cfg, worker=(k, n))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    service.start()
    try:
        while not stop.is_set():
            stop.wait(0.2)
    finally:
        service.stop()
        store.close()


class _Workers:
    """N worker processes, restarted if one dies."""

    def __init__(self, config_path, n):
        self.config_path, self.n = config_path, n
        self.ctx = multiprocessing.get_context("spawn")
        self.procs = [None] * n

    def _start(self, k):
        p = self.ctx.Process(target=_worker_main, args=(self.config_path, k, self.n), name="ingest-w%d" % k)
        p.start()
        self.procs[k] = p

    def start(self):
        for k in range(self.n):
            self._start(k)

    def check(self):
        for k, p in enumerate(self.procs):
            if p is not None and not p.is_alive():
                log.error("ingest worker %d exited with %s; starting it again", k, p.exitcode)
                self._start(k)

    def stop(self):
        for p in self.procs:
            if p is not None and p.is_alive():
                p.terminate()  # SIGTERM: the worker commits, PUBACKs and disconnects
        for p in self.procs:
            if p is not None:
                p.join(WORKER_STOP_TIMEOUT_S)
                if p.is_alive():
                    p.kill()
                    p.join()


def _stop_on_signals():
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    return stop


def _start_anchoring(cfg, store):
    """The configured ledger and a running batcher thread, or (None, None) without a ledger."""
    ledger = anchoring.open_ledger(cfg, store)
    if ledger is None:
        return None, None
    lc = cfg.get("ledger") or {}
    own = cfg["sites"] if lc.get("backend", "embedded") == "embedded" else None
    batcher = anchoring.BatcherThread(cfg["store"], ledger, cfg.get("batch") or {},
                                      lc.get("confirmations", 2), cfg["synchronous"], own_sites=own)
    batcher.start()
    return ledger, batcher


def total_counters(counters):
    """Sum per-worker counters (``name@wK``) into plain names."""
    out = {}
    for name, value in counters.items():
        base = name.split("@", 1)[0]
        out[base] = out.get(base, 0) + value
    return out


def main(config_path, duration_s=None, workers=None):
    if workers is not None and workers > 1:
        return _main_workers(config_path, duration_s, workers)
    cfg = config.load(config_path)
    store, service = build(cfg)
    stop = _stop_on_signals()
    ledger, batcher = _start_anchoring(cfg, store)
    service.start()
    print("gateway %s: store %s, broker %s, ledger %s" % (
        cfg["gateway_id"], cfg["store"], cfg["broker"],
        "%s contract %s" % (ledger.name, ledger.address) if ledger else "none"), flush=True)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    finally:
        service.stop()
        if batcher is not None:
            batcher.stop()
        c = service.pipeline.counters
        print("gateway %s: received %d, stored %d, duplicates %d, rejected %d"
              % (cfg["gateway_id"], c["received"], c["stored"], c["duplicates"], c["rejected"]), flush=True)
        store.close()
    return 0


def _main_workers(config_path, duration_s, n):
    cfg = config.load(config_path)
    keystore.check_secret_files(cfg)
    store = Store(cfg["store"], cfg["synchronous"])
    stop = _stop_on_signals()
    ledger, batcher = _start_anchoring(cfg, store)
    workers = _Workers(config_path, n)
    workers.start()
    print("gateway %s: store %s, broker %s, %d ingest workers, ledger %s" % (
        cfg["gateway_id"], cfg["store"], cfg["broker"], n,
        "%s contract %s" % (ledger.name, ledger.address) if ledger else "none"), flush=True)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(WORKER_CHECK_S)
            if not stop.is_set():
                workers.check()
    finally:
        workers.stop()
        if batcher is not None:
            batcher.stop()
        c = dict((name, 0) for name in ("received", "stored", "duplicates", "rejected"))
        c.update(total_counters(store.load_counters()))
        print("gateway %s: received %d, stored %d, duplicates %d, rejected %d"
              % (cfg["gateway_id"], c["received"], c["stored"], c["duplicates"], c["rejected"]), flush=True)
        store.close()
    return 0

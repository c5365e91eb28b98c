"""``edgeledger gateway run``: wire the store, registry, pipeline and MQTT service.

``--workers N`` (N >= 2) runs N ingest worker processes beside this one, which keeps
the batcher. Worker k owns the devices whose ``zlib.crc32(device id) % N == k`` and
subscribes to exactly their topics (service.py ``owns``), so each device's messages
reach one process in order and its chain state lives there. The workers share the
SQLite store (WAL; commits serialise on its write lock, so message ids stay contiguous
in commit order) and keep their counters under ``<name>@w<k>``. A worker that dies is
started again, counted (``worker_restarts``) and recorded as an event for ``gateway
status``; the broker redelivers what it had not PUBACKed. Messages from devices
that are not registered are not subscribed to in this mode: confine devices with the
broker ACL (``edgeledger broker config``), which refuses such publishes at the broker.

Workers die with their parent: each asks the kernel for SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), and a watcher thread also ends it when its parent
process changes (other systems, and a parent that died before the prctl). A killed
gateway therefore leaves no worker behind to fight a new one over its MQTT client id.

The gateway starts and ingests while the ledger's node is unreachable: anchoring
starts when the node answers (anchor/thread.py).
"""
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import zlib
from multiprocessing.process import BaseProcess
from typing import Any, cast

from edgeledger.gateway import config
from edgeledger.gateway.anchor import BatcherThread, keystore, open_ledger
from edgeledger.gateway.anchor.ledger import Ledger, LedgerUnavailable
from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.errors import ConfigError, StoreError
from edgeledger.gateway.ingest import quarantine, ratelimit
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.ingest.service import IngestService
from edgeledger.gateway.observe import logs
from edgeledger.gateway.observe.run import Observers
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import hashes

log = logging.getLogger("edgeledger.gateway")


# How often the parent checks that its workers are alive.
WORKER_CHECK_S = 0.5
WORKER_STOP_TIMEOUT_S = 30.0
# How often a worker's watcher thread checks that its parent is still the same process.
PARENT_CHECK_S = 0.5
# prctl(2) option: the signal the kernel sends this process when its parent dies.
PR_SET_PDEATHSIG = 1


class _WorkerCounters:
    """The store as one worker sees it: its counters live under ``<name>@w<k>``."""

    def __init__(self, store: Store, index: int) -> None:
        self._store = store
        self._suffix = "@w%d" % index

    def load_counters(self) -> dict[str, int]:
        n = len(self._suffix)
        return dict((k[:-n], v) for k, v in self._store.load_counters().items() if k.endswith(self._suffix))

    def save_counters(self, counters: dict[str, int]) -> None:
        self._store.save_counters(dict((k + self._suffix, v) for k, v in counters.items()))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def owner(device: str, workers: int) -> int:
    """The worker index that owns ``device`` among ``workers``."""
    return zlib.crc32(device.encode()) % workers


def check_deployment_hash(store: Store, cfg: GatewayConfig) -> int:
    """The id of ``cfg.deployment_hash``, recorded in the store the first time. Raises
    ConfigError if the store was started with another one: its stored digests (the links
    devices name as prev) and its batches' trees are of that hash."""
    recorded = store.ledger_meta().get("deployment_hash")
    if recorded is None and store.last_message_id():
        recorded = hashes.NAMES[hashes.SHA256]  # a store from before the setting: SHA-256
    if recorded is not None and recorded != cfg.deployment_hash:
        raise ConfigError("deployment_hash: this store's chains and trees are hashed with %r, gateway.toml says %r; "
                          "a deployment keeps its hash (start a new store for another)"
                          % (recorded, cfg.deployment_hash))
    try:
        hashes.function(cfg.hash_alg)
    except hashes.UnknownHash as e:
        raise ConfigError("deployment_hash %r: %s" % (cfg.deployment_hash, e)) from e
    if recorded is None:
        store.set_ledger_meta({"deployment_hash": cfg.deployment_hash})
    return cfg.hash_alg


def build(cfg: GatewayConfig, worker: tuple[int, int] | None = None) -> tuple[Store, IngestService]:
    """Store and IngestService; ``worker=(k, n)`` builds worker k of n."""
    # Refuse to start with a secret (TLS key, MQTT password, ledger keystore) others can read.
    keystore.check_secret_files(cfg)
    store = Store(cfg.store, cfg.sqlite_synchronous)
    registry = Registry(store)
    owns, client_id = None, cfg.mqtt_client_id
    pstore = store
    if worker is not None:
        k, n = worker
        owns = lambda device: owner(device, n) == k  # noqa: E731
        client_id = "%s-w%d" % (client_id, k)
        pstore = cast(Store, _WorkerCounters(store, k))  # the store, its counters under their own names
    pipeline = Pipeline(pstore, registry, max_message_bytes=cfg.max_message_bytes, clock_skew_s=cfg.clock_skew_s,
                        rate_limiter=ratelimit.from_config(cfg.ratelimit),
                        quarantine=quarantine.quarantine_bound(store, cfg.quarantine),
                        accept_restarts=cfg.chain.accept_restarts, chain_alg=check_deployment_hash(store, cfg))
    mq = cfg.mqtt
    service = IngestService(pipeline, cfg.broker, client_id, sites=cfg.sites, owns=owns, username=mq.username,
                            password=mq.password(), ca_file=mq.ca_file, cert_file=mq.cert_file, key_file=mq.key_file)
    return store, service


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` does: PR_SET_PDEATHSIG (Linux), and a
    watcher thread for other systems and for a parent that died before the prctl."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except OSError as e:
            log.warning("prctl(PR_SET_PDEATHSIG) unavailable: %s", e)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os.kill(os.getpid(), signal.SIGKILL)  # the parent is gone: nothing here is acknowledged unstored

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_main(config_path: str, k: int, n: int, parent_pid: int | None = None,
                 log_level: int = logging.WARNING) -> None:
    """One ingest worker process (k of n): runs until SIGTERM or its parent's death; logs
    at its parent's level (a spawned process starts with no logging set up)."""
    logs.configure_level(log_level)
    if parent_pid is not None:
        die_with_parent(parent_pid)
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
    """N worker processes, restarted if one dies (counted in the store)."""

    def __init__(self, config_path: str, n: int, store: Store | None = None) -> None:
        self.config_path, self.n = config_path, n
        self.store = store
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[BaseProcess | None] = [None] * n
        self.restarts = 0

    def _start(self, k: int) -> None:
        p = self.ctx.Process(target=_worker_main, args=(self.config_path, k, self.n, os.getpid(),
                                                        logging.getLogger().level),
                             name="ingest-w%d" % k)
        p.start()
        self.procs[k] = p

    def start(self) -> None:
        for k in range(self.n):
            self._start(k)

    def check(self) -> None:
        for k, p in enumerate(self.procs):
            if p is not None and not p.is_alive():
                self.restarts += 1
                log.error("ingest worker %d exited with %s; starting it again", k, p.exitcode)
                self._start(k)
                self._count(k, p.exitcode)

    def _count(self, k: int, exitcode: int | None) -> None:
        if self.store is None:
            return
        try:
            with self.store.transaction("counting a worker restart"):
                saved = self.store.load_counters().get("worker_restarts", 0)
                self.store.save_counters({"worker_restarts": saved + 1})
            self.store.record_event("worker_restart", "ingest worker %d exited with %s and was started again"
                                    % (k, exitcode))
        except StoreError as e:
            log.warning("worker restart not recorded: %s", e)

    def stop(self) -> None:
        for p in self.procs:
            if p is not None and p.is_alive():
                p.terminate()  # SIGTERM: the worker commits, PUBACKs and disconnects
        for p in self.procs:
            if p is not None:
                p.join(WORKER_STOP_TIMEOUT_S)
                if p.is_alive():
                    p.kill()
                    p.join()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    return stop


def _start_anchoring(cfg: GatewayConfig, store: Store) -> tuple[Ledger | None, BatcherThread | None]:
    """The configured ledger (None while its node is unreachable) and a running batcher
    thread, or (None, None) without a ledger. Raises ConfigError (and LedgerError other
    than an unreachable node) at once."""
    lc = cfg.ledger
    if lc.backend == "none":
        return None, None
    own = cfg.sites if lc.backend == "embedded" else None
    try:
        ledger = open_ledger(cfg, store)
    except LedgerUnavailable:
        ledger = None  # the batcher thread says so once and opens it when the node answers
    batcher = BatcherThread(cfg.store, ledger, cfg.batch, lc.confirmations, cfg.sqlite_synchronous,
                            finality=lc.finality_blocks, opener=lambda st: open_ledger(cfg, st), own_sites=own,
                            tree_alg=cfg.hash_alg)
    batcher.start()
    return ledger, batcher


def _start_upkeep(cfg: GatewayConfig) -> Any:
    """The broker upkeep thread (upkeep.py: retained readings, revoked sessions), or None
    when ``[upkeep] enabled = false``."""
    from edgeledger.gateway.ingest.upkeep import BrokerUpkeep

    if not cfg.upkeep.enabled:
        return None
    return BrokerUpkeep(cfg).start()


def _ledger_text(cfg: GatewayConfig, ledger: Ledger | None) -> str:
    if ledger is not None:
        return "%s contract %s" % (ledger.name, ledger.address)
    if cfg.ledger.backend == "none":
        return "none"
    return "unreachable (anchoring starts when it answers)"


def _served(observers: Observers) -> str:
    return "".join(", " + url for url in observers.urls)


def total_counters(counters: dict[str, int]) -> dict[str, int]:
    """Sum per-worker counters (``name@wK``) into plain names."""
    out: dict[str, int] = {}
    for name, value in counters.items():
        base = name.split("@", 1)[0]
        out[base] = out.get(base, 0) + value
    return out


def main(config_path: str, duration_s: float | None = None, workers: int | None = None) -> int:
    if workers is not None and workers > 1:
        return _main_workers(config_path, duration_s, workers)
    cfg = config.load(config_path)
    store, service = build(cfg)
    observers = Observers(cfg)
    stop = _stop_on_signals()
    ledger, batcher = _start_anchoring(cfg, store)
    service.start()
    upkeep = _start_upkeep(cfg)
    print("gateway %s: store %s, broker %s, ledger %s%s" % (
        cfg.gateway_id, cfg.store, cfg.broker, _ledger_text(cfg, ledger), _served(observers)), flush=True)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
            observers.tick(time.monotonic())
    finally:
        observers.stop()
        if upkeep is not None:
            upkeep.stop()
        service.stop()
        if batcher is not None:
            batcher.stop()
        c = service.pipeline.counters
        print("gateway %s: received %d, stored %d, duplicates %d, rejected %d"
              % (cfg.gateway_id, c["received"], c["stored"], c["duplicates"], c["rejected"]), flush=True)
        store.close()
    return 0


def _main_workers(config_path: str, duration_s: float | None, n: int) -> int:
    cfg = config.load(config_path)
    keystore.check_secret_files(cfg)
    store = Store(cfg.store, cfg.sqlite_synchronous)
    observers = Observers(cfg)
    stop = _stop_on_signals()
    ledger, batcher = _start_anchoring(cfg, store)
    workers = _Workers(config_path, n, store)
    workers.start()
    upkeep = _start_upkeep(cfg)
    print("gateway %s: store %s, broker %s, %d ingest workers, ledger %s%s" % (
        cfg.gateway_id, cfg.store, cfg.broker, n, _ledger_text(cfg, ledger), _served(observers)), flush=True)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(WORKER_CHECK_S)
            if not stop.is_set():
                workers.check()
                observers.tick(time.monotonic())
    finally:
        observers.stop()
        if upkeep is not None:
            upkeep.stop()
        workers.stop()
        if batcher is not None:
            batcher.stop()
        c = dict((name, 0) for name in ("received", "stored", "duplicates", "rejected"))
        c.update(total_counters(store.load_counters()))
        print("gateway %s: received %d, stored %d, duplicates %d, rejected %d"
              % (cfg.gateway_id, c["received"], c["stored"], c["duplicates"], c["rejected"]), flush=True)
        store.close()
    return 0

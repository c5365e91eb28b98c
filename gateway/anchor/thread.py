"""The batcher thread beside the ingest service: ``BatcherThread`` runs ``Batcher.step`` on its
own store connection until stopped, supervised.

The gateway starts and ingests while the node is unreachable: the thread opens the ledger
when the node answers (``opener``, and says once that it waits), then anchors the backlog in
order. A store that cannot be written (full disk) is said once and tried again; a ledger
error is logged when it changes, not at every step; an unexpected exception is logged with
its traceback, counted (``batcher_restarts``, shown by ``gateway status``) and the batcher
starts again after a growing delay. On its own (embedded) chain the thread authorizes the
gateway and registers the registry's keys; on every chain it carries key ends to it
(keysync.py).
"""
import logging
import threading
import time
from typing import Any, Callable

from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.connect import owned_sites
from edgeledger.gateway.anchor.ledger import EmbeddedLedger, LedgerError, LedgerUnavailable
from edgeledger.gateway.config import BatchConfig
from edgeledger.gateway.errors import ConfigError, GatewayError, StoreError
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import DEFAULT_SYNCHRONOUS, Store
from edgeledger.protocols import hashes
from edgeledger.protocols.repeats import Repeats, repeated

log = logging.getLogger("edgeledger.anchoring")
STEP_INTERVAL_S = 0.2
# While the node is unreachable at start, opening the ledger is tried again this often.
OPEN_RETRY_S = 2.0
# A store write that failed (full disk) is tried again this often.
STORE_RETRY_S = 1.0
# The batcher's counters go to the store this often (and when it stops).
COUNTER_SAVE_S = 1.0
# After an unexpected exception the batcher starts again after RESTART_DELAY_S, doubled
# per death in a row up to MAX_RESTART_DELAY_S.
RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 60.0
# How often the batcher thread carries key ends to the chain (keysync.push_key_ends): a
# revocation or rotation already stops ingest at once in the registry; the chain copy is for
# verifiers, for whom seconds do not matter. It costs one eth_call per changed key.
KEY_PUSH_INTERVAL_S = 5.0
# How far the embedded chain's clock may run ahead of the wall clock before the batcher stops
# mining blocks for confirmations. py-evm stamps a block max(parent + 1, now), so five blocks a
# second run its time ahead by four seconds a second; unchecked, a key registered on it an hour
# later would open its window far in the future and refuse the readings of now. Well inside the
# key window's clock slack (protocols/keywindow.py CLOCK_SLACK_S, 300 s); a minute is more than
# the demo's start-up transactions (deploy, authorize, one registration per device) put it ahead.
EMBEDDED_CLOCK_LEAD_S = 60.0


class _Repeats:
    """Logs a ledger error at once, when its text changes, and while it stays the same
    less and less often with a count (protocols/repeats.py)."""

    def __init__(self) -> None:
        self._gate = Repeats()

    def log(self, text: str, key: str | None = None, level: int = logging.ERROR, prefix: str = "batcher: ") -> None:
        """Say ``text`` if it is due; ``key`` names the failure when the text varies between
        repeats (an unreachable node's error holds object addresses)."""
        unsaid = self._gate.say(text if key is None else key, time.monotonic())
        if unsaid is not None:
            log.log(level, "%s%s%s", prefix, text, repeated(unsaid))

    def clear(self) -> None:
        self._gate.clear()


class BatcherThread:
    """Runs ``Batcher.step`` on its own store connection until stopped, supervised.

    ``ledger`` may be None with ``opener``: a callable (store -> ledger) that raises
    LedgerUnavailable until the node answers; the thread calls it until it succeeds.

    ``own_sites`` (gateway.toml ``sites``) when the gateway owns its chain (the embedded
    one): the thread then authorizes the gateway for every site it serves, and registers
    every registry key on it, as they appear. On every chain it carries key ends
    (revocations, rotations, sealed last seqs) from the registry to the chain.
    """

    def __init__(self, store_path: str, ledger: Any, batch_cfg: BatchConfig, confirmations: int,
                 synchronous: str = DEFAULT_SYNCHRONOUS, finality: int | None = None,
                 opener: Callable[[Store], Any] | None = None, own_sites: list[str] | None = None,
                 tree_alg: int = hashes.DEFAULT) -> None:
        self.store = Store(store_path, synchronous)
        self.registry = Registry(self.store)
        # Memories of what was sent to the chain: one entry per registry key or site at most.
        self._pushed: dict[Any, Any] = {}  # keysync.push_key_ends' memory of the key ends it sent
        self._next_key_push = 0.0
        self._own_sites = own_sites
        self._authorized: set[str] = set()  # sites this gateway authorized itself for on its own chain
        self._registered: set[bytes] = set()  # kids registered on its own chain
        self._synced = False
        self.ledger = ledger
        self.opener = opener
        self.batch_cfg = batch_cfg
        self.tree_alg = tree_alg  # the deployment's tree hash (protocols/hashes.py id)
        self.confirmations = int(confirmations)
        self.finality = finality
        self.counters = {"batcher_restarts": 0}
        self.batcher: Batcher | None = None
        self._stop = threading.Event()
        self.error: Exception | None = None
        self._down_since: float | None = None
        self._errors = _Repeats()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        if ledger is not None:
            self._make_batcher()

    def _make_batcher(self) -> None:
        b = Batcher(self.store, self.ledger,
                    max_size=self.batch_cfg.max_size, max_age_s=self.batch_cfg.max_age_s,
                    confirmations=self.confirmations, finality=self.finality, tree_alg=self.tree_alg)
        saved = self.store.load_counters()
        for name in list(b.counters) + list(self.counters):
            value = saved.get(name, 0)
            if name in b.counters:
                b.counters[name] = max(b.counters[name], value)
            else:
                self.counters[name] = max(self.counters[name], value)
        if self.batcher is not None:  # a restart: keep what this process counted
            for name, value in self.batcher.counters.items():
                b.counters[name] = max(b.counters.get(name, 0), value)
        self.batcher = b

    def _open(self) -> bool:
        """Try the opener once; True when the ledger is open."""
        if self.opener is None:
            return False
        try:
            self.ledger = self.opener(self.store)
        except LedgerUnavailable as e:
            if self.error is None:
                self._down_since = time.time()
                self.store.set_anchor_state("unreachable", "ledger unreachable since start: %s" % e)
            self._errors.log("ledger unreachable (%s): ingesting; anchoring starts when it answers" % e,
                             "unreachable", logging.WARNING, "")
            self.error = e
            return False
        except (ConfigError, LedgerError) as e:
            log.error("anchoring stopped: %s", e)
            self.store.set_anchor_state("halted", str(e))
            self.store.record_event("anchor_halted", str(e))
            self.opener = None
            self.error = e
            return False
        self._errors.clear()
        log.warning("ledger %s contract %s reachable: anchoring", self.ledger.name, self.ledger.address)
        self.store.set_anchor_state("ok", "ledger reachable")
        if self._down_since is not None:
            self.store.record_event("ledger_back", "the ledger was unreachable at start; reachable %.0f s later, "
                                    "anchoring the backlog" % (time.time() - self._down_since))
        self.error = None
        self._make_batcher()
        return True

    def _save_counters(self) -> None:
        if self.batcher is None:
            return
        with self.store.transaction("saving the batcher's counters"):
            self.store.save_counters(dict(self.batcher.counters, **self.counters))

    def _run(self) -> None:
        delay = RESTART_DELAY_S
        store_failed = None
        last_save = 0.0
        while not self._stop.is_set():
            moved = False
            try:
                if self.batcher is None:
                    if self.opener is None or not self._open():
                        self._stop.wait(OPEN_RETRY_S)
                        continue
                self._keep_own_chain_in_step()  # first: on its own chain the gateway authorizes itself
                self._push_key_ends()
                assert self.batcher is not None  # made by _open() above
                moved = self.batcher.step()
                self._mine_for_confirmations()
                if time.monotonic() - last_save >= COUNTER_SAVE_S:
                    self._save_counters()
                    last_save = time.monotonic()
                self._errors.clear()
                if store_failed is not None:
                    log.warning("batcher: the store is writable again after %.0f s", time.monotonic() - store_failed)
                    store_failed = None
            except StoreError as e:
                if store_failed is None:
                    store_failed = time.monotonic()
                    log.error("batcher: %s; batches wait until the store can be written (tried every %.0f s)",
                              e, STORE_RETRY_S)
                self._stop.wait(STORE_RETRY_S)
                continue
            except LedgerError as e:
                self._errors.log(str(e), "unreachable" if isinstance(e, LedgerUnavailable) else None)
                self.error = e
            except Exception as e:  # a bug: say it, count it, start again
                self.counters["batcher_restarts"] += 1
                log.exception("batcher died (%d so far); starting it again in %.0f s",
                              self.counters["batcher_restarts"], delay)
                try:
                    self.store.record_event("batcher_restart", "%s: %s" % (type(e).__name__, e))
                    if self.ledger is not None:
                        self._make_batcher()
                except StoreError:
                    pass
                if self._stop.wait(delay):
                    break
                delay = min(2 * delay, MAX_RESTART_DELAY_S)
                continue
            if not moved:
                self._stop.wait(STEP_INTERVAL_S)

    def _mine_for_confirmations(self) -> bool:
        """A chain that mines only on transactions (the in-process one, anvil without a block
        time): while batches wait, add a block so confirmations come as they would on a real
        chain; the embedded chain's clock is kept within EMBEDDED_CLOCK_LEAD_S of ours.
        Returns True if it mined."""
        if self.batcher is None:
            return False
        ledger: Any = self.batcher.ledger
        if not (getattr(ledger, "mines_on_demand", False) and self.batcher.backlog()):
            return False
        if isinstance(ledger, EmbeddedLedger) and ledger.head_time() > time.time() + EMBEDDED_CLOCK_LEAD_S:
            return False
        ledger.mine(1)
        return True

    def _push_key_ends(self) -> None:
        """Now and then: seal rotated-out keys whose overlap ended and carry key ends (revocations,
        rotations, sealed last seqs) the registry has and the chain lacks to the chain."""
        now = time.monotonic()
        if self.batcher is None or now < self._next_key_push:
            return
        self._next_key_push = now + KEY_PUSH_INTERVAL_S
        try:
            self.registry.reload_if_changed()
            sent = keysync.push_key_ends(self.registry, self.batcher.ledger, self._pushed)
        except StoreError:
            raise
        except GatewayError as e:  # the ledger is away, or refused: the next round tries again
            log.warning("key ends not carried to the chain yet: %s", e)
            return
        if sent:
            log.info("carried %d key end(s) to the chain", sent)

    def _keep_own_chain_in_step(self) -> None:
        """On its own chain (``own_sites``), at every step: authorize the gateway for a site that
        appeared in the registry and register new keys, before anything is anchored. A look at
        the registry's data version when nothing changed."""
        if self.batcher is None or self._own_sites is None or (
                not self.registry.reload_if_changed() and self._synced):
            return
        self._synced = True
        ledger = self.batcher.ledger
        for site in owned_sites(self._own_sites, self.registry):
            if site not in self._authorized:
                ledger.authorize_gateway(site, ledger.account)
                self._authorized.add(site)
        if any(k.kid not in self._registered for k in self.registry.keys()):
            keysync.sync_chain(self.registry, ledger, known=self._registered)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            self._save_counters()
        except StoreError as e:
            log.warning("batcher: counters not saved at stop: %s", e)
        self.store.close()

"""Open the configured ledger and run the batcher beside the ingest service.

``[ledger]`` in gateway.toml::

    backend = "embedded"        # py-evm in this process: demos and trials; the chain lives
                                # in memory and is re-created (and re-anchored) on restart
    backend = "jsonrpc"         # any Ethereum JSON-RPC endpoint
    url = "http://127.0.0.1:8545"
    contract = "0x..."          # the deployed EdgeLedgerAnchor (or deploy = true once)
    keystore_file = "gateway.keystore.json"   # encrypted (edgeledger gateway keygen)
    passphrase_file = "gateway.passphrase"    # or passphrase_env = "VAR"; mode 0600
    key_file = "gateway.ethkey" # alternatively a plain hex key, mode 0600 (test chains)
    confirmations = 2
"""
import logging
import threading
import time


from edgeledger.gateway import keystore, provision
from edgeledger.gateway.batcher import Batcher
from edgeledger.gateway.errors import ConfigError, GatewayError
from edgeledger.gateway.ledger import EmbeddedLedger, JsonRpcLedger, LedgerError
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store

log = logging.getLogger("edgeledger.anchoring")
STEP_INTERVAL_S = 0.2
# How often the batcher thread carries key ends to the chain (provision.push_key_ends): a
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


def open_ledger(cfg, store):
    """The configured ledger with the contract attached, or None for ``backend = "none"``."""
    lc = cfg.get("ledger") or {}
    backend = lc.get("backend", "embedded")
    if backend == "none":
        return None
    if backend == "embedded":
        ledger = EmbeddedLedger()
        ledger.deploy(owner_key=ledger.key)
        _adopt(store, ledger, fresh_chain=True)
        # The in-memory chain is new on every start: the batcher thread authorizes the gateway
        # for its sites and registers the registry's keys on it (BatcherThread, ``own_sites``).
        return ledger
    if backend != "jsonrpc":
        raise ConfigError("ledger backend must be embedded, jsonrpc or none, got %r" % (backend,))
    key = keystore.account_key(lc)
    if "url" not in lc or key is None:
        raise ConfigError("[ledger] backend jsonrpc needs url and keystore_file (or key_file)")
    ledger = JsonRpcLedger(lc["url"], key=key)
    if lc.get("contract"):
        ledger.attach(lc["contract"])
    elif lc.get("deploy"):
        ledger.deploy(owner_key=ledger.key)
        for site in owned_sites(cfg, Registry(store)):
            ledger.authorize_gateway(site, ledger.account)
        log.warning("deployed EdgeLedgerAnchor at %s: put contract = %r into [ledger]", ledger.address, ledger.address)
    else:
        raise ConfigError("[ledger] needs contract = \"0x...\" (or deploy = true)")
    _adopt(store, ledger, fresh_chain=False)
    return ledger


def owned_sites(cfg: dict, registry: Registry) -> list[str]:
    """The sites a gateway that deploys its own contract authorizes itself for: those named in
    ``sites``, or with ``"+"`` the sites of the devices in its registry."""
    named = [s for s in cfg.get("sites", ["+"]) if s != "+"]
    if "+" in cfg.get("sites", ["+"]):
        named += [registry.site_of(d) for d in registry.devices()]
    return sorted(set(named))


def _adopt(store, ledger, fresh_chain):
    meta = store.ledger_meta()
    new = {"backend": ledger.name, "chain_id": ledger.chain_id, "contract": ledger.address,
           "gateway": ledger.account}
    if meta and (meta.get("contract") != ledger.address or meta.get("gateway") != ledger.account):
        anchored = store.db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        if anchored and not fresh_chain:
            raise ConfigError("this store's batches belong to contract %s / gateway %s, not %s / %s"
                              % (meta.get("contract"), meta.get("gateway"), ledger.address, ledger.account))
        if anchored:
            # The embedded chain lives in memory: anchor every batch again on the new one.
            log.warning("embedded ledger re-created: re-anchoring %d batches", anchored)
            with store.lock:
                store.db.execute("DELETE FROM batches")
    store.set_ledger_meta(new)


class BatcherThread:
    """Runs ``Batcher.step`` on its own store connection until stopped."""

    def __init__(self, store_path, ledger, batch_cfg, confirmations, synchronous="NORMAL", own_sites=None):
        """``own_sites`` (gateway.toml ``sites``) when the gateway owns its chain (the embedded
        one): the thread then authorizes the gateway for every site it serves, and registers
        every registry key on it, as they appear."""
        self.store = Store(store_path, synchronous)
        self.registry = Registry(self.store)
        # Memories of what was sent to the chain: one entry per registry key or site at most.
        self._pushed = {}  # provision.push_key_ends' memory of the key ends it sent
        self._next_key_push = 0.0
        self._own_sites = own_sites
        self._authorized = set()  # sites this gateway authorized itself for on its own chain
        self._registered = set()  # kids registered on its own chain
        self._synced = False
        self.batcher = Batcher(self.store, ledger,
                               max_size=int(batch_cfg.get("max_size", 10000)),
                               max_age_s=float(batch_cfg.get("max_age_s", 10.0)),
                               confirmations=int(confirmations))
        self._stop = threading.Event()
        self.error = None
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self._keep_own_chain_in_step()  # first: on its own chain the gateway authorizes itself
                self._push_key_ends()
                moved = self.batcher.step()
            except LedgerError as e:
                log.error("batcher: %s", e)
                self.error = e
                moved = False
            self._mine_for_confirmations()
            if not moved:
                self._stop.wait(STEP_INTERVAL_S)

    def _mine_for_confirmations(self) -> bool:
        """The in-process chain mines only on transactions: while batches wait, add a block so
        confirmations come as they would on a real chain, but keep its clock within
        EMBEDDED_CLOCK_LEAD_S of ours. Returns True if it mined."""
        ledger = self.batcher.ledger
        if (isinstance(ledger, EmbeddedLedger) and self.batcher.backlog()
                and ledger.head_time() <= time.time() + EMBEDDED_CLOCK_LEAD_S):
            ledger.mine(1)
            return True
        return False

    def _push_key_ends(self) -> None:
        """Now and then: seal rotated-out keys whose overlap ended and carry key ends (revocations,
        rotations, sealed last seqs) the registry has and the chain lacks to the chain."""
        now = time.monotonic()
        if now < self._next_key_push:
            return
        self._next_key_push = now + KEY_PUSH_INTERVAL_S
        try:
            self.registry.reload_if_changed()
            sent = provision.push_key_ends(self.registry, self.batcher.ledger, self._pushed)
        except GatewayError as e:  # the ledger is away, or refused: the next round tries again
            log.warning("key ends not carried to the chain yet: %s", e)
            return
        if sent:
            log.info("carried %d key end(s) to the chain", sent)

    def _keep_own_chain_in_step(self) -> None:
        """On its own chain (``own_sites``), at every step: authorize the gateway for a site that
        appeared in the registry and register new keys, before anything is anchored. A look at
        the registry's data version when nothing changed."""
        if self._own_sites is None or (not self.registry.reload_if_changed() and self._synced):
            return
        self._synced = True
        ledger = self.batcher.ledger
        for site in owned_sites({"sites": self._own_sites}, self.registry):
            if site not in self._authorized:
                ledger.authorize_gateway(site, ledger.account)
                self._authorized.add(site)
        if any(k.kid not in self._registered for k in self.registry.keys()):
            provision.sync_chain(self.registry, ledger, known=self._registered)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        self.store.close()

"""Open the ledger gateway.toml's ``[ledger]`` names: for the running gateway (``open_ledger``)
and for an operator command in another process (``ledger_for_operator``).

``[ledger]`` in gateway.toml (config/schema.py ``LedgerConfig``)::

    backend = "embedded"        # py-evm in this process: demos and trials; the chain lives
                                # in memory and is re-created (and re-anchored) on restart
    backend = "jsonrpc"         # any Ethereum JSON-RPC endpoint
    url = "http://127.0.0.1:8545"
    contract = "0x..."          # the deployed EdgeLedgerAnchor (`edgeledger site init` writes it)
    keystore_file = "gateway.keystore.json"   # encrypted (edgeledger gateway keygen)
    passphrase_file = "gateway.passphrase"    # or passphrase_env = "VAR"; mode 0600
    key_file = "gateway.ethkey" # alternatively a plain hex key, mode 0600 (test chains)
    confirmations = 2           # blocks before a batch counts as anchored (proofs served)
    finality = 64               # blocks before it is final; until then it is re-checked and
                                # anchored again if a reorg removed it (default: 64, two
                                # Ethereum epochs; a BFT chain (QBFT, IBFT) is final at once:
                                # set it to the confirmations)

A node that mines only when a transaction arrives (anvil without ``--block-time``) would
never confirm the last batch: the ledger is then marked ``mines_on_demand`` and the batcher
thread mines an empty block (``evm_mine``) while a batch waits, as on the embedded chain.
"""
import logging

from edgeledger.gateway.anchor import keystore
from edgeledger.gateway.anchor.ledger import EmbeddedLedger, JsonRpcLedger, Ledger
from edgeledger.gateway.config import GatewayConfig, LedgerConfig
from edgeledger.gateway.errors import ConfigError
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store

log = logging.getLogger("edgeledger.anchoring")


def open_ledger(cfg: GatewayConfig, store: Store) -> Ledger | None:
    """The configured ledger with the contract attached, or None for ``backend = "none"``.
    Raises ConfigError (a bad ``[ledger]``, or a store anchored elsewhere), KeystoreError,
    LedgerUnavailable (the node does not answer: try again later), LedgerError."""
    lc = cfg.ledger
    if lc.backend == "none":
        return None
    if lc.backend == "embedded":
        embedded = EmbeddedLedger()
        embedded.deploy(owner_key=embedded.key)
        _adopt(store, embedded, fresh_chain=True)
        # The in-memory chain is new on every start: the batcher thread authorizes the gateway
        # for its sites and registers the registry's keys on it (BatcherThread, ``own_sites``).
        return embedded
    if not lc.contract:
        # The gateway never deploys on its own: a contract deployed at every start with an
        # empty store (the old ``deploy = true``) would split a site's anchors over contracts
        # no verifier pins. `edgeledger site init` deploys once and writes the address here.
        raise ConfigError("[ledger] backend jsonrpc: expected contract = \"0x...\", found %s; run `edgeledger "
                          "site init` (it deploys or adopts the contract and writes its address here)"
                          % ("deploy = true, which no longer deploys at start" if lc.deploy else "none"))
    ledger = _jsonrpc(lc)
    ledger.attach(lc.contract)
    _adopt(store, ledger, fresh_chain=False)
    if ledger.mines_only_on_transactions():
        ledger.mines_on_demand = True
        log.warning("the node at %s mines a block only when a transaction arrives (anvil without --block-time): "
                    "the gateway mines an empty block while a batch waits for its confirmations", lc.url)
    return ledger


def ledger_for_operator(cfg: GatewayConfig) -> tuple[JsonRpcLedger | None, str]:
    """(ledger or None, a note saying which) for an operator command (provision, revoke,
    rotate, sync-chain) from a resolved gateway.toml.

    Only a ``jsonrpc`` ledger is reachable from another process; the ``embedded`` chain
    lives inside the gateway process (the gateway pushes the registry to it, keysync.py).
    Raises ConfigError, KeystoreError, LedgerError."""
    lc = cfg.ledger
    if lc.backend == "none":
        return None, "no ledger configured: gateway registry only"
    if lc.backend == "embedded":
        return None, ("ledger backend embedded lives in the gateway process: the gateway registers "
                      "the key on its chain (sync_chain)")
    if not lc.url or not lc.contract:
        raise ConfigError("[ledger] backend jsonrpc: expected url and contract")
    ledger = _jsonrpc(lc)
    ledger.attach(lc.contract)
    return ledger, "ledger %s contract %s" % (lc.url, ledger.address)


def _jsonrpc(lc: LedgerConfig) -> JsonRpcLedger:
    """A JsonRpcLedger signing with the account key ``lc`` names (no contract attached yet)."""
    key = keystore.account_key(lc)
    if lc.url is None or key is None:
        raise ConfigError("[ledger] backend jsonrpc: expected url and keystore_file (or key_file) for the gateway "
                          "account")
    return JsonRpcLedger(lc.url, key=key)


def owned_sites(sites: list[str], registry: Registry) -> list[str]:
    """The sites a gateway that deploys its own contract authorizes itself for: those named in
    ``sites`` (gateway.toml), or with ``"+"`` the sites of the devices in its registry."""
    named = [s for s in sites if s != "+"]
    if "+" in sites:
        named += [site for site in (registry.site_of(d) for d in registry.devices()) if site is not None]
    return sorted(set(named))


def _adopt(store: Store, ledger: Ledger, fresh_chain: bool) -> None:
    """Record which chain, contract and account this store's batches are anchored with.
    Raises ConfigError for a store whose batches belong to another contract or account
    (on a fresh embedded chain they are anchored again instead)."""
    meta = store.ledger_meta()
    new = {"backend": ledger.name, "chain_id": ledger.chain_id, "contract": ledger.address,
           "gateway": ledger.account}
    if meta.get("contract") and (meta.get("contract") != ledger.address or meta.get("gateway") != ledger.account):
        anchored = store.count_batches()
        if anchored and not fresh_chain:
            raise ConfigError("this store's batches belong to contract %s / gateway %s, not %s / %s"
                              % (meta.get("contract"), meta.get("gateway"), ledger.address, ledger.account))
        if anchored:
            # The embedded chain lives in memory: anchor every batch again on the new one.
            log.warning("embedded ledger re-created: re-anchoring %d batches", anchored)
            store.delete_batches()
    store.set_ledger_meta(new)

"""Anchor what a test stored, on an in-process ledger, without a batcher thread."""
from typing import NamedTuple

from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store

MAX_STEPS = 20  # batcher steps to reach the count: each closes, sends or confirms a batch


def anchor_stored(store, ledger, count):
    """Record the ledger in ``store`` and step a batcher (confirmations 1) until ``count``
    stored messages are anchored; fails the test if they are not within MAX_STEPS steps."""
    store.set_ledger_meta({"chain_id": ledger.chain_id, "contract": ledger.address, "gateway": ledger.account})
    batcher = Batcher(store, ledger, max_size=100, max_age_s=0, confirmations=1)
    for _ in range(MAX_STEPS):
        batcher.step()
        if batcher.anchored_messages() == count:
            return
    raise AssertionError("%d of %d messages anchored after %d batcher steps"
                         % (batcher.anchored_messages(), count, MAX_STEPS))


class ChainSite(NamedTuple):
    """A store, its registry and pipeline, and an embedded chain on which ``devices``' keys are
    registered; ``t0`` is a reading time inside every key's window."""

    store: Store
    registry: Registry
    pipeline: Pipeline
    ledger: EmbeddedLedger
    t0: float


def chain_site(path, devices):
    """A new store at ``path`` whose gateway may write on a new embedded chain for the first
    device's site, with ``devices`` registered in both (the pipeline accepts any record time)."""
    ledger = EmbeddedLedger()
    ledger.deploy(ledger.new_funded_key())
    ledger.authorize_gateway(devices[0].site, ledger.account)
    store = Store(path)
    registry = Registry(store)
    pipeline = Pipeline(store, registry, clock_skew_s=10 ** 9)
    for d in devices:
        d.register(registry)
    keysync.sync_chain(registry, ledger)
    return ChainSite(store, registry, pipeline, ledger, registry.key(devices[0].signer.kid).chain_time + 10)

"""Anchor what a test stored, on an in-process ledger, without a batcher thread."""
from edgeledger.gateway.anchor.batcher import Batcher

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

"""Anchoring: Merkle batches of stored messages, anchored in order on a ledger and followed to
finality.

``batcher.py``       close batches, send their anchor transactions, follow receipts, reorgs,
                     nonce gaps and finality (``Batcher.step``);
``lifecycle.py``     the batch lifecycle: its states and every transition, as one table;
``thread.py``        ``BatcherThread``: the batcher beside the ingest service, supervised;
``connect.py``       open the ledger gateway.toml's ``[ledger]`` names;
``keysync.py``       carry the registry's keys and their ends to the contract's key registry;
``keystore.py``      the gateway's ledger account key, encrypted (Ethereum keystore);
``ledger/``          the backends (embedded py-evm, JSON-RPC) and the anchor contract's calls;
``embedded_rpc.py``  ``eth_getProof`` over the embedded chain, for the light client;
``contracts/``       EdgeLedgerAnchor.sol and its committed compiler output.
"""
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.connect import ledger_for_operator, open_ledger, owned_sites
from edgeledger.gateway.anchor.thread import BatcherThread

__all__ = ["Batcher", "BatcherThread", "ledger_for_operator", "open_ledger", "owned_sites"]

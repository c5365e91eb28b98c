"""Ledger backends: anchor batch headers in the EdgeLedgerAnchor contract (DESIGN.md §6).

Two backends, one interface (``Ledger``):

* ``EmbeddedLedger()`` — py-evm through eth-tester, in-process (demo, unit tests). Every
  transaction is mined at once.
* ``JsonRpcLedger(url)`` — any Ethereum JSON-RPC endpoint (anvil in the tests; Besu, Energy
  Web Chain, ... in production).

``transport.py`` is the JSON-RPC side (signing, nonces, fees, sending, receipts);
``contract.py`` the contract's calls on top of it; ``artifact.py`` the committed compiler
output and revert decoding; ``errors.py`` the errors every library error becomes.
"""
from edgeledger.gateway.anchor.ledger.artifact import (
    ARTIFACT_PATH,
    CONTRACT_VERSION,
    decode_revert,
    known_code_hashes,
    load_artifact,
)
from edgeledger.gateway.anchor.ledger.contract import (
    ANCHOR_GAS,
    AUTHORIZE_GAS,
    END_KEY_GAS,
    KEY_FLAG_LAST_SEQ,
    KEY_FLAG_REVOKED,
    KEY_FLAG_ROTATED,
    OPEN_SEQ,
    REGISTER_KEY_GAS,
    Ledger,
    intrinsic_gas,
)
from edgeledger.gateway.anchor.ledger.embedded import EmbeddedLedger
from edgeledger.gateway.anchor.ledger.errors import (
    AnchorRejected,
    ArtifactError,
    ContractReverted,
    KeyRejected,
    LedgerUnavailable,
    NonceConflict,
    ReceiptTimeout,
    TransactionFailed,
)
from edgeledger.gateway.anchor.ledger.jsonrpc import JsonRpcLedger
from edgeledger.gateway.anchor.ledger.transport import DEPLOY_GAS, TRANSFER_GAS, PreparedTx, Transport
from edgeledger.gateway.errors import LedgerError

__all__ = [
    "ANCHOR_GAS", "ARTIFACT_PATH", "AUTHORIZE_GAS", "CONTRACT_VERSION", "DEPLOY_GAS", "END_KEY_GAS",
    "KEY_FLAG_LAST_SEQ", "KEY_FLAG_REVOKED", "KEY_FLAG_ROTATED", "OPEN_SEQ", "REGISTER_KEY_GAS", "TRANSFER_GAS",
    "AnchorRejected", "ArtifactError", "ContractReverted", "EmbeddedLedger", "JsonRpcLedger", "KeyRejected", "Ledger",
    "LedgerError", "LedgerUnavailable", "NonceConflict", "PreparedTx", "ReceiptTimeout", "TransactionFailed",
    "Transport", "decode_revert", "intrinsic_gas", "known_code_hashes", "load_artifact",
]

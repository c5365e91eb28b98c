"""The ledger backends' errors: every web3, eth-tester and requests error is translated into
one of these (or LedgerError, the root gateway/errors.py names) where it enters our code."""
from typing import Any

from edgeledger.gateway.errors import LedgerError


class LedgerUnavailable(LedgerError):
    """The node cannot be reached (connection refused, timeout, HTTP failure)."""


class ContractReverted(LedgerError):
    """The contract reverted; ``name`` and ``values`` hold the decoded custom error."""

    def __init__(self, name: str, values: dict[str, Any], data: bytes = b"", action: str = "call") -> None:
        self.name = name
        self.values = values
        self.data = data
        self.action = action
        detail = ", ".join("%s=%s" % (k, _fmt(v)) for k, v in values.items())
        LedgerError.__init__(self, "%s reverted: %s(%s)" % (action, name, detail))


class AnchorRejected(ContractReverted):
    """``anchor`` reverted: OutOfOrder, PrevMismatch, NotGateway, BadTimeRange."""


class KeyRejected(ContractReverted):
    """A key registry call reverted: KeyExists, UnknownKey, NotAuthorized, ..."""


class TransactionFailed(LedgerError):
    """A transaction was mined with status 0 and its revert reason could not be replayed."""


class ReceiptTimeout(LedgerError):
    """No receipt within the deadline; the transaction may still be mined later."""


class NonceConflict(LedgerError):
    """The nonce was used by a different transaction (another process shares the key)."""


class ArtifactError(LedgerError):
    """The compiled contract artifact is missing or unreadable."""


def _fmt(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    return repr(v)


"""What anchoring costs on a chain now, and how many batches an account's balance pays for.

Nothing here is a guess: the fee is read from the node (``eth_feeHistory``: the next block's
base fee; plus the priority fee the gateway signs with, ``Transport.current_fees``; on a chain
without a base fee, ``eth_gasPrice``), and the gas of one anchor is the node's
``eth_estimateGas`` of the gateway's next anchor call. Before the contract exists, or while
the gateway may not anchor yet, the estimate cannot be made: the gas *limit* the gateway signs
an anchor with (``ANCHOR_GAS``) stands in, and ``Funding.gas_measured`` says so (an upper
bound: unused gas is not charged).

A transaction is only accepted when the account holds its gas limit times its maximum fee
(``FeeQuote.max_fee``), so ``Funding.can_anchor`` checks that, not the average cost.

Raises LedgerUnavailable (the node does not answer) and LedgerError from the ledger.
"""
import time
from dataclasses import dataclass

from edgeledger.gateway.anchor.ledger import ANCHOR_GAS, AUTHORIZE_GAS, DEPLOY_GAS, JsonRpcLedger, LedgerUnavailable
from edgeledger.gateway.errors import LedgerError
from edgeledger.protocols.batch import TREE_SHA256

WEI_PER_ETH = 10**18
# A dummy root for the estimate: anchor() stores it, so a non-zero word costs what a real one does.
_ESTIMATE_ROOT = b"\x5a" * 32


@dataclass(frozen=True)
class FeeQuote:
    """Fees of a transaction sent now: ``price`` wei per gas it is expected to pay,
    ``max_fee`` wei per gas it must be able to pay, ``source`` how ``price`` was read."""

    price: int
    max_fee: int
    source: str


@dataclass(frozen=True)
class Funding:
    """An account's balance against the cost of one anchor batch at current fees."""

    address: str
    balance: int
    gas: int  # gas of one anchor
    gas_measured: bool  # False: the gas limit stands in (no estimate possible yet)
    quote: FeeQuote

    @property
    def per_batch(self) -> int:
        """Wei one anchor batch costs at current fees."""
        return self.gas * self.quote.price

    @property
    def batches(self) -> int:
        """Anchor batches the balance pays for at current fees."""
        return self.balance // max(1, self.per_batch)

    @property
    def can_anchor(self) -> bool:
        """True if the node would accept an anchor transaction from the account now."""
        return self.balance >= ANCHOR_GAS * self.quote.max_fee

    def describe(self) -> str:
        """One line: the balance, what a batch costs and how it was measured."""
        return "%s holds %s: %d anchor batches at %s each (%d gas%s x %s gwei/gas, %s)" % (
            self.address, eth(self.balance), self.batches, eth(self.per_batch), self.gas,
            "" if self.gas_measured else " (the gas limit: no estimate before the gateway may anchor)",
            _gwei(self.quote.price), self.quote.source)


def eth(wei: int) -> str:
    """``wei`` in the chain's native coin, e.g. "0.000120 ETH"."""
    return "%.6f ETH" % (wei / WEI_PER_ETH)


def _gwei(wei: int) -> str:
    return "%.3f" % (wei / 10**9)


def fee_quote(ledger: JsonRpcLedger) -> FeeQuote:
    """The fees a transaction pays now. Raises LedgerUnavailable, LedgerError."""
    fees = ledger.current_fees()  # what the gateway signs with: EIP-1559 or a legacy gas price
    if "maxFeePerGas" not in fees:
        price = int(ledger.raw_request("eth_gasPrice", []), 16)
        return FeeQuote(price, max(price, int(fees["gasPrice"])), "eth_gasPrice")
    try:
        history = ledger.raw_request("eth_feeHistory", ["0x1", "latest", []])
        next_base = int(history["baseFeePerGas"][-1], 16)  # the last entry is the next block's
        source = "eth_feeHistory base fee %s gwei + tip %s gwei" % (
            _gwei(next_base), _gwei(int(fees["maxPriorityFeePerGas"])))
    except LedgerUnavailable:
        raise
    except (LedgerError, KeyError, IndexError, TypeError, ValueError):
        next_base = int(ledger.raw_request("eth_gasPrice", []), 16) - int(fees["maxPriorityFeePerGas"])
        source = "eth_gasPrice (no eth_feeHistory)"
    price = min(int(fees["maxFeePerGas"]), max(0, next_base) + int(fees["maxPriorityFeePerGas"]))
    return FeeQuote(price, int(fees["maxFeePerGas"]), source)


def anchor_gas(ledger: JsonRpcLedger) -> tuple[int, bool]:
    """(gas of the gateway's next anchor, True) from eth_estimateGas; (ANCHOR_GAS, False) when
    no estimate can be made (no contract attached, or the gateway may not anchor yet).
    Raises LedgerUnavailable."""
    if ledger.address is None or ledger.account is None:
        return ANCHOR_GAS, False
    number, head = ledger.last_batch(ledger.account)
    now = int(time.time())
    try:
        return ledger.estimate_gas("anchor", number + 1, head, _ESTIMATE_ROOT, 1, now, now, TREE_SHA256), True
    except LedgerUnavailable:
        raise
    except LedgerError:  # ContractReverted: NotGateway, the gateway is not authorized yet
        return ANCHOR_GAS, False


def funding(ledger: JsonRpcLedger, address: str | None = None) -> Funding:
    """The balance of ``address`` (default: the ledger's account) against one anchor batch at
    current fees. Raises LedgerUnavailable, LedgerError."""
    address = address or ledger.account
    if address is None:
        raise LedgerError("expected an account address, found none")
    gas, measured = anchor_gas(ledger)
    return Funding(address, ledger.balance(address), gas, measured, fee_quote(ledger))


def setup_cost(quote: FeeQuote, sites: int, deploy: bool) -> int:
    """Wei an account must hold to deploy the contract (``deploy``) and authorize itself for
    ``sites`` sites: gas limits times the maximum fee (unused gas is refunded)."""
    return ((DEPLOY_GAS if deploy else 0) + AUTHORIZE_GAS * sites) * quote.max_fee

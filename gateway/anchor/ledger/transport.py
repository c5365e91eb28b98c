"""The JSON-RPC side of a ledger backend: one web3 connection, local signing, nonces, fees,
sending and receipts, deploying and attaching the contract.

Transactions are built, signed with a local private key and sent raw. Gas limits are explicit
(named constants, from measurements), so sending costs no estimation round trip. The nonce is
managed here: a local next-nonce per account, resynchronised from
``eth_getTransactionCount(addr, "pending")`` after any send error. Nothing assumes a
transaction was mined: ``receipt`` polls once and may return None, ``wait_for_receipt`` polls
with a deadline.

Errors from web3, eth-tester and requests are translated here (``_rpc``) into LedgerError
subclasses (errors.py); reverts carry the decoded custom error (name and values).
"""
import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import requests
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import exceptions as w3exc

from edgeledger.gateway.anchor.ledger.artifact import decode_revert, error_table, hex0x, load_artifact, revert_data
from edgeledger.gateway.anchor.ledger.errors import (
    ContractReverted,
    LedgerUnavailable,
    NonceConflict,
    ReceiptTimeout,
    TransactionFailed,
)
from edgeledger.gateway.errors import LedgerError

# deploy 1.94M gas used on anvil --hardfork london (contract v2); unused gas is not charged.
DEPLOY_GAS = 2_600_000
TRANSFER_GAS = 21_000
# Priority fee when the node does not answer eth_maxPriorityFeePerGas (1 gwei).
DEFAULT_PRIORITY_FEE = 10**9
# Fees are re-read at most this often; a burst of anchors shares one fee quote.
FEE_CACHE_S = 2.0
# wait_for_receipt: default deadline and poll interval.
RECEIPT_TIMEOUT_S = 60.0
RECEIPT_POLL_S = 0.05
# HTTP timeout per JSON-RPC request.
RPC_TIMEOUT_S = 10.0


_UNAVAILABLE = (requests.exceptions.RequestException, OSError, w3exc.ProviderConnectionError,
                w3exc.RequestTimedOut, w3exc.CannotHandleRequest)
# Raised to our own callers inside this module, which translate them.
_PASS_THROUGH = (LedgerError, w3exc.TransactionNotFound, w3exc.ContractLogicError)


# --------------------------------------------------------------------------- prepared tx

@dataclass(frozen=True, repr=False)
class PreparedTx:
    """A signed transaction plus what it does; ``to_dict`` is what a gateway persists."""

    action: str
    args: list[Any]
    sender: str
    tx: dict[str, Any]
    raw: bytes
    tx_hash: bytes

    @property
    def nonce(self) -> int:
        return self.tx["nonce"]

    def fees(self) -> dict[str, Any]:
        return {k: self.tx[k] for k in ("type", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice") if k in self.tx}

    def to_dict(self) -> dict[str, Any]:
        args = [hex0x(a) if isinstance(a, (bytes, bytearray)) else a for a in self.args]
        return {"action": self.action, "args": args, "sender": self.sender, "nonce": self.nonce,
                "fees": self.fees(), "gas": self.tx["gas"], "tx_hash": hex0x(self.tx_hash), "raw": hex0x(self.raw)}

    def __repr__(self) -> str:
        return "PreparedTx(%s%r nonce=%d hash=%s)" % (self.action, tuple(self.args), self.nonce, hex0x(self.tx_hash))



class Transport:
    """One chain over a ``web3.Web3`` instance; subclasses make the connection.

    ``key`` is the default signing key (hex string or 32 bytes), normally the gateway's.
    Every sending method accepts ``key=`` to sign with another account (e.g. the owner).
    """

    key: str | bytes | None = None  # the default signing key, set by the subclasses

    name = "ledger"
    # True for a chain that mines a block only when a transaction arrives: the batcher
    # then mines empty blocks while a batch waits for confirmations (``mine``).
    mines_on_demand = False

    def __init__(self, w3: Any, key: str | bytes | None = None, fees: dict[str, Any] | None = None) -> None:
        self.w3 = w3
        art = load_artifact()
        self.abi = art["abi"]
        self.bytecode = art["bytecode"]
        self._errors = error_table(self.abi)
        self._factory = w3.eth.contract(abi=self.abi)
        self.contract: Any = None
        self.address: Any = None  # the contract's checksum address once deployed or attached
        self.owner_key: str | bytes | None = None
        self._account: Any = Account.from_key(key) if key is not None else None
        self._accounts: dict[str | bytes, Any] = {}
        self._nonces: dict[str, int] = {}
        self._fixed_fees = fees
        self._fee_cache: tuple[float, dict[str, Any] | None] = (0.0, None)
        self._chain_id: int | None = None

    # ---------------------------------------------------------------- plumbing

    def _rpc(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a web3 call; translate transport errors into LedgerUnavailable."""
        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except _UNAVAILABLE as e:
            raise LedgerUnavailable("%s: node unreachable: %s" % (self.name, e)) from e
        except Exception as e:
            if type(e).__name__ == "TransactionFailed":  # eth-tester revert: decoded by callers
                raise
            raise LedgerError("%s: node error: %s: %s" % (self.name, type(e).__name__, e)) from e

    def _account_for(self, key: str | bytes | None) -> Any:
        if key is None:
            if self._account is None:
                raise LedgerError("expected a signing key for this ledger, found none")
            return self._account
        acct = self._accounts.get(key)
        if acct is None:
            acct = self._accounts[key] = Account.from_key(key)
        return acct

    def for_key(self, key: str | bytes) -> "Transport":
        """The same chain and contract, signing with ``key`` by default: another account (a
        second gateway, the owner) without a second connection. Nonces stay shared by address."""
        other = copy.copy(self)
        other._account = Account.from_key(key)
        other.key = key
        return other

    @property
    def account(self) -> Any:
        """Address of the default signing key (the gateway address), or None."""
        return self._account.address if self._account is not None else None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._rpc(lambda: self.w3.eth.chain_id))
        return self._chain_id

    def block_number(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number))

    def balance(self, address: str) -> int:
        return int(self._rpc(self.w3.eth.get_balance, to_checksum_address(address)))

    def _require_contract(self) -> Any:
        if self.contract is None:
            raise LedgerError("expected an attached contract: call deploy() or attach(address) first")
        return self.contract

    def _fees(self) -> dict[str, Any]:
        """EIP-1559 fees if the chain has a base fee, else a legacy gas price."""
        if self._fixed_fees is not None:
            return dict(self._fixed_fees)
        t, cached = self._fee_cache
        if cached is not None and time.monotonic() - t < FEE_CACHE_S:
            return dict(cached)
        block = self._rpc(self.w3.eth.get_block, "latest")
        base = block.get("baseFeePerGas")
        if base is None:
            fees: dict[str, Any] = {"gasPrice": self._rpc(lambda: self.w3.eth.gas_price)}
        else:
            try:
                tip = self._rpc(lambda: self.w3.eth.max_priority_fee)
            except LedgerUnavailable:
                raise
            except LedgerError:
                tip = DEFAULT_PRIORITY_FEE
            fees = {"type": 2, "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}
        self._fee_cache = (time.monotonic(), fees)
        return dict(fees)

    def current_fees(self) -> dict[str, Any]:
        """The fee fields a new transaction gets now (EIP-1559 or legacy gas price)."""
        return self._fees()

    def transaction_count(self, address: str, block: int | str = "latest") -> int:
        """eth_getTransactionCount: the next nonce of ``address`` at ``block`` ("latest" counts
        mined transactions, "pending" adds executable ones waiting in the node's pool)."""
        return int(self._rpc(self.w3.eth.get_transaction_count, to_checksum_address(address), block))

    def block_hash(self, number: int) -> bytes | None:
        """Hash of the canonical block ``number``, or None if there is none (yet)."""
        def get() -> Any:
            try:
                return self.w3.eth.get_block(number)
            except w3exc.BlockNotFound:
                return None

        block = self._rpc(get)
        return bytes(block["hash"]) if block is not None else None

    def _next_nonce(self, address: str) -> int:
        n = self._nonces.get(address)
        if n is None:
            n = int(self._rpc(self.w3.eth.get_transaction_count, address, "pending"))
        self._nonces[address] = n + 1
        return n

    def resync_nonce(self, address: str | None = None) -> None:
        """Forget the local next-nonce; the next send reads eth_getTransactionCount(pending)."""
        if address is None:
            self._nonces.clear()
        else:
            self._nonces.pop(to_checksum_address(address), None)

    def _revert_error(self, exc: BaseException, action: str, cls: type[LedgerError]) -> LedgerError | None:
        data = revert_data(exc)
        if data is None:
            return None
        name, values = decode_revert(data, self._errors)
        return cls(name, values, data, action)

    def _view(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a view; reverts raise ContractReverted (or ``error_cls``)."""
        block = kwargs.pop("block", "latest")
        error_cls = kwargs.pop("error_cls", ContractReverted)
        fn = getattr(self._require_contract().functions, fn_name)(*args)
        try:
            return self._rpc(fn.call, block_identifier=block)
        except Exception as e:
            err = self._revert_error(e, fn_name, error_cls)
            if err is not None:
                raise err from e
            raise

    def _preflight(self, sender: str, data: bytes | str, action: str, error_cls: type[LedgerError],
                   block: int | str = "pending") -> None:
        try:
            self._rpc(self.w3.eth.call, {"from": sender, "to": self.address, "data": data}, block)
        except Exception as e:
            err = self._revert_error(e, action, error_cls)
            if err is not None:
                raise err from e
            raise

    # ---------------------------------------------------------------- signing and sending

    def _sign(self, action: str, args: Sequence[Any], acct: Any, to: str | None, data: bytes | str, gas: int,
              nonce: int | None = None, fees: dict[str, Any] | None = None, value: int = 0) -> PreparedTx:
        if nonce is None:
            nonce = self._next_nonce(acct.address)
        tx: dict[str, Any] = {"nonce": nonce, "gas": gas, "value": value, "data": data, "chainId": self.chain_id}
        tx.update(fees if fees is not None else self._fees())
        if to is not None:
            tx["to"] = to
        signed = acct.sign_transaction(tx)
        return PreparedTx(action, list(args), acct.address, tx, bytes(signed.raw_transaction),
                          bytes(signed.hash))

    def send(self, prepared: PreparedTx) -> bytes:
        """Send a prepared transaction; return its hash. Idempotent for the same PreparedTx.

        If the node answers with an error but knows the transaction (already in the pool or
        mined), that is success. Raises LedgerUnavailable (node down: the local nonce is kept,
        re-send the same PreparedTx later), NonceConflict (the nonce was taken by a different
        transaction; the local nonce is resynchronised), LedgerError (other refusals, e.g.
        insufficient funds; the local nonce is resynchronised).
        """
        try:
            self._rpc(self.w3.eth.send_raw_transaction, prepared.raw)
            return prepared.tx_hash
        except LedgerUnavailable:
            raise
        except Exception as e:
            if self.transaction_known(prepared.tx_hash):
                return prepared.tx_hash
            self.resync_nonce(prepared.sender)
            msg = str(e).lower()
            if "nonce too low" in msg or "invalid transaction nonce" in msg or "already known" in msg \
                    or "already imported" in msg or "replacement transaction underpriced" in msg:
                raise NonceConflict("%s: nonce %d of %s is taken by another transaction (%s)" % (
                    prepared.action, prepared.nonce, prepared.sender, e)) from e
            raise LedgerError("%s: node refused transaction %s: %s"
                              % (prepared.action, hex0x(prepared.tx_hash), e)) from e

    def transaction_known(self, tx_hash: bytes) -> bool:
        """True if the node has the transaction (pending or mined)."""
        try:
            self._rpc(self.w3.eth.get_transaction, tx_hash)
            return True
        except w3exc.TransactionNotFound:
            return False
        except LedgerUnavailable:
            raise
        except LedgerError:
            return False

    def receipt(self, tx_hash: bytes) -> Any:
        """The receipt if the transaction is mined, else None (one poll, no waiting)."""
        try:
            return self._rpc(self.w3.eth.get_transaction_receipt, tx_hash)
        except w3exc.TransactionNotFound:
            return None

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = RECEIPT_TIMEOUT_S, poll: float = RECEIPT_POLL_S,
                         check: bool = True, error_cls: type[LedgerError] = ContractReverted) -> Any:
        """Poll until mined. Raises ReceiptTimeout; with ``check``, a status-0 receipt raises
        ``error_cls`` with the revert replayed at the parent block (or TransactionFailed)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.receipt(tx_hash)
            if r is not None:
                break
            if time.monotonic() >= deadline:
                raise ReceiptTimeout("expected a receipt for %s within %.1f s, found none" % (hex0x(tx_hash), timeout))
            time.sleep(poll)
        if check and r["status"] != 1:
            raise self._explain_failure(r, error_cls)
        return r

    def _explain_failure(self, r: Any, error_cls: type[LedgerError]) -> LedgerError:
        tx = self._rpc(self.w3.eth.get_transaction, r["transactionHash"])
        call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]}
        action = "transaction"
        try:
            self.w3.eth.call(call, max(r["blockNumber"] - 1, 0))
        except Exception as e:
            err = self._revert_error(e, action, error_cls)
            if err is not None:
                return err
        return TransactionFailed("%s mined in block %d with status 0 (gas used %d of %d)" % (
            hex0x(r["transactionHash"]), r["blockNumber"], r["gasUsed"], tx["gas"]))

    def confirmations(self, receipt: Any) -> int:
        """Blocks on top of the receipt's block, counting it (1 = just mined); 0 if the block
        is no longer canonical (reorg)."""
        n = int(receipt["blockNumber"])
        if self.block_hash(n) != bytes(receipt["blockHash"]):
            return 0
        return self.block_number() - n + 1

    def _transact(self, action: str, fn: Any, gas: int, key: str | bytes | None, error_cls: type[LedgerError],
                  wait: bool, preflight: bool = True) -> bytes:
        acct = self._account_for(key)
        data = fn._encode_transaction_data()
        if preflight:
            self._preflight(acct.address, data, action, error_cls)
        prepared = self._sign(action, fn.args, acct, self.address, data, gas)
        h = self.send(prepared)
        if wait:
            self.wait_for_receipt(h, error_cls=error_cls)
        return h

    def transfer(self, to: str, value: int, key: str | bytes | None = None, wait: bool = True) -> bytes:
        """Send ``value`` wei from ``key``'s account (default: the ledger key) to ``to``; return
        the transaction hash (mined, with ``wait``). Raises LedgerUnavailable, LedgerError (e.g.
        insufficient funds), ReceiptTimeout."""
        acct = self._account_for(key)
        address = to_checksum_address(to)
        prepared = self._sign("transfer", [address, int(value)], acct, address, b"", TRANSFER_GAS, value=int(value))
        h = self.send(prepared)
        if wait:
            self.wait_for_receipt(h)
        return h

    # ---------------------------------------------------------------- deploy / attach

    def deploy(self, owner_key: str | bytes | None = None, timeout: float = RECEIPT_TIMEOUT_S) -> str:
        """Deploy the contract with ``owner_key`` (default: the ledger key) as owner; attach
        to it and return its address. Raises LedgerError/ReceiptTimeout/TransactionFailed."""
        acct = self._account_for(owner_key)
        prepared = self._sign("deploy", [], acct, None, self.bytecode, DEPLOY_GAS)
        h = self.send(prepared)
        r = self.wait_for_receipt(h, timeout=timeout)
        self.owner_key = owner_key
        return self.attach(r["contractAddress"])

    def attach(self, address: str) -> str:
        """Use the contract at ``address``. Raises LedgerError if no code is there."""
        address = to_checksum_address(address)
        code = self._rpc(self.w3.eth.get_code, address)
        if not code:
            raise LedgerError("expected contract code at %s, found none" % address)
        self.address = address
        self.contract = self.w3.eth.contract(address=address, abi=self.abi)
        return address

"""Ledger backends: anchor batch headers in the EdgeLedgerAnchor contract (DESIGN.md §6).

Two backends, one interface (``Ledger``):

* ``EmbeddedLedger()`` — py-evm through eth-tester, in-process (demo, unit tests). Every
  transaction is mined at once.
* ``JsonRpcLedger(url)`` — any Ethereum JSON-RPC endpoint (anvil in the tests; Besu, Energy
  Web Chain, ... in production).

Transactions are built, signed with a local private key and sent raw. Gas limits are explicit
(named constants below, from measurements), so sending costs no estimation round trip. The
nonce is managed here: a local next-nonce per account, resynchronised from
``eth_getTransactionCount(addr, "pending")`` after any send error. Nothing assumes a
transaction was mined: ``receipt`` polls once and may return None, ``wait_for_receipt``
polls with a deadline.

Crash safety of an anchor: ``prepare_anchor`` returns a ``PreparedTx`` whose ``to_dict()``
the gateway persists *before* ``send``. Signing is deterministic (RFC 6979), so
``sign_anchor`` with the persisted nonce and fees re-derives the very same raw transaction;
re-sending it is the safe retry (``send`` treats "already known"/"nonce too low" for a
transaction the node knows as success). On restart the gateway reads ``last_batch``: if the
chain's last batch is >= its number the batch is anchored and ``find_anchor`` finds its
transaction in the event log. The contract's ordering rule (``OutOfOrder``) is the backstop:
a batch can never be anchored twice.

Errors from web3, eth-tester and requests are translated here into ``LedgerError``
subclasses; reverts carry the decoded custom error (name and values).
"""
import ast
import copy
import hashlib
import json
import os
import time

import requests
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3 import exceptions as w3exc

from edgeledger.gateway.errors import LedgerError
from edgeledger.protocols.batch import LAYOUT_LEN, TREE_SHA256, BatchHeader
from edgeledger.protocols.batch import VERSION as BATCH_VERSION
from edgeledger.protocols.keywindow import key_commitment, site_hash

ARTIFACT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contracts", "EdgeLedgerAnchor.json")

# Batch header layout (protocols/batch.py, the contract's NatSpec).
HEADER_VERSION = BATCH_VERSION
HEADER_LEN = LAYOUT_LEN
# The contract version this module's ABI speaks (EdgeLedgerAnchor.VERSION).
CONTRACT_VERSION = 2
# rotateKey's lastSeq for "not known yet" (EdgeLedgerAnchor.OPEN_SEQ).
OPEN_SEQ = 2**64 - 1

# Explicit gas limits, from gas used on anvil --hardfork london (contract v2, each call sent once
# and its receipt read): deploy 1.94M; anchor 78.9k for batch 1 and 81.6k after (two fresh
# slots, the gateway slot, a cold read of the previous header, sha256, LOG3); authorizeGateway
# 73.3k (57.3k for a gateway's second site); registerKey 58.5k (Ed25519, short ids) to 64.7k
# (133-byte key, 64-byte ids); rotateKey 53.7k (first end), 36.9k (sealing the last seq);
# revokeKey 37.3k; deauthorizeGateway 39.2k. Unused gas is not charged.
DEPLOY_GAS = 2_600_000
ANCHOR_GAS = 120_000
AUTHORIZE_GAS = 100_000
REGISTER_KEY_GAS = 120_000
END_KEY_GAS = 80_000
TRANSFER_GAS = 21_000
# KeyEntry flags (EdgeLedgerAnchor.sol).
KEY_FLAG_LAST_SEQ = 1
KEY_FLAG_REVOKED = 2
KEY_FLAG_ROTATED = 4
# Priority fee when the node does not answer eth_maxPriorityFeePerGas (1 gwei).
DEFAULT_PRIORITY_FEE = 10**9
# Fees are re-read at most this often; a burst of anchors shares one fee quote.
FEE_CACHE_S = 2.0
# wait_for_receipt: default deadline and poll interval.
RECEIPT_TIMEOUT_S = 60.0
RECEIPT_POLL_S = 0.05
# HTTP timeout per JSON-RPC request.
RPC_TIMEOUT_S = 10.0

# Revert payloads that are not custom errors (Solidity ABI spec, "Errors").
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


# --------------------------------------------------------------------------- errors

class LedgerUnavailable(LedgerError):
    """The node cannot be reached (connection refused, timeout, HTTP failure)."""


class ContractReverted(LedgerError):
    """The contract reverted; ``name`` and ``values`` hold the decoded custom error."""

    def __init__(self, name, values, data=b"", action="call"):
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


def _fmt(v):
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    return repr(v)


# --------------------------------------------------------------------------- header

def header_bytes(gateway: str, number: int, prev_header_hash: bytes, root: bytes, tree_size: int, first_time: int,
                 last_time: int, tree_alg: int = TREE_SHA256) -> bytes:
    """The batch header layout the contract hashes (protocols/batch.py holds the layout)."""
    return BatchHeader(_address_bytes(gateway), int(number), _b32(prev_header_hash), _b32(root), int(tree_size),
                       int(first_time), int(last_time), tree_alg=tree_alg).layout()


def header_hash(gateway: str, number: int, prev_header_hash: bytes, root: bytes, tree_size: int, first_time: int,
                last_time: int, tree_alg: int = TREE_SHA256) -> bytes:
    return hashlib.sha256(
        header_bytes(gateway, number, prev_header_hash, root, tree_size, first_time, last_time, tree_alg)).digest()


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(to_checksum_address(address)[2:])


def _b32(v):
    v = _bytes(v)
    if len(v) != 32:
        raise ValueError("expected 32 bytes, found %d" % len(v))
    return v


def _bytes(v):
    if isinstance(v, str):
        return bytes.fromhex(v[2:] if v.startswith("0x") else v)
    return bytes(v)


def _hex(b):
    return "0x" + bytes(b).hex()


# --------------------------------------------------------------------------- artifact

_ARTIFACT = None


def load_artifact():
    """The committed compiler output. Raises ArtifactError if it is missing or broken."""
    global _ARTIFACT
    if _ARTIFACT is None:
        try:
            with open(ARTIFACT_PATH, "r", encoding="utf-8") as f:
                art = json.load(f)
            art["abi"], art["bytecode"]
        except (OSError, ValueError, KeyError) as e:
            raise ArtifactError("expected the contract artifact at %s: %s" % (ARTIFACT_PATH, e))
        _ARTIFACT = art
    return _ARTIFACT


def _error_table(abi):
    """selector -> (name, [arg names], [arg types]) for every custom error in the ABI."""
    table = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        sig = "%s(%s)" % (item["name"], ",".join(types))
        table[keccak(text=sig)[:4]] = (item["name"], [i["name"] for i in item["inputs"]], types)
    table[_ERROR_STRING_SELECTOR] = ("Error", ["message"], ["string"])
    table[_PANIC_SELECTOR] = ("Panic", ["code"], ["uint256"])
    return table


def decode_revert(data, table=None):
    """(name, {arg: value}) for revert data; ("UnknownRevert", {"data": bytes}) if not in the ABI."""
    if table is None:
        table = _error_table(load_artifact()["abi"])
    data = bytes(data or b"")
    entry = table.get(data[:4])
    if entry is None:
        return "UnknownRevert", {"data": data}
    name, names, types = entry
    try:
        values = abi_decode(types, data[4:])
    except Exception:
        return "UnknownRevert", {"data": data}
    values = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, values)]
    return name, dict(zip(names, values))


def _revert_data(exc):
    """Revert payload carried by a web3 / eth-tester exception, or None."""
    if isinstance(exc, w3exc.ContractLogicError) and exc.data:
        d = exc.data
        return _bytes(d) if isinstance(d, str) else bytes(d)
    msg = str(exc.args[0]) if getattr(exc, "args", None) else ""
    # eth-tester: TransactionFailed("execution reverted: b'\x0b\x1c...'")
    marker = "execution reverted: "
    if type(exc).__name__ == "TransactionFailed" and msg.startswith(marker):
        rest = msg[len(marker):]
        if rest[:2] in ("b'", 'b"'):
            try:
                return ast.literal_eval(rest)
            except (ValueError, SyntaxError):
                return None
        return b""
    return None


_UNAVAILABLE = (requests.exceptions.RequestException, OSError, w3exc.ProviderConnectionError,
                w3exc.RequestTimedOut, w3exc.CannotHandleRequest)
# Raised to our own callers inside this module, which translate them.
_PASS_THROUGH = (LedgerError, w3exc.TransactionNotFound, w3exc.ContractLogicError)


# --------------------------------------------------------------------------- prepared tx

class PreparedTx(object):
    """A signed transaction plus what it does; ``to_dict`` is what a gateway persists."""

    __slots__ = ("action", "args", "sender", "tx", "raw", "tx_hash")

    def __init__(self, action, args, sender, tx, raw, tx_hash):
        self.action = action
        self.args = args
        self.sender = sender
        self.tx = tx
        self.raw = raw
        self.tx_hash = tx_hash

    @property
    def nonce(self):
        return self.tx["nonce"]

    def fees(self):
        return {k: self.tx[k] for k in ("type", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice") if k in self.tx}

    def to_dict(self):
        args = [_hex(a) if isinstance(a, (bytes, bytearray)) else a for a in self.args]
        return {"action": self.action, "args": args, "sender": self.sender, "nonce": self.nonce,
                "fees": self.fees(), "gas": self.tx["gas"], "tx_hash": _hex(self.tx_hash), "raw": _hex(self.raw)}

    def __repr__(self):
        return "PreparedTx(%s%r nonce=%d hash=%s)" % (self.action, tuple(self.args), self.nonce, _hex(self.tx_hash))


# --------------------------------------------------------------------------- backend base

class Ledger(object):
    """Common implementation over a ``web3.Web3`` instance; subclasses make the transport.

    ``key`` is the default signing key (hex string or 32 bytes), normally the gateway's.
    Every sending method accepts ``key=`` to sign with another account (e.g. the owner).
    """

    name = "ledger"
    # True for a chain that mines a block only when a transaction arrives: the batcher
    # then mines empty blocks while a batch waits for confirmations (``mine``).
    mines_on_demand = False

    def __init__(self, w3, key=None, fees=None):
        self.w3 = w3
        art = load_artifact()
        self.abi = art["abi"]
        self.bytecode = art["bytecode"]
        self._errors = _error_table(self.abi)
        self._factory = w3.eth.contract(abi=self.abi)
        self.contract = None
        self.address = None
        self.owner_key = None
        self._account = Account.from_key(key) if key is not None else None
        self._accounts = {}
        self._nonces = {}
        self._fixed_fees = fees
        self._fee_cache = (0.0, None)
        self._chain_id = None

    # ---------------------------------------------------------------- plumbing

    def _rpc(self, fn, *args, **kwargs):
        """Run a web3 call; translate transport errors into LedgerUnavailable."""
        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except _UNAVAILABLE as e:
            raise LedgerUnavailable("%s: node unreachable: %s" % (self.name, e))
        except Exception as e:
            if type(e).__name__ == "TransactionFailed":  # eth-tester revert: decoded by callers
                raise
            raise LedgerError("%s: node error: %s: %s" % (self.name, type(e).__name__, e))

    def _account_for(self, key):
        if key is None:
            if self._account is None:
                raise LedgerError("expected a signing key for this ledger, found none")
            return self._account
        acct = self._accounts.get(key)
        if acct is None:
            acct = self._accounts[key] = Account.from_key(key)
        return acct

    def for_key(self, key: str | bytes) -> "Ledger":
        """The same chain and contract, signing with ``key`` by default: another account (a
        second gateway, the owner) without a second connection. Nonces stay shared by address."""
        other = copy.copy(self)
        other._account = Account.from_key(key)
        other.key = key
        return other

    @property
    def account(self):
        """Address of the default signing key (the gateway address), or None."""
        return self._account.address if self._account is not None else None

    @property
    def chain_id(self):
        if self._chain_id is None:
            self._chain_id = self._rpc(lambda: self.w3.eth.chain_id)
        return self._chain_id

    def block_number(self):
        return self._rpc(lambda: self.w3.eth.block_number)

    def balance(self, address):
        return self._rpc(self.w3.eth.get_balance, to_checksum_address(address))

    def _require_contract(self):
        if self.contract is None:
            raise LedgerError("expected an attached contract: call deploy() or attach(address) first")
        return self.contract

    def _fees(self):
        """EIP-1559 fees if the chain has a base fee, else a legacy gas price."""
        if self._fixed_fees is not None:
            return dict(self._fixed_fees)
        t, cached = self._fee_cache
        if cached is not None and time.monotonic() - t < FEE_CACHE_S:
            return dict(cached)
        block = self._rpc(self.w3.eth.get_block, "latest")
        base = block.get("baseFeePerGas")
        if base is None:
            fees = {"gasPrice": self._rpc(lambda: self.w3.eth.gas_price)}
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

    def current_fees(self):
        """The fee fields a new transaction gets now (EIP-1559 or legacy gas price)."""
        return self._fees()

    def transaction_count(self, address, block="latest"):
        """eth_getTransactionCount: the next nonce of ``address`` at ``block`` ("latest" counts
        mined transactions, "pending" adds executable ones waiting in the node's pool)."""
        return self._rpc(self.w3.eth.get_transaction_count, to_checksum_address(address), block)

    def block_hash(self, number):
        """Hash of the canonical block ``number``, or None if there is none (yet)."""
        def get():
            try:
                return self.w3.eth.get_block(number)
            except w3exc.BlockNotFound:
                return None

        block = self._rpc(get)
        return bytes(block["hash"]) if block is not None else None

    def _next_nonce(self, address):
        n = self._nonces.get(address)
        if n is None:
            n = self._rpc(self.w3.eth.get_transaction_count, address, "pending")
        self._nonces[address] = n + 1
        return n

    def resync_nonce(self, address=None):
        """Forget the local next-nonce; the next send reads eth_getTransactionCount(pending)."""
        if address is None:
            self._nonces.clear()
        else:
            self._nonces.pop(to_checksum_address(address), None)

    def _revert_error(self, exc, action, cls):
        data = _revert_data(exc)
        if data is None:
            return None
        name, values = decode_revert(data, self._errors)
        return cls(name, values, data, action)

    def _view(self, fn_name, *args, **kwargs):
        """Call a view; reverts raise ContractReverted (or ``error_cls``)."""
        block = kwargs.pop("block", "latest")
        error_cls = kwargs.pop("error_cls", ContractReverted)
        fn = getattr(self._require_contract().functions, fn_name)(*args)
        try:
            return self._rpc(fn.call, block_identifier=block)
        except Exception as e:
            err = self._revert_error(e, fn_name, error_cls)
            if err is not None:
                raise err
            raise

    def _preflight(self, sender, data, action, error_cls, block="pending"):
        try:
            self._rpc(self.w3.eth.call, {"from": sender, "to": self.address, "data": data}, block)
        except Exception as e:
            err = self._revert_error(e, action, error_cls)
            if err is not None:
                raise err
            raise

    # ---------------------------------------------------------------- signing and sending

    def _sign(self, action, args, acct, to, data, gas, nonce=None, fees=None, value=0):
        if nonce is None:
            nonce = self._next_nonce(acct.address)
        tx = {"nonce": nonce, "gas": gas, "value": value, "data": data, "chainId": self.chain_id}
        tx.update(fees if fees is not None else self._fees())
        if to is not None:
            tx["to"] = to
        signed = acct.sign_transaction(tx)
        return PreparedTx(action, list(args), acct.address, tx, bytes(signed.raw_transaction),
                          bytes(signed.hash))

    def send(self, prepared):
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
                    prepared.action, prepared.nonce, prepared.sender, e))
            raise LedgerError("%s: node refused transaction %s: %s" % (prepared.action, _hex(prepared.tx_hash), e))

    def transaction_known(self, tx_hash):
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

    def receipt(self, tx_hash):
        """The receipt if the transaction is mined, else None (one poll, no waiting)."""
        try:
            return self._rpc(self.w3.eth.get_transaction_receipt, tx_hash)
        except w3exc.TransactionNotFound:
            return None

    def wait_for_receipt(self, tx_hash, timeout=RECEIPT_TIMEOUT_S, poll=RECEIPT_POLL_S, check=True,
                         error_cls=ContractReverted):
        """Poll until mined. Raises ReceiptTimeout; with ``check``, a status-0 receipt raises
        ``error_cls`` with the revert replayed at the parent block (or TransactionFailed)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.receipt(tx_hash)
            if r is not None:
                break
            if time.monotonic() >= deadline:
                raise ReceiptTimeout("expected a receipt for %s within %.1f s, found none" % (_hex(tx_hash), timeout))
            time.sleep(poll)
        if check and r["status"] != 1:
            raise self._explain_failure(r, error_cls)
        return r

    def _explain_failure(self, r, error_cls):
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
            _hex(r["transactionHash"]), r["blockNumber"], r["gasUsed"], tx["gas"]))

    def confirmations(self, receipt):
        """Blocks on top of the receipt's block, counting it (1 = just mined); 0 if the block
        is no longer canonical (reorg)."""
        n = receipt["blockNumber"]
        if self.block_hash(n) != bytes(receipt["blockHash"]):
            return 0
        return self.block_number() - n + 1

    def _transact(self, action, fn, gas, key, error_cls, wait, preflight=True):
        acct = self._account_for(key)
        data = fn._encode_transaction_data()
        if preflight:
            self._preflight(acct.address, data, action, error_cls)
        prepared = self._sign(action, fn.args, acct, self.address, data, gas)
        h = self.send(prepared)
        if wait:
            self.wait_for_receipt(h, error_cls=error_cls)
        return h

    # ---------------------------------------------------------------- deploy / attach

    def deploy(self, owner_key=None, timeout=RECEIPT_TIMEOUT_S):
        """Deploy the contract with ``owner_key`` (default: the ledger key) as owner; attach
        to it and return its address. Raises LedgerError/ReceiptTimeout/TransactionFailed."""
        acct = self._account_for(owner_key)
        prepared = self._sign("deploy", [], acct, None, self.bytecode, DEPLOY_GAS)
        h = self.send(prepared)
        r = self.wait_for_receipt(h, timeout=timeout)
        self.owner_key = owner_key
        return self.attach(r["contractAddress"])

    def attach(self, address):
        """Use the contract at ``address``. Raises LedgerError if no code is there."""
        address = to_checksum_address(address)
        code = self._rpc(self.w3.eth.get_code, address)
        if not code:
            raise LedgerError("expected contract code at %s, found none" % address)
        self.address = address
        self.contract = self.w3.eth.contract(address=address, abi=self.abi)
        return address

    # ---------------------------------------------------------------- sites and gateways

    def authorize_gateway(self, site: str, gateway: str, key: str | bytes | None = None, wait: bool = True) -> bytes:
        """Owner authorizes ``gateway`` to anchor and manage keys for ``site`` from the next block
        on. ``key`` defaults to the deploy owner key. Raises ContractReverted (NotOwner,
        ZeroAddress, AlreadyAuthorized, BadSiteLength)."""
        key = key if key is not None else self.owner_key
        fn = self._require_contract().functions.authorizeGateway(site, to_checksum_address(gateway))
        return self._transact("authorizeGateway", fn, AUTHORIZE_GAS, key, ContractReverted, wait)

    def deauthorize_gateway(self, site: str, gateway: str, key: str | bytes | None = None,
                            wait: bool = True) -> bytes:
        """Owner closes ``gateway``'s window for ``site`` at the next block. Raises
        ContractReverted (NotOwner, NotAuthorizedForSite)."""
        key = key if key is not None else self.owner_key
        fn = self._require_contract().functions.deauthorizeGateway(site, to_checksum_address(gateway))
        return self._transact("deauthorizeGateway", fn, AUTHORIZE_GAS, key, ContractReverted, wait)

    def authorization(self, site: str, gateway: str, block: int | str = "latest") -> tuple[int, int]:
        """(from block, until block or 0) of ``gateway``'s window for ``site``; (0, 0) if none."""
        return tuple(self._view("authorization", site, to_checksum_address(gateway), block=block))

    def is_gateway_for(self, site: str, gateway: str) -> bool:
        return self._view("isGatewayFor", site, to_checksum_address(gateway))

    def contract_version(self) -> int:
        return self._view("VERSION")

    def deployed_block(self) -> int:
        return self._view("deployedBlock")

    # ---------------------------------------------------------------- anchors

    def sign_anchor(self, number, prev_header_hash, root, tree_size, first_time, last_time,
                    nonce=None, fees=None, key=None, tree_alg=TREE_SHA256):
        """Build and sign the anchor transaction. With the ``nonce`` and ``fees`` of a
        persisted PreparedTx this re-derives the identical raw transaction (RFC 6979 signing).
        Without ``nonce`` it takes the next local nonce."""
        acct = self._account_for(key)
        args = (int(number), _b32(prev_header_hash), _b32(root), int(tree_size), int(first_time), int(last_time),
                int(tree_alg))
        fn = self._require_contract().functions.anchor(*args)
        return self._sign("anchor", args, acct, self.address, fn._encode_transaction_data(), ANCHOR_GAS,
                          nonce=nonce, fees=fees)

    prepare_anchor = sign_anchor

    def sign_cancel(self, nonce, fees, key=None):
        """A 0-value transfer to the sender itself at ``nonce``: with higher ``fees`` it
        replaces (cancels) whatever waits in the pool with that nonce."""
        acct = self._account_for(key)
        return self._sign("cancel", [nonce], acct, acct.address, b"", TRANSFER_GAS, nonce=nonce, fees=fees)

    def anchor(self, number, prev_header_hash, root, tree_size, first_time, last_time, key=None,
               preflight=True, wait=False, tree_alg=TREE_SHA256):
        """Anchor a batch header; return the transaction hash (not waiting for it by default).

        ``preflight`` first simulates the call against the pending state, so an OutOfOrder or
        PrevMismatch raises AnchorRejected before a nonce is spent; pass False to pipeline
        several anchors before the earlier ones are mined. Raises AnchorRejected (OutOfOrder,
        PrevMismatch, NotGateway, BadTimeRange, BadTreeAlg), LedgerUnavailable, NonceConflict,
        LedgerError.
        """
        if preflight:
            acct = self._account_for(key)
            fn = self._require_contract().functions.anchor(
                int(number), _b32(prev_header_hash), _b32(root), int(tree_size), int(first_time), int(last_time),
                int(tree_alg))
            self._preflight(acct.address, fn._encode_transaction_data(), "anchor", AnchorRejected)
        prepared = self.sign_anchor(number, prev_header_hash, root, tree_size, first_time, last_time, key=key,
                                    tree_alg=tree_alg)
        h = self.send(prepared)
        if wait:
            self.wait_for_receipt(h, error_cls=AnchorRejected)
        return h

    def last_batch(self, gateway, block="latest"):
        """(last anchored batch number, its header hash) of ``gateway``; (0, zero hash) if none."""
        number, head = self._view("head", to_checksum_address(gateway), block=block)
        return number, bytes(head)

    def anchor_of(self, gateway: str, number: int, block: int | str = "latest") -> dict | None:
        """{"header_hash", "block_number", "timestamp"} stored for batch ``number``, or None."""
        hh, bn, ts = self._view("anchorOf", to_checksum_address(gateway), int(number), block=block)
        if bytes(hh) == bytes(32):
            return None
        return {"header_hash": bytes(hh), "block_number": bn, "timestamp": ts}

    def header_of(self, gateway, number, block="latest"):
        a = self.anchor_of(gateway, number, block=block)
        return None if a is None else a["header_hash"]

    def find_anchor(self, gateway, number, from_block=0, to_block="latest"):
        """The Anchored event of (gateway, number) as a dict, or None. Both are indexed topics."""
        c = self._require_contract()
        topic0 = keccak(text="Anchored(address,uint64,bytes32,bytes32,uint64)")
        topics = [_hex(topic0), _hex(bytes(12) + _bytes(to_checksum_address(gateway))),
                  _hex(int(number).to_bytes(32, "big"))]
        logs = self._rpc(self.w3.eth.get_logs, {"address": c.address, "fromBlock": from_block,
                                                 "toBlock": to_block, "topics": topics})
        if not logs:
            return None
        log = logs[-1]
        root, hh, size = abi_decode(["bytes32", "bytes32", "uint64"], bytes(log["data"]))
        return {"tx_hash": bytes(log["transactionHash"]), "block_number": log["blockNumber"],
                "block_hash": bytes(log["blockHash"]), "number": int(number), "root": root,
                "header_hash": hh, "tree_size": size, "gateway": to_checksum_address(gateway)}

    # ---------------------------------------------------------------- key registry

    def register_key(self, site: str, device_id: str, alg: int, public_key: bytes, first_seq: int = 1,
                     key: str | bytes | None = None, wait: bool = True) -> bytes:
        """Register a device key for ``site`` (kid = SHA-256(key)[:16], computed on chain); the
        chain records its own block number and time. Returns the transaction hash; read the
        registration back with ``registration``. Raises KeyRejected (KeyExists, NotAuthorized,
        BadPublicKeyLength, BadDeviceIdLength, BadSiteLength, ZeroFirstSeq)."""
        fn = self._require_contract().functions.registerKey(site, device_id, int(alg), bytes(public_key),
                                                            int(first_seq))
        return self._transact("registerKey", fn, REGISTER_KEY_GAS, key, KeyRejected, wait)

    def revoke_key(self, site: str, kid: bytes, end_time: int, last_seq: int, key: str | bytes | None = None,
                   wait: bool = True) -> bytes:
        """Readings of ``kid`` timed at or after ``end_time`` or with a seq above ``last_seq`` are
        invalid; both only move earlier. Raises KeyRejected (UnknownKey, ZeroEndTime,
        NotAuthorized)."""
        fn = self._require_contract().functions.revokeKey(site, _kid(kid), int(end_time), int(last_seq))
        return self._transact("revokeKey", fn, END_KEY_GAS, key, KeyRejected, wait)

    def rotate_key(self, site: str, kid: bytes, overlap_end: int, last_seq: int = OPEN_SEQ,
                   key: str | bytes | None = None, wait: bool = True) -> bytes:
        """End ``kid``'s window at ``overlap_end`` (and ``last_seq``; OPEN_SEQ until known). Only
        earlier. Raises KeyRejected (UnknownKey, ZeroEndTime, NotAuthorized)."""
        fn = self._require_contract().functions.rotateKey(site, _kid(kid), int(overlap_end), int(last_seq))
        return self._transact("rotateKey", fn, END_KEY_GAS, key, KeyRejected, wait)

    def key_entry(self, site: str, kid: bytes, block: int | str = "latest") -> dict | None:
        """dict(commitment, end_time, last_seq, end_block, flags) of (site, kid), or None if not
        registered. ``end_time``/``last_seq`` are None while open."""
        commitment, end_time, last_seq, end_block, flags = self._view("keyEntry", site, _kid(kid), block=block)
        if bytes(commitment) == bytes(32):
            return None
        return {"commitment": bytes(commitment), "end_time": end_time or None,
                "last_seq": last_seq if flags & KEY_FLAG_LAST_SEQ else None, "end_block": end_block,
                "revoked": bool(flags & KEY_FLAG_REVOKED), "rotated": bool(flags & KEY_FLAG_ROTATED)}

    def registration(self, site: str, kid: bytes) -> dict | None:
        """What the chain recorded when (site, kid) was registered, read from its KeyRegistered
        event and checked against the stored commitment: dict(site, device_id, alg, public_key,
        first_seq, block_number, timestamp, kid), or None if not registered. Raises LedgerError if
        the event and the commitment disagree."""
        entry = self.key_entry(site, kid)
        if entry is None:
            return None
        c = self._require_contract()
        topic0 = keccak(text="KeyRegistered(bytes32,bytes16,string,string,int16,bytes,uint64)")
        logs = self._rpc(self.w3.eth.get_logs, {
            "address": c.address, "fromBlock": self.deployed_block(), "toBlock": "latest",
            "topics": [_hex(topic0), _hex(site_hash(site)), _hex(_kid(kid) + bytes(16))]})
        for log in logs:
            try:
                site_s, dev, alg, pub, first_seq = abi_decode(["string", "string", "int16", "bytes", "uint64"],
                                                              bytes(log["data"]))
            except DecodingError as e:
                raise LedgerError("KeyRegistered log of (site %r, kid %s) does not decode: %s"
                                  % (site, _kid(kid).hex(), e))
            block = self._rpc(self.w3.eth.get_block, log["blockNumber"])
            reg = {"site": site_s, "device_id": dev, "alg": alg, "public_key": bytes(pub), "first_seq": first_seq,
                   "block_number": log["blockNumber"], "timestamp": block["timestamp"], "kid": _kid(kid)}
            if key_commitment(site_s, dev, alg, reg["public_key"], reg["block_number"], reg["timestamp"],
                              first_seq) == entry["commitment"]:
                return reg
        raise LedgerError("(site %r, kid %s) is registered, but no KeyRegistered event matches its commitment"
                          % (site, _kid(kid).hex()))

    # ---------------------------------------------------------------- inclusion proofs

    def verify(self, leaf_hash, index, tree_size, path, root):
        """The contract's RFC 9162 inclusion check over a leaf hash (a view call)."""
        return self._view("verify", _b32(leaf_hash), int(index), int(tree_size), [_b32(p) for p in path], _b32(root))

    def verify_anchored(self, header: BatchHeader, entry: bytes, index: int, path: list[bytes]) -> bool:
        """The contract's check that ``entry`` (message bytes) is leaf ``index`` of the batch
        whose header (a protocols BatchHeader) is the one anchored (a view call)."""
        h = (int(header.tree_alg), to_checksum_address("0x" + header.gateway.hex()), int(header.number),
             _b32(header.prev), _b32(header.root), int(header.tree_size), int(header.first_time),
             int(header.last_time))
        return self._view("verifyAnchored", h, bytes(entry), int(index), [_b32(p) for p in path])

    # ---------------------------------------------------------------- gas helpers

    def calldata(self, fn_name, *args):
        return _bytes(getattr(self._require_contract().functions, fn_name)(*args)._encode_transaction_data())

    def estimate_gas(self, fn_name, *args, **kwargs):
        """eth_estimateGas of calling ``fn_name`` from ``key``'s account (default ledger key)."""
        acct = self._account_for(kwargs.get("key"))
        data = self.calldata(fn_name, *args)
        return self._rpc(self.w3.eth.estimate_gas, {"from": acct.address, "to": self.address, "data": data})

    def execution_gas(self, fn_name, *args, **kwargs):
        """estimate_gas minus the intrinsic cost (21000 + calldata, EIP-2028). Exact on chains
        before Prague; under EIP-7623 the calldata floor can dominate small executions."""
        return self.estimate_gas(fn_name, *args, **kwargs) - intrinsic_gas(self.calldata(fn_name, *args))


def intrinsic_gas(data):
    """21000 + 4 per zero byte + 16 per non-zero byte of calldata (EIP-2028)."""
    zeros = sum(1 for b in data if b == 0)
    return 21000 + 4 * zeros + 16 * (len(data) - zeros)


def _kid(kid):
    kid = _bytes(kid)
    if len(kid) != 16:
        raise ValueError("expected a 16-byte kid, found %d bytes" % len(kid))
    return kid


# --------------------------------------------------------------------------- backends

class EmbeddedLedger(Ledger):
    """py-evm in-process via eth-tester (automine: every transaction is its own block).

    With no ``key``, a fresh funded key is generated. ``fund`` and ``new_funded_key`` draw
    on the tester's prefunded accounts.
    """

    name = "embedded"
    mines_on_demand = True  # eth-tester mines only on transactions
    FUND_WEI = 10**20

    def __init__(self, key=None, fees=None):
        from web3 import EthereumTesterProvider

        provider = EthereumTesterProvider()
        self.tester = provider.ethereum_tester
        w3 = Web3(provider)
        self._bank = Account.from_key(self.tester.backend.account_keys[0].to_bytes())
        Ledger.__init__(self, w3, key=None, fees=fees)
        if key is None:
            key = self.new_funded_key()
        else:
            self.fund(Account.from_key(key).address)
        self._account = Account.from_key(key)
        self.key = key
        self._proof_rpc = None

    @property
    def proof_rpc(self):
        """The light client's transport for this chain. eth-tester has no ``eth_getProof``;
        gateway/embedded_rpc.py answers it from py-evm's state and storage tries."""
        if self._proof_rpc is None:
            from edgeledger.gateway.embedded_rpc import EmbeddedRpc

            self._proof_rpc = EmbeddedRpc(self)
        return self._proof_rpc

    def fund(self, address, wei=FUND_WEI):
        prepared = self._sign("fund", [address], self._bank, to_checksum_address(address), b"", TRANSFER_GAS,
                              value=wei)
        self.wait_for_receipt(self.send(prepared))

    def new_funded_key(self, wei=FUND_WEI):
        key = "0x" + os.urandom(32).hex()
        self.fund(Account.from_key(key).address, wei)
        return key

    def mine(self, blocks=1):
        """Add empty blocks (to build up confirmations)."""
        self.tester.mine_blocks(blocks)

    def head_time(self) -> int:
        """The latest block's timestamp: py-evm stamps max(parent + 1, now), so a chain that
        makes blocks faster than one a second runs ahead of the wall clock."""
        return self.tester.get_block_by_number("latest")["timestamp"]


class JsonRpcLedger(Ledger):
    """Any Ethereum JSON-RPC endpoint over HTTP(S)."""

    name = "jsonrpc"

    def __init__(self, url, key=None, fees=None, timeout=RPC_TIMEOUT_S):
        self.url = url
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        Ledger.__init__(self, w3, key=key, fees=fees)
        self.key = key
        self.proof_rpc = url  # the light client talks to the node directly

    def mines_only_on_transactions(self):
        """True if the node is a development node (anvil, Hardhat) that mines a block only
        when a transaction arrives (automine, no interval mining): confirmations of the last
        batch would never come. False for any other node (the question is not understood).
        Raises LedgerUnavailable."""
        for prefix in ("anvil", "hardhat"):
            try:
                automine = self.raw_request(prefix + "_getAutomine", [])
            except LedgerUnavailable:
                raise
            except LedgerError:
                continue
            if not automine:
                return False
            try:
                interval = self.raw_request("anvil_getIntervalMining", []) if prefix == "anvil" else None
            except LedgerUnavailable:
                raise
            except LedgerError:
                interval = None
            return not interval
        return False

    def mine(self, blocks=1):
        """Mine ``blocks`` empty blocks on a development node (``evm_mine``)."""
        for _ in range(blocks):
            self.raw_request("evm_mine", [])

    def raw_request(self, method, params):
        """One JSON-RPC request as sent (no web3 parameter formatting); returns ``result``.
        Raises LedgerUnavailable or LedgerError (the node's error object)."""
        resp = self._rpc(self.w3.provider.make_request, method, params)
        if "error" in resp:
            raise LedgerError("%s %s: node answered error %s" % (self.name, method, resp["error"]))
        return resp.get("result")

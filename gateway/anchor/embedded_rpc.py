"""A JSON-RPC transport over the embedded chain that also answers ``eth_getProof``.

eth-tester (the embedded ledger's provider) has no ``eth_getProof`` (EIP-1186), and its raw
provider speaks Python values (snake_case keys, integers) rather than JSON-RPC hex. So that
the demo's on-chain check is the same light-client check a verifier runs against a real
node (gateway/lightclient.py), ``EmbeddedRpc(ledger)`` is a callable ``(method, params) ->
result`` that:

* answers ``eth_getProof`` from py-evm's own tries: the header's ``state_root`` of the
  requested block, the account trie node path to keccak256(address) and, from the account's
  storage root, the storage trie path to keccak256(slot) for each slot
  (``trie.HexaryTrie(db, root).get_proof(key)``; every node RLP-encoded, as a node sends it);
* forwards ``eth_blockNumber`` and ``eth_chainId`` to the provider (integers rewritten as
  JSON-RPC quantities);
* answers ``eth_getBlockByNumber`` from py-evm's canonical header itself (``BLOCK_FIELDS``),
  after checking that the provider names the same block hash. Not the provider's block:
  eth-tester reports ``extra_data`` padded to 32 zero bytes while the header holds none, so
  its answer does not hash to its own block hash. From the real fields the light client
  recomputes keccak256(RLP(header)) and compares it with the block hash the bundle pins, so
  the block hash check stays on for the embedded chain too (py-evm builds Prague headers,
  21 fields through ``requestsHash``, which lightclient's header layout covers).

Calls must not overlap with transactions on the same chain (py-evm is not thread-safe): the
demo stops its batcher before it verifies.
"""
from typing import TYPE_CHECKING, Any

import rlp
from eth_utils import keccak, to_canonical_address
from trie import HexaryTrie

from edgeledger.gateway.errors import LedgerError

if TYPE_CHECKING:
    from edgeledger.gateway.anchor.ledger.embedded import EmbeddedLedger

# JSON-RPC block field <- py-evm header attribute, and how the value is written ("data":
# 0x-hex bytes; "qty": 0x-hex quantity; "bloom": the integer as 256 bytes). Order is the
# header's RLP order (Yellow Paper §4.3, then the fields later forks appended).
BLOCK_FIELDS = (
    ("parentHash", "parent_hash", "data"),
    ("sha3Uncles", "uncles_hash", "data"),
    ("miner", "coinbase", "data"),
    ("stateRoot", "state_root", "data"),
    ("transactionsRoot", "transaction_root", "data"),
    ("receiptsRoot", "receipt_root", "data"),
    ("logsBloom", "bloom", "bloom"),
    ("difficulty", "difficulty", "qty"),
    ("number", "block_number", "qty"),
    ("gasLimit", "gas_limit", "qty"),
    ("gasUsed", "gas_used", "qty"),
    ("timestamp", "timestamp", "qty"),
    ("extraData", "extra_data", "data"),
    ("mixHash", "mix_hash", "data"),
    ("nonce", "nonce", "data"),
    ("baseFeePerGas", "base_fee_per_gas", "qty"),  # EIP-1559 (London)
    ("withdrawalsRoot", "withdrawals_root", "data"),  # EIP-4895 (Shanghai)
    ("blobGasUsed", "blob_gas_used", "qty"),  # EIP-4844 (Cancun)
    ("excessBlobGas", "excess_blob_gas", "qty"),  # EIP-4844 (Cancun)
    ("parentBeaconBlockRoot", "parent_beacon_block_root", "data"),  # EIP-4788 (Cancun)
    ("requestsHash", "requests_hash", "data"),  # EIP-7685 (Prague)
    ("hash", "hash", "data"),
)
BLOOM_BYTES = 256  # logs bloom: 2048 bits (Yellow Paper §4.3.1)
FORWARDED = ("eth_blockNumber", "eth_chainId", "eth_getBlockByNumber")


class EmbeddedRpcError(LedgerError):
    """A request the embedded transport cannot answer (unknown method, bad parameters)."""


def _qty(n: int) -> str:
    return hex(int(n))


def _data(v: str | bytes) -> str:
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    return v if v.startswith("0x") else "0x" + v


def _block_param(p: str | int) -> str | int:
    """JSON-RPC block parameter -> what eth-tester accepts (an int or a tag)."""
    if isinstance(p, int) or p in ("latest", "earliest", "pending"):
        return p
    try:
        return int(p, 16)
    except (TypeError, ValueError):
        raise EmbeddedRpcError("expected a block number or tag, found %r" % (p,)) from None


def _block_json(header: Any) -> dict[str, Any]:
    out = {}
    for rpc_name, attr, kind in BLOCK_FIELDS:
        v = getattr(header, attr, None)
        if v is None:  # a field of a later fork than the header's
            continue
        if kind == "qty":
            out[rpc_name] = _qty(v)
        elif kind == "bloom":
            out[rpc_name] = "0x" + int(v).to_bytes(BLOOM_BYTES, "big").hex()
        else:
            out[rpc_name] = _data(v)
    return out


class EmbeddedRpc:
    """``(method, params) -> result`` over an EmbeddedLedger (see the module docstring).

    It has no ``provider`` or ``w3`` attribute on purpose: lightclient treats objects with
    those as web3 instances and would bypass this transport.
    """

    def __init__(self, ledger: "EmbeddedLedger") -> None:
        self.ledger = ledger
        self._provider = ledger.w3.provider
        self.chain = ledger.tester.backend.chain
        self.counters = {"requests": 0, "proofs": 0}

    def __call__(self, method: str, params: list[Any]) -> Any:
        self.counters["requests"] += 1
        if method == "eth_getProof":
            return self.get_proof(*params)
        if method not in FORWARDED:
            raise EmbeddedRpcError("embedded transport answers %s and eth_getProof, not %s"
                                   % (", ".join(FORWARDED), method))
        if method == "eth_getBlockByNumber":
            params = [_block_param(params[0])] + list(params[1:])
        try:
            answer = self._provider.make_request(method, params)
        except Exception as e:  # eth-tester raises BlockNotFound / ValidationError for a missing block
            if method == "eth_getBlockByNumber" and type(e).__name__ in ("BlockNotFound", "ValidationError"):
                return None
            raise EmbeddedRpcError("%s: embedded provider failed: %s: %s" % (method, type(e).__name__, e)) from e
        if "error" in answer:
            raise EmbeddedRpcError("%s: embedded provider answered error %s" % (method, answer["error"]))
        result = answer.get("result")
        if method != "eth_getBlockByNumber":
            return _qty(result)
        if result is None:
            return None
        header = self._header(result["number"])
        if _data(result["hash"]) != _data(header.hash):
            raise EmbeddedRpcError("block %d: provider names hash %s, py-evm's header hashes to %s"
                                   % (result["number"], result["hash"], _data(header.hash)))
        return _block_json(header)

    def _header(self, block: str | int) -> Any:
        block = _block_param(block)
        if block in ("latest", "pending"):
            return self.chain.get_canonical_head()
        if block == "earliest":
            block = 0
        try:
            return self.chain.get_canonical_block_header_by_number(block)
        except Exception as e:  # eth.exceptions.HeaderNotFound
            raise EmbeddedRpcError("no block %r on the embedded chain (%s)" % (block, e)) from e

    def get_proof(self, address: str, slots: list[str], block: str | int = "latest") -> dict[str, Any]:
        """EIP-1186 answer for ``address`` and storage ``slots`` (32-byte hex) at ``block``."""
        self.counters["proofs"] += 1
        header = self._header(block)
        db = self.chain.chaindb.db
        state = HexaryTrie(db, header.state_root)
        account_key = keccak(to_canonical_address(address))
        account_rlp = state.get(account_key)
        account_proof = [rlp.encode(node) for node in state.get_proof(account_key)]
        if account_rlp:
            nonce, balance, storage_root, code_hash = rlp.decode(account_rlp)
            nonce, balance = int.from_bytes(nonce, "big"), int.from_bytes(balance, "big")
        else:  # an absent account: empty storage (EIP-1186 answers with the empty trie root)
            nonce, balance, storage_root, code_hash = 0, 0, HexaryTrie.BLANK_NODE_HASH, keccak(b"")
        storage = HexaryTrie(db, storage_root)
        entries = []
        for slot in slots:
            key = bytes.fromhex(slot[2:] if slot.startswith("0x") else slot).rjust(32, b"\0")
            value_rlp = storage.get(keccak(key))
            value = int.from_bytes(rlp.decode(value_rlp), "big") if value_rlp else 0
            entries.append({"key": "0x" + key.hex(), "value": _qty(value),
                            "proof": [_data(rlp.encode(n)) for n in storage.get_proof(keccak(key))]})
        return {"address": address, "accountProof": [_data(n) for n in account_proof],
                "balance": _qty(balance), "codeHash": _data(code_hash), "nonce": _qty(nonce),
                "storageHash": _data(storage_root), "storageProof": entries}

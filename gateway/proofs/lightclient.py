"""Prove anchor-contract storage against a block's state root (a light client, not a trusted API
answer).

``prove_slots`` asks any JSON-RPC node for a block header and one EIP-1186 proof
(``eth_getProof``) of the anchor contract's account and a list of its storage slots, and checks,
without trusting the node:

1. the block hash equals keccak256(RLP(header fields)) — the header the node sent is the block it
   names (and, if the caller pins one, the block hash the caller expects);
2. the account proof leads from the header's ``stateRoot`` to the contract account (Yellow
   Paper §4.1: key keccak256(address), value RLP[nonce, balance, storageRoot, codeHash]);
3. each storage proof leads from that ``storageRoot`` to its slot (key keccak256(slot), value
   RLP(uint)); a slot the trie does not hold is proven zero by the same nodes.

The values it returns are read out of the proven trie nodes; the ``value`` fields of the node's
answer are ignored, so a node (or a proxy in front of it) that rewrites them changes nothing,
and one that rewrites a proof node fails the hash chain. The ``codeHash`` it proves tells which
contract (and version) lives at the address (``gateway/verifier.py``).

The slot helpers below follow the contract's storage layout (EdgeLedgerAnchor.sol header
comment). Its entries are append-only, so proving at the latest block is enough: no archive
node (whose old states a pruning full node has dropped) is needed.

Block hash recomputation covers the Ethereum header layouts (pre-London through Prague: the
optional trailing fields are taken in order when present). Chains whose block hash is not
keccak256 of that list — QBFT/IBFT 2.0 (Besu: hash excludes the committed seals in
extraData), AuRa (Energy Web: seal fields), FISCO BCOS, ChainMaker — need
``check_block_hash=False`` and then rely on the node for the header.

Storage keys are sent as full 32-byte hex words through a raw JSON-RPC request: anvil refuses
short forms such as ``0x1`` and web3's formatters may shorten them.
"""
import json
import urllib.request
from typing import Any

import rlp
from eth_utils import keccak, to_checksum_address
from trie import HexaryTrie
from trie.exceptions import BadTrieProof

from edgeledger.gateway.anchor.ledger import LedgerUnavailable
from edgeledger.gateway.errors import LedgerError
from edgeledger.protocols.keywindow import site_hash

# Storage slots of EdgeLedgerAnchor v2 (see the layout comment in the contract source).
SLOT_OWNER = 0  # owner (bits 0..159) | deployedBlock (bits 160..223)
SLOT_GATEWAYS = 1
SLOT_AUTHORIZATIONS = 2
SLOT_ANCHORS = 3
SLOT_KEYS = 4
# A verifier asks for at most a handful of slots (anchor 2, authorization 1, key 2, owner 1);
# more in one request is refused rather than sent to a node that may cap it.
MAX_SLOTS_PER_PROOF = 16
RPC_TIMEOUT_S = 10.0
# Ethereum header fields in RLP order; the fields after baseFeePerGas were added by forks
# (Shanghai: withdrawalsRoot; Cancun: blobGasUsed, excessBlobGas, parentBeaconBlockRoot;
# Prague: requestsHash) and are present only from that fork on.
HEADER_FIELDS = (
    ("parentHash", "bytes"), ("sha3Uncles", "bytes"), ("miner", "bytes"), ("stateRoot", "bytes"),
    ("transactionsRoot", "bytes"), ("receiptsRoot", "bytes"), ("logsBloom", "bytes"), ("difficulty", "int"),
    ("number", "int"), ("gasLimit", "int"), ("gasUsed", "int"), ("timestamp", "int"), ("extraData", "bytes"),
    ("mixHash", "bytes"), ("nonce", "bytes"),
)
OPTIONAL_HEADER_FIELDS = (
    ("baseFeePerGas", "int"), ("withdrawalsRoot", "bytes"), ("blobGasUsed", "int"), ("excessBlobGas", "int"),
    ("parentBeaconBlockRoot", "bytes"), ("requestsHash", "bytes"),
)


class LightClientError(LedgerError):
    """Root of the light client's verdicts."""


class NotAnchored(LightClientError):
    """The storage slot is empty at that block: the batch is not anchored there."""


class TooFewConfirmations(LightClientError):
    def __init__(self, have: int, need: int) -> None:
        self.have = have
        self.need = need
        LightClientError.__init__(self, "expected at least %d confirmations, found %d" % (need, have))


class ProofMismatch(LightClientError):
    """A header, account or storage proof does not check out, or the value differs."""


# --------------------------------------------------------------------------- slots

def word(v: int) -> bytes:
    """An integer (a slot number) as a 32-byte storage key."""
    return int(v).to_bytes(32, "big")


def _addr_word(address: str) -> bytes:
    return bytes.fromhex(to_checksum_address(address)[2:]).rjust(32, b"\0")


def mapping_slot(key_word: bytes, base: int | bytes) -> bytes:
    """Slot of ``m[key]`` for a mapping at slot ``base`` (int or 32-byte word): keccak256(key .
    base), the key already padded to 32 bytes (Solidity storage layout)."""
    return keccak(key_word + (base if isinstance(base, bytes) else word(base)))


def slot_plus(slot: bytes, n: int) -> bytes:
    """The n-th word after ``slot`` (a struct member)."""
    return word((int.from_bytes(slot, "big") + n) % (1 << 256))


def anchor_slot(gateway: str, number: int) -> bytes:
    """Base slot of ``_anchors[gateway][number]``: +0 header hash, +1 block number | time."""
    return mapping_slot(word(number), mapping_slot(_addr_word(gateway), SLOT_ANCHORS))


def authorization_slot(site: str, gateway: str) -> bytes:
    """Slot of ``_authorizations[siteHash][gateway]``: fromBlock | untilBlock."""
    return mapping_slot(_addr_word(gateway), mapping_slot(site_hash(site), SLOT_AUTHORIZATIONS))


def key_slot(site: str, kid: bytes) -> bytes:
    """Base slot of ``_keys[siteHash][kid]``: +0 commitment, +1 status (bytes16 left-aligned)."""
    return mapping_slot(bytes(kid).ljust(32, b"\0"), mapping_slot(site_hash(site), SLOT_KEYS))


def gateway_slot(gateway: str) -> bytes:
    """Slot of ``_gateways[gateway]``: lastBatch | activeSites."""
    return mapping_slot(_addr_word(gateway), SLOT_GATEWAYS)


def fields(word: bytes | int, widths: tuple[int, ...]) -> list[int]:
    """Split a packed storage word (bytes32 or int) into unsigned fields, low-order bits first."""
    v = word if isinstance(word, int) else int.from_bytes(word, "big")
    out = []
    for w in widths:
        out.append(v & ((1 << w) - 1))
        v >>= w
    return out


# --------------------------------------------------------------------------- proofs

def _b(hexstr: str) -> bytes:
    s = hexstr[2:] if hexstr.startswith("0x") else hexstr
    if len(s) % 2:
        s = "0" + s
    return bytes.fromhex(s)


def _int(hexstr: str) -> int:
    return int(hexstr, 16)


def _quantity(method: str, value: Any) -> int:
    """A JSON-RPC quantity from the node, or LightClientError naming what came instead."""
    try:
        return int(value, 16)
    except (TypeError, ValueError) as e:
        raise LightClientError("%s: expected a hex quantity from the node, found %r (%s)" % (method, value, e)) from e


def header_rlp_fields(block: dict[str, Any]) -> list[Any]:
    """The header field list whose RLP the block hash is computed over."""
    fields_: list[Any] = []
    for name, kind in HEADER_FIELDS:
        if name not in block:
            raise ProofMismatch("expected header field %s in the block, found none" % name)
        fields_.append(_int(block[name]) if kind == "int" else _b(block[name]))
    for name, kind in OPTIONAL_HEADER_FIELDS:
        if block.get(name) is None:
            break
        fields_.append(_int(block[name]) if kind == "int" else _b(block[name]))
    return fields_


def block_hash_of(block: dict[str, Any]) -> bytes:
    return keccak(rlp.encode(header_rlp_fields(block)))


class _Rpc(object):
    """Raw JSON-RPC over an URL or over a web3 instance's provider (no parameter rewriting)."""

    def __init__(self, target: Any, timeout: float = RPC_TIMEOUT_S) -> None:
        self.url = target if isinstance(target, str) else None
        self.func = target if (self.url is None and callable(target) and not hasattr(target, "provider")
                               and not hasattr(target, "w3")) else None
        w3 = getattr(target, "w3", target)
        self.provider: Any = None if (self.url or self.func) else w3.provider
        self.timeout = timeout

    def __call__(self, method: str, params: list[Any]) -> Any:
        if self.func is not None:
            return self.func(method, params)
        try:
            if self.url:
                body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
                req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    answer = json.loads(resp.read())
            else:
                answer = self.provider.make_request(method, params)
        except OSError as e:
            raise LedgerUnavailable("%s: node unreachable: %s" % (method, e)) from e
        except ValueError as e:  # not JSON: a proxy or a web page, not a node
            raise LightClientError("%s: the node's answer is not JSON-RPC: %s" % (method, e)) from e
        except Exception as e:
            if type(e).__module__.startswith("requests"):
                raise LedgerUnavailable("%s: node unreachable: %s" % (method, e)) from e
            raise
        if not isinstance(answer, dict):
            raise LightClientError("%s: expected a JSON-RPC object from the node, found %s"
                                   % (method, type(answer).__name__))
        if "error" in answer:
            raise LightClientError("%s: node answered error %s" % (method, answer["error"]))
        return answer.get("result")


def request(rpc: Any, method: str, params: list) -> Any:
    """One raw JSON-RPC request through the same transports ``prove_slots`` takes; its answer
    is not proven."""
    return _Rpc(rpc)(method, params)


def chain_id(rpc: Any) -> int:
    """The node's chain id (eth_chainId). Not provable from state: a sanity check only."""
    return _quantity("eth_chainId", _Rpc(rpc)("eth_chainId", []))


def tip(rpc: Any) -> int:
    return _quantity("eth_blockNumber", _Rpc(rpc)("eth_blockNumber", []))


def prove_slots(rpc: Any, contract: str, slots: list[bytes], block: int | str = "latest",
                block_hash: bytes | None = None, check_block_hash: bool = True) -> dict:
    """Prove the values of ``slots`` (32-byte words) of ``contract``'s storage at ``block`` (an
    int or "latest", which is fixed to the node's tip first) from the block header's stateRoot.

    ``rpc`` is an URL, a ``web3.Web3``, a ledger (anything with ``.w3``) or a callable
    ``(method, params) -> result``. ``block_hash`` (32 bytes), if given, pins the block.
    Returns a dict: block_number, block_hash, timestamp, tip, state_root, storage_root,
    code_hash, nonce, balance, values ({slot: 32-byte value, zero if empty}).

    Raises ProofMismatch (block hash, account proof or a storage proof do not agree; no account
    at the address), LedgerUnavailable, LightClientError (the node refused a request or has no
    such block).
    """
    slots = [bytes(s) for s in slots]
    if not slots or len(slots) > MAX_SLOTS_PER_PROOF or any(len(s) != 32 for s in slots):
        raise ValueError("expected 1..%d slots of 32 bytes, found %r" % (MAX_SLOTS_PER_PROOF, slots))
    call = _Rpc(rpc)
    contract = to_checksum_address(contract)
    top = _quantity("eth_blockNumber", call("eth_blockNumber", []))
    n = top if block == "latest" else int(block)
    if n > top:
        raise LightClientError("expected block %d to exist, the node's latest block is %d" % (n, top))
    header = call("eth_getBlockByNumber", [hex(n), False])
    if not isinstance(header, dict):
        raise LightClientError("expected block %d from the node, found none (tip %d)" % (n, top))
    named, state_root, timestamp = _check_header(header, n, block_hash, check_block_hash)
    proof = call("eth_getProof", [contract, ["0x" + s.hex() for s in slots], hex(n)])
    try:
        account, values = _prove_account(proof, state_root, contract, slots, n)
    except (BadTrieProof, rlp.exceptions.DecodingError, rlp.exceptions.DeserializationError) as e:
        raise ProofMismatch("block %d: a proof of %s does not lead to stateRoot %s: %s" % (
            n, contract, header["stateRoot"], e)) from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ProofMismatch("block %d: malformed eth_getProof answer (%s: %s)" % (n, type(e).__name__, e)) from e
    nonce, balance, storage_root, code_hash = account
    return {"block_number": n, "block_hash": named, "timestamp": timestamp, "tip": top, "state_root": state_root,
            "storage_root": storage_root, "code_hash": code_hash, "nonce": int.from_bytes(nonce, "big"),
            "balance": int.from_bytes(balance, "big"), "values": values}


def _check_header(header: dict, n: int, block_hash: bytes | None, check_block_hash: bool) -> tuple[bytes, bytes, int]:
    """(block hash, stateRoot, timestamp) of the node's header for block ``n``, checked against
    the pinned ``block_hash`` and (``check_block_hash``) against keccak256(RLP(header)).
    Raises ProofMismatch."""
    try:
        named = _b(header["hash"])
        if block_hash is not None and named != bytes(block_hash):
            raise ProofMismatch("expected block %d to have hash 0x%s, the node names %s"
                                % (n, bytes(block_hash).hex(), header["hash"]))
        if check_block_hash:
            computed = block_hash_of(header)
            if computed != named:
                raise ProofMismatch("expected block hash %s = keccak256(RLP(header)), computed 0x%s" % (
                    header["hash"], computed.hex()))
        if _int(header["number"]) != n:
            raise ProofMismatch("expected block %d, the node sent block %s" % (n, header["number"]))
        return named, _b(header["stateRoot"]), _int(header["timestamp"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ProofMismatch("block %d: malformed header from the node (%s: %s)" % (n, type(e).__name__, e)) from e


def _prove_account(proof: Any, state_root: bytes, contract: str, slots: list[bytes],
                   n: int) -> tuple[tuple[bytes, bytes, bytes, bytes], dict[bytes, bytes]]:
    """([nonce, balance, storageRoot, codeHash] of ``contract``, {slot: value}) read out of the
    eth_getProof answer's trie nodes from ``state_root``. Raises ProofMismatch, and lets the
    trie, RLP and shape errors of a malformed answer through to ``prove_slots``."""
    account_rlp = HexaryTrie.get_from_proof(
        state_root, keccak(_b(contract)), [rlp.decode(_b(x)) for x in proof["accountProof"]])
    if not account_rlp:
        raise ProofMismatch("expected an account at %s in block %d, the proof shows none" % (contract, n))
    nonce, balance, storage_root, code_hash = rlp.decode(account_rlp)
    entries = proof.get("storageProof") or []
    if len(entries) != len(slots):
        raise ProofMismatch("expected %d storage proofs, the node sent %d" % (len(slots), len(entries)))
    values = {}
    for slot, entry in zip(slots, entries):
        if _b(entry["key"]).rjust(32, b"\0") != slot:
            raise ProofMismatch("expected the storage proof of slot 0x%s, the node sent one for %s"
                                % (slot.hex(), entry["key"]))
        nodes = [rlp.decode(_b(x)) for x in entry["proof"]]
        value_rlp = HexaryTrie.get_from_proof(storage_root, keccak(slot), nodes)
        values[slot] = rlp.decode(value_rlp).rjust(32, b"\0") if value_rlp else bytes(32)
    return (nonce, balance, storage_root, code_hash), values


def verify_anchor_storage(rpc: Any, contract: str, gateway: str, number: int, expected_header_hash: bytes,
                          block_number: int | str = "latest", min_confirmations: int = 1,
                          block_hash: bytes | None = None, check_block_hash: bool = True) -> dict:
    """Prove that batch ``number`` of ``gateway`` is anchored with ``expected_header_hash`` in the
    anchor contract's storage at ``block_number`` (default: the node's latest block), and read the
    anchoring block's number and time stored next to it.

    Returns prove_slots' dict plus value (the header hash), anchor_block, anchor_time and
    confirmations (blocks from the anchoring block to the tip, counting it). Raises
    TooFewConfirmations(have, need), NotAnchored (slot empty), ProofMismatch, LedgerUnavailable,
    LightClientError.
    """
    expected = bytes(expected_header_hash)
    if len(expected) != 32:
        raise ValueError("expected a 32-byte header hash, found %d bytes" % len(expected))
    base = anchor_slot(gateway, number)
    meta = slot_plus(base, 1)
    out = prove_slots(rpc, contract, [base, meta], block=block_number, block_hash=block_hash,
                      check_block_hash=check_block_hash)
    value = out["values"][base]
    if value == bytes(32):
        raise NotAnchored("batch %d of gateway %s is not anchored in contract %s at block %d" % (
            number, to_checksum_address(gateway), to_checksum_address(contract), out["block_number"]))
    if value != expected:
        raise ProofMismatch("batch %d of gateway %s: expected header hash 0x%s in storage, proven value is 0x%s" % (
            number, to_checksum_address(gateway), expected.hex(), value.hex()))
    anchor_block, anchor_time = fields(out["values"][meta], (64, 64))
    have = out["tip"] - anchor_block + 1
    if have < min_confirmations:
        raise TooFewConfirmations(have, min_confirmations)
    out.update({"value": value, "anchor_block": anchor_block, "anchor_time": anchor_time, "confirmations": have,
                "slot": base})
    return out

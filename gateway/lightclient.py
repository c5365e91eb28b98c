"""Check an anchor against a block's state root (a light client, not a trusted API answer).

``verify_anchor_storage`` asks any JSON-RPC node for a block header and an EIP-1186 proof
(``eth_getProof``) of the anchor contract's storage slot ``headers[gateway][number]`` (or
``roots[...]``) and checks, without trusting the node:

1. the block hash equals keccak256(RLP(header fields)) — the header the node sent is the block
   the caller pinned (by hash, from a proof bundle) or the block the node calls canonical;
2. the account proof leads from the header's ``stateRoot`` to the contract account (Yellow
   Paper §4.1: key keccak256(address), value RLP[nonce, balance, storageRoot, codeHash]);
3. the storage proof leads from that ``storageRoot`` to the slot (key keccak256(slot), value
   RLP(uint)), and the value is the expected header hash / root;
4. the block has at least ``min_confirmations`` (the tip counts as 1).

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

import rlp
from eth_utils import keccak, to_checksum_address
from trie import HexaryTrie
from trie.exceptions import BadTrieProof

from edgeledger.gateway.errors import LedgerError

# Storage slots of EdgeLedgerAnchor (see the layout comment in the contract source).
SLOT_GATEWAYS = 0
SLOT_ROOTS = 1
SLOT_HEADERS = 2
SLOT_KEYS = 3
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
    def __init__(self, have, need):
        self.have = have
        self.need = need
        LightClientError.__init__(self, "expected at least %d confirmations, found %d" % (need, have))


class ProofMismatch(LightClientError):
    """A header, account or storage proof does not check out, or the value differs."""


def mapping_slot(gateway, number, base_slot):
    """Slot of ``m[gateway][number]`` for a nested mapping at ``base_slot`` (Solidity layout:
    keccak256(key . slot), keys and slot padded to 32 bytes)."""
    gw = bytes.fromhex(to_checksum_address(gateway)[2:]).rjust(32, b"\0")
    inner = keccak(gw + int(base_slot).to_bytes(32, "big"))
    return keccak(int(number).to_bytes(32, "big") + inner)


def _b(hexstr):
    s = hexstr[2:] if hexstr.startswith("0x") else hexstr
    if len(s) % 2:
        s = "0" + s
    return bytes.fromhex(s)


def _int(hexstr):
    return int(hexstr, 16)


def header_rlp_fields(block):
    """The header field list whose RLP the block hash is computed over."""
    fields = []
    for name, kind in HEADER_FIELDS:
        if name not in block:
            raise ProofMismatch("expected header field %s in the block, found none" % name)
        fields.append(_int(block[name]) if kind == "int" else _b(block[name]))
    for name, kind in OPTIONAL_HEADER_FIELDS:
        if block.get(name) is None:
            break
        fields.append(_int(block[name]) if kind == "int" else _b(block[name]))
    return fields


def block_hash_of(block):
    return keccak(rlp.encode(header_rlp_fields(block)))


class _Rpc(object):
    """Raw JSON-RPC over an URL or over a web3 instance's provider (no parameter rewriting)."""

    def __init__(self, target, timeout=RPC_TIMEOUT_S):
        self.url = target if isinstance(target, str) else None
        self.func = target if (self.url is None and callable(target) and not hasattr(target, "provider")
                               and not hasattr(target, "w3")) else None
        w3 = getattr(target, "w3", target)
        self.provider = None if (self.url or self.func) else w3.provider
        self.timeout = timeout

    def __call__(self, method, params):
        from edgeledger.gateway.ledger import LedgerUnavailable

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
            raise LedgerUnavailable("%s: node unreachable: %s" % (method, e))
        except Exception as e:
            if type(e).__module__.startswith("requests"):
                raise LedgerUnavailable("%s: node unreachable: %s" % (method, e))
            raise
        if "error" in answer:
            raise LightClientError("%s: node answered error %s" % (method, answer["error"]))
        return answer.get("result")


def verify_anchor_storage(rpc, contract, gateway, number, expected_header_hash=None, expected_root=None,
                          block_number="latest", min_confirmations=1, block_hash=None, check_block_hash=True):
    """Prove that ``headers[gateway][number]`` (or ``roots[...]``) holds the expected value in
    the anchor contract's storage at ``block_number`` (int or "latest"), using only the
    block header's stateRoot and an EIP-1186 proof.

    ``rpc`` is an URL, a ``web3.Web3``, a ledger (anything with ``.w3``) or a callable
    ``(method, params) -> result`` (e.g. a caching or recording transport). Give exactly one of
    ``expected_header_hash`` / ``expected_root`` (32 bytes). ``block_hash``, if given (e.g.
    from a proof bundle), pins the block. Returns a dict (block_number, block_hash,
    state_root, storage_root, slot, value, confirmations).

    Raises TooFewConfirmations(have, need), NotAnchored (slot empty), ProofMismatch (block
    hash, account proof, storage proof or value do not agree), LedgerUnavailable,
    LightClientError (the node refused a request).
    """
    if (expected_header_hash is None) == (expected_root is None):
        raise ValueError("expected exactly one of expected_header_hash, expected_root")
    expected = bytes(expected_header_hash if expected_header_hash is not None else expected_root)
    if len(expected) != 32:
        raise ValueError("expected a 32-byte value, found %d bytes" % len(expected))
    call = _Rpc(rpc)
    contract = to_checksum_address(contract)

    tip = _int(call("eth_blockNumber", []))
    n = tip if block_number == "latest" else int(block_number)
    block = call("eth_getBlockByNumber", [hex(n), False])
    if block is None:
        raise NotAnchored("expected block %d, node has none (tip %d)" % (n, tip))
    if block_hash is not None and _b(block["hash"]) != bytes(block_hash):
        raise ProofMismatch("expected block %d to have hash 0x%s, node has %s" % (n, bytes(block_hash).hex(), block["hash"]))
    if check_block_hash:
        computed = block_hash_of(block)
        if computed != _b(block["hash"]):
            raise ProofMismatch("expected block hash %s = keccak256(RLP(header)), computed 0x%s" % (
                block["hash"], computed.hex()))
    have = tip - n + 1
    if have < min_confirmations:
        raise TooFewConfirmations(have, min_confirmations)
    state_root = _b(block["stateRoot"])

    slot = mapping_slot(gateway, number, SLOT_HEADERS if expected_header_hash is not None else SLOT_ROOTS)
    proof = call("eth_getProof", [contract, ["0x" + slot.hex()], hex(n)])

    # Account proof: stateRoot -> RLP[nonce, balance, storageRoot, codeHash].
    try:
        account_rlp = HexaryTrie.get_from_proof(
            state_root, keccak(_b(contract)), [rlp.decode(_b(x)) for x in proof["accountProof"]])
    except (BadTrieProof, rlp.exceptions.DecodingError, KeyError) as e:
        raise ProofMismatch("account proof of %s does not lead to stateRoot %s: %s" % (contract, block["stateRoot"], e))
    if not account_rlp:
        raise ProofMismatch("expected an account at %s in block %d, the proof shows none" % (contract, n))
    nonce, balance, storage_root, code_hash = rlp.decode(account_rlp)
    if storage_root != _b(proof["storageHash"]):
        raise ProofMismatch("expected storageHash %s from the node, account proof has 0x%s" % (
            proof["storageHash"], storage_root.hex()))

    # Storage proof: storageRoot -> RLP(uint256 value), key keccak256(slot).
    entries = proof.get("storageProof") or []
    if len(entries) != 1 or _b(entries[0]["key"]).rjust(32, b"\0") != slot:
        raise ProofMismatch("expected one storage proof for slot 0x%s, found %r" % (slot.hex(), entries))
    try:
        value_rlp = HexaryTrie.get_from_proof(storage_root, keccak(slot), [rlp.decode(_b(x)) for x in entries[0]["proof"]])
    except (BadTrieProof, rlp.exceptions.DecodingError) as e:
        raise ProofMismatch("storage proof of slot 0x%s does not lead to storageRoot 0x%s: %s" % (
            slot.hex(), storage_root.hex(), e))
    if not value_rlp:
        raise NotAnchored("batch %d of gateway %s: slot 0x%s is empty at block %d" % (
            number, to_checksum_address(gateway), slot.hex(), n))
    value = rlp.decode(value_rlp).rjust(32, b"\0")
    if value != expected:
        raise ProofMismatch("batch %d of gateway %s: expected 0x%s in storage, proven value is 0x%s" % (
            number, to_checksum_address(gateway), expected.hex(), value.hex()))
    return {"block_number": n, "block_hash": _b(block["hash"]), "state_root": state_root,
            "storage_root": storage_root, "slot": slot, "value": value, "confirmations": have}

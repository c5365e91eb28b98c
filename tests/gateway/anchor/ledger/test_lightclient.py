"""Light client on anvil: storage proofs of anchored headers against the block's stateRoot."""
import hashlib

import pytest

from edgeledger.gateway.proofs.lightclient import (
    NotAnchored,
    ProofMismatch,
    TooFewConfirmations,
    anchor_slot,
    block_hash_of,
    fields,
    prove_slots,
    slot_plus,
    verify_anchor_storage,
)
from edgeledger.protocols.batch import BatchHeader
from tests.support.anvil import rpc

pytestmark = pytest.mark.ledger
ZERO = bytes(32)


@pytest.fixture
def anchored(anvil_ledger, anvil_node):
    led = anvil_ledger
    root = hashlib.sha256(b"batch-1").digest()
    r = led.wait_for_receipt(led.anchor(1, ZERO, root, 42, 100, 160))
    hh = BatchHeader(bytes.fromhex(led.account[2:]), 1, ZERO, root, 42, 100, 160).hash()
    anvil_node.mine(2)
    return led, r, root, hh


def test_anchored_header_verifies_at_the_latest_block_with_its_block_and_time(anchored, anvil_node):
    led, r, root, hh = anchored
    out = verify_anchor_storage(anvil_node.url, led.address, led.account, 1, hh, min_confirmations=3)
    assert out["confirmations"] == 3 and out["value"] == hh and out["slot"] == anchor_slot(led.account, 1)
    block = led.w3.eth.get_block(r["blockNumber"])
    assert (out["anchor_block"], out["anchor_time"]) == (r["blockNumber"], block["timestamp"])
    assert out["block_number"] == anvil_node.block_number()  # proven at the tip, not at the anchor block
    pinned = verify_anchor_storage(anvil_node.url, led.address, led.account, 1, hh, block_number=r["blockNumber"],
                                   block_hash=r["blockHash"])
    assert pinned["block_number"] == r["blockNumber"] and pinned["confirmations"] == 3


def test_proven_words_match_the_nodes_storage_and_empty_slots_prove_zero(anchored, anvil_node):
    led, r, root, hh = anchored
    base = anchor_slot(led.account, 1)
    empty = anchor_slot(led.account, 99)
    out = prove_slots(anvil_node.url, led.address, [base, slot_plus(base, 1), empty])
    for slot in (base, slot_plus(base, 1)):
        stored = rpc(anvil_node.url, "eth_getStorageAt", [led.address, "0x" + slot.hex(), "latest"])
        assert out["values"][slot] == bytes.fromhex(stored[2:]).rjust(32, b"\0")
    assert fields(out["values"][slot_plus(base, 1)], (64,))[0] == r["blockNumber"]
    assert out["values"][empty] == bytes(32)


def test_tampered_header_hash_is_proof_mismatch(anchored, anvil_node):
    led, r, root, hh = anchored
    with pytest.raises(ProofMismatch):
        verify_anchor_storage(anvil_node.url, led.address, led.account, 1, bytes([hh[0] ^ 1]) + hh[1:])


def test_too_few_confirmations(anchored, anvil_node):
    led, r, root, hh = anchored
    with pytest.raises(TooFewConfirmations) as e:
        verify_anchor_storage(anvil_node.url, led.address, led.account, 1, hh, min_confirmations=12)
    assert (e.value.have, e.value.need) == (3, 12)


def test_unanchored_number_and_earlier_block_are_not_anchored(anchored, anvil_node):
    led, r, root, hh = anchored
    with pytest.raises(NotAnchored):
        verify_anchor_storage(anvil_node.url, led.address, led.account, 2, hh)
    with pytest.raises(NotAnchored):
        verify_anchor_storage(anvil_node.url, led.address, led.account, 1, hh, block_number=r["blockNumber"] - 1)


def test_lying_node_is_caught(anchored, anvil_node):
    """A node that forges the stateRoot or the proof nodes is caught by the hash checks."""
    led, r, root, hh = anchored

    def liar(tamper):
        def call(method, params):
            result = rpc(anvil_node.url, method, params)
            return tamper(method, result)
        return call

    def forge_state_root(method, result):
        if method == "eth_getBlockByNumber":
            result["stateRoot"] = "0x" + "11" * 32
        return result

    def forge_storage_node(method, result):
        if method == "eth_getProof":
            node = result["storageProof"][0]["proof"][-1]
            result["storageProof"][0]["proof"][-1] = node[:-2] + ("00" if node[-2:] != "00" else "01")
        return result

    with pytest.raises(ProofMismatch, match="keccak256"):
        verify_anchor_storage(liar(forge_state_root), led.address, led.account, 1, hh)
    with pytest.raises(ProofMismatch):
        verify_anchor_storage(liar(forge_state_root), led.address, led.account, 1, hh, check_block_hash=False)
    with pytest.raises(ProofMismatch):
        verify_anchor_storage(liar(forge_storage_node), led.address, led.account, 1, hh)


def test_block_hash_recomputed_from_rlp_header(anvil_node):
    block = rpc(anvil_node.url, "eth_getBlockByNumber", ["latest", False])
    assert "0x" + block_hash_of(block).hex() == block["hash"]

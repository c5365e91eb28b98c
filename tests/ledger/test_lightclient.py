"""Light client on anvil: storage proofs of anchored headers against the block's stateRoot."""
import hashlib

import pytest

from edgeledger.gateway.ledger import header_hash
from edgeledger.gateway.lightclient import (
    NotAnchored, ProofMismatch, TooFewConfirmations, block_hash_of, mapping_slot, verify_anchor_storage,
)
from tests.support.anvil import rpc

pytestmark = pytest.mark.ledger
ZERO = bytes(32)


@pytest.fixture
def anchored(anvil_ledger, anvil_node):
    led = anvil_ledger
    root = hashlib.sha256(b"batch-1").digest()
    r = led.wait_for_receipt(led.anchor(1, ZERO, root, 42, 100, 160))
    hh = header_hash(led.account, 1, ZERO, root, 42, 100, 160)
    anvil_node.mine(2)
    return led, r, root, hh


def test_anchored_header_and_root_verify(anchored, anvil_node):
    led, r, root, hh = anchored
    out = verify_anchor_storage(anvil_node.url, led.address, led.account, 1, expected_header_hash=hh,
                                block_number=r["blockNumber"], min_confirmations=3, block_hash=r["blockHash"])
    assert out["confirmations"] == 3 and out["value"] == hh
    assert out["slot"] == mapping_slot(led.account, 1, 2)
    out = verify_anchor_storage(led, led.address, led.account, 1, expected_root=root)
    assert out["value"] == root


def test_tampered_root_is_proof_mismatch(anchored, anvil_node):
    led, r, root, hh = anchored
    with pytest.raises(ProofMismatch):
        verify_anchor_storage(anvil_node.url, led.address, led.account, 1,
                              expected_root=bytes([root[0] ^ 1]) + root[1:])


def test_too_few_confirmations(anchored, anvil_node):
    led, r, root, hh = anchored
    with pytest.raises(TooFewConfirmations) as e:
        verify_anchor_storage(anvil_node.url, led.address, led.account, 1, expected_header_hash=hh,
                              block_number=r["blockNumber"], min_confirmations=12)
    assert (e.value.have, e.value.need) == (3, 12)


def test_unanchored_number_and_earlier_block_are_not_anchored(anchored, anvil_node):
    led, r, root, hh = anchored
    with pytest.raises(NotAnchored):
        verify_anchor_storage(anvil_node.url, led.address, led.account, 2, expected_header_hash=hh)
    with pytest.raises(NotAnchored):
        verify_anchor_storage(anvil_node.url, led.address, led.account, 1, expected_header_hash=hh,
                              block_number=r["blockNumber"] - 1)


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
        verify_anchor_storage(liar(forge_state_root), led.address, led.account, 1, expected_header_hash=hh)
    with pytest.raises(ProofMismatch):
        verify_anchor_storage(liar(forge_state_root), led.address, led.account, 1, expected_header_hash=hh,
                              check_block_hash=False)
    with pytest.raises(ProofMismatch):
        verify_anchor_storage(liar(forge_storage_node), led.address, led.account, 1, expected_header_hash=hh)


def test_block_hash_recomputed_from_rlp_header(anvil_node):
    block = rpc(anvil_node.url, "eth_getBlockByNumber", ["latest", False])
    assert "0x" + block_hash_of(block).hex() == block["hash"]

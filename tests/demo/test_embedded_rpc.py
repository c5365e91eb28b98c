"""The embedded proof transport: EIP-1186 answers from py-evm's tries, checked by the light
client against the block's state root, with the block hash recomputed."""
import os

import pytest
import rlp
from eth_utils import keccak, to_canonical_address
from trie import HexaryTrie

from edgeledger.gateway.anchor.embedded_rpc import EmbeddedRpc, EmbeddedRpcError
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.proofs import lightclient
from edgeledger.protocols.batch import BatchHeader


@pytest.fixture(scope="module")
def anchored():
    ledger = EmbeddedLedger()
    ledger.deploy(owner_key=ledger.key)
    ledger.authorize_gateway("demo", ledger.account)
    root = os.urandom(32)
    receipt = ledger.wait_for_receipt(ledger.anchor(1, bytes(32), root, 5, 100, 200))
    ledger.mine(2)
    hh = BatchHeader(bytes.fromhex(ledger.account[2:]), 1, bytes(32), root, 5, 100, 200).hash()
    return ledger, EmbeddedRpc(ledger), receipt, root, hh


def _b(h):
    return bytes.fromhex(h[2:])


def test_light_client_proves_the_anchored_header_at_its_block(anchored):
    ledger, rpc, receipt, _root, hh = anchored
    proof = lightclient.verify_anchor_storage(
        rpc, ledger.address, ledger.account, 1, expected_header_hash=hh, block_number=receipt["blockNumber"],
        block_hash=bytes(receipt["blockHash"]), min_confirmations=2)  # check_block_hash stays on
    assert proof["value"] == hh and proof["confirmations"] == 3
    assert rpc.counters["proofs"] >= 1


def test_a_wrong_header_hash_is_a_mismatch(anchored):
    ledger, rpc, _receipt, _root, hh = anchored
    assert lightclient.verify_anchor_storage(rpc, ledger.address, ledger.account, 1, hh)["value"] == hh
    with pytest.raises(lightclient.ProofMismatch):
        lightclient.verify_anchor_storage(rpc, ledger.address, ledger.account, 1, bytes(32 * [7]))


def test_before_the_anchor_block_and_an_unanchored_number_are_not_anchored(anchored):
    ledger, rpc, receipt, _root, hh = anchored
    with pytest.raises(lightclient.NotAnchored):
        lightclient.verify_anchor_storage(rpc, ledger.address, ledger.account, 1, hh,
                                          block_number=receipt["blockNumber"] - 1)
    with pytest.raises(lightclient.NotAnchored):
        lightclient.verify_anchor_storage(rpc, ledger.address, ledger.account, 2, hh)


def test_account_proof_matches_what_the_node_reports(anchored):
    ledger, rpc, _receipt, _root, _hh = anchored
    block = rpc("eth_getBlockByNumber", ["latest", False])
    p = rpc("eth_getProof", [ledger.account, [], block["number"]])
    account = HexaryTrie.get_from_proof(_b(block["stateRoot"]), keccak(to_canonical_address(ledger.account)),
                                        [rlp.decode(_b(n)) for n in p["accountProof"]])
    nonce, balance, _storage, code_hash = rlp.decode(account)
    assert int.from_bytes(balance, "big") == int(p["balance"], 16) == ledger.balance(ledger.account)
    assert int.from_bytes(nonce, "big") == int(p["nonce"], 16) == ledger.w3.eth.get_transaction_count(ledger.account)
    assert code_hash == _b(p["codeHash"]) == keccak(b"")  # an account without code


def test_a_flipped_byte_in_a_storage_proof_node_is_refused(anchored):
    ledger, rpc, _receipt, _root, _hh = anchored

    def corrupt(method, params):
        answer = rpc(method, params)
        if method == "eth_getProof":
            node = bytearray(_b(answer["storageProof"][0]["proof"][-1]))
            node[-1] ^= 0x01
            answer["storageProof"][0]["proof"][-1] = "0x" + bytes(node).hex()
        return answer

    with pytest.raises((lightclient.ProofMismatch, lightclient.NotAnchored)):
        lightclient.verify_anchor_storage(corrupt, ledger.address, ledger.account, 1, anchored[4])


def test_block_hash_recomputes_from_the_served_header_but_not_from_eth_testers_own_answer(anchored):
    ledger, rpc, receipt, _root, _hh = anchored
    n = receipt["blockNumber"]
    block = rpc("eth_getBlockByNumber", [hex(n), False])
    assert lightclient.block_hash_of(block) == _b(block["hash"]) == bytes(receipt["blockHash"])
    assert "requestsHash" in block  # py-evm builds Prague headers
    raw = ledger.w3.provider.make_request("eth_getBlockByNumber", [n, False])["result"]
    assert raw["extra_data"] == "0x" + "00" * 32 and block["extraData"] == "0x", (
        "eth-tester no longer pads extraData: embedded_rpc could serve the provider's block as is")


def test_only_the_light_client_methods_are_answered(anchored):
    _ledger, rpc, _receipt, _root, _hh = anchored
    assert rpc("eth_getBlockByNumber", ["0xffffff", False]) is None
    assert int(rpc("eth_blockNumber", []), 16) >= 1
    assert int(rpc("eth_chainId", []), 16) == anchored[0].chain_id
    with pytest.raises(EmbeddedRpcError):
        rpc("eth_sendRawTransaction", ["0x00"])

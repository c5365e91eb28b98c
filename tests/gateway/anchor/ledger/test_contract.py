"""Anchor contract behaviour on both backends: ordering, header hash, sites and gateways, the
key registry, nonces."""
import hashlib
import os

import pytest
from eth_account import Account

from edgeledger.gateway.anchor.ledger import (
    CONTRACT_VERSION,
    OPEN_SEQ,
    AnchorRejected,
    ContractReverted,
    KeyRejected,
    PreparedTx,
)
from edgeledger.gateway.errors import GatewayError, LedgerError
from edgeledger.protocols.batch import LAYOUT_LEN, BatchHeader
from edgeledger.protocols.keywindow import key_commitment
from tests.gateway.anchor.ledger.conftest import SITE
from tests.protocols import wire_vectors

ZERO = bytes(32)


def _stranger(ledger):
    """A funded account that is neither owner nor gateway."""
    if hasattr(ledger, "new_funded_key"):
        return ledger.new_funded_key()
    key = "0x" + os.urandom(32).hex()
    ledger.w3.provider.make_request("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
    return key


def _anchor_chain(led, count, start=1, prev=ZERO, wait=True):
    """Anchor ``count`` batches in order; return [(number, root, header_hash, tx_hash)]."""
    out = []
    for n in range(start, start + count):
        root = hashlib.sha256(b"root-%d" % n).digest()
        h = led.anchor(n, prev, root, 10 * n, 1_700_000_000 + n, 1_700_000_060 + n, wait=wait)
        prev = BatchHeader(bytes.fromhex(led.account[2:]), n, prev, root, 10 * n, 1_700_000_000 + n,
                           1_700_000_060 + n).hash()
        out.append((n, root, prev, h))
    return out


def test_header_layout_is_118_bytes_in_field_order():
    gw = "0x" + "ab" * 20
    hb = BatchHeader(bytes.fromhex(gw[2:]), 7, b"\x11" * 32, b"\x22" * 32, 5, 100, 200).layout()
    assert len(hb) == LAYOUT_LEN == 1 + 1 + 20 + 8 + 32 + 32 + 8 + 8 + 8
    assert hb[0] == 2 and hb[1] == 1  # version 2, tree-hash algorithm SHA-256
    assert hb[2:22] == b"\xab" * 20
    assert hb[22:30] == (7).to_bytes(8, "big")
    assert hb[30:62] == b"\x11" * 32 and hb[62:94] == b"\x22" * 32
    assert hb[94:102] == (5).to_bytes(8, "big")
    assert hb[102:110] == (100).to_bytes(8, "big") and hb[110:118] == (200).to_bytes(8, "big")


def test_version_and_deployment_block_are_readable_on_chain(ledger):
    assert ledger.contract_version() == CONTRACT_VERSION == 2
    assert 0 < ledger.deployed_block() < ledger.block_number()
    start, end = ledger.authorization(SITE, ledger.account)
    assert start > ledger.deployed_block() and end == 0
    assert ledger.is_gateway_for(SITE, ledger.account) and not ledger.is_gateway_for("other-site", ledger.account)


def test_in_order_anchoring_stores_header_block_and_time_and_emits_event(ledger):
    gw = ledger.account
    assert ledger.last_batch(gw) == (0, ZERO)
    chain = _anchor_chain(ledger, 3)
    for n, root, hh, tx in chain:
        r = ledger.wait_for_receipt(tx)
        assert r["status"] == 1
        # contract sha256 == Python's 118-byte layout, stored with the anchoring block and its time
        assert ledger.anchor_of(gw, n) == {"header_hash": hh, "block_number": r["blockNumber"],
                                           "timestamp": ledger.w3.eth.get_block(r["blockNumber"])["timestamp"]}
        ev = ledger.find_anchor(gw, n)
        assert ev["tx_hash"] == tx and ev["root"] == root and ev["header_hash"] == hh and ev["tree_size"] == 10 * n
        assert ev["block_number"] == r["blockNumber"]
    assert ledger.last_batch(gw) == (3, chain[-1][2])
    assert ledger.anchor_of(gw, 4) is None and ledger.find_anchor(gw, 4) is None


def test_out_of_order_and_wrong_prev_rejected_with_decoded_error(ledger):
    (n, root, hh, _), = _anchor_chain(ledger, 1)
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(3, hh, root, 1, 1, 2)
    assert e.value.name == "OutOfOrder" and e.value.values == {"expected": 2, "got": 3}
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(1, ZERO, root, 1, 1, 2)  # replay of batch 1
    assert e.value.name == "OutOfOrder" and e.value.values == {"expected": 2, "got": 1}
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(2, b"\x01" * 32, root, 1, 1, 2)
    assert e.value.name == "PrevMismatch" and e.value.values == {"expected": hh, "got": b"\x01" * 32}
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(2, hh, root, 1, 5, 4)
    assert e.value.name == "BadTimeRange"
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(2, hh, root, 1, 1, 2, tree_alg=0)
    assert e.value.name == "BadTreeAlg"
    assert isinstance(e.value, LedgerError) and isinstance(e.value, GatewayError)
    assert ledger.last_batch(ledger.account) == (1, hh)


def test_reverted_transaction_is_explained_from_its_receipt(ledger):
    """Without preflight the revert surfaces from the mined receipt (status 0), decoded."""
    (n, root, hh, _), = _anchor_chain(ledger, 1)
    tx = ledger.anchor(5, hh, root, 1, 1, 2, preflight=False)
    with pytest.raises(AnchorRejected) as e:
        ledger.wait_for_receipt(tx, error_cls=AnchorRejected)
    assert e.value.name == "OutOfOrder" and e.value.values == {"expected": 2, "got": 5}
    assert ledger.receipt(tx)["status"] == 0


def test_unauthorized_gateway_rejected_and_windows_open_once(ledger):
    stranger = _stranger(ledger)
    addr = Account.from_key(stranger).address
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(1, ZERO, b"\x05" * 32, 1, 1, 2, key=stranger)
    assert e.value.name == "NotGateway" and e.value.values == {"caller": addr}
    with pytest.raises(ContractReverted) as e:
        ledger.authorize_gateway(SITE, addr, key=stranger)
    assert e.value.name == "NotOwner"
    with pytest.raises(KeyRejected) as e:
        ledger.register_key(SITE, "dev", -8, b"\x02" * 32, key=stranger)
    assert e.value.name == "NotAuthorized"
    # De-authorizing keeps the counter; the window is not opened again, another site's is.
    (n, root, hh, _), = _anchor_chain(ledger, 1)
    ledger.deauthorize_gateway(SITE, ledger.account)
    start, end = ledger.authorization(SITE, ledger.account)
    assert 0 < start < end
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(2, hh, root, 1, 1, 2)
    assert e.value.name == "NotGateway"
    with pytest.raises(ContractReverted) as e:
        ledger.authorize_gateway(SITE, ledger.account)
    assert e.value.name == "AlreadyAuthorized"
    with pytest.raises(ContractReverted) as e:
        ledger.deauthorize_gateway(SITE, ledger.account)
    assert e.value.name == "NotAuthorizedForSite"
    ledger.authorize_gateway("plant-b", ledger.account)
    assert ledger.last_batch(ledger.account) == (1, hh)
    _anchor_chain(ledger, 1, start=2, prev=hh)
    assert ledger.authorization(SITE, ledger.account) == (start, end)  # unchanged


def test_key_registry_register_entry_and_commitment(ledger):
    pub = bytes(range(32))
    kid = hashlib.sha256(pub).digest()[:16]
    assert ledger.key_entry(SITE, kid) is None and ledger.registration(SITE, kid) is None
    tx = ledger.register_key(SITE, "meter-0001", -8, pub, 7)
    r = ledger.wait_for_receipt(tx)
    ts = ledger.w3.eth.get_block(r["blockNumber"])["timestamp"]
    reg = ledger.registration(SITE, kid)
    assert reg == {"site": SITE, "device_id": "meter-0001", "alg": -8, "public_key": pub, "first_seq": 7,
                   "block_number": r["blockNumber"], "timestamp": ts, "kid": kid}
    entry = ledger.key_entry(SITE, kid)
    # the contract's commitment is protocols/keywindow.py's, over the chain's own block and time
    assert entry == {"commitment": key_commitment(SITE, "meter-0001", -8, pub, r["blockNumber"], ts, 7),
                     "end_time": None, "last_seq": None, "end_block": 0, "revoked": False, "rotated": False}
    logs = ledger.contract.events.KeyRegistered().process_receipt(r)
    assert logs[0]["args"]["kid"] == kid  # computed on chain: sha256(publicKey)[:16]
    for args, name in (((SITE, "other", -7, pub, 1), "KeyExists"),
                       ((SITE, "dev", -7, b"\x04" * 134, 1), "BadPublicKeyLength"),
                       ((SITE, "d" * 65, -7, b"\x04" * 65, 1), "BadDeviceIdLength"),
                       (("s" * 65, "dev", -7, b"\x04" * 65, 1), "BadSiteLength"),
                       ((SITE, "dev", -7, b"\x04" * 65, 0), "ZeroFirstSeq")):
        with pytest.raises(KeyRejected) as e:
            ledger.register_key(*args)
        assert e.value.name == name, args
    with pytest.raises(KeyRejected) as e:
        ledger.revoke_key(SITE, b"\x08" * 16, 5, 1)
    assert e.value.name == "UnknownKey"


def test_sm2_key_registers_with_its_private_use_alg(ledger):
    """SM2's COSE alg -65537 did not fit the contract's old int16: the chain must commit to it
    as protocols/keywindow.py does (the int32 of docs/wire-format.md vector 6), and the
    KeyRegistered event must give it back."""
    pub = wire_vectors.load()["sm2-public-key"]
    kid = hashlib.sha256(pub).digest()[:16]
    r = ledger.wait_for_receipt(ledger.register_key(SITE, "meter-sm2", -65537, pub, 3))
    ts = ledger.w3.eth.get_block(r["blockNumber"])["timestamp"]
    reg = ledger.registration(SITE, kid)
    assert (reg["alg"], reg["public_key"], reg["first_seq"]) == (-65537, pub, 3)
    assert ledger.key_entry(SITE, kid)["commitment"] == key_commitment(SITE, "meter-sm2", -65537, pub,
                                                                       r["blockNumber"], ts, 3)
    assert ledger.contract.events.KeyRegistered().process_receipt(r)[0]["args"]["alg"] == -65537
    with pytest.raises(LedgerError, match="int32 range, found 2147483648"):  # not web3's MismatchedABI
        ledger.register_key(SITE, "meter-big", 2**31, b"\x04" * 65)


def test_key_ends_only_move_earlier(ledger):
    pub = os.urandom(32)
    kid = hashlib.sha256(pub).digest()[:16]
    ledger.register_key(SITE, "meter-0002", -8, pub)
    ledger.rotate_key(SITE, kid, 1_900_000_000)  # overlap end, last seq not known yet
    e = ledger.key_entry(SITE, kid)
    assert (e["end_time"], e["last_seq"], e["rotated"], e["revoked"]) == (1_900_000_000, None, True, False)
    ledger.rotate_key(SITE, kid, 1_900_000_500, 40)  # later end: kept; the seal takes
    e = ledger.key_entry(SITE, kid)
    assert (e["end_time"], e["last_seq"]) == (1_900_000_000, 40)
    tx = ledger.revoke_key(SITE, kid, 1_899_999_000, 60)  # earlier end: taken; later seq: kept
    e = ledger.key_entry(SITE, kid)
    assert (e["end_time"], e["last_seq"], e["revoked"], e["rotated"]) == (1_899_999_000, 40, True, True)
    assert e["end_block"] == ledger.wait_for_receipt(tx)["blockNumber"]
    ledger.revoke_key(SITE, kid, 1_899_998_000, 30)
    e = ledger.key_entry(SITE, kid)
    assert (e["end_time"], e["last_seq"]) == (1_899_998_000, 30)
    ledger.rotate_key(SITE, kid, 1_950_000_000, OPEN_SEQ)  # nothing can reopen it
    assert ledger.key_entry(SITE, kid)["last_seq"] == 30 and ledger.key_entry(SITE, kid)["end_time"] == 1_899_998_000
    with pytest.raises(KeyRejected) as err:
        ledger.revoke_key(SITE, kid, 0, 1)
    assert err.value.name == "ZeroEndTime"


def test_fifty_quick_anchors_without_waiting_then_polled(ledger):
    """Local nonce management: 50 anchors sent back to back, receipts polled afterwards."""
    gw = ledger.account
    prev, sent = ZERO, []
    for n in range(1, 51):
        root = hashlib.sha256(b"q%d" % n).digest()
        sent.append(ledger.anchor(n, prev, root, n, n, n, preflight=False))
        prev = BatchHeader(bytes.fromhex(gw[2:]), n, prev, root, n, n, n).hash()
    receipts = [ledger.wait_for_receipt(h, timeout=60) for h in sent]
    assert all(r["status"] == 1 for r in receipts)
    assert ledger.last_batch(gw) == (50, prev)
    assert len(set(sent)) == 50


def test_resend_of_identical_signed_tx_is_not_a_second_anchor(ledger):
    """Crash recovery: the persisted PreparedTx re-derives the same raw tx; re-sending is safe."""
    gw = ledger.account
    root = b"\x33" * 32
    prepared = ledger.prepare_anchor(1, ZERO, root, 4, 10, 20)
    saved = prepared.to_dict()
    h1 = ledger.send(prepared)
    again = ledger.sign_anchor(1, ZERO, root, 4, 10, 20, nonce=saved["nonce"], fees=saved["fees"])
    assert again.raw == prepared.raw and again.tx_hash == prepared.tx_hash
    assert ledger.send(again) == h1  # "already known" / "nonce too low" for a known tx = success
    ledger.wait_for_receipt(h1)
    assert ledger.send(again) == h1  # also after it was mined
    assert ledger.last_batch(gw)[0] == 1
    found = ledger.find_anchor(gw, 1)
    assert found["tx_hash"] == h1
    # A fresh signature for the same number (new nonce) is stopped by the ordering rule.
    dup = ledger.anchor(1, ZERO, root, 4, 10, 20, preflight=False)
    with pytest.raises(AnchorRejected) as e:
        ledger.wait_for_receipt(dup, error_cls=AnchorRejected)
    assert e.value.name == "OutOfOrder"
    # The nonce counter stays usable after all that.
    _anchor_chain(ledger, 1, start=2, prev=found["header_hash"])
    assert ledger.last_batch(gw)[0] == 2


def test_nonce_resync_after_external_use_of_the_key(ledger):
    """Another process spending our nonce: NonceConflict, then the next anchor works."""
    from edgeledger.gateway.anchor.ledger import NonceConflict

    gw = ledger.account
    prepared = ledger.prepare_anchor(1, ZERO, b"\x44" * 32, 1, 1, 1)
    # Someone else uses that nonce first (same key, different transaction).
    other = ledger._sign("external", [], ledger._account_for(None), gw, b"", 21_000, nonce=prepared.nonce)
    ledger.wait_for_receipt(ledger.send(other))
    with pytest.raises(NonceConflict):
        ledger.send(prepared)
    tx = ledger.anchor(1, ZERO, b"\x44" * 32, 1, 1, 1, wait=True)
    assert ledger.find_anchor(gw, 1)["tx_hash"] == tx


def test_confirmations_count_blocks_on_top(ledger):
    (n, root, hh, tx), = _anchor_chain(ledger, 1)
    r = ledger.wait_for_receipt(tx)
    assert ledger.confirmations(r) == 1
    if hasattr(ledger, "mine"):
        ledger.mine(3)
    else:
        ledger.w3.provider.make_request("anvil_mine", ["0x3"])
    assert ledger.confirmations(r) == 4


def test_prepared_tx_round_trips_through_dict(embedded):
    p = embedded.prepare_anchor(99, ZERO, b"\x01" * 32, 1, 1, 1)
    d = p.to_dict()
    assert d["action"] == "anchor" and d["args"][0] == 99 and d["raw"].startswith("0x")
    assert isinstance(p, PreparedTx)
    embedded.resync_nonce()

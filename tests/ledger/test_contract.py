"""Anchor contract behaviour on both backends: ordering, header hash, registry, nonces."""
import hashlib
import os

import pytest
from eth_account import Account

from edgeledger.gateway.errors import GatewayError, LedgerError
from edgeledger.gateway.ledger import (
    HEADER_LEN, AnchorRejected, ContractReverted, KeyRejected, PreparedTx, header_bytes, header_hash,
)

ZERO = bytes(32)


def _anchor_chain(led, count, start=1, prev=ZERO, wait=True):
    """Anchor ``count`` batches in order; return [(number, root, header_hash, tx_hash)]."""
    out = []
    for n in range(start, start + count):
        root = hashlib.sha256(b"root-%d" % n).digest()
        h = led.anchor(n, prev, root, 10 * n, 1_700_000_000 + n, 1_700_000_060 + n, wait=wait)
        prev = header_hash(led.account, n, prev, root, 10 * n, 1_700_000_000 + n, 1_700_000_060 + n)
        out.append((n, root, prev, h))
    return out


def test_header_layout_is_117_bytes_in_field_order():
    gw = "0x" + "ab" * 20
    hb = header_bytes(gw, 7, b"\x11" * 32, b"\x22" * 32, 5, 100, 200)
    assert len(hb) == HEADER_LEN == 1 + 20 + 8 + 32 + 32 + 8 + 8 + 8
    assert hb[0] == 1
    assert hb[1:21] == b"\xab" * 20
    assert hb[21:29] == (7).to_bytes(8, "big")
    assert hb[29:61] == b"\x11" * 32 and hb[61:93] == b"\x22" * 32
    assert hb[93:101] == (5).to_bytes(8, "big")
    assert hb[101:109] == (100).to_bytes(8, "big") and hb[109:117] == (200).to_bytes(8, "big")


def test_in_order_anchoring_stores_root_header_and_emits_event(ledger):
    gw = ledger.account
    assert ledger.last_batch(gw) == (0, ZERO)
    chain = _anchor_chain(ledger, 3)
    for n, root, hh, tx in chain:
        r = ledger.wait_for_receipt(tx)
        assert r["status"] == 1
        assert ledger.root_of(gw, n) == root
        assert ledger.header_of(gw, n) == hh  # contract sha256 == Python 117-byte layout
        ev = ledger.find_anchor(gw, n)
        assert ev["tx_hash"] == tx and ev["root"] == root and ev["header_hash"] == hh and ev["tree_size"] == 10 * n
        assert ev["block_number"] == r["blockNumber"]
    assert ledger.last_batch(gw) == (3, chain[-1][2])
    assert ledger.root_of(gw, 4) is None and ledger.find_anchor(gw, 4) is None


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


def test_unauthorized_gateway_rejected(ledger):
    stranger = ledger.new_funded_key() if hasattr(ledger, "new_funded_key") else None
    if stranger is None:
        stranger = "0x" + os.urandom(32).hex()
        ledger.w3.provider.make_request("anvil_setBalance", [Account.from_key(stranger).address, hex(10**20)])
    addr = Account.from_key(stranger).address
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(1, ZERO, b"\x05" * 32, 1, 1, 2, key=stranger)
    assert e.value.name == "NotGateway" and e.value.values == {"caller": addr}
    with pytest.raises(ContractReverted) as e:
        ledger.set_gateway(addr, True, key=stranger)
    assert e.value.name == "NotOwner"
    with pytest.raises(KeyRejected) as e:
        ledger.register_key(b"\x01" * 16, "dev", -8, b"\x02" * 32, 0, key=stranger)
    assert e.value.name == "NotAuthorized"
    # De-authorizing keeps the counter; re-authorizing resumes at the next number.
    (n, root, hh, _), = _anchor_chain(ledger, 1)
    ledger.set_gateway(ledger.account, False)
    with pytest.raises(AnchorRejected) as e:
        ledger.anchor(2, hh, root, 1, 1, 2)
    assert e.value.name == "NotGateway"
    ledger.set_gateway(ledger.account, True)
    assert ledger.last_batch(ledger.account) == (1, hh)


def test_key_registry_register_get_revoke(ledger):
    kid = bytes(range(16))
    pub = bytes(range(32))
    assert ledger.get_key(kid) is None
    ledger.register_key(kid, "site-a/meter-0001", -8, pub, 1_700_000_000)
    k = ledger.get_key(kid)
    assert k == {"kid": kid, "device_id": "site-a/meter-0001", "alg": -8, "public_key": pub,
                 "valid_from": 1_700_000_000, "revoked_at": 0}
    with pytest.raises(KeyRejected) as e:
        ledger.register_key(kid, "other", -7, b"\x04" + b"\x01" * 64, 0)
    assert e.value.name == "KeyExists"
    with pytest.raises(KeyRejected) as e:
        ledger.register_key(b"\x09" * 16, "dev", -7, b"\x04" * 134, 0)
    assert e.value.name == "BadPublicKeyLength" and e.value.values == {"max": 133, "got": 134}
    with pytest.raises(KeyRejected) as e:
        ledger.register_key(b"\x09" * 16, "d" * 65, -7, b"\x04" * 65, 0)
    assert e.value.name == "BadDeviceIdLength" and e.value.values == {"max": 64, "got": 65}
    with pytest.raises(KeyRejected) as e:
        ledger.revoke_key(b"\x08" * 16, 5)
    assert e.value.name == "UnknownKey"
    tx = ledger.revoke_key(kid, 1_700_000_500)
    assert ledger.get_key(kid)["revoked_at"] == 1_700_000_500
    logs = ledger.contract.events.KeyRevoked().process_receipt(ledger.wait_for_receipt(tx))
    assert logs[0]["args"]["revokedAt"] == 1_700_000_500 and logs[0]["args"]["kid"] == kid
    with pytest.raises(KeyRejected) as e:
        ledger.revoke_key(kid, 1_700_000_600)  # later: would re-validate readings
    assert e.value.name == "RevocationNotEarlier"
    ledger.revoke_key(kid, 1_700_000_400)  # earlier compromise: allowed
    assert ledger.get_key(kid)["revoked_at"] == 1_700_000_400


def test_fifty_quick_anchors_without_waiting_then_polled(ledger):
    """Local nonce management: 50 anchors sent back to back, receipts polled afterwards."""
    gw = ledger.account
    prev, sent = ZERO, []
    for n in range(1, 51):
        root = hashlib.sha256(b"q%d" % n).digest()
        sent.append(ledger.anchor(n, prev, root, n, n, n, preflight=False))
        prev = header_hash(gw, n, prev, root, n, n, n)
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
    from edgeledger.gateway.ledger import NonceConflict

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

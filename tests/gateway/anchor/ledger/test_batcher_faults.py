"""The batcher against a real anvil: a nonce gap is repaired, another gateway's batches
are never adopted, and a second gateway on one key stops at once, without burning gas."""
import time

import pytest

from edgeledger.gateway.anchor import batcher as batcher_mod
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.gateway.store import Store
from tests.support.anvil import deploy, running_anvil
from tests.support.net import wait_until

pytestmark = [pytest.mark.ledger, pytest.mark.faults]


@pytest.fixture(scope="module")
def node():
    with running_anvil(hardfork="london") as n:
        yield n


def new_store(tmp_path, name, messages, tag=b"m"):
    st = Store(str(tmp_path / (name + ".db")))
    now = time.time()
    rows = [("dev", s, b"\0" * 32, b"\1" * 32, 1, b"\2" * 16, now, now, now, tag + b"%08d" % s)
            for s in range(1, messages + 1)]
    with st.transaction("test rows"):
        st.insert_messages(rows)
    return st


def gateway_ledger(node, owner, key):
    led = JsonRpcLedger(node.url, key=key)
    led.attach(owner.address)
    return led


def run(b, node, until, timeout=60):
    def done():
        b.step()
        node.mine(1)
        return until()

    wait_until(done, timeout, interval=0.02, what="the batcher")


def failed_transactions(node, sender):
    """Transactions from ``sender`` that were mined with status 0 (gas burnt for nothing)."""
    w3 = JsonRpcLedger(node.url).w3
    bad = 0
    for n in range(w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] == sender and w3.eth.get_transaction_receipt(tx["hash"])["status"] != 1:
                bad += 1
    return bad


def test_nonce_gap_is_repaired_and_the_stranded_anchor_cancelled(node, tmp_path, monkeypatch):
    """A nonce skipped (lost by the node, or a local counter gone ahead) leaves every later
    anchor queued behind it for ever: the old batcher waited on them, 'sent'."""
    monkeypatch.setattr(batcher_mod, "CHECK_S", 0.05)
    owner, key = deploy(node)
    led = gateway_ledger(node, owner, key)
    st = new_store(tmp_path, "gap", 30)
    b = Batcher(st, led, max_size=10, max_age_s=0, confirmations=1, max_in_flight=1)
    b.close_due()
    run(b, node, lambda: b.anchored_messages() == 10)
    nxt = led.transaction_count(led.account, "pending")
    led._nonces[led.account] = nxt + 1  # fault injection: nonce nxt is never used
    t0 = time.monotonic()
    run(b, node, lambda: b.anchored_messages() == 30)
    recover_s = time.monotonic() - t0
    events = [e.kind for e in st.recent_events()]
    print("nonce gap repaired in %.1f s; failed transactions %d" % (recover_s, failed_transactions(node, led.account)))
    assert b.counters["nonce_gaps_repaired"] == 1 and "nonce_gap" in events
    assert owner.last_batch(led.account)[0] == 3
    run(b, node, lambda: led.transaction_count(led.account, "pending") == led.transaction_count(led.account))
    assert failed_transactions(node, led.account) == 0


def test_reconcile_adopts_an_onchain_batch_only_if_its_header_is_ours(node, tmp_path):
    """The old reconcile took another gateway's Anchored events as its own batches."""
    owner, key = deploy(node)
    a = Batcher(new_store(tmp_path, "a", 20, b"a"), gateway_ledger(node, owner, key), max_size=10, max_age_s=0,
                confirmations=1)
    a.close_due()
    run(a, node, lambda: a.anchored_messages() == 20)
    other = new_store(tmp_path, "b", 20, b"b")  # the same numbers 1 and 2, other contents
    b = Batcher(other, gateway_ledger(node, owner, key), max_size=10, max_age_s=0, confirmations=1)
    b.close_due()
    b.step()
    assert b.halted is not None and "header hash" in str(b.halted)
    assert [r[0] for r in other.db.execute("SELECT state FROM batches ORDER BY number")] == ["built", "built"]
    assert other.ledger_meta()["anchor_state"] == "halted"


def test_second_gateway_on_one_key_stops_once_and_burns_no_gas(node, tmp_path, caplog):
    owner, key = deploy(node)
    first = Batcher(new_store(tmp_path, "first", 30, b"1"), gateway_ledger(node, owner, key), max_size=10,
                    max_age_s=0, confirmations=1)
    first.close_due()
    run(first, node, lambda: first.anchored_messages() == 30)
    second_store = new_store(tmp_path, "second", 10, b"2")
    second = Batcher(second_store, gateway_ledger(node, owner, key), max_size=10, max_age_s=0, confirmations=1)
    with caplog.at_level("ERROR", logger="edgeledger.batcher"):
        for _ in range(50):  # ten seconds of steps of the old thread: one line, not fifty
            second.step()
    said = [r for r in caplog.records if "anchoring stopped" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    assert "already holds batch 3" in said[0].getMessage() and "own account" in said[0].getMessage()
    assert failed_transactions(node, first.gateway) == 0
    assert owner.last_batch(first.gateway)[0] == 3
    assert [e.kind for e in second_store.recent_events()] == ["anchor_conflict"]

"""Anchoring survives a gateway killed mid-transaction and a ledger that goes away."""
import time

import pytest
from eth_utils import keccak

from tests.support.anvil import Anvil, deploy
from tests.support.net import wait_until
from tests.support.site import count_exactly_once

pytestmark = [pytest.mark.ledger, pytest.mark.faults]


@pytest.fixture
def node():
    n = Anvil(block_time=1, hardfork="london")
    n.start()
    yield n
    n.close()


def anchored_events(owner, gateway, numbers):
    return [owner.find_anchor(gateway, n) for n in numbers]


def check_chain_matches_store(owner, st):
    gateway = st.ledger_meta()["gateway"]
    rows = st.db.execute("SELECT number, tree_size, state, tx_hash, block_number FROM batches "
                         "ORDER BY number").fetchall()
    numbers = [r[0] for r in rows]
    assert numbers == list(range(1, len(rows) + 1)), "batch numbers have a gap"
    assert {r[2] for r in rows} == {"anchored"}
    assert owner.last_batch(gateway)[0] == len(rows), "chain and store disagree on the last batch"
    # exactly one Anchored event per number, and it is the transaction the store recorded
    topic = keccak(text="Anchored(address,uint64,bytes32,bytes32,uint64)")
    logs = owner.w3.eth.get_logs({"address": owner.address, "fromBlock": 0, "toBlock": "latest",
                                  "topics": ["0x" + topic.hex()]})
    anchored = [log for log in logs if bytes(log["topics"][0]) == topic]
    assert len(anchored) == len(rows), "an anchor was sent twice (or one is missing)"
    for row, event in zip(rows, anchored_events(owner, gateway, numbers)):
        assert bytes(event["tx_hash"]) == bytes(row[3])
    blocks = [r[4] for r in rows]
    assert blocks == sorted(blocks), "batches were anchored out of order"
    return rows


def test_gateway_killed_between_submit_and_receipt(site, node):
    owner, gw_key = deploy(node)
    last = 1500  # 15 s of sealing: five kill-restart rounds fit however long a start-up takes
    for i in range(2):
        site.add_device("dev-%d" % i, interval_s=0.01)
    site.use_ledger(node.url, owner.address, gw_key, confirmations=1, max_size=50, max_age_s=0.5)
    site.start_gateway()
    site.wait_gateway_ready()
    for name in site.devices:
        site.start_agent(name, last)
    st = site.store()
    kills = 0
    deadline = time.monotonic() + 180
    while kills < 5 and time.monotonic() < deadline:
        row = st.db.execute("SELECT number, state FROM batches WHERE state IN ('signed', 'sent')"
                            " ORDER BY number LIMIT 1").fetchone()
        if row is None:
            time.sleep(0.005)
            continue
        site.kill_gateway()  # the transaction is out, its receipt not yet seen
        kills += 1
        time.sleep(0.3)
        site.start_gateway()
        site.wait_gateway_ready()
        # The next kill only after the restarted gateway has settled the killed batch:
        # each kill then lands on a gateway that had recovered from the one before.
        killed = row[0]
        wait_until(lambda: st.db.execute("SELECT state FROM batches WHERE number = ?", (killed,))  # noqa: B023
                   .fetchone()[0] not in ("signed", "sent"), 120, what="batch %d settled after the kill" % killed)
    assert kills == 5
    assert set(site.wait_agents().values()) == {0}
    total = last * len(site.devices)
    wait_until(lambda: site.anchored_count(st) == total, 120, what="backlog anchored after the kills")
    rows = check_chain_matches_store(owner, st)
    assert count_exactly_once(st, dict((n, last) for n in site.devices)) == (0, 0, 0)
    print("gateway SIGKILLs mid-transaction=%d batches=%d lost=0 duplicated=0 duplicate anchors=0"
          % (kills, len(rows)))


def test_ledger_down_30s_backlog_anchors_in_order(site, node):
    owner, gw_key = deploy(node)
    last = 2400  # 60 messages/s per device for 40 s: readings keep coming during the outage
    for i in range(2):
        site.add_device("dev-%d" % i, interval_s=0.05)
    site.use_ledger(node.url, owner.address, gw_key, confirmations=1, max_size=100, max_age_s=0.5)
    site.start_gateway()
    site.wait_gateway_ready()
    for name in site.devices:
        site.start_agent(name, last)
    st = site.store()
    wait_until(lambda: site.anchored_count(st) > 0, 60, what="first batch anchored")
    node.stop()
    stored_at_stop = st.count_messages()
    time.sleep(30)
    assert st.count_messages() > stored_at_stop + 1000, "ingest goes on while the ledger is away"
    backlog = st.db.execute("SELECT COUNT(*) FROM batches WHERE state != 'anchored'").fetchone()[0]
    assert backlog >= 2, "batches kept closing while the ledger was away"
    node.start()
    assert set(site.wait_agents().values()) == {0}
    total = last * len(site.devices)
    wait_until(lambda: site.anchored_count(st) == total, 120, what="backlog anchored after the outage")
    rows = check_chain_matches_store(owner, st)
    print("ledger outage 30 s: backlog=%d batches, %d batches in all, anchored in order" % (backlog, len(rows)))


def test_reorg_deeper_than_the_confirmations_is_anchored_again(site, node):
    """anvil evm_snapshot/evm_revert: batches anchored with their 2 confirmations vanish from
    the chain. The old batcher kept them 'anchored' for ever (and stalled behind the nonce
    gap). Now the head check sees it, says so once, sends the same transactions again and
    follows every batch to finality."""
    owner, gw_key = deploy(node)
    last = 1200
    site.use_ledger(node.url, owner.address, gw_key, confirmations=2, max_size=50, max_age_s=0.5, finality=6)
    st = site.start_fleet(2, last, interval_s=0.01)
    wait_until(lambda: site.anchored_count(st) >= 100, 120, what="the first batches anchored")
    snap = node.rpc("evm_snapshot")
    snap_block = node.block_number()

    def anchored_after_snapshot():
        return st.db.execute("SELECT COUNT(*) FROM batches WHERE state='anchored' AND block_number > ?",
                             (snap_block,)).fetchone()[0]

    wait_until(lambda: anchored_after_snapshot() >= 3, 120, what="three batches anchored after the snapshot")
    lost_batches = anchored_after_snapshot()
    assert node.rpc("evm_revert", snap) is True
    reverted_at = time.monotonic()
    assert set(site.wait_agents().values()) == {0}
    total = last * len(site.devices)

    def all_final():
        s = st.batch_summary()
        return site.anchored_count(st) == total and s.final == s.total

    wait_until(all_final, 180, what="every batch anchored again and final")
    recover_s = time.monotonic() - reverted_at
    rows = check_chain_matches_store(owner, st)
    assert count_exactly_once(st, dict((n, last) for n in site.devices)) == (0, 0, 0)
    counters = st.load_counters()
    said = site.log("gateway.log", tail=None).count("chain reorganisation")
    print("reorg: %d anchored batches reverted (>= 2 confirmations), %d re-anchored, all %d final %.1f s after the "
          "revert; lost=0 duplicated=0; logged %d time(s)" % (lost_batches, counters["batches_reanchored"], len(rows),
                                                               recover_s, said))
    assert counters["reorgs"] >= 1 and counters["batches_reanchored"] >= lost_batches
    assert 1 <= said <= counters["reorgs"]
    status = site.cli("gateway", "status", "--config", site.gateway_config).stdout
    assert "reorg" in status and "batches_reanchored" in status


def test_gateway_starts_and_ingests_while_the_chain_is_down(site, node):
    """After a site power cut during a node outage the old gateway refused to start, so
    nothing was ingested at all."""
    owner, gw_key = deploy(node)
    node.stop()
    last = 300
    site.use_ledger(node.url, owner.address, gw_key, confirmations=1, max_size=100, max_age_s=0.5)
    st = site.start_fleet(2, last, interval_s=0.01)
    assert set(site.wait_agents().values()) == {0}, site.log("gateway.log")
    assert count_exactly_once(st, dict((n, last) for n in site.devices)) == (0, 0, 0)
    assert site.anchored_count(st) == 0
    assert "ledger unreachable" in site.log("gateway.log", tail=None)
    node.start()
    back_at = time.monotonic()
    wait_until(lambda: site.anchored_count(st) == 2 * last, 120, what="the backlog anchored once the node is back")
    rows = check_chain_matches_store(owner, st)
    status = site.cli("gateway", "status", "--config", site.gateway_config).stdout
    assert "ledger_back" in status and "anchoring: ledger reachable" in status, status
    print("chain down at start: %d readings ingested and acked with no chain, %d batches anchored %.1f s after "
          "the node came back" % (2 * last, len(rows), time.monotonic() - back_at))

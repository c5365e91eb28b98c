"""End to end on anvil: every stored reading ends up in an anchored batch, and its bundle
verifies offline and as a light client."""
import os

import pytest

from edgeledger.gateway import proofs
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.gateway.proofs import verifier
from tests.support.anvil import running_anvil
from tests.support.net import wait_until
from tests.support.site import count_exactly_once

pytestmark = pytest.mark.ledger


@pytest.fixture
def chain():
    with running_anvil(block_time=1, hardfork="london") as node:
        owner = JsonRpcLedger(node.url, key=node.new_funded_key())
        owner.deploy(owner_key=owner.key)
        gw_key = node.new_funded_key()
        gw = JsonRpcLedger(node.url, key=gw_key)
        owner.authorize_gateway("plant-a", gw.account)
        yield node, owner, gw_key


def test_every_reading_anchored_and_its_bundle_verifies(site, chain):
    node, owner, gw_key = chain
    last = 150
    names = ["meter-%d" % i for i in range(3)]
    for i, name in enumerate(names):
        site.add_device(name, alg="ES256" if i == 1 else "EdDSA", interval_s=0.01)
        site.register_on_chain(owner, name)
    site.use_ledger(node.url, owner.address, gw_key, confirmations=2, max_size=100, max_age_s=1.0)
    site.start_gateway()
    for name in names:
        site.start_agent(name, last)
    assert set(site.wait_agents().values()) == {0}
    st = site.store()
    total = last * len(names)
    assert count_exactly_once(st, dict((n, last) for n in names)) == (0, 0, 0)
    wait_until(lambda: site.anchored_count(st) == total, 90, what="every stored reading anchored")
    batches = st.db.execute("SELECT number, tree_size, state FROM batches ORDER BY number").fetchall()
    assert [b[0] for b in batches] == list(range(1, len(batches) + 1))  # in order, no gap
    assert sum(b[1] for b in batches) == total and {b[2] for b in batches} == {"anchored"}
    # no anchor twice: the chain's last batch is the store's last
    assert owner.last_batch(st.ledger_meta()["gateway"])[0] == len(batches)

    meta = st.ledger_meta()
    checked = 0
    for name in names:
        for seq in range(1, last + 1):
            b = proofs.bundle_for(st, name, seq, int(meta["chain_id"]), meta["contract"])
            report = verifier.verify_bundle(b.encode())  # offline: signature + Merkle path
            assert (report["device"], report["seq"]) == (name, seq)
            if seq % 25 == 1:  # light client: storage proof against the block's state root
                report = verifier.verify_bundle(b.encode(), rpc=node.url, min_confirmations=2,
                                                trust=site.trust(owner))
                assert report["storage_proof"] == "ok" and report["confirmations"] >= 2
            checked += 1
    assert checked == total

    # the command-line path, and one flipped byte fails it
    out = site.cli("proof", names[0], "7", "-o", "b.cbor", "--config", site.gateway_config)
    assert out.returncode == 0, out.stderr
    ok = site.cli("verify", "b.cbor", "--rpc", node.url, "--chain-id", str(owner.chain_id), "--contract", owner.address)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    assert "verified on chain" in ok.stdout and "EdgeLedgerAnchor v2" in ok.stdout, ok.stdout
    path = os.path.join(site.root, "b.cbor")
    data = bytearray(open(path, "rb").read())
    data[40] ^= 0x01
    open(os.path.join(site.root, "bad.cbor"), "wb").write(bytes(data))
    bad = site.cli("verify", "bad.cbor")
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL"), bad.stdout + bad.stderr

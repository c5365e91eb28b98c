"""An SM3 deployment end to end (issue 18, item 4): device chains and Merkle trees hashed with
SM3, batches anchored with tree-hash byte 0x02, bundles that a light client accepts, and the
attacks on the choice of hash: a device on the other chain hash, an altered byte, a header that
names the other hash, and a gateway (or operator) that anchors a SHA-256 tree for an SM3
deployment.

The embedded chain runs in this process (fast); the anvil test runs the real gateway and agent
processes, a real Mosquitto and the ``edgeledger verify --rpc`` command.
"""
import json
import os

import pytest

from edgeledger.agent.config import chain_digest
from edgeledger.gateway import errors, proofs
from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.ledger import EmbeddedLedger, JsonRpcLedger
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.proofs import verifier
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import hashes, merkle
from edgeledger.protocols.batch import TREE_SHA256, TREE_SM3, BatchHeader
from edgeledger.protocols.bundle import Bundle, BundleError, WrongPath
from tests.support.anvil import running_anvil
from tests.support.devices import FakeDevice
from tests.support.net import wait_until
from tests.support.site import Site

SITE = "plant-a"
EMBEDDED = {"backend": "embedded"}  # gateway.toml [ledger]: required, never implied


class Device(FakeDevice):
    """A device whose chain hash is ``chain_hash``: its digest function is the agent's own
    (``agent/config.py chain_digest``, what the Linux agent and a board use)."""

    def __init__(self, name, alg="EdDSA", chain_hash="sm3"):
        FakeDevice.__init__(self, name, SITE, alg)
        self.digest = chain_digest(chain_hash)

    def next(self, **kw):
        msg = self.make(self.seq + 1, self.prev, **kw)
        self.seq += 1
        self.prev = self.digest(msg)
        self.sent[self.seq] = msg
        return msg


class Gateway:
    """A gateway's store, registry, pipeline and batcher for a deployment hash."""

    def __init__(self, ledger, path, alg):
        self.ledger = ledger
        self.store = Store(str(path))
        self.registry = Registry(self.store)
        self.pipeline = Pipeline(self.store, self.registry, chain_alg=alg)
        self.batcher = Batcher(self.store, ledger, max_size=1000, max_age_s=0, confirmations=1, tree_alg=alg)
        self.store.set_ledger_meta({"chain_id": ledger.chain_id, "contract": ledger.address,
                                    "gateway": ledger.account})

    def enroll(self, d):
        d.register(self.registry)
        keysync.sync_chain(self.registry, self.ledger)
        return d

    def send(self, d, msg):
        """The pipeline's verdict: "stored" or the reject reason."""
        try:
            self.pipeline.process(d.topic, msg)
        except errors.RejectedMessage as e:
            return e.reason
        finally:
            self.pipeline.commit()
        return "stored"

    def anchor(self, owner):
        def done():
            self.batcher.step()
            owner.mine(1)
            return self.batcher.anchored_messages() == self.store.count_messages()

        wait_until(done, 60, what="everything stored anchored")

    def bundle(self, device, seq):
        return proofs.bundle_for(self.store, device, seq, self.ledger.chain_id, self.ledger.address).encode()


@pytest.fixture
def site_factory(tmp_path, broker):
    """A Site with lines of its own in gateway.toml; its processes are killed afterwards."""
    made = []

    def make(gateway_extra):
        made.append(Site(tmp_path / "site", broker.url, gateway_extra=gateway_extra))
        return made[-1]

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def chain():
    owner = EmbeddedLedger()
    owner.deploy(owner.key)
    gw = owner.for_key(owner.new_funded_key())
    owner.authorize_gateway(SITE, gw.account)
    return owner, gw


@pytest.mark.security
def test_sm3_deployment_stores_anchors_and_verifies_and_refuses_altered_bytes(chain, tmp_path):
    owner, gw_ledger = chain
    gw = Gateway(gw_ledger, tmp_path / "sm3.db", hashes.SM3)
    devices = [gw.enroll(Device("meter-%d" % i, alg)) for i, alg in enumerate(("EdDSA", "ES256"))]
    for d in devices:
        for _ in range(5):
            assert gw.send(d, d.next()) == "stored"
    # the chain links are SM3: the stored digest of seq 4 is what seq 5 names
    link4, link5 = gw.store.message_link("meter-0", 4), gw.store.message_link("meter-0", 5)
    assert link5.prev == link4.digest == hashes.function(hashes.SM3)(devices[0].sent[4])
    gw.anchor(owner)
    batch = gw.store.batch(1)
    assert batch.tree_alg == TREE_SM3 and batch.tree_size == 10
    leaves = [merkle.leaf_hash(d.sent[s], hashes.function(hashes.SM3)) for d in devices for s in range(1, 6)]
    assert batch.root == merkle.root(leaves, hashes.function(hashes.SM3))
    # the anchored header names SM3: byte 1 of the layout whose SHA-256 the contract holds
    header = BatchHeader(bytes.fromhex(gw_ledger.account[2:]), 1, bytes(32), batch.root, 10, batch.first_time,
                         batch.last_time, tree_alg=TREE_SM3)
    assert header.layout()[1] == 0x02 and gw_ledger.header_of(gw_ledger.account, 1) == header.hash()

    trust = verifier.TrustRoot(owner.chain_id, owner.address, tree_hash="sm3")
    data = gw.bundle("meter-1", 3)
    report = verifier.verify_bundle(data, rpc=owner, min_confirmations=1, trust=trust)
    assert report["verdict"] == "verified" and report["tree_hash"] == "sm3" and report["seq"] == 3
    # the contract's own check is SHA-256 only: it says no for an SM3 tree, never a false yes
    b = Bundle.decode(data)
    assert not gw_ledger.verify_anchored(b.header, b.message, b.index, b.path)

    # any altered byte of what the bundle proves is refused (offline already, or on chain): the
    # message, the audit path, the header (its tree-hash byte 9: 2 included), the device key
    # (fields 8 to 10 are claims a verifier does not use: it proves at the latest block)
    evidence = [b.message, b"\x09\x02", b.header.root, b.public_key] + b.path
    spans = [(data.index(part), len(part)) for part in evidence]
    refused = 0
    for start, size in spans:
        for i in range(start, start + size, max(1, size // 24)):
            bad = bytearray(data)
            bad[i] ^= 0x01
            with pytest.raises((BundleError, verifier.BundleCheckFailed)):
                verifier.verify_bundle(bytes(bad), rpc=owner, min_confirmations=1, trust=trust)
            refused += 1
    assert refused > 80
    # the header's tree-hash byte alone: the path no longer leads to the root, and named so
    b.header = BatchHeader(b.header.gateway, 1, b.header.prev, b.header.root, 10, b.header.first_time,
                           b.header.last_time, tree_alg=TREE_SHA256)
    with pytest.raises(WrongPath, match="only when hashed with sm3"):
        verifier.verify_bundle(b.encode(), rpc=owner, min_confirmations=1, trust=trust)


@pytest.mark.security
def test_a_device_on_the_other_chain_hash_is_a_counted_rejection_not_a_wedge(chain, tmp_path):
    owner, gw_ledger = chain
    gw = Gateway(gw_ledger, tmp_path / "sm3.db", hashes.SM3)
    wrong = gw.enroll(Device("meter-sha", chain_hash="sha256"))
    right = gw.enroll(Device("meter-sm3"))
    assert gw.send(wrong, wrong.next()) == "stored"  # seq 1 names no predecessor
    second = wrong.next()
    assert gw.send(wrong, second) == "chain_hash"
    assert gw.send(wrong, second) == "chain_hash"  # the resend: the same clear reason
    assert gw.pipeline.counters["rejected_chain_hash"] == 2
    rows = gw.store.db.execute("SELECT reason, detail FROM quarantine WHERE device='meter-sha'").fetchall()
    assert [r[0] for r in rows] == ["chain_hash", "chain_hash"]
    assert "names as prev the sha256 of seq 1; this deployment hashes chains with sm3" in rows[0][1]
    # other devices go on, and a break that is no hash mix-up stays a chain_break
    for _ in range(3):
        assert gw.send(right, right.next()) == "stored"
    forged = right.make(right.seq + 1, bytes(31) + b"\x01")
    assert gw.send(right, forged) == "chain_break"
    # the device reconfigured to the deployment's hash links on from what is stored
    wrong.digest = chain_digest("sm3")
    wrong.seq, wrong.prev = 1, wrong.digest(wrong.sent[1])
    assert gw.send(wrong, wrong.next()) == "stored"
    assert gw.pipeline.marks["meter-sha"][0] == 2


@pytest.mark.security
def test_a_sha256_tree_is_refused_for_an_sm3_deployment_and_vice_versa(chain, tmp_path):
    """A gateway (or an operator who changed its setting) anchors the same readings in a SHA-256
    tree: a verifier of the SM3 deployment refuses it, however valid on chain, and the other way
    round; its deployment file carries the pin."""
    owner, gw_ledger = chain
    d = Device("meter-0", chain_hash="sha256")
    sha_gw = Gateway(gw_ledger, tmp_path / "sha.db", hashes.SHA256)
    sha_gw.enroll(d)
    for _ in range(3):
        assert sha_gw.send(d, d.next()) == "stored"
    sha_gw.anchor(owner)
    data = sha_gw.bundle("meter-0", 2)
    assert Bundle.decode(data).header.tree_alg == TREE_SHA256
    for pin, ok in (("sha256", True), ("sm3", False), (None, True)):
        trust = verifier.TrustRoot(owner.chain_id, owner.address, tree_hash=pin)
        if ok:
            assert verifier.verify_bundle(data, rpc=owner, min_confirmations=1, trust=trust)["tree_hash"] == "sha256"
        else:
            with pytest.raises(verifier.WrongTreeHash, match="header names sha256, the trusted deployment hashes its "
                                                               "trees with sm3"):
                verifier.verify_bundle(data, rpc=owner, min_confirmations=1, trust=trust)
    # a pinned deployment file says which: one without tree_hash means SHA-256
    for tree_hash, ok in (("sm3", False), ("sha256", True), (None, True)):
        d_file = {"format": "edgeledger-deployment/1", "chain_id": owner.chain_id, "contract": owner.address,
                  "sites": {SITE: {gw_ledger.account: {"from_block": 1, "until_block": None}}}}
        if tree_hash:
            d_file["tree_hash"] = tree_hash
        path = tmp_path / "deployment.json"
        path.write_bytes(json.dumps(d_file).encode())
        trust = verifier.TrustRoot.from_deployment(str(path), _sha256(path))
        if ok:
            verifier.verify_bundle(data, rpc=owner, min_confirmations=1, trust=trust)
        else:
            with pytest.raises(verifier.WrongTreeHash):
                verifier.verify_bundle(data, rpc=owner, min_confirmations=1, trust=trust)
    with pytest.raises(verifier.TrustError, match="contradicts the deployment file, which says sha256"):
        verifier.TrustRoot.from_deployment(str(path), _sha256(path), "sm3")


def _sha256(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.ledger
def test_sm3_site_on_anvil_with_real_processes(site_factory):
    """gateway.toml ``deployment_hash = "sm3"``, agents with ``chain_hash = "sm3"``, Mosquitto,
    anvil: every reading stored and anchored in SM3 trees, ``edgeledger verify --rpc`` accepts a
    bundle and refuses it altered or under a SHA-256 pin."""
    with running_anvil(block_time=1, hardfork="london") as node:
        owner = JsonRpcLedger(node.url, key=node.new_funded_key())
        owner.deploy(owner_key=owner.key)
        gw_key = node.new_funded_key()
        owner.authorize_gateway(SITE, JsonRpcLedger(node.url, key=gw_key).account)
        site = site_factory('deployment_hash = "sm3"')
        last = 12
        names = ("meter-0", "meter-1")
        for name, alg in zip(names, ("EdDSA", "ES256")):
            site.add_device(name, alg=alg, interval_s=0.01, extra='chain_hash = "sm3"')
            site.register_on_chain(owner, name)
        site.use_ledger(node.url, owner.address, gw_key, confirmations=2, max_size=10, max_age_s=1.0)
        site.start_gateway()
        for name in names:
            site.start_agent(name, last)
        assert set(site.wait_agents().values()) == {0}
        st = site.store()
        wait_until(lambda: site.anchored_count(st) == last * len(names), 90, what="every reading anchored")
        assert {r[0] for r in st.db.execute("SELECT tree_alg FROM batches")} == {TREE_SM3}
        assert st.ledger_meta()["deployment_hash"] == "sm3"
        out = site.cli("proof", names[1], "5", "-o", "b.cbor", "--config", site.gateway_config)
        assert out.returncode == 0, out.stderr
        pin = ["--rpc", node.url, "--chain-id", str(owner.chain_id), "--contract", owner.address]
        ok = site.cli("verify", "b.cbor", *pin, "--tree-hash", "sm3")
        assert ok.returncode == 0 and "verified on chain" in ok.stdout and "(tree hash sm3)" in ok.stdout, \
            ok.stdout + ok.stderr
        no = site.cli("verify", "b.cbor", *pin, "--tree-hash", "sha256")
        assert no.returncode == 1 and "wrong_tree_hash" in no.stdout, no.stdout + no.stderr
        data = bytearray(open(os.path.join(site.root, "b.cbor"), "rb").read())
        data[40] ^= 0x01
        open(os.path.join(site.root, "bad.cbor"), "wb").write(bytes(data))
        bad = site.cli("verify", "bad.cbor", *pin)
        assert bad.returncode == 1 and bad.stdout.startswith("FAIL"), bad.stdout + bad.stderr


def test_a_store_keeps_the_deployment_hash_it_started_with(tmp_path):
    from edgeledger.gateway import config
    from edgeledger.gateway.errors import ConfigError
    from edgeledger.gateway.ingest.runner import check_deployment_hash

    st = Store(str(tmp_path / "g.db"))
    sm3_config = config.resolve({"deployment_hash": "sm3", "ledger": EMBEDDED}, str(tmp_path))
    assert check_deployment_hash(st, sm3_config) == hashes.SM3
    assert st.ledger_meta()["deployment_hash"] == "sm3"
    with pytest.raises(ConfigError, match="this store's chains and trees are hashed with 'sm3', gateway.toml says "
                                          "'sha256'"):
        check_deployment_hash(st, config.resolve({"ledger": EMBEDDED}, str(tmp_path)))
    with pytest.raises(ConfigError, match="deployment_hash: expected 'sha256' or 'sm3', found 'sha1'"):
        config.resolve({"deployment_hash": "sha1", "ledger": EMBEDDED}, str(tmp_path))

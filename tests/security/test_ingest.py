"""The gateway's own checks behind the broker: what the ACL does not stop, the gateway does.

The gateway runs in-process (IngestService on the gateway's listener, with the password
``broker config`` issued it); devices are provisioned with ``provision.provision`` (registry
and the embedded chain) and publish with their bundle's certificate.
"""
import os
import time

import pytest

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway import proofs
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.enrol import provision
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.ingest.service import IngestService
from edgeledger.gateway.proofs import verifier
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import session, topics
from edgeledger.protocols.bundle import Bundle, NonCanonical
from tests.protocols.canonical_cases import CASES
from tests.security.conftest import SITE
from tests.support.devices import FakeDevice
from tests.support.net import wait_until

pytestmark = pytest.mark.security

# Loose on purpose: every client may read and write everything on the site, so only the
# gateway's checks stand between a device and another device's topics.
LOOSE_ACL = ("user gateway\ntopic readwrite el/v1/%s/#\npattern readwrite el/v1/%s/#\n" % (SITE, SITE))


@pytest.fixture(scope="module")
def ledger():
    led = EmbeddedLedger()
    led.deploy(led.new_funded_key())
    led.authorize_gateway(SITE, led.account)
    return led


class Gateway:
    """Store + registry + pipeline + MQTT ingest, in this process."""

    def __init__(self, root, broker):
        self.path = os.path.join(root, "gateway.db")
        self.store = Store(self.path)
        self.registry = Registry(self.store)
        self.pipeline = Pipeline(self.store, self.registry)
        self.service = IngestService(self.pipeline, broker.gateway_url, "el-gw-test", sites=[SITE],
                                     **broker.gateway_mqtt())
        self.service.start()
        assert self.service.connected.wait(10), broker.log()

    def operator_registry(self):
        """A registry on its own connection, as the operator CLI has."""
        return Registry(Store(self.path))

    def quarantined(self, reason):
        return self.store.quarantine_reasons().get(reason, 0)

    def stop(self):
        self.service.stop()


@pytest.fixture
def gateway_factory(tmp_path):
    made = []

    def make(broker):
        g = Gateway(str(tmp_path), broker)
        made.append(g)
        return g

    yield make
    for g in made:
        g.stop()


def _provision(gw, broker, device, out, ledger=None):
    reg = gw.operator_registry()
    bundle = provision.provision(reg, device, SITE, out, broker=broker.site, ledger=ledger)
    wait_until(lambda: gw.registry.key(bundle.kid) is not None, 60, what="the gateway sees the new key")
    return bundle


def _bundle_client(clients, broker, bundle, name):
    c = clients(broker, name, bundle.files["tls_cert"], bundle.files["tls_key"])
    assert c.wait(), broker.log()
    return c


def stored_readings(store, device):
    """{seq: bytes} of what the gateway stored for ``device``."""
    return dict(store.db.execute("SELECT seq, bytes FROM messages WHERE device=?", (device,)).fetchall())


def test_message_signed_by_a_on_bs_topic_is_rejected_as_topic_mismatch(secure_broker, clients, gateway_factory,
                                                                       tmp_path):
    b = secure_broker("mtls", acl_text=LOOSE_ACL)
    gw = gateway_factory(b)
    ba = _provision(gw, b, "dev-a", tmp_path / "a")
    _provision(gw, b, "dev-b", tmp_path / "b")
    a = FakeDevice("dev-a", SITE, signer=load_key_file(ba.files["key"]))
    conn = _bundle_client(clients, b, ba, "a")
    forged = a.next()
    conn.publish(topics.readings(SITE, "dev-b"), forged)  # the loose ACL lets it through
    wait_until(lambda: gw.quarantined("topic_mismatch") == 1, 60, what="topic_mismatch quarantine")
    assert stored_readings(gw.store, "dev-b") == {} and stored_readings(gw.store, "dev-a") == {}
    row = gw.store.db.execute("SELECT topic, bytes FROM quarantine WHERE reason='topic_mismatch'").fetchone()
    assert row == (topics.readings(SITE, "dev-b"), forged)  # the evidence is kept as received
    # the same message on its own topic is fine
    conn.publish(a.topic, forged)
    wait_until(lambda: stored_readings(gw.store, "dev-a") == {1: forged}, 60, what="dev-a's reading stored")


def test_revoked_device_is_quarantined_and_its_earlier_readings_stay(secure_broker, clients, gateway_factory,
                                                                    tmp_path, ledger):
    b = secure_broker("mtls")
    gw = gateway_factory(b)
    ba = _provision(gw, b, "dev-a", tmp_path / "a", ledger=ledger)
    on_chain = ledger.registration(SITE, ba.kid)  # provisioning registered the key on chain too
    assert (on_chain["device_id"], on_chain["public_key"], on_chain["first_seq"]) == ("dev-a", ba.public_key, 1)
    assert ledger.key_entry(SITE, ba.kid)["end_time"] is None
    # the gateway's window opens where the chain's does
    assert gw.registry.key(ba.kid).valid_from == on_chain["timestamp"]
    a = FakeDevice("dev-a", SITE, signer=load_key_file(ba.files["key"]))
    conn = _bundle_client(clients, b, ba, "a")
    before = [a.next() for _ in range(3)]
    for m in before:
        conn.publish(a.topic, m)
    wait_until(lambda: len(stored_readings(gw.store, "dev-a")) == 3, 60, what="3 readings stored")
    bundles = anchor_and_bundle(gw.store, ledger, "dev-a", [1, 2, 3])

    r = provision.revoke(gw.operator_registry(), "dev-a", ledger=ledger)
    assert r["revoked"] == 1 and r["chain"] == 1
    wait_until(lambda: gw.registry.key(ba.kid).revoked_at is not None, 60, what="gateway sees the revocation")
    entry = ledger.key_entry(SITE, ba.kid)  # the chain says the same: end time and last seq
    assert (entry["end_time"], entry["last_seq"], entry["revoked"]) == (r["at"], 3, True)

    later = a.next(t=time.time() + 2)  # a new reading after the revocation
    conn.publish(a.topic, later)
    wait_until(lambda: gw.quarantined("revoked_device") == 1, 60, what="revoked_device quarantine")
    assert stored_readings(gw.store, "dev-a") == dict(enumerate(before, 1))
    # backdating does not help: the seq is above the device's mark at revocation
    backdated = a.next(t=time.time() - 3600)
    conn.publish(a.topic, backdated)
    wait_until(lambda: gw.quarantined("revoked_device") == 2, 60, what="backdated message refused")
    assert stored_readings(gw.store, "dev-a") == dict(enumerate(before, 1))
    # the readings anchored before the revocation still verify, on chain, after it
    for data in bundles:
        report = verifier.verify_bundle(data, rpc=ledger, min_confirmations=1,
                                        trust=verifier.TrustRoot(ledger.chain_id, ledger.address))
        assert report["storage_proof"] == "ok" and report["key"]["status"] == "revoked"


def test_reencoded_copies_published_first_do_not_fork_the_devices(secure_broker, clients, gateway_factory,
                                                                   tmp_path):
    """A broker user who sees a device's readings publishes other encodings of them (a long
    array or tag head, the kid copied into the unprotected header, the high-S twin of an ES256
    signature: all verify) *before* the device's own messages reach the gateway. Each copy is
    quarantined as non_canonical; the genuine messages and every later reading are stored,
    acknowledged, anchored and verify. (Before: the copy was stored, the genuine seq 1 became
    a fork and seq 2 a chain break, and the stored copy could never give a valid bundle.)"""
    led = EmbeddedLedger()  # its own chain: this test anchors its own batch 1
    led.deploy(led.new_funded_key())
    led.authorize_gateway(SITE, led.account)
    b = secure_broker("mtls", acl_text=LOOSE_ACL)
    gw = gateway_factory(b)
    devices = {}
    for name, alg in (("dev-a", "EdDSA"), ("dev-e", "ES256")):
        pb = provision.provision(gw.operator_registry(), name, SITE, tmp_path / name, alg=alg, broker=b.site,
                                 ledger=led)
        wait_until(lambda: gw.registry.key(pb.kid) is not None, 60,  # noqa: B023 (called in this loop)
                   what="the gateway sees %s's key" % name)
        devices[name] = (FakeDevice(name, SITE, signer=load_key_file(pb.files["key"])),
                         _bundle_client(clients, b, pb, name))
    attacker = _bundle_client(clients, b, _provision(gw, b, "dev-m", tmp_path / "m"), "m")
    sent = dict((name, [d.next() for _ in range(4)]) for name, (d, _) in devices.items())
    copies = [("dev-a", 0, "array_head_98_04"), ("dev-a", 1, "unprotected_kid"),
              ("dev-e", 0, "high_s_es256"), ("dev-e", 1, "tag_head_d8_12")]
    forged = []
    for name, i, case in copies:
        d = devices[name][0]
        copy = CASES[case][2](sent[name][i], d.signer)
        forged.append(copy)
        attacker.publish(d.topic, copy)
    wait_until(lambda: gw.quarantined("non_canonical") == 4, 60, what="the 4 copies quarantined")
    assert stored_readings(gw.store, "dev-a") == {} and stored_readings(gw.store, "dev-e") == {}
    rows = gw.store.db.execute("SELECT bytes FROM quarantine WHERE reason='non_canonical'").fetchall()
    assert sorted(bytes(r[0]) for r in rows) == sorted(forged)  # kept as evidence, as received

    dev_a, conn_a = devices["dev-a"]
    conn_a.subscribe(topics.ack(SITE, "dev-a"))
    for name, (d, conn) in devices.items():
        for m in sent[name]:
            conn.publish(d.topic, m)
    for name in devices:
        wait_until(lambda: len(stored_readings(gw.store, name)) == 4, 60,  # noqa: B023 (called in this loop)
                   what="%s's 4 readings stored" % name)
        assert stored_readings(gw.store, name) == dict(enumerate(sent[name], 1))
    wait_until(lambda: any(session.decode_ack(p) == 4 for _, p in conn_a.received), 60, what="dev-a acked to 4")
    attacker.publish(dev_a.topic, CASES["array_head_98_04"][2](sent["dev-a"][2], dev_a.signer))  # after: same
    wait_until(lambda: gw.quarantined("non_canonical") == 5, 60, what="the late copy quarantined")
    assert gw.store.quarantine_reasons() == {"non_canonical": 5}  # no fork, no chain break
    assert gw.store.device_marks()["dev-a"] == (4, 4) and gw.store.device_marks()["dev-e"] == (4, 4)

    bundles = anchor_and_bundle(gw.store, led, "dev-a", [1, 2, 3, 4])
    bundles += [proofs.bundle_for(gw.store, "dev-e", seq, led.chain_id, led.address).encode() for seq in (1, 2, 3, 4)]
    trust = verifier.TrustRoot(led.chain_id, led.address)
    for data in bundles:
        report = verifier.verify_bundle(data, rpc=led, min_confirmations=1, trust=trust)
        assert report["storage_proof"] == "ok" and report["key_status"] == "valid"
    # a verifier refuses the copy too, wherever it turns up
    swapped = Bundle.decode(bundles[4])
    swapped.message = forged[2]  # dev-e seq 1, high-S twin
    with pytest.raises(NonCanonical, match="high_s"):
        verifier.verify_bundle(swapped.encode(), rpc=led, min_confirmations=1, trust=trust)


def anchor_and_bundle(store, ledger, device, seqs):
    """Anchor what the store holds on the embedded chain; the proof bundles of ``seqs``."""
    store.set_ledger_meta({"chain_id": ledger.chain_id, "contract": ledger.address, "gateway": ledger.account})
    batcher = Batcher(store, ledger, max_size=1000, max_age_s=0, confirmations=1)

    def anchored():
        batcher.step()
        return batcher.anchored_messages() == store.count_messages()

    wait_until(anchored, 30, what="readings anchored")
    return [proofs.bundle_for(store, device, seq, ledger.chain_id, ledger.address).encode() for seq in seqs]


def test_revoked_device_loses_its_broker_credentials(secure_broker, clients, gateway_factory, tmp_path):
    b = secure_broker("mtls")
    gw = gateway_factory(b)
    ba = _provision(gw, b, "dev-a", tmp_path / "a")
    _bundle_client(clients, b, ba, "a1")
    r = provision.revoke(gw.operator_registry(), "dev-a", broker=b.site)
    assert r["broker"] is True
    b.reload()
    assert not clients(b, "a2", ba.files["tls_cert"], ba.files["tls_key"]).wait()

"""A bundle verifies only when the chain itself says so: attacks on the verifier's trust roots,
on key binding and key windows, and on the node it asks (issue 11).

Each attack runs on the embedded chain and on a real anvil where it applies. A *compromised
gateway* here is one with its ledger key: it can store anything in its own database and anchor
it (``GatewaySite.inject``), so what stops it is the verifier's checks, not the honest pipeline.
"""
import hashlib
import json
import math
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgeledger.agent.key_file import load_key_file
from edgeledger.agent.signer import generate
from edgeledger.gateway import cli, errors, proofs
from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.ledger import EmbeddedLedger, JsonRpcLedger, KeyRejected, LedgerUnavailable
from edgeledger.gateway.config import BatchConfig
from edgeledger.gateway.enrol import provision
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.proofs import deployment, verifier
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import cose, reading
from edgeledger.protocols.bundle import Bundle
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.support.anvil import rpc, running_anvil
from tests.support.devices import FakeDevice, encrypted_pack
from tests.support.net import wait_until

pytestmark = pytest.mark.security

SITE_A, SITE_B = "plant-a", "plant-b"


@pytest.fixture(scope="module")
def anvil_node():
    with running_anvil(hardfork="london") as node:
        yield node


class World:
    """One deployed contract, its owner, a gateway for each of two sites."""

    def __init__(self, kind, node=None):
        self.kind, self.node = kind, node
        if kind == "embedded":
            self.owner = EmbeddedLedger()
            self.owner.deploy(self.owner.key)
            self.rpc = self.owner
        else:
            self.owner = JsonRpcLedger(node.url, key=node.new_funded_key())
            self.owner.deploy(self.owner.key)
            self.rpc = node.url
        self.gw_a = self.gateway(SITE_A)
        self.gw_b = self.gateway(SITE_B)
        self.trust = verifier.TrustRoot(self.owner.chain_id, self.owner.address)

    def funded_key(self):
        return self.owner.new_funded_key() if self.kind == "embedded" else self.node.new_funded_key()

    def gateway(self, *sites):
        gw = self.owner.for_key(self.funded_key())
        for site in sites:
            self.owner.authorize_gateway(site, gw.account)
        return gw

    def mine(self, n=1):
        if self.kind == "embedded":
            self.owner.mine(n)
        else:
            self.node.mine(n)

    def chain_time(self):
        return self.owner.w3.eth.get_block("latest")["timestamp"]

    def advance(self, seconds):
        """Let the chain's clock run ``seconds`` ahead (one block at the new time)."""
        if self.kind == "embedded":
            self.owner.tester.time_travel(self.chain_time() + int(seconds))
        else:
            self.node.rpc("evm_increaseTime", int(seconds))
            self.node.mine(1)

    def verify(self, data, trust=None, rpc=None):
        return verifier.verify_bundle(data, rpc=rpc or self.rpc, min_confirmations=1, trust=trust or self.trust)

    def refused(self, data, cls, match, **kw):
        with pytest.raises(cls) as e:
            self.verify(data, **kw)
        assert match in str(e.value), str(e.value)
        return str(e.value)


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.ledger)])
def world(request):
    if request.param == "embedded":
        return World("embedded")
    return World("anvil", request.getfixturevalue("anvil_node"))


@pytest.fixture
def anvil_world(anvil_node):
    return World("anvil", anvil_node)


class GatewaySite:
    """A gateway's store, registry and pipeline, anchoring with ledger ``gw``."""

    def __init__(self, world, gw, path):
        self.world, self.gw = world, gw
        self.store = Store(str(path))
        self.registry = Registry(self.store)
        self.pipeline = Pipeline(self.store, self.registry)
        self.store.set_ledger_meta({"chain_id": gw.chain_id, "contract": gw.address, "gateway": gw.account})

    def enroll(self, name, site, signer=None):
        """A device in this registry, its key registered on chain by this gateway."""
        d = FakeDevice(name, site, signer=signer)
        d.register(self.registry)
        keysync.sync_chain(self.registry, self.gw)
        return d

    def accept(self, d, msg):
        """The honest pipeline's verdict: "stored" or the reject reason."""
        try:
            self.pipeline.process(d.topic, msg)
        except errors.RejectedMessage as e:
            return e.reason
        self.pipeline.commit()
        return "stored"

    def inject(self, msgs):
        """A compromised gateway stores messages as they are, past every check, with the record
        times in its own columns (the receive time where they are not finite: its batcher runs)."""
        rows = []
        for m in msgs:
            msg = cose_verify.parse_sign1(m)
            now = time.time()
            try:
                body = reading_validate.decode_payload(msg.payload)
                t0, t1 = reading_validate.time_range(body.pack) if body.pack is not None else (now, now)
                device, seq, prev, epoch = body.device, body.seq, body.prev, body.epoch
            except ValueError:  # numbers no honest gateway takes: the raw fields
                p = cbor_decoder.decode(msg.payload)
                device, seq, prev, epoch, t0, t1 = p[2], p[3], p[4], p[5], now, now
            rows.append((device, seq, prev, hashlib.sha256(m).digest(), epoch, msg.kid, t0, t1, now, m))
        with self.store.lock:
            self.store.begin()
            self.store.insert_messages(rows)
            self.store.commit()

    def anchor(self):
        batcher = Batcher(self.store, self.gw, max_size=1000, max_age_s=0, confirmations=1)

        def done():
            batcher.step()
            self.world.mine(1)
            return batcher.anchored_messages() == self.store.count_messages()

        wait_until(done, 60, what="everything stored anchored")

    def bundle(self, device, seq):
        return proofs.bundle_for(self.store, device, seq, self.gw.chain_id, self.gw.address).encode()


@pytest.fixture
def site_of(tmp_path):
    made = []

    def make(world, gw, name="a"):
        s = GatewaySite(world, gw, tmp_path / ("%s.db" % name))
        made.append(s)
        return s

    yield make
    for s in made:
        s.store.close()


def encrypted(d, seq, prev):
    """A reading whose values are encrypted for the data owner (payload key 7): no times."""
    return cose.sign1(reading_validate.encode_payload(d.name, seq, prev, 1, enc=encrypted_pack(d.name, seq)),
                      d.signer)


def send_next(d, msg):
    d.seq += 1
    d.prev = hashlib.sha256(msg).digest()
    d.sent[d.seq] = msg
    return msg


# ---------------------------------------------------------------------------------- trust roots

def test_stranger_contract_and_its_bundle_are_refused(world, site_of):
    """Attack: a stranger deploys their own EdgeLedgerAnchor, authorizes themselves for plant-a,
    registers a device key and anchors a made-up reading, then hands over the bundle. Its chain
    id and contract are its own claims: the verifier compares them with its trust roots."""
    stranger = world.owner.for_key(world.funded_key())
    stranger.deploy(owner_key=stranger.key)
    stranger.authorize_gateway(SITE_A, stranger.account)
    fake = site_of(world, stranger, "stranger")
    d = fake.enroll("meter-01", SITE_A)
    assert fake.accept(d, d.next()) == "stored"
    fake.anchor()
    data = fake.bundle("meter-01", 1)
    # trusting the stranger's own contract it verifies: that is what a bundle naming its own root would get
    assert world.verify(data, trust=verifier.TrustRoot(stranger.chain_id, stranger.address))["verdict"] == "verified"
    world.refused(data, verifier.WrongContract, "the trusted contract is %s" % world.owner.address)
    # naming the trusted contract instead: the batch is not anchored there
    b = Bundle.decode(data)
    b.contract = bytes.fromhex(world.owner.address[2:])
    world.refused(b.encode(), verifier.RootNotOnChain, "not anchored")
    b.chain_id += 1
    world.refused(b.encode(), verifier.WrongChain, "wrong chain")


def test_second_key_with_backdated_readings_is_refused(world, site_of):
    """Attack: a site gateway registers a second key for a device and signs readings that claim
    to be older than that key's registration. Its window opens at the chain's own block time."""
    site = site_of(world, world.gw_a)
    d = site.enroll("meter-01", SITE_A)
    assert site.accept(d, d.next()) == "stored"
    second = generate("EdDSA", "meter-01")
    site.registry.register("meter-01", SITE_A, second.alg, second.public_key, second.kid, first_seq=1)
    keysync.sync_chain(site.registry, world.gw_a)  # the chain records its own time for it
    t_reg = world.gw_a.registration(SITE_A, second.kid)["timestamp"]
    assert site.registry.key(second.kid).valid_from == t_reg
    d.signer = second
    backdated = d.make(d.seq + 1, d.prev, t=t_reg - 3600)
    assert site.accept(d, backdated) == "revoked_device"  # the honest gateway refuses it (W3)
    site.inject([backdated])  # a compromised one anchors it anyway
    send_next(d, backdated)
    site.anchor()
    world.refused(site.bundle("meter-01", 2), verifier.KeyOutsideWindow, "rule W3")
    assert world.verify(site.bundle("meter-01", 1))["verdict"] == "verified"  # the device's own reading


def test_rotated_out_key_signing_older_claimed_readings_is_refused(world, site_of, tmp_path):
    """Attack: after a rotation the old key leaks; the thief signs readings that claim times
    inside the old key's window. Once the device's first message under the new key is stored,
    the old key's last seq is sealed (and carried to the chain)."""
    site = site_of(world, world.gw_a)
    d = site.enroll("meter-01", SITE_A)
    old = d.signer
    for _ in range(2):
        assert site.accept(d, d.next()) == "stored"
    new_kid, until = provision.rotate(site.registry, "meter-01", 3600, out_dir=str(tmp_path), ledger=world.gw_a)
    d.signer = load_key_file(str(tmp_path / "meter-01.key"))
    assert d.signer.kid == new_kid and site.registry.key(new_kid).first_seq == 3
    assert site.accept(d, d.next()) == "stored"  # seq 3 under the new key: the device switched
    assert keysync.push_key_ends(site.registry, world.gw_a, {}) == 1
    assert world.gw_a.key_entry(SITE_A, old.kid)["last_seq"] == 2
    d.signer = old
    thief = d.make(d.seq + 1, d.prev, t=time.time() - 60)  # inside the old window, a new seq
    assert site.accept(d, thief) == "revoked_device"
    site.inject([thief])
    send_next(d, thief)
    site.anchor()
    world.refused(site.bundle("meter-01", 4), verifier.KeyOutsideWindow, "rule W5")
    for seq in (2, 3):  # the device's genuine readings under both keys
        assert world.verify(site.bundle("meter-01", seq))["verdict"] == "verified"
    assert until > time.time()


def test_another_sites_gateway_can_neither_manage_keys_nor_anchor_for_the_site(world, site_of):
    site_a = site_of(world, world.gw_a, "a")
    d = site_a.enroll("meter-01", SITE_A)
    msg = d.next()
    assert site_a.accept(d, msg) == "stored"
    pub = generate("EdDSA", "evil").public_key
    with pytest.raises(KeyRejected) as e:
        world.gw_b.register_key(SITE_A, "meter-01", -8, pub)
    assert e.value.name == "NotAuthorized"
    for call in (lambda: world.gw_b.revoke_key(SITE_A, d.signer.kid, 1, 0),
                 lambda: world.gw_b.rotate_key(SITE_A, d.signer.kid, 1)):
        with pytest.raises(KeyRejected) as e:
            call()
        assert e.value.name == "NotAuthorized"
    assert world.gw_a.key_entry(SITE_A, d.signer.kid)["end_time"] is None
    # gateway B (authorized for plant-b only) anchors plant-a's genuine reading in its own batch
    site_b = site_of(world, world.gw_b, "b")
    site_b.registry.register("meter-01", SITE_A, d.signer.alg, d.signer.public_key, d.signer.kid)
    reg = world.gw_a.registration(SITE_A, d.signer.kid)
    site_b.registry.record_chain_registration(d.signer.kid, reg["block_number"], reg["timestamp"], 1)
    site_b.inject([msg])
    site_b.anchor()
    world.refused(site_b.bundle("meter-01", 1), verifier.WrongGateway, "authorization for site 'plant-a' is none")
    site_a.anchor()
    assert world.verify(site_a.bundle("meter-01", 1))["gateway"] == world.gw_a.account


def test_kid_squatting_neither_blocks_nor_hijacks_a_sites_key(world, site_of):
    """Attack: another site's gateway registers a device's public key (so its kid) first, under
    its own site, and revokes it there. The registry is keyed by (site, kid)."""
    d = FakeDevice("meter-01", SITE_A)
    world.gw_b.register_key(SITE_B, "meter-01", d.signer.alg, d.signer.public_key)
    world.gw_b.revoke_key(SITE_B, d.signer.kid, 1, 0)
    site = site_of(world, world.gw_a)
    d.register(site.registry)
    keysync.sync_chain(site.registry, world.gw_a)  # not blocked: KeyExists is per site
    assert world.gw_a.key_entry(SITE_A, d.signer.kid)["end_time"] is None  # nor revoked by B's entry
    assert world.gw_b.key_entry(SITE_B, d.signer.kid)["revoked"] is True
    assert site.accept(d, d.next()) == "stored"
    site.anchor()
    data = site.bundle("meter-01", 1)
    assert world.verify(data)["site"] == SITE_A
    # the squatted entry cannot be borrowed: gw_a is not plant-b's gateway
    b = Bundle.decode(data)
    b.site = SITE_B
    world.refused(b.encode(), verifier.WrongGateway, "site 'plant-b'")


# ---------------------------------------------------------------------------------- readings

def test_encrypted_readings_are_judged_by_seq_after_revocation(world, site_of):
    """Before, an encrypted reading (no visible time) skipped the verifier's revocation check:
    a leaked key could sign new ones after revocation and a compromised gateway anchor them."""
    site = site_of(world, world.gw_a)
    d = site.enroll("meter-01", SITE_A)
    for _ in range(2):
        assert site.accept(d, send_next(d, encrypted(d, d.seq + 1, d.prev))) == "stored"
    site.anchor()
    r = provision.revoke(site.registry, "meter-01", ledger=world.gw_a)
    assert r["chain"] == 1 and world.gw_a.key_entry(SITE_A, d.signer.kid)["last_seq"] == 2
    late = encrypted(d, d.seq + 1, d.prev)
    assert site.accept(d, late) == "revoked_device"
    site.inject([late])
    send_next(d, late)
    site.anchor()
    world.refused(site.bundle("meter-01", 3), verifier.KeyOutsideWindow, "rule W5")
    for seq in (1, 2):  # signed before the revocation: still valid after it
        report = world.verify(site.bundle("meter-01", seq))
        assert report["encrypted"] and report["key"]["status"] == "revoked" and report["t_first"] is None


def test_encrypted_reading_after_an_unsealed_rotation_end_is_refused(world, site_of):
    """A rotated-out key whose last seq is not sealed yet (the device has not switched): an
    encrypted reading shows no time, so it counts only if it is known to be signed before the
    end: anchored before it."""
    site = site_of(world, world.gw_a)
    d = site.enroll("meter-01", SITE_A)
    assert site.accept(d, send_next(d, encrypted(d, 1, d.prev))) == "stored"
    provision.rotate(site.registry, "meter-01", 30, public_key=generate("EdDSA", "y").public_key,
                     ledger=world.gw_a, now=world.chain_time())
    site.anchor()  # seq 1: anchored inside the overlap
    world.advance(120)
    late = encrypted(d, 2, d.prev)
    site.inject([late])
    send_next(d, late)
    site.anchor()
    assert world.gw_a.key_entry(SITE_A, d.signer.kid)["last_seq"] is None  # not sealed
    world.refused(site.bundle("meter-01", 2), verifier.KeyOutsideWindow, "rule W6")
    assert world.verify(site.bundle("meter-01", 1))["key"]["status"] == "rotated"


def test_non_finite_record_times_are_refused(world, site_of):
    """Before, a NaN time compared false with every bound: it passed the revocation window and
    the clock-skew check, and one NaN among the records hid from min/max."""
    site = site_of(world, world.gw_a)
    d = site.enroll("meter-01", SITE_A)
    now = time.time()
    msgs = []
    for seq, times in enumerate(([math.nan], [math.inf], [None, math.nan], [-math.inf, None]), 1):
        pack = [{0: "meter-01/v%d" % i, 1: "W", 2: 1.0, 6: now if t is None else t} for i, t in enumerate(times)]
        # signed by a buggy encoder (the board's does not check its numbers)
        msgs.append(cose.sign1(reading.encode_payload("meter-01", seq, d.prev, 1, pack), d.signer))
        assert site.accept(d, msgs[-1]) == "out_of_range", times
    site.inject(msgs)
    site.anchor()
    for seq in range(1, len(msgs) + 1):
        data = site.bundle("meter-01", seq)
        with pytest.raises(verifier.BadReadingNumber, match="finite"):
            verifier.verify_bundle(data)  # refused already offline
        world.refused(data, verifier.BadReadingNumber, "finite")


# ---------------------------------------------------------------------------------- the node

class LyingProxy:
    """An HTTP JSON-RPC proxy in front of anvil that makes every key look unrevoked: it zeroes
    eth_call answers and the ``value`` fields of eth_getProof answers (mode "values"), or also
    rewrites the proof's last node of each storage slot (mode "nodes")."""

    def __init__(self, upstream, mode):
        self.upstream, self.mode, self.calls = upstream, mode, {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                method = body["method"]
                proxy.calls[method] = proxy.calls.get(method, 0) + 1
                req = urllib.request.Request(proxy.upstream, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as resp:
                    answer = json.loads(resp.read())
                proxy.lie(method, answer)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def lie(self, method, answer):
        result = answer.get("result")
        if method == "eth_call" and isinstance(result, str) and len(result) > 2:
            answer["result"] = "0x" + "00" * ((len(result) - 2) // 2)  # keyEntry: no end, no flags
        if method == "eth_getProof":
            for entry in result["storageProof"]:
                entry["value"] = "0x0"
                if self.mode == "nodes":
                    node = entry["proof"][-1]
                    entry["proof"][-1] = node[:-2] + ("00" if node[-2:] != "00" else "01")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.ledger
@pytest.mark.parametrize("mode", ["values", "nodes"])
def test_rpc_proxy_hiding_a_revocation_is_caught(anvil_world, site_of, mode):
    """Attack: the verifier's RPC endpoint lies that a revoked key is not revoked. The verifier
    makes no eth_call and reads each value out of the proof nodes, checked up to the state root."""
    world = anvil_world
    site = site_of(world, world.gw_a)
    d = site.enroll("meter-01", SITE_A)
    for _ in range(3):
        assert site.accept(d, d.next()) == "stored"
    site.anchor()
    provision.revoke(site.registry, "meter-01", at=time.time() - 3600, ledger=world.gw_a)  # compromise found older
    data = site.bundle("meter-01", 2)
    world.refused(data, verifier.KeyOutsideWindow, "rule W4")
    proxy = LyingProxy(world.node.url, mode)
    try:
        liar = JsonRpcLedger(proxy.url)
        liar.attach(world.owner.address)
        assert liar.key_entry(SITE_A, d.signer.kid) is None  # the lie is on: an eth_call reader sees no key at all
        proxy.calls.clear()
        if mode == "values":
            world.refused(data, verifier.KeyOutsideWindow, "rule W4", rpc=proxy.url)
        else:
            world.refused(data, verifier.ProofFailed, "state root", rpc=proxy.url)
        assert proxy.calls.get("eth_call", 0) == 0 and proxy.calls["eth_getProof"] == 1
    finally:
        proxy.close()


@pytest.mark.ledger
def test_bundle_verifies_after_node_restart_and_200_blocks_without_an_archive_node(tmp_path):
    """The anchor and the key entry are append-only and stored with the anchoring block and time,
    so a proof at the latest block is enough: anvil restarted from its saved state (which keeps no
    historical states) and 200 blocks later, the bundle verifies and reports the anchor block."""
    from tests.support.anvil import Anvil

    node = Anvil(hardfork="london")
    try:
        node.start()
        world = World("anvil", node)
        site = GatewaySite(world, world.gw_a, tmp_path / "restart.db")
        d = site.enroll("meter-01", SITE_A)
        assert site.accept(d, d.next()) == "stored"
        site.anchor()
        provision.revoke(site.registry, "meter-01", ledger=world.gw_a)  # the key's end is append-only too
        data = site.bundle("meter-01", 1)
        first = world.verify(data)
        node.stop()
        with pytest.raises(LedgerUnavailable):
            world.verify(data)
        node.start()
        node.mine(200)
        report = world.verify(data)
        assert report["verdict"] == "verified" and report["key"]["status"] == "revoked"
        assert (report["anchor_block"], report["anchor_time"]) == (first["anchor_block"], first["anchor_time"])
        assert report["confirmations"] == first["confirmations"] + 200
        assert report["proven_at_block"] == node.block_number()
        # what a verifier that proves at the anchoring block would need: the node no longer has it
        with pytest.raises(RuntimeError):
            rpc(node.url, "eth_getProof", [world.owner.address, [], hex(first["anchor_block"])])
        site.store.close()
    finally:
        node.close()


# ---------------------------------------------------------------------------------- deployment file

@pytest.mark.ledger
def test_deployment_file_is_reproducible_and_pins_sites_and_gateways(anvil_world, site_of, tmp_path, capsys):
    """The regulator's trust root: exported from the chain by proof, byte-identical for the same
    block, pinned by SHA-256; a bundle of a gateway or site it does not list is refused."""
    world = anvil_world
    site = site_of(world, world.gw_a, "a")
    d = site.enroll("meter-01", SITE_A)
    assert site.accept(d, d.next()) == "stored"
    site.anchor()
    good = tmp_path / "good.cbor"
    good.write_bytes(site.bundle("meter-01", 1))
    n = world.node.block_number()
    exported = deployment.export(world.node.url, world.owner.address, block=n)
    world.node.mine(3)
    assert deployment.dumps(deployment.export(world.node.url, world.owner.address, block=n)) == \
        deployment.dumps(exported)
    assert exported["contract_version"] == 2 and exported["owner"] == world.owner.account
    assert exported["sites"] == {
        SITE_A: {world.gw_a.account: {"from_block": world.owner.authorization(SITE_A, world.gw_a.account)[0],
                                      "until_block": None}},
        SITE_B: {world.gw_b.account: {"from_block": world.owner.authorization(SITE_B, world.gw_b.account)[0],
                                      "until_block": None}}}

    def run(*argv):
        capsys.readouterr()
        code = cli.main([str(a) for a in argv])
        return code, capsys.readouterr().out

    path = tmp_path / "deployment.json"
    code, out = run("deployment", "export", "--rpc", world.node.url, "--contract", world.owner.address,
                    "--block", n, "-o", path)
    assert code == 0 and path.read_bytes() == deployment.dumps(exported)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "sha256 %s" % sha in out
    pin = ["--rpc", world.node.url, "--deployment", path, "--deployment-sha256", sha, "--confirmations", 1]
    code, out = run("verify", good, *pin)
    assert code == 0 and "deployment file sha256 %s" % sha in out, out
    code, out = run("verify", good, *pin[:-4], "--deployment-sha256", "00" * 32)
    assert code == 2 and "pinned hash" in out
    code, out = run("verify", good, "--rpc", world.node.url, "--deployment", path)
    assert code == 2 and "SHA-256 pinned" in out

    # a gateway the owner authorizes for plant-a after the export (the operator's command): the
    # chain says yes, the file no
    gw_c = world.gateway()
    key_file = tmp_path / "owner.ethkey"
    key_file.write_text(world.owner.key)
    key_file.chmod(0o600)
    code, out = run("deployment", "authorize", "--rpc", world.node.url, "--contract", world.owner.address,
                    "--site", SITE_A, "--gateway", gw_c.account, "--key-file", key_file)
    assert code == 0 and "authorized from block" in out, out
    assert world.owner.is_gateway_for(SITE_A, gw_c.account)
    late = site_of(world, gw_c, "c")
    e = late.enroll("meter-02", SITE_A)
    assert late.accept(e, e.next()) == "stored"
    late.anchor()
    late_bundle = tmp_path / "late.cbor"
    late_bundle.write_bytes(late.bundle("meter-02", 1))
    code, out = run("verify", late_bundle, *pin)
    assert code == 1 and "wrong_gateway" in out and gw_c.account in out, out
    code, out = run("verify", late_bundle, "--rpc", world.node.url, "--chain-id", world.owner.chain_id,
                    "--contract", world.owner.address, "--confirmations", 1)
    assert code == 0, out
    # a site the file does not list, and another contract
    b = Bundle.decode(good.read_bytes())
    b.site = "plant-z"
    (tmp_path / "site.cbor").write_bytes(b.encode())
    code, out = run("verify", tmp_path / "site.cbor", *pin)
    assert code == 1 and "wrong_site" in out
    b = Bundle.decode(good.read_bytes())
    b.contract = bytes(20)
    (tmp_path / "contract.cbor").write_bytes(b.encode())
    code, out = run("verify", tmp_path / "contract.cbor", *pin)
    assert code == 1 and "wrong_contract" in out


def test_gateway_on_its_own_chain_authorizes_itself_and_registers_keys_as_they_appear(tmp_path):
    """The embedded chain is new at every start: the batcher thread authorizes the gateway for
    the sites of its devices and registers their keys as they appear, so anchoring works and a
    bundle verifies against it."""
    from edgeledger.gateway.anchor.thread import BatcherThread

    path = str(tmp_path / "gw.db")
    st = Store(path)
    reg = Registry(st)
    pipe = Pipeline(st, reg)
    ledger = EmbeddedLedger()
    ledger.deploy(owner_key=ledger.key)
    st.set_ledger_meta({"chain_id": ledger.chain_id, "contract": ledger.address, "gateway": ledger.account})
    bt = BatcherThread(path, ledger, BatchConfig(max_size=100, max_age_s=0.1), 1, own_sites=["+"])
    bt.start()
    try:
        d = FakeDevice("meter-01", SITE_A)
        d.register(reg)  # a device enrolled while the gateway runs
        for _ in range(3):
            pipe.process(d.topic, d.next())
        pipe.commit()
        wait_until(lambda: st.db.execute("SELECT COUNT(*) FROM batches WHERE state='anchored'").fetchone()[0] >= 1,
                   60, what="the batch anchored on the gateway's own chain")
    finally:
        bt.stop()
    assert bt.error is None
    assert ledger.is_gateway_for(SITE_A, ledger.account)
    report = verifier.verify_bundle(proofs.bundle_for(st, "meter-01", 2, ledger.chain_id, ledger.address).encode(),
                                    rpc=ledger, min_confirmations=1,
                                    trust=verifier.TrustRoot(ledger.chain_id, ledger.address))
    assert report["verdict"] == "verified" and report["key"]["registered_block"] > 0
    st.close()


def test_embedded_chain_clock_is_kept_near_the_wall_clock(tmp_path, monkeypatch):
    """py-evm stamps a block max(parent + 1, now): mining a block per batcher step ran the
    embedded chain's clock ahead by seconds every second, until a key registered on it opened
    its window in the future and refused current readings (W3). The batcher stops mining for
    confirmations while the chain is more than EMBEDDED_CLOCK_LEAD_S ahead."""
    from edgeledger.gateway.anchor import thread as anchoring

    monkeypatch.setattr(anchoring, "EMBEDDED_CLOCK_LEAD_S", 2.0)
    path = str(tmp_path / "gw.db")
    st = Store(path)
    st.insert_messages([("d", 1, bytes(32), bytes(32), 1, bytes(16), 1.0, 1.0, 1.0, b"m")])
    ledger = EmbeddedLedger()
    ledger.deploy(owner_key=ledger.key)
    bt = anchoring.BatcherThread(path, ledger, BatchConfig(max_size=100, max_age_s=0), 10 ** 6)
    bt.batcher.close_due()
    assert bt.batcher.backlog() == 1  # a batch that waits for confirmations forever
    mined = sum(bt._mine_for_confirmations() for _ in range(30))
    assert mined >= 1  # it does mine while the chain is not ahead
    assert mined < 30 and ledger.head_time() <= time.time() + 2.0 + 1
    bt.store.close()
    st.close()

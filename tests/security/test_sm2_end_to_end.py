"""An SM2 device from provisioning to ``edgeledger verify --rpc`` (issue 18), on the embedded
chain and on anvil, with every part real: ``device provision --alg SM2`` (keys on chain, mTLS
broker credentials), Mosquitto on the generated configuration, the Linux agent signing with
SM2 as its own process, the gateway's ingest service, the batcher anchoring, a proof bundle,
the light client. Then each field the bundle's verdict rests on, altered, is refused by the
check it breaks, and the key window rules hold for an SM2 key (revocation).

The world (an owner, a gateway per site) and the gateway site helpers are test_trust.py's.
"""
import hashlib
import subprocess
import sys

import pytest

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway.enrol import provision
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.ingest.service import IngestService
from edgeledger.gateway.proofs import verifier
from edgeledger.protocols.bundle import Bundle
from edgeledger.protocols.cose import SM2
from tests.security.conftest import SITE
from tests.security.test_trust import GatewaySite, World, send_next
from tests.support.anvil import running_anvil
from tests.support.devices import FakeDevice
from tests.support.net import wait_until

pytestmark = pytest.mark.security

CLI = [sys.executable, "-m", "edgeledger.gateway.cli"]
DEVICE = "meter-sm2"
READINGS = 5
WAIT_S = 120  # generous: a loaded 2-core machine


@pytest.fixture(scope="module")
def anvil_node():
    with running_anvil(hardfork="london") as node:
        yield node


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.ledger)])
def world(request):
    if request.param == "embedded":
        return World("embedded")
    return World("anvil", request.getfixturevalue("anvil_node"))


def _provision_sm2(world, broker, tmp_path, run_cli):
    """``device provision --alg SM2``: through the operator CLI on anvil (a JSON-RPC chain an
    operator command reaches), through the function behind it on the embedded chain, which
    lives in this process only. Returns (the gateway's site, the bundle directory)."""
    out = tmp_path / "bundle"
    db = tmp_path / "gateway.db"
    if world.kind == "embedded":
        site = GatewaySite(world, world.gw_a, db)
        provision.provision(site.registry, DEVICE, SITE, str(out), alg="SM2", broker=broker.site, ledger=world.gw_a)
        return site, out
    key_file = tmp_path / "gw.key"
    key_file.write_text(world.gw_a.key if isinstance(world.gw_a.key, str) else world.gw_a.key.hex())
    key_file.chmod(0o600)
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('gateway_id = "gw-sm2"\nstore = "%s"\nbroker = "%s"\nsites = ["%s"]\n[ledger]\n'
                   'backend = "jsonrpc"\nurl = "%s"\ncontract = "%s"\nkey_file = "%s"\n'
                   % (db, broker.gateway_url, SITE, world.node.url, world.gw_a.address, key_file))
    code, text, err = run_cli("device", "provision", "--config", cfg, "--device", DEVICE, "--site", SITE,
                              "--alg", "SM2", "--out", out, "--broker-dir", broker.site.dir)
    assert code == 0, err
    assert "SM2 kid" in text and "ledger %s" % world.node.url in text, text
    return GatewaySite(world, world.gw_a, db), out


def _run_agent(bundle_dir):
    """The Linux agent on the bundle's agent.toml, as its own process, until the gateway has
    acknowledged READINGS messages end to end."""
    toml = bundle_dir / "agent.toml"
    toml.write_text(toml.read_text().replace("interval_s = 1.0", "interval_s = 0.01"))
    agent = subprocess.run(CLI + ["agent", "run", "--config", str(toml), "--until-seq", str(READINGS),
                                  "--drain-timeout", str(WAIT_S)], capture_output=True, text=True,
                           timeout=WAIT_S + 60)
    assert agent.returncode == 0, agent.stdout + agent.stderr


def _altered(b, change):
    """The bytes of a copy of bundle ``b`` (decoded afresh) that ``change`` altered."""
    c = Bundle.decode(b.encode())
    change(c)
    return c.encode()


def _flip(value, at=0, bit=0x01):
    """``value`` (bytes, int or text) with one bit changed: a byte of bytes, a bit of an int."""
    if isinstance(value, bytes):
        return value[:at] + bytes([value[at] ^ bit]) + value[at + 1:]
    if isinstance(value, str):
        return value[:-1] + chr(ord(value[-1]) ^ bit)
    return value ^ bit


def _set(path, change):
    """A change for ``_altered``: the attribute at ``path`` ("header.root", "index") changed."""
    def apply(c):
        *parents, name = path.split(".")
        obj = c
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, name, change(getattr(obj, name)))
    return apply


def test_sm2_device_provisioned_stored_anchored_and_verified_on_chain(world, secure_broker, tmp_path, run_cli):
    broker = secure_broker("mtls")  # the MQTT link: a P-256 client certificate; readings: SM2
    site, bundle_dir = _provision_sm2(world, broker, tmp_path, run_cli)
    signer = load_key_file(str(bundle_dir / (DEVICE + ".key")))
    assert signer.alg == SM2
    reg = world.gw_a.registration(SITE, signer.kid)
    assert (reg["alg"], reg["public_key"], reg["device_id"]) == (SM2, signer.public_key, DEVICE)
    assert site.registry.key(signer.kid).valid_from == reg["timestamp"]
    service = IngestService(Pipeline(site.store, site.registry), broker.gateway_url, "el-gw-sm2", sites=[SITE],
                            **broker.gateway_mqtt())
    service.start()
    try:
        assert service.connected.wait(30), broker.mosquitto.log()
        _run_agent(bundle_dir)
        wait_until(lambda: site.store.seqs(DEVICE) == list(range(1, READINGS + 1)), WAIT_S,
                   what="the SM2 readings stored")
    finally:
        service.stop()
    assert site.store.quarantine_reasons() == {}
    site.anchor()

    data = site.bundle(DEVICE, 3)
    report = world.verify(data)
    assert report["verdict"] == "verified" and (report["device"], report["seq"]) == (DEVICE, 3)
    assert report["key"]["alg"] == SM2 and report["key"]["status"] == "valid"
    b = Bundle.decode(data)
    assert b.alg == SM2 and b.public_key == signer.public_key

    # Each alteration refused by the check it breaks, offline or on chain. (Every byte of an SM2
    # message altered: tests/gateway/ingest/test_sm2_pipeline.py. Header times move outwards
    # here: moved inwards past a record's time they are refused offline already.)
    offline = (verifier.BundleCheckFailed, ValueError)
    n = len(b.message)
    table = [
        ("signature r", _set("message", lambda m: _flip(m, n - 64)), offline),
        ("signature s", _set("message", lambda m: _flip(m, n - 1)), offline),
        ("payload", _set("message", lambda m: _flip(m, n - 90)), offline),
        ("audit path", _set("path", lambda p: [_flip(p[0])] + p[1:]), offline),
        ("leaf index", _set("index", _flip), offline),
        ("header root", _set("header.root", _flip), offline),
        ("header tree size", _set("header.tree_size", lambda v: v + 1), offline),
        ("header prev", _set("header.prev", _flip), verifier.RootNotOnChain),
        ("header number", _set("header.number", lambda v: v + 1), verifier.RootNotOnChain),
        ("header first time", _set("header.first_time", lambda v: v - 1), verifier.RootNotOnChain),
        ("header last time", _set("header.last_time", lambda v: v + 1), verifier.RootNotOnChain),
        ("header gateway", _set("header.gateway", _flip), verifier.RootNotOnChain),
        ("public key", _set("public_key", lambda k: _flip(k, 40)), offline),
        ("key registration block", _set("key_block", _flip), verifier.KeyNotRegistered),
        ("key registration time", _set("key_time", _flip), verifier.KeyNotRegistered),
        ("key first seq", _set("first_seq", lambda v: v + 1), verifier.KeyNotRegistered),
        ("site", _set("site", _flip), verifier.WrongGateway),
        ("chain id", _set("chain_id", _flip), verifier.WrongChain),
        ("contract", _set("contract", _flip), verifier.WrongContract),
    ]
    wrong = []
    for name, change, refusal in table:
        try:
            world.verify(_altered(b, change))
            wrong.append((name, "accepted"))
        except refusal:
            pass
        except Exception as e:  # refused, but not by the check this alteration breaks
            wrong.append((name, repr(e)))
    assert wrong == []

    if world.kind == "anvil":  # and as an operator runs it
        good, bad = tmp_path / "good.cbor", tmp_path / "bad.cbor"
        good.write_bytes(data)
        bad.write_bytes(_altered(b, _set("message", lambda m: _flip(m, n - 1))))
        args = ["--rpc", world.node.url, "--chain-id", str(world.owner.chain_id), "--contract",
                world.owner.address, "--confirmations", "1"]
        ok = subprocess.run(CLI + ["verify", str(good)] + args, capture_output=True, text=True, timeout=WAIT_S)
        assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
        no = subprocess.run(CLI + ["verify", str(bad)] + args, capture_output=True, text=True, timeout=WAIT_S)
        assert no.returncode == 1 and no.stdout.startswith("FAIL"), no.stdout + no.stderr

    # The key window holds for an SM2 key: revoked at the device's mark (seq 5), a reading the
    # stolen key signs afterwards is refused by the honest gateway and, anchored by a
    # compromised one, by the verifier (rule W5); the device's own readings still verify.
    r = provision.revoke(site.registry, DEVICE, ledger=world.gw_a, broker=broker.site)
    assert r["chain"] == 1 and world.gw_a.key_entry(SITE, signer.kid)["last_seq"] == READINGS
    thief = FakeDevice(DEVICE, SITE, signer=signer)
    thief.seq, thief.prev = READINGS, hashlib.sha256(site.store.message(DEVICE, READINGS).bytes).digest()
    late = thief.make(READINGS + 1, thief.prev, t=r["at"] - 1)  # back-dated into the window: W5, not W4
    assert site.accept(thief, late) == "revoked_device"
    site.inject([late])
    send_next(thief, late)
    site.anchor()
    world.refused(site.bundle(DEVICE, READINGS + 1), verifier.KeyOutsideWindow, "rule W5")
    assert world.verify(site.bundle(DEVICE, READINGS))["key"]["status"] == "revoked"
    site.store.close()

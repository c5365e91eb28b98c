"""Every way a proof bundle can be wrong gets its own message and a non-zero exit."""
import json
import subprocess
import sys

import pytest

from edgeledger.gateway import cli, proofs
from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.batcher import Batcher
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.proofs import verifier
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import bundle as bundle_mod
from edgeledger.protocols.bundle import Bundle
from edgeledger.protocols.cose import verify as cose_verify
from tests.support.anvil import running_anvil
from tests.support.devices import FakeDevice
from tests.support.net import free_port, wait_until

pytestmark = pytest.mark.ledger
SITE = "plant-a"


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    """37 readings of two devices anchored on anvil in one batch; yields what tests need."""
    with running_anvil(hardfork="london") as node:
        owner = JsonRpcLedger(node.url, key=node.new_funded_key())
        owner.deploy(owner_key=owner.key)
        gw = JsonRpcLedger(node.url, key=node.new_funded_key())
        gw.attach(owner.address)
        owner.authorize_gateway(SITE, gw.account)
        st = Store(str(tmp_path_factory.mktemp("bundles") / "gw.db"))
        reg = Registry(st)
        pipe = Pipeline(st, reg)
        devices = [FakeDevice("a"), FakeDevice("b", alg="ES256")]
        for d in devices:
            d.register(reg)
        keysync.sync_chain(reg, owner)  # registers both keys on chain; the chain's time opens them
        reading_time = max(reg.key(d.signer.kid).valid_from for d in devices) + 10
        for i in range(37):
            d = devices[i % 2]
            pipe.process(d.topic, d.next(t=reading_time + i))
        pipe.commit()
        st.set_ledger_meta({"chain_id": gw.chain_id, "contract": gw.address, "gateway": gw.account})
        batcher = Batcher(st, gw, max_size=1000, max_age_s=0, confirmations=1)

        def anchored_yet():
            batcher.step()
            node.mine(1)
            return batcher.anchored_messages() == 37

        wait_until(anchored_yet, 60, what="batch anchored")
        node.mine(3)
        meta = st.ledger_meta()

        def make(device, seq):
            return proofs.bundle_for(st, device, seq, int(meta["chain_id"]), meta["contract"])

        yield {"node": node, "owner": owner, "make": make, "devices": devices, "store": st,
               "trust": verifier.TrustRoot(owner.chain_id, owner.address), "reading_time": reading_time}


def fails(data, kind_cls, match, rpc=None, confirmations=1, trust=None):
    with pytest.raises(kind_cls) as e:
        verifier.verify_bundle(data, rpc=rpc, min_confirmations=confirmations, trust=trust)
    assert match in str(e.value), str(e.value)
    return str(e.value)


def test_good_bundle_verifies_offline_and_on_chain(anchored):
    b = anchored["make"]("a", 5)
    assert verifier.verify_bundle(b.encode())["offline"] == "ok"
    report = verifier.verify_bundle(b.encode(), rpc=anchored["node"].url, min_confirmations=2,
                                    trust=anchored["trust"])
    assert report["storage_proof"] == "ok" and report["key"]["status"] == "valid"
    assert (report["device"], report["site"], report["seq"], report["contract_version"]) == ("a", SITE, 5, 2)
    assert report["values"][0]["u"] == "W" and report["t_first"] == anchored["reading_time"] + 8
    assert Bundle.decode(b.encode()).encode() == b.encode()


def test_es256_bundle_verifies_and_its_high_s_twin_does_not(anchored):
    """Signed low-S, an ES256 reading verifies offline and on chain; the same bundle with the
    signature's twin (r, n - s), which ECDSA alone accepts, fails as non-canonical."""
    b = anchored["make"]("b", 6)
    report = verifier.verify_bundle(b.encode(), rpc=anchored["node"].url, min_confirmations=2,
                                    trust=anchored["trust"])
    assert report["storage_proof"] == "ok" and report["key_status"] == "valid"
    s = int.from_bytes(b.message[-32:], "big")
    b.message = b.message[:-32] + (cose_verify.P256_N - s).to_bytes(32, "big")
    fails(b.encode(), bundle_mod.NonCanonical, "non-canonical message: non-canonical COSE_Sign1 (high_s)")


def test_tampered_message(anchored):
    b = anchored["make"]("a", 5)
    raw = bytearray(b.message)
    raw[60] ^= 0x01  # inside the signed payload
    b.message = bytes(raw)
    fails(b.encode(), bundle_mod.TamperedMessage, "tampered message")


def test_wrong_path(anchored):
    b = anchored["make"]("b", 4)
    b.path[2] = bytes([b.path[2][0] ^ 0xFF]) + b.path[2][1:]
    fails(b.encode(), bundle_mod.WrongPath, "wrong audit path")


def test_wrong_index(anchored):
    b = anchored["make"]("a", 3)
    good = b.index
    b.index = good ^ 1
    fails(b.encode(), bundle_mod.WrongIndex, "the audit path proves index %d" % good)
    b.index = 10 ** 6
    fails(b.encode(), bundle_mod.WrongIndex, "outside the batch")


def test_wrong_key(anchored):
    b = anchored["make"]("a", 2)
    b.public_key = anchored["devices"][1].signer.public_key
    fails(b.encode(), bundle_mod.WrongKey, "wrong device key")


def test_root_not_on_chain(anchored):
    b = anchored["make"]("a", 2)
    b.header.number = 2  # a batch the gateway never anchored; the bundle's path still checks out
    fails(b.encode(), verifier.RootNotOnChain, "root not on chain", rpc=anchored["node"].url, trust=anchored["trust"])


def test_too_few_confirmations(anchored):
    b = anchored["make"]("b", 2)
    fails(b.encode(), verifier.NotEnoughConfirmations, "too few confirmations",
          rpc=anchored["node"].url, confirmations=10 ** 6, trust=anchored["trust"])


def test_key_revoked_before_the_reading(anchored):
    b = anchored["make"]("b", 10)
    kid = anchored["devices"][1].signer.kid
    # revoked from a time before seq 10 was taken (a compromise found to be older)
    anchored["owner"].revoke_key(SITE, kid, int(anchored["reading_time"]) + 5, 10 ** 6)
    fails(b.encode(), verifier.KeyOutsideWindow, "window ended at", rpc=anchored["node"].url, trust=anchored["trust"])
    early = anchored["make"]("b", 1)  # timed before the revocation: still valid
    report = verifier.verify_bundle(early.encode(), rpc=anchored["node"].url, trust=anchored["trust"])
    assert report["key"]["status"] == "revoked" and report["verdict"] == "verified"


def test_malformed_bundle():
    fails(b"\xa1\x01\x01", bundle_mod.MalformedBundle, "expected a version 2 bundle map, found version 1")
    fails(b"\xa1\x01\x02", bundle_mod.MalformedBundle, "bundle field 11 (device key) must be a map")


def test_cli_exit_codes(anchored, tmp_path, capsys):
    b = anchored["make"]("a", 7)
    good = tmp_path / "good.cbor"
    good.write_bytes(b.encode())
    b.index ^= 1
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(b.encode())
    owner, url = anchored["owner"], anchored["node"].url
    trust = ["--chain-id", str(owner.chain_id), "--contract", owner.address]
    # once as its own process, the way a verifier runs it
    ok = subprocess.run([sys.executable, "-m", "edgeledger.gateway.cli", "verify", str(good), "--rpc", url,
                         "--confirmations", "1"] + trust, capture_output=True, text=True)
    assert ok.returncode == 0 and "verified on chain" in ok.stdout, ok.stdout + ok.stderr
    for line in ("a seq 7 on site plant-a", "value     a/v0 = 1.0 W", "anchored  block", "confirmations",
                 "trusted   chain %d, contract %s (EdgeLedgerAnchor v2)" % (owner.chain_id, owner.address)):
        assert line in ok.stdout, ok.stdout

    def verify(*argv):
        capsys.readouterr()
        code = cli.main(["verify"] + [str(a) for a in argv])
        return code, capsys.readouterr().out

    code, out = verify(good, "--rpc", url, "--json", *trust)
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "verified" and report["anchor_block"] > 0
    code, out = verify(bad)
    assert code == 1 and "wrong leaf index" in out
    code, out = verify(bad, "--json")
    assert code == 1 and json.loads(out)["verdict"] == "refused"
    # --rpc without trust roots from outside the bundle is a usage error
    code, out = verify(good, "--rpc", url)
    assert code == 2 and "trust roots" in out, out
    code, out = verify(good, "--rpc", url, "--chain-id", "1")
    assert code == 2
    # a node that does not answer
    code, out = verify(good, "--rpc", "http://127.0.0.1:%d" % free_port(), *trust)
    assert code == 3 and "chain_unreachable" in out, out

"""Every way a proof bundle can be wrong gets its own message and a non-zero exit."""
import subprocess
import sys
import time

import pytest

from edgeledger.gateway import proofs, verifier
from edgeledger.gateway.batcher import Batcher
from edgeledger.gateway.ledger import JsonRpcLedger
from edgeledger.gateway.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import bundle as bundle_mod
from edgeledger.protocols import cose
from edgeledger.protocols.bundle import Bundle
from tests.support.anvil import running_anvil
from tests.support.devices import FakeDevice
from tests.support.net import wait_until

pytestmark = pytest.mark.ledger
READING_TIME = time.time() - 600


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    """37 readings of two devices anchored on anvil in one batch; yields what tests need."""
    with running_anvil(hardfork="london") as node:
        owner = JsonRpcLedger(node.url, key=node.new_funded_key())
        owner.deploy(owner_key=owner.key)
        gw = JsonRpcLedger(node.url, key=node.new_funded_key())
        gw.attach(owner.address)
        owner.set_gateway(gw.account, True)
        st = Store(str(tmp_path_factory.mktemp("bundles") / "gw.db"))
        reg = Registry(st)
        pipe = Pipeline(st, reg)
        devices = [FakeDevice("a"), FakeDevice("b", alg="ES256")]
        for d in devices:
            d.register(reg)
            owner.register_key(d.signer.kid, d.name, d.signer.alg, d.signer.public_key, int(READING_TIME) - 3600)
        for i in range(37):
            d = devices[i % 2]
            pipe.process(d.topic, d.next(t=READING_TIME + i))
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

        yield {"node": node, "owner": owner, "make": make, "devices": devices, "store": st}


def fails(data, kind_cls, match, rpc=None, confirmations=1):
    with pytest.raises(kind_cls) as e:
        verifier.verify_bundle(data, rpc=rpc, min_confirmations=confirmations)
    assert match in str(e.value), str(e.value)
    return str(e.value)


def test_good_bundle_verifies_offline_and_on_chain(anchored):
    b = anchored["make"]("a", 5)
    assert verifier.verify_bundle(b.encode())["offline"] == "ok"
    report = verifier.verify_bundle(b.encode(), rpc=anchored["node"].url, min_confirmations=2)
    assert report["storage_proof"] == "ok" and report["key_status"] == "valid"
    assert Bundle.decode(b.encode()).encode() == b.encode()


def test_es256_bundle_verifies_and_its_high_s_twin_does_not(anchored):
    """Signed low-S, an ES256 reading verifies offline and on chain; the same bundle with the
    signature's twin (r, n - s), which ECDSA alone accepts, fails as non-canonical."""
    b = anchored["make"]("b", 6)
    report = verifier.verify_bundle(b.encode(), rpc=anchored["node"].url, min_confirmations=2)
    assert report["storage_proof"] == "ok" and report["key_status"] == "valid"
    s = int.from_bytes(b.message[-32:], "big")
    b.message = b.message[:-32] + (cose.P256_N - s).to_bytes(32, "big")
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
    other = JsonRpcLedger(anchored["node"].url, key=anchored["node"].new_funded_key())
    other.deploy(owner_key=other.key)
    b.contract = bytes.fromhex(other.address[2:])  # a contract that never saw this batch
    fails(b.encode(), verifier.RootNotOnChain, "root not on chain", rpc=anchored["node"].url)


def test_too_few_confirmations(anchored):
    b = anchored["make"]("b", 2)
    fails(b.encode(), verifier.NotEnoughConfirmations, "too few confirmations",
          rpc=anchored["node"].url, confirmations=10 ** 6)


def test_key_revoked_before_the_reading(anchored):
    b = anchored["make"]("b", 10)
    kid = anchored["devices"][1].signer.kid
    anchored["owner"].revoke_key(kid, int(READING_TIME) + 5)  # revoked before seq 10 was taken
    fails(b.encode(), verifier.KeyRevoked, "revoked before the reading", rpc=anchored["node"].url)
    early = anchored["make"]("b", 1)  # timed before the revocation: still valid
    assert verifier.verify_bundle(early.encode(), rpc=anchored["node"].url)["key_status"] == "valid"


def test_malformed_bundle():
    fails(b"\xa1\x01\x02", bundle_mod.MalformedBundle, "version 1 bundle")


def test_cli_exit_codes(anchored, tmp_path):
    b = anchored["make"]("a", 7)
    good = tmp_path / "good.cbor"
    good.write_bytes(b.encode())
    b.index ^= 1
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(b.encode())
    cli = [sys.executable, "-m", "edgeledger.gateway.cli", "verify"]
    ok = subprocess.run(cli + [str(good), "--rpc", anchored["node"].url, "--confirmations", "1"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "storage proof checked" in ok.stdout, ok.stdout + ok.stderr
    no = subprocess.run(cli + [str(bad)], capture_output=True, text=True)
    assert no.returncode == 1 and "wrong leaf index" in no.stdout

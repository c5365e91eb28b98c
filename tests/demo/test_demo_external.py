"""``edgeledger demo --broker mqtt://… --ledger http://…``: a real Mosquitto and anvil."""
import json
import os
import stat

import pytest

from tests.demo.conftest import demo_json, run_cli
from tests.support.anvil import running_anvil

pytestmark = pytest.mark.ledger

# anvil's first default account (a published development key, funded by anvil at start).
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_real_broker_and_anvil_anchor_everything_and_bundles_verify_against_the_node(broker, tmp_path):
    with running_anvil(block_time=1, hardfork="london") as node:
        env = dict(os.environ, EDGELEDGER_LEDGER_KEY=ANVIL_KEY_0)
        out = tmp_path / "run"
        code, r, proc = demo_json("--devices", 4, "--readings", 15, "--broker", broker.url, "--ledger", node.url,
                                  "--out", out, env=env)
        assert code == 0, proc.stderr[-3000:]
        assert r["broker"] == broker.url and r["ledger"] == node.url and r["chain_id"] == 31337
        assert r["sent"] == r["stored"] == r["anchored"] == 60
        assert r["lost"] == 0 and r["duplicated"] == 0 and r["rejected"] == 0
        assert r["verified"] == r["checked"] >= 4 and r["tamper_rejected"] is True
        # the funded key is never printed nor written; the gateway's own key is, 0600
        key_hex = ANVIL_KEY_0[2:]
        assert key_hex not in proc.stdout + proc.stderr
        toml = (out / "gateway.toml").read_text()
        assert key_hex not in toml and 'backend = "jsonrpc"' in toml and r["contract"] in toml
        assert stat.S_IMODE(os.stat(out / "gateway.ethkey").st_mode) == 0o600

        bundle = sorted((out / "bundles").iterdir())[0]
        ok = run_cli("verify", bundle, "--rpc", node.url, "--chain-id", r["chain_id"], "--contract", r["contract"],
                     "--json")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        report = json.loads(ok.stdout)
        assert report["storage_proof"] == "ok" and report["chain_id"] == 31337 and report["confirmations"] >= 2


def test_ledger_without_a_funded_key_is_a_usage_error(broker):
    env = dict(os.environ)
    env.pop("EDGELEDGER_LEDGER_KEY", None)
    r = run_cli("demo", "--json", "--devices", "1", "--readings", "1", "--broker", broker.url,
                "--ledger", "http://127.0.0.1:9", env=env)
    assert r.returncode == 2 and "EDGELEDGER_LEDGER_KEY" in r.stderr, r.stdout + r.stderr


def test_default_anvil_without_block_time_confirms_the_last_batch(broker):
    """A plain `anvil` mines only when a transaction arrives: the old demo waited for the last
    batch's confirmations until its timeout and exited 1. The gateway now mines an empty
    block while a batch waits (it asks the node whether it mines on its own)."""
    with running_anvil(hardfork="london") as node:
        env = dict(os.environ, EDGELEDGER_LEDGER_KEY=ANVIL_KEY_0)
        code, r, proc = demo_json("--devices", 2, "--readings", 5, "--broker", broker.url, "--ledger", node.url,
                                  "--timeout", 60, env=env)
        assert code == 0, proc.stderr[-3000:]
        assert r["sent"] == r["stored"] == r["anchored"] == 10 and r["verified"] == r["checked"]


def test_sm2_demo_verifies_every_bundle_against_the_node_and_refuses_the_tampered_one(broker, tmp_path):
    """``demo --alg SM2``: every device signs with SM2, its key is registered on chain, and
    every sampled bundle is verified as a light client against anvil."""
    with running_anvil(hardfork="london") as node:
        env = dict(os.environ, EDGELEDGER_LEDGER_KEY=ANVIL_KEY_0)
        out = tmp_path / "run"
        code, r, proc = demo_json("--alg", "SM2", "--devices", 2, "--readings", 5, "--broker", broker.url,
                                  "--ledger", node.url, "--out", out, "--timeout", 120, env=env)
        assert code == 0, proc.stderr[-3000:]
        assert r["algs"] == ["SM2"]
        assert r["sent"] == r["stored"] == r["anchored"] == 10 and r["lost"] == 0 and r["rejected"] == 0
        assert r["verified"] == r["checked"] >= 2 and r["tamper_rejected"] is True and r["ok"] is True
        bundle = sorted((out / "bundles").iterdir())[0]
        ok = run_cli("verify", bundle, "--rpc", node.url, "--chain-id", r["chain_id"], "--contract", r["contract"],
                     "--json")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert json.loads(ok.stdout)["key"]["alg"] == -65537  # SM2's private-use COSE id

"""`edgeledger site init` against a real anvil: from an empty directory to a gateway.toml that
names a deployed (or adopted) contract, the gateway authorized for its site and a deployment
file; idempotent (a second run sends nothing and rewrites nothing); never overwrites a key."""
import hashlib
import os
import re

import pytest

from edgeledger.gateway import cli, config
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.gateway.cli.site import SITE_WAITING
from edgeledger.gateway.proofs import deployment
from tests.support.anvil import running_anvil
from tests.support.net import free_ports

pytestmark = pytest.mark.ledger

FUNDER_ENV = "EL_TEST_FUNDER_KEY"
ANVIL_FIRST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's default account 0


@pytest.fixture
def funder(monkeypatch):
    monkeypatch.setenv(FUNDER_ENV, ANVIL_FIRST_KEY)


def site_init(capsys, directory, url, *extra):
    if not os.path.exists(os.path.join(str(directory), "broker")):
        port, gw_port = free_ports(2)
        extra = ("--broker-port", port, "--gateway-port", gw_port) + extra
    capsys.readouterr()
    code = cli.main(["site", "init", "--dir", str(directory), "--site", "plant-a", "--rpc", url, "--run-as", "root"]
                    + [str(e) for e in extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def _snapshot(directory):
    out = {}
    for folder, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[path] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_unfunded_stops_with_the_address_and_the_cost_then_finishes_and_is_idempotent(tmp_path, capsys, funder):
    d = tmp_path / "site"
    with running_anvil() as node:
        code, out, err = site_init(capsys, d, node.url)
        assert code == SITE_WAITING, out + err
        address = re.search(r"new gateway account (0x[0-9a-fA-F]{40})", out).group(1)
        assert "fund the gateway account %s: send at least" % address in err and "ETH" in err
        assert "0 anchor batches at" in out and "eth_feeHistory" in out  # the cost, read from the node
        assert not (d / "gateway.toml").exists()
        assert oct((d / "ledger.keystore.json").stat().st_mode & 0o777) == "0o600"

        code, out, err = site_init(capsys, d, node.url, "--fund-from-key-env", FUNDER_ENV)
        assert code == 0, out + err
        assert "gateway account %s (kept)" % address in out
        cfg = config.load(str(d / "gateway.toml"))
        assert cfg.sites == ["plant-a"] and cfg.ledger.backend == "jsonrpc" and not cfg.ledger.deploy
        ledger = JsonRpcLedger(node.url)
        ledger.attach(cfg.ledger.contract)
        assert ledger.check_anchor_contract() == 2 and ledger.owner() == address
        assert ledger.is_gateway_for("plant-a", address)
        sha = re.search(r"deployment\.json written, sha256 ([0-9a-f]{64})", out).group(1)
        d_file, _ = deployment.load(str(d / "deployment.json"), sha)
        assert address in d_file["sites"]["plant-a"] and d_file["contract"] == ledger.address
        measured = re.findall(r"anchor batches at [0-9.]+ ETH each \((\d+) gas x", out)[-1]
        assert 50000 < int(measured) < 120000  # eth_estimateGas of the next anchor, not the limit

        before, nonce = _snapshot(d), ledger.transaction_count(address)
        code, out, err = site_init(capsys, d, node.url)
        assert code == 0, out + err
        assert _snapshot(d) == before and ledger.transaction_count(address) == nonce
        assert "%s kept" % (d / "gateway.toml") in out and "sha256 %s" % sha in out


def test_adopts_a_contract_after_its_owner_authorizes_the_gateway(tmp_path, capsys):
    d = tmp_path / "site"
    with running_anvil() as node:
        owner = JsonRpcLedger(node.url, key=node.new_funded_key())
        owner.deploy(owner_key=owner.key)
        code, out, err = site_init(capsys, d, node.url, "--contract", owner.address)
        assert code == SITE_WAITING, out + err
        address = re.search(r"new gateway account (0x[0-9a-fA-F]{40})", out).group(1)
        node.fund(address)
        code, out, err = site_init(capsys, d, node.url, "--contract", owner.address)
        assert code == SITE_WAITING, out + err
        assert "adopted (owner %s)" % owner.account in out
        assert "must authorize this gateway" in err and "deployment authorize" in err and address in err
        owner.authorize_gateway("plant-a", address)
        code, out, err = site_init(capsys, d, node.url, "--contract", owner.address)
        assert code == 0, out + err
        assert config.load(str(d / "gateway.toml")).ledger.contract == owner.address
        assert node.rpc("eth_getCode", owner.address, "latest") != "0x"


def test_refuses_an_address_that_is_not_the_anchor_contract(tmp_path, capsys):
    with running_anvil() as node:
        code, out, err = site_init(capsys, tmp_path / "site", node.url, "--contract", "0x" + "22" * 20)
        assert code == 2 and "cannot adopt contract" in err and "found none" in err, out + err


def test_a_config_naming_another_contract_needs_force_and_keys_are_kept(tmp_path, capsys, funder):
    d = tmp_path / "site"
    with running_anvil() as node:
        assert site_init(capsys, d, node.url, "--fund-from-key-env", FUNDER_ENV)[0] == 0
        first = config.load(str(d / "gateway.toml")).ledger.contract
        keystore_text = (d / "ledger.keystore.json").read_text()
        other = JsonRpcLedger(node.url, key=node.new_funded_key())
        other.deploy(owner_key=other.key)
        code, out, err = site_init(capsys, d, node.url, "--contract", other.address)
        assert code == 2 and "pass --force" in err and first in err, out + err
        assert config.load(str(d / "gateway.toml")).ledger.contract == first
        assert (d / "ledger.keystore.json").read_text() == keystore_text


def test_a_run_that_stops_after_deploying_adopts_that_contract_when_run_again(tmp_path, capsys, funder, monkeypatch):
    from edgeledger.gateway.anchor.ledger import LedgerUnavailable
    from edgeledger.gateway.enrol import site_init as steps

    d = tmp_path / "site"
    with running_anvil() as node:
        def node_gone(*_args):
            raise LedgerUnavailable("jsonrpc: node unreachable (test: after the deployment)")

        with monkeypatch.context() as m:
            m.setattr(steps, "_authorize", node_gone)
            code, out, err = site_init(capsys, d, node.url, "--fund-from-key-env", FUNDER_ENV)
        assert code == 2 and "after the deployment" in err, out + err
        deployed = re.search(r"contract +(0x[0-9a-fA-F]{40}): EdgeLedgerAnchor v2 deployed", out).group(1)
        code, out, err = site_init(capsys, d, node.url)
        assert code == 0, out + err
        assert "%s: EdgeLedgerAnchor v2 adopted" % deployed in out and "deployed" not in out
        assert config.load(str(d / "gateway.toml")).ledger.contract == deployed
        gw = re.search(r"gateway account (0x[0-9a-fA-F]{40}) \(kept\)", out).group(1)
        assert JsonRpcLedger(node.url).transaction_count(gw) == 2  # one deployment, one authorization

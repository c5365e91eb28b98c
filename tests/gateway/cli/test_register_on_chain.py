"""`device register` with a jsonrpc [ledger] puts the key on chain too (issue 15): on main it
wrote only the gateway registry, so a reading's bundle could not be made ("not registered on
the chain yet") and a third party's `verify --rpc` had no key to prove."""
import os

import pytest

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway import cli
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.anvil import deploy, running_anvil

pytestmark = pytest.mark.ledger


def _config(tmp_path, url, contract, key):
    fd = os.open(str(tmp_path / "gateway.ethkey"), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    path = tmp_path / "gateway.toml"
    path.write_text('gateway_id = "gw-1"\nstore = "gateway.db"\nsites = ["plant-a"]\n[ledger]\nbackend = "jsonrpc"\n'
                    'url = "%s"\ncontract = "%s"\nkey_file = "gateway.ethkey"\n' % (url, contract))
    return str(path)


def test_device_register_puts_the_key_on_chain_and_in_the_registry(tmp_path, capsys):
    with running_anvil() as node:
        owner, gw_key = deploy(node)
        config = _config(tmp_path, node.url, owner.address, gw_key)
        key_file = str(tmp_path / "meter-01.key")
        assert cli.main(["device", "keygen", "--device", "meter-01", "--alg", "EdDSA", "-o", key_file]) == 0
        assert cli.main(["device", "register", "--config", config, "--device", "meter-01", "--site", "plant-a",
                         "--key-file", key_file]) == 0
        assert "contract %s" % owner.address in capsys.readouterr().out
        kid = load_key_file(key_file).kid
        on_chain = JsonRpcLedger(node.url)
        on_chain.attach(owner.address)
        reg = on_chain.registration("plant-a", kid)
        assert reg is not None and reg["device_id"] == "meter-01"
        st = Store(str(tmp_path / "gateway.db"))
        try:
            key = Registry(st).require_key(kid)
        finally:
            st.close()
        assert key.chain_block == reg["block_number"] and key.chain_time == reg["timestamp"]


def test_device_register_no_ledger_writes_the_registry_only(tmp_path):
    with running_anvil() as node:
        owner, gw_key = deploy(node)
        config = _config(tmp_path, node.url, owner.address, gw_key)
        key_file = str(tmp_path / "meter-02.key")
        assert cli.main(["device", "keygen", "--device", "meter-02", "-o", key_file]) == 0
        assert cli.main(["device", "register", "--config", config, "--device", "meter-02", "--site", "plant-a",
                         "--key-file", key_file, "--no-ledger"]) == 0
        on_chain = JsonRpcLedger(node.url)
        on_chain.attach(owner.address)
        assert on_chain.registration("plant-a", load_key_file(key_file).kid) is None

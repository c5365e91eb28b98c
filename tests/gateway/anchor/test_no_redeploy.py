"""A gateway never deploys a contract on its own (issue 15): ``deploy = true`` once deployed a
new contract at every start with an empty store, splitting a site's anchors over contracts no
verifier pins. `edgeledger site init` deploys once and writes the address into gateway.toml."""
import os

import pytest

from edgeledger.gateway.anchor import open_ledger
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.gateway.config import load
from edgeledger.gateway.errors import ConfigError
from edgeledger.gateway.store import Store
from tests.support.anvil import running_anvil

pytestmark = pytest.mark.ledger


def test_deploy_true_without_a_contract_refuses_to_start_and_deploys_nothing(tmp_path):
    with running_anvil() as node:
        key = node.new_funded_key()
        key_path = tmp_path / "gateway.ethkey"
        fd = os.open(str(key_path), os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        (tmp_path / "gateway.toml").write_text(
            'gateway_id = "gw-1"\nstore = "gateway.db"\nsites = ["plant-a"]\n[ledger]\nbackend = "jsonrpc"\n'
            'url = "%s"\ndeploy = true\nkey_file = "gateway.ethkey"\n' % node.url)
        cfg = load(str(tmp_path / "gateway.toml"))
        account = JsonRpcLedger(node.url, key=key).account
        for _start in range(2):  # an empty store, started twice: the old code deployed twice
            st = Store(cfg.store)
            try:
                with pytest.raises(ConfigError) as err:
                    open_ledger(cfg, st)
            finally:
                st.close()
            assert "site init" in str(err.value) and "deploy = true" in str(err.value)
        assert node.rpc("eth_getTransactionCount", account, "latest") == "0x0"  # nothing was sent

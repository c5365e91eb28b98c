"""`edgeledger doctor` against a real Mosquitto (on the configuration `site init` wrote) and a
real anvil: every check OK on a fresh site, and each failure it exists to catch, one test each.

One site is set up for the module (site init costs a deployment); each failure test breaks one
thing in a copy of gateway.toml or for the duration of the test, and puts it back. The clock
test moves the chain's time for good, so it runs last."""
import datetime
import os
import re

import pytest

from edgeledger.gateway import cli
from edgeledger.gateway.enrol.broker_config import BrokerSite
from tests.support.anvil import Anvil
from tests.support.broker import Mosquitto
from tests.support.net import free_port, free_ports

pytestmark = pytest.mark.ledger

ANVIL_KEY_ENV = "EL_TEST_FUNDER_KEY"
ANVIL_FIRST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's default account 0


class World:
    def __init__(self, root):
        self.root = root
        self.node = Anvil()
        self.node.start()
        self.port, self.gateway_port = free_ports(2)
        self.dir = os.path.join(root, "site")
        self.mosquitto = None

    def init(self, monkeypatch_env):
        code = cli.main(["site", "init", "--dir", self.dir, "--site", "plant-a", "--rpc", self.node.url,
                         "--broker-port", str(self.port), "--gateway-port", str(self.gateway_port),
                         "--bind", "0.0.0.0", "--run-as", "root", "--fund-from-key-env", ANVIL_KEY_ENV])
        assert code == 0
        self.config = os.path.join(self.dir, "gateway.toml")
        self.broker = BrokerSite.load(os.path.join(self.dir, "broker"))
        with open(self.broker.paths["config"]) as f:
            self.mosquitto = Mosquitto(port=self.port, config_text=f.read(), workdir=os.path.join(self.root, "mosq"))
        self.mosquitto.start()

    def variant(self, name, old, new):
        """A copy of gateway.toml with ``old`` replaced by ``new`` (relative paths still resolve)."""
        with open(self.config) as f:
            text = f.read()
        assert old in text
        path = os.path.join(self.dir, name + ".toml")
        with open(path, "w") as f:
            f.write(text.replace(old, new))
        return path

    def close(self):
        if self.mosquitto is not None:
            self.mosquitto.stop()
        self.node.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv(ANVIL_KEY_ENV, ANVIL_FIRST_KEY)
    w = World(str(tmp_path_factory.mktemp("doctor")))
    try:
        w.init(mp)
        yield w
    finally:
        w.close()
        mp.undo()


def doctor(capsys, config, *extra):
    capsys.readouterr()
    code = cli.main(["doctor", "--config", config] + list(extra))
    out = capsys.readouterr().out
    lines = dict((m.group(2), (m.group(1), m.group(3))) for m in re.finditer(r"^(OK|FAIL) +(\S+) +(.*)$", out, re.M))
    return code, lines, out


def test_a_fresh_site_passes_every_check(world, capsys):
    code, lines, out = doctor(capsys, world.config)
    assert code == 0, out
    assert sorted(lines) == sorted(["broker", "chain", "contract", "funds", "certificates", "disk", "clock"]), out
    assert all(v[0] == "OK" for v in lines.values()), out
    assert "certificate valid for localhost" in lines["broker"][1] and "gateway login accepted" in lines["broker"][1]
    assert "EdgeLedgerAnchor v2" in lines["contract"][1]
    assert "anchor batches at" in lines["funds"][1]


def test_broker_down(world, capsys):
    world.mosquitto.stop()
    try:
        code, lines, out = doctor(capsys, world.config)
    finally:
        world.mosquitto.start()
    assert code == 1 and lines["broker"][0] == "FAIL" and "cannot connect" in lines["broker"][1], out
    assert lines["chain"][0] == "OK", out


def test_broker_certificate_without_the_configured_host_name(world, capsys):
    # 127.0.0.2 reaches the same listener (bound to 0.0.0.0), but is not a name in its certificate
    config = world.variant("wrong-host", "mqtts://localhost:", "mqtts://127.0.0.2:")
    code, lines, out = doctor(capsys, config)
    assert code == 1 and lines["broker"][0] == "FAIL", out
    assert "does not pass a device's check" in lines["broker"][1] and "127.0.0.2" in lines["broker"][1], out


def test_chain_down(world, capsys):
    config = world.variant("chain-down", world.node.url, "http://127.0.0.1:%d" % free_port())
    code, lines, out = doctor(capsys, config)
    assert code == 1 and lines["chain"][0] == "FAIL" and "does not answer" in lines["chain"][1], out
    for name in ("contract", "funds", "clock"):
        assert lines[name] == ("FAIL", "not checked: the chain does not answer (see chain)"), out
    assert lines["broker"][0] == "OK", out


def test_no_contract_at_the_address(world, capsys):
    with open(world.config) as f:
        contract = re.search(r'contract = "(0x[0-9a-fA-F]{40})"', f.read()).group(1)
    config = world.variant("no-contract", contract, "0x" + "11" * 20)
    code, lines, out = doctor(capsys, config)
    assert code == 1 and lines["contract"][0] == "FAIL" and "found none" in lines["contract"][1], out


def test_unfunded_account(world, capsys):
    key_path = os.path.join(world.dir, "empty.ethkey")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("0x" + os.urandom(32).hex())
    config = world.variant("unfunded", 'keystore_file = "ledger.keystore.json"', 'key_file = "empty.ethkey"')
    code, lines, out = doctor(capsys, config)
    assert code == 1 and lines["funds"][0] == "FAIL", out
    assert "0.000000 ETH: 0 anchor batches" in lines["funds"][1] and "expected at least 100" in lines["funds"][1], out


def test_expired_crl(world, capsys):
    pki = world.broker.pki
    pki.renew_crl(now=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400))
    try:
        code, lines, out = doctor(capsys, world.config)
    finally:
        pki.renew_crl()
    assert code == 1 and lines["certificates"][0] == "FAIL", out
    assert "CRL" in lines["certificates"][1] and "expired" in lines["certificates"][1], out
    assert "renew-crl" in lines["certificates"][1], out


def test_clock_skew_against_the_latest_block(world, capsys):  # last: the chain's time stays ahead
    latest = int(world.node.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    world.node.rpc("evm_setNextBlockTimestamp", hex(latest + 86400))
    world.node.mine()
    code, lines, out = doctor(capsys, world.config)
    assert code == 1 and lines["clock"][0] == "FAIL", out
    assert "ahead of this host's clock" in lines["clock"][1], out

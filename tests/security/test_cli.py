"""The operator's path end to end, through the CLI: ``broker config`` -> ``device provision``
-> Mosquitto on the generated config (dropping root for the ``mosquitto`` user) -> gateway
and agent over TLS -> ``device rotate`` -> ``device revoke``."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway.store import Store
from tests.support.broker import Mosquitto
from tests.support.net import free_port, free_ports

pytestmark = pytest.mark.security

CLI = [sys.executable, "-m", "edgeledger.gateway.cli"]


@pytest.fixture
def reachable_dir():
    """A directory the ``mosquitto`` user can enter (pytest's tmp_path is private to root)."""
    d = tempfile.mkdtemp(prefix="el-sec-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("auth", ["mtls", "password"])
def test_broker_config_provision_and_ingest_over_tls(reachable_dir, tmp_path, run_cli, auth):
    port, gw_port = free_ports(2)
    bdir = os.path.join(reachable_dir, "plant-a")
    code, out, err = run_cli("broker", "config", "--dir", bdir, "--port", port, "--bind", "127.0.0.1",
                             "--auth", auth, "--gateway-port", gw_port)
    assert code == 0, err
    with open(os.path.join(bdir, "gateway-mqtt.toml")) as f:
        mqtt_section = f.read()
    gw_cfg = tmp_path / "gateway.toml"
    with open(os.path.join(bdir, "broker.json")) as f:
        assert json.load(f)["gateway_port"] == gw_port
    gw_cfg.write_text('gateway_id = "gw-sec"\nstore = "gateway.db"\nbroker = "mqtts://localhost:%d"\n'
                      'sites = ["plant-a"]\n[ledger]\nbackend = "none"\n%s' % (gw_port, mqtt_section))
    bundle = tmp_path / "bundle"
    code, out, err = run_cli("device", "provision", "--config", gw_cfg, "--device", "dev-1", "--site", "plant-a",
                             "--out", bundle)  # the broker directory is found through [mqtt] ca_file
    assert code == 0, err
    assert _mode(bundle / "dev-1.key") == 0o600
    cfg = json.loads((bundle / "config.json").read_text())
    assert cfg["device"] == "dev-1" and cfg["site"] == "plant-a" and cfg["broker"] == "mqtts://localhost:%d" % port
    assert cfg["tls"]["ca_file"] == "ca.der" and cfg["key_file"] == "dev-1.key"
    if auth == "mtls":
        assert _mode(bundle / "dev-1-tls.key") == 0o600
        assert not os.path.exists(os.path.join(bdir, "pki", "clients", "dev-1.key"))  # CA dir holds no device key
    else:
        assert cfg["username"] == "dev-1" and _mode(bundle / "config.json") == 0o600
        assert _mode(bundle / "mqtt.pass") == 0o600
    agent_toml = bundle / "agent.toml"
    agent_toml.write_text(agent_toml.read_text().replace("interval_s = 1.0", "interval_s = 0.01"))

    # Mosquitto on the generated file, started as root: it drops to the mosquitto user
    with open(os.path.join(bdir, "mosquitto.conf")) as f:
        conf = f.read()
    # as root the broker drops to the mosquitto user; as anyone else it cannot change user
    assert ("user mosquitto" in conf) == (os.geteuid() == 0)
    with Mosquitto(port=port, config_text=conf, workdir=str(tmp_path / "mosq")) as broker:
        gw = subprocess.Popen(CLI + ["gateway", "run", "--config", str(gw_cfg)], cwd=str(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            agent = subprocess.run(CLI + ["agent", "run", "--config", str(agent_toml), "--until-seq", "20",
                                          "--drain-timeout", "120"], capture_output=True, text=True, timeout=240)
        finally:
            gw.terminate()
            gw_out = gw.communicate(timeout=30)[0].decode()
        assert agent.returncode == 0, agent.stdout + agent.stderr + gw_out + broker.log()
        assert "dev-1" in broker.log()  # logged in under its own identity
    st = Store(str(tmp_path / "gateway.db"))
    assert st.seqs("dev-1") == list(range(1, 21))
    assert st.quarantine_reasons() == {}

    old_kid = load_key_file(str(bundle / "dev-1.key")).kid
    code, out, err = run_cli("device", "rotate", "--config", gw_cfg, "--device", "dev-1", "--overlap-s", "60",
                             "--out", bundle)
    assert code == 0, err
    new_kid = load_key_file(str(bundle / "dev-1.key")).kid
    assert new_kid != old_kid and new_kid.hex() in out
    assert json.loads((bundle / "config.json").read_text())["kid"] == new_kid.hex()

    code, out, err = run_cli("device", "revoke", "--config", gw_cfg, "--device", "dev-1")
    assert code == 0, err
    assert "revoked 2 key(s)" in out and "broker credentials of dev-1 withdrawn" in out
    if auth == "password":
        with open(os.path.join(bdir, "passwd")) as f:
            assert "dev-1:" not in f.read()


def test_broker_config_refuses_a_directory_the_broker_user_cannot_enter(tmp_path, run_cli):
    os.chmod(tmp_path, 0o700)
    code, out, err = run_cli("broker", "config", "--dir", tmp_path / "plant-a", "--port", free_port())
    if os.geteuid() == 0:  # only root's broker changes user (to mosquitto, who cannot enter tmp_path)
        assert code == 2
        assert "cannot enter" in err and "--run-as root" in err
    else:
        assert code == 0, err
    code, out, err = run_cli("broker", "config", "--dir", tmp_path / "plant-a", "--port", free_port(),
                             "--run-as", "root")
    assert code == 0, err


def test_provision_refuses_wrong_site_and_the_gateway_name(reachable_dir, tmp_path, run_cli):
    bdir = os.path.join(reachable_dir, "plant-a")
    assert run_cli("broker", "config", "--dir", bdir, "--port", free_port())[0] == 0
    gw_cfg = tmp_path / "gateway.toml"
    gw_cfg.write_text('store = "gateway.db"\n[ledger]\nbackend = "none"\n')
    base = ["device", "provision", "--config", gw_cfg, "--broker-dir", bdir]
    code, _, err = run_cli(*base, "--device", "dev-1", "--site", "plant-b", "--out", tmp_path / "b1")
    assert code == 2 and "serves site 'plant-a', not 'plant-b'" in err
    code, _, err = run_cli(*base, "--device", "gateway", "--site", "plant-a", "--out", tmp_path / "b2")
    assert code == 2 and "gateway's MQTT user name" in err
    code, _, err = run_cli(*base, "--device", "dev-1", "--site", "plant-a", "--out", tmp_path / "b3",
                           "--broker-host", "evil.example")
    assert code == 2 and "not a name in the broker certificate" in err
    # a key that is not a point of the curve is refused before anything is written
    code, _, err = run_cli(*base, "--device", "dev-bad", "--site", "plant-a", "--out", tmp_path / "bad",
                           "--public-key", "01" + "00" * 31)
    assert code == 2 and "not a valid Ed25519 public key" in err
    # a device id the gateway's client ids use would let the device take the gateway's session
    code, _, err = run_cli(*base, "--device", "el-gw-gw-1", "--site", "plant-a", "--out", tmp_path / "b4")
    assert code == 2 and "gateway's MQTT client ids" in err
    # a secure-element key: only the public key is given, no key file is written
    from edgeledger.agent.signer import generate

    pub = generate("EdDSA", "dev-se").public_key.hex()
    code, out, err = run_cli(*base, "--device", "dev-se", "--site", "plant-a", "--out", tmp_path / "se",
                             "--public-key", pub)
    assert code == 0, err
    assert not os.path.exists(tmp_path / "se" / "dev-se.key")
    assert json.loads((tmp_path / "se" / "config.json").read_text())["public_key"] == pub

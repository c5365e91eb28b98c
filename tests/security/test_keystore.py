"""The gateway's secrets: encrypted ledger key, private files, no key in logs or reprs."""
import json
import logging
import os
import subprocess
import sys

import pytest

from edgeledger.gateway.anchor import keystore
from edgeledger.gateway.config import LedgerConfig

pytestmark = pytest.mark.security

FAST_N = 2**10  # scrypt cost for tests; production files use keystore.SCRYPT_N
SECRET = bytes(range(1, 33))


def _private(path, text):
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return str(path)


def test_keystore_round_trip_and_wrong_passphrase(tmp_path):
    path = str(tmp_path / "gw.json")
    key = keystore.generate(path, "correct horse", secret=SECRET, scrypt_n=FAST_N)
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = json.load(open(path))
    assert doc["version"] == 3 and doc["crypto"]["kdf"] == "scrypt"
    assert SECRET.hex() not in open(path).read()
    assert keystore.load(path, "correct horse").secret() == SECRET
    with pytest.raises(keystore.KeystoreError, match="passphrase does not decrypt"):
        keystore.load(path, "wrong")
    with pytest.raises(keystore.KeystoreError, match="refusing to overwrite"):
        keystore.generate(path, "x", scrypt_n=FAST_N)
    assert key.address.startswith("0x")


def test_key_never_appears_in_repr_str_or_logs(tmp_path, caplog):
    key = keystore.GatewayKey(SECRET)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("edgeledger.gateway").info("loaded %s %r", key, key)
    text = repr(key) + str(key) + caplog.text + repr([key]) + "%s" % {"k": key}
    assert SECRET.hex() not in text and SECRET.hex().upper() not in text and repr(SECRET) not in text
    assert key.address in repr(key)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(key)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_exposed_keystore_or_passphrase_file_is_refused(tmp_path, mode):
    path = str(tmp_path / "gw.json")
    keystore.generate(path, "pw", secret=SECRET, scrypt_n=FAST_N)
    pw = _private(tmp_path / "pass", "pw\n")
    cfg = LedgerConfig(keystore_file=path, passphrase_file=pw)
    assert keystore.account_key(cfg) == SECRET
    os.chmod(path, mode)
    with pytest.raises(keystore.InsecureFileError, match="%04o" % mode):
        keystore.account_key(cfg)
    os.chmod(path, 0o600)
    os.chmod(pw, mode)
    with pytest.raises(keystore.InsecureFileError, match="passphrase file"):
        keystore.account_key(cfg)


def test_passphrase_from_environment_not_arguments(tmp_path):
    path = str(tmp_path / "gw.json")
    keystore.generate(path, "from-env", secret=SECRET, scrypt_n=FAST_N)
    cfg = LedgerConfig(keystore_file=path, passphrase_env="EL_TEST_PASSPHRASE")
    assert keystore.account_key(cfg, environ={"EL_TEST_PASSPHRASE": "from-env"}) == SECRET
    with pytest.raises(keystore.KeystoreError, match="EL_TEST_PASSPHRASE is not set"):
        keystore.account_key(cfg, environ={})


def test_gateway_keygen_command(tmp_path, run_cli):
    pw = _private(tmp_path / "pass", "s3cret passphrase\n")
    out = tmp_path / "gw.json"
    code, stdout, stderr = run_cli("gateway", "keygen", "--out", out, "--passphrase-file", pw)
    assert code == 0, stderr
    key = keystore.load(str(out), "s3cret passphrase")
    assert key.address in stdout
    with pytest.raises(SystemExit):  # the passphrase itself is not an option
        run_cli("gateway", "keygen", "--out", tmp_path / "x.json", "--passphrase", "nope")


def _gateway_run(config):
    return subprocess.run([sys.executable, "-m", "edgeledger.gateway.cli", "gateway", "run", "--config",
                           str(config), "--duration", "0.3"], capture_output=True, text=True, timeout=60)


def test_gateway_refuses_to_start_with_a_world_readable_key_file(tmp_path):
    key = _private(tmp_path / "gateway.key", "-----BEGIN PRIVATE KEY-----\n")
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('store = "gw.db"\nbroker = "mqtts://127.0.0.1:9"\n[ledger]\nbackend = "none"\n'
                   '[mqtt]\nkey_file = "gateway.key"\n')
    os.chmod(key, 0o644)
    r = _gateway_run(cfg)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "mqtt.key_file %s: expected mode 0600 (owner only), found 0644" % key in r.stderr
    assert not os.path.exists(tmp_path / "gw.db")  # refused before anything was opened
    os.chmod(key, 0o600)
    r = _gateway_run(cfg)
    assert r.returncode == 0, r.stdout + r.stderr

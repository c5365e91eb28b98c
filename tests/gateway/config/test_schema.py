"""gateway.toml through its one schema (gateway/config/schema.py), and docs/operators.md in
step with it."""
import dataclasses
import os
import re
import tomllib

import pytest

from edgeledger.gateway import config
from edgeledger.gateway.config import schema
from edgeledger.gateway.errors import ConfigError

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "operators.md")


def _documented_block():
    with open(DOCS) as f:
        text = f.read()
    m = re.search(r"### gateway\.toml\s+```toml\n(.*?)```", text, re.S)
    assert m, "docs/operators.md has no ```toml block under '### gateway.toml'"
    return tomllib.loads(m.group(1))


def _schema_keys():
    keys = set()
    for f in dataclasses.fields(schema.GatewayConfig):
        if f.name in schema.SECTIONS:
            keys |= set("%s.%s" % (f.name, g.name) for g in dataclasses.fields(schema.SECTIONS[f.name]))
        elif not f.metadata.get("legacy"):
            keys.add(f.name)
    return keys


def _keys(parsed):
    keys = set()
    for k, v in parsed.items():
        keys |= set("%s.%s" % (k, kk) for kk in v) if isinstance(v, dict) else {k}
    return keys


def test_operators_doc_shows_every_key_and_only_keys_the_gateway_reads():
    block = _documented_block()
    assert _keys(block) == _schema_keys()
    config.resolve(block, "/etc/edgeledger")  # and every value it shows is valid


def test_defaults_come_from_the_schema(tmp_path):
    cfg = config.resolve({}, str(tmp_path))
    assert cfg.store == str(tmp_path / "var" / "gateway.db")
    assert (cfg.sites, cfg.max_message_bytes, cfg.clock_skew_s) == (["+"], schema.DEFAULT_MAX_MESSAGE_BYTES,
                                                                     schema.DEFAULT_CLOCK_SKEW_S)
    assert (cfg.batch.max_size, cfg.batch.max_age_s) == (schema.DEFAULT_BATCH_SIZE, schema.DEFAULT_BATCH_AGE_S)
    assert (cfg.ratelimit.rate, cfg.ratelimit.burst) == (schema.DEFAULT_RATE, schema.DEFAULT_BURST)
    assert cfg.ledger.backend == "embedded" and cfg.ledger.finality_blocks == cfg.ledger.confirmations == 2
    assert cfg.mqtt_client_id == "el-gw-gw-1" and cfg.sqlite_synchronous == "FULL"
    assert cfg.upkeep.enabled and cfg.chain.accept_restarts


def test_relative_files_are_relative_to_the_config_file(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('store = "gw.db"\n[mqtt]\nca_file = "pki/ca.pem"\n[ledger]\nkey_file = "/abs/key"\n')
    cfg = config.load(str(path))
    assert (cfg.store, cfg.mqtt.ca_file, cfg.ledger.key_file) == (
        str(tmp_path / "gw.db"), str(tmp_path / "pki" / "ca.pem"), "/abs/key")


@pytest.mark.parametrize("parsed, message", [
    ({"max_message_bytes": "64k"}, "max_message_bytes: expected an integer, found '64k'"),
    ({"ledger": {"confirmations": True}}, r"\[ledger\] confirmations: expected an integer, found True"),
    ({"ledger": {"backend": "geth"}}, r"\[ledger\] backend: expected 'embedded' or 'jsonrpc' or 'none'"),
    ({"ledger": {"finality": 0}}, r"\[ledger\] finality: expected at least 1, found 0"),
    ({"sites": []}, "sites: expected a non-empty list"),
    ({"sites": ["a", 1]}, "sites: expected a list of strings"),
    ({"durability": "maybe"}, "durability: expected 'power_loss' or 'process_crash_only', found 'maybe'"),
    ({"synchronous": "OFF"}, "synchronous: expected 'FULL' or 'NORMAL', found 'OFF'"),
    ({"batch": {"max_size": 1 << 21}}, r"\[batch\] max_size: expected at most 1048576"),
    ({"batch": 5}, r"\[batch\] must be a table"),
])
def test_a_bad_value_is_a_config_error_naming_key_expected_and_found(parsed, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve(parsed, "/")


def test_load_names_the_file(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text("clock_skew_s = 'a week'\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*clock_skew_s: expected a number"):
        config.load(str(path))
    with pytest.raises(ConfigError, match="cannot read gateway config"):
        config.load(str(tmp_path / "missing.toml"))


def test_durability_and_its_older_spelling():
    assert config.resolve({"durability": "process_crash_only"}, "/").sqlite_synchronous == "NORMAL"
    assert config.resolve({"synchronous": "NORMAL"}, "/").sqlite_synchronous == "NORMAL"
    assert config.resolve({"synchronous": "NORMAL", "durability": "power_loss"}, "/").sqlite_synchronous == "FULL"


def test_finality_defaults_by_backend_and_never_below_confirmations():
    def finality(ledger):
        return config.resolve({"ledger": ledger}, "/").ledger.finality_blocks

    assert finality({"backend": "jsonrpc"}) == schema.DEFAULT_FINALITY
    assert finality({"backend": "embedded", "confirmations": 3}) == 3
    assert finality({"backend": "jsonrpc", "confirmations": 5, "finality": 2}) == 5


def test_secret_files_are_the_schemas_secret_keys(tmp_path):
    cfg = config.resolve({"mqtt": {"password_file": "p", "ca_file": "ca.pem"},
                          "ledger": {"keystore_file": "k.json", "passphrase_file": "pp"}}, str(tmp_path))
    assert config.secret_files(cfg) == [("mqtt.password_file", str(tmp_path / "p")),
                                        ("ledger.keystore_file", str(tmp_path / "k.json")),
                                        ("ledger.passphrase_file", str(tmp_path / "pp"))]

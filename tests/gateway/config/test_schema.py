"""gateway.toml through its one schema (gateway/config/schema.py): defaults, values checked,
unknown keys and sections refused (test_reference_doc.py keeps docs/configuration.md in step)."""
import re

import pytest

from edgeledger.gateway import config
from edgeledger.gateway.config import schema
from edgeledger.gateway.errors import ConfigError


def test_defaults_come_from_the_schema(tmp_path):
    cfg = config.resolve({"ledger": {"backend": "embedded"}}, str(tmp_path))
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
    path.write_text('store = "gw.db"\nbroker = "mqtts://gw.local"\n[mqtt]\nca_file = "pki/ca.pem"\n'
                    '[ledger]\nbackend = "jsonrpc"\nkey_file = "/abs/key"\n')
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
        config.resolve(dict(parsed, ledger=dict({"backend": "none"}, **parsed.get("ledger", {}))), "/")


NONE = {"ledger": {"backend": "none"}}


@pytest.mark.parametrize("parsed, message", [
    ({"ledgr": {"backend": "none"}}, r"unknown section \[ledgr\]; did you mean \[ledger\]\?"),
    ({"batch": {"max_age": 5}}, r"unknown key 'max_age' in \[batch\]; did you mean max_age_s\?"),
    ({"ledger": {"backend": "jsonrpc", "confirmation": 3}},
     r"unknown key 'confirmation' in \[ledger\]; did you mean confirmations\?"),
    ({"max_age": 5}, r"unknown key 'max_age'; did you mean \[batch\] max_age_s\?"),
    ({"confirmations": 5}, r"unknown top-level key 'confirmations': it belongs in \[ledger\]"),
    ({"ledger": {"backend": "none", "sites": ["a"]}}, r"'sites' is a top-level key, found in \[ledger\]"),
    ({"colour": "blue"}, r"unknown key 'colour'$"),
])
def test_an_unknown_key_or_section_is_refused_naming_the_nearest_known_one(parsed, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve(dict(NONE, **parsed), "/")


def test_a_config_without_a_ledger_never_falls_back_to_the_embedded_chain(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('store = "gw.db"\n[ledgr]\nbackend = "jsonrpc"\n')
    with pytest.raises(ConfigError, match=re.escape("%s: unknown section [ledgr]; did you mean [ledger]?" % path)):
        config.load(str(path))
    path.write_text('store = "gw.db"\n')
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r": no \[ledger\] section.*backend = \"embedded\""):
        config.load(str(path))
    with pytest.raises(ConfigError, match=r"\[ledger\] needs backend"):
        config.resolve({"ledger": {"url": "http://127.0.0.1:8545"}}, "/")
    assert config.resolve({"ledger": {"backend": "embedded"}}, "/").ledger.backend == "embedded"


@pytest.mark.parametrize("ledger, message", [
    ({"contract": "0x..."}, r"\[ledger\] contract: expected an address: 0x and 40 hex digits .*found '0x\.\.\.'"),
    ({"contract": "0x" + "ab" * 19}, "contract: expected an address"),
    ({"url": "127.0.0.1:8545"}, r"\[ledger\] url: expected an http:// or https:// URL"),
])
def test_a_placeholder_or_malformed_ledger_value_is_one_clear_line(ledger, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve({"ledger": dict(backend="jsonrpc", **ledger)}, "/")
    good = config.resolve({"ledger": {"backend": "jsonrpc", "url": "http://node:8545",
                                      "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}}, "/")
    assert good.ledger.contract == "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.mark.parametrize("key", ["ca_file", "cert_file"])
def test_tls_files_with_a_plain_mqtt_url_are_refused_with_a_hint_to_write_mqtts(key):
    with pytest.raises(ConfigError, match=r"broker 'mqtt://gw:8884' is plain MQTT but \[mqtt\] names %s: "
                                          r"write mqtts://gw:8884" % key):
        config.resolve(dict(NONE, broker="mqtt://gw:8884", mqtt={key: "x.pem"}), "/")
    assert config.resolve(dict(NONE, broker="mqtts://gw:8884", mqtt={key: "x.pem"}), "/").broker.startswith("mqtts")
    with pytest.raises(ConfigError, match="broker: broker URL must be mqtt://host:port"):
        config.resolve(dict(NONE, broker="tcp://gw:1883"), "/")


def test_load_names_the_file(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text("clock_skew_s = 'a week'\n[ledger]\nbackend = 'none'\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*clock_skew_s: expected a number"):
        config.load(str(path))
    with pytest.raises(ConfigError, match="cannot read gateway config"):
        config.load(str(tmp_path / "missing.toml"))


def test_durability_and_its_older_spelling():
    def resolve(parsed):
        return config.resolve(dict(parsed, ledger={"backend": "none"}), "/")

    assert resolve({"durability": "process_crash_only"}).sqlite_synchronous == "NORMAL"
    assert resolve({"synchronous": "NORMAL"}).sqlite_synchronous == "NORMAL"
    assert resolve({"synchronous": "NORMAL", "durability": "power_loss"}).sqlite_synchronous == "FULL"


def test_finality_defaults_by_backend_and_never_below_confirmations():
    def finality(ledger):
        return config.resolve({"ledger": ledger}, "/").ledger.finality_blocks

    assert finality({"backend": "jsonrpc"}) == schema.DEFAULT_FINALITY
    assert finality({"backend": "embedded", "confirmations": 3}) == 3
    assert finality({"backend": "jsonrpc", "confirmations": 5, "finality": 2}) == 5


def test_secret_files_are_the_schemas_secret_keys(tmp_path):
    cfg = config.resolve({"broker": "mqtts://gw.local", "mqtt": {"password_file": "p", "ca_file": "ca.pem"},
                          "ledger": {"backend": "jsonrpc", "keystore_file": "k.json", "passphrase_file": "pp"}},
                         str(tmp_path))
    assert config.secret_files(cfg) == [("mqtt.password_file", str(tmp_path / "p")),
                                        ("ledger.keystore_file", str(tmp_path / "k.json")),
                                        ("ledger.passphrase_file", str(tmp_path / "pp"))]

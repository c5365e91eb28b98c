"""The agent's one table of config keys (agent/config.py), shared by agent.toml and a board's config.json."""
import pytest

from edgeledger.agent import config
from edgeledger.agent.errors import ConfigError

MINIMAL = {"device": "meter-01", "site": "plant-a", "key_file": "meter-01.key",
           "sources": [{"type": "simulated"}]}


@pytest.mark.parametrize("board, column", [(False, 1), (True, 2)])
def test_every_key_gets_its_runtimes_default(board, column):
    cfg = config.agent_settings(dict(MINIMAL), board, "test")
    for key, spec in config.AGENT_KEYS.items():
        if len(spec) > 1 and key != "outbox":
            assert cfg[key] == spec[column], key
    for key, spec in config.OUTBOX_KEYS.items():
        assert cfg["outbox"][key] == spec[column], key


@pytest.mark.parametrize("key", ["device", "site", "key_file", "sources"])
def test_a_required_key_missing_is_refused_by_name(key):
    cfg = dict(MINIMAL)
    del cfg[key]
    with pytest.raises(ConfigError, match="missing '%s'" % key):
        config.agent_settings(cfg, False, "agent config x.toml")


@pytest.mark.parametrize("key, value", [("window", "many"), ("window", True), ("pack_age_s", [1]),
                                        ("broker", 1883), ("sources", {"type": "simulated"})])
def test_a_value_of_the_wrong_type_is_refused_saying_what_was_expected(key, value):
    with pytest.raises(ConfigError, match="'%s' must be of type" % key):
        config.agent_settings(dict(MINIMAL, **{key: value}), True, "device config config.json")


def test_numbers_are_converted_to_their_type():
    cfg = config.agent_settings(dict(MINIMAL, window="32", resend_after_s=2, outbox={"max_bytes": "65536"}),
                                True, "test")
    assert cfg["window"] == 32 and isinstance(cfg["resend_after_s"], float)
    assert cfg["outbox"]["max_bytes"] == 65536


def test_the_board_profiles_outbox_comes_between_config_and_default():
    profile_outbox = {"max_bytes": 131072, "flush_interval_s": 30}
    cfg = config.agent_settings(dict(MINIMAL, outbox={"max_bytes": 65536}), True, "test", profile_outbox)
    assert cfg["outbox"]["max_bytes"] == 65536  # the config wins
    assert cfg["outbox"]["flush_interval_s"] == 30.0  # then the profile
    assert cfg["outbox"]["segment_bytes"] == config.OUTBOX_KEYS["segment_bytes"][2]  # then the default


@pytest.mark.parametrize("extra, message", [
    ({"windw": 32}, "agent config x.toml: unknown key 'windw'; did you mean 'window'\\?"),
    ({"colour": "blue"}, "agent config x.toml: unknown key 'colour'$"),
    ({"outbox": {"max_byte": 1}}, r"x.toml \[outbox\]: unknown key 'max_byte'; did you mean 'max_bytes'\?"),
    ({"broker": "mqtts://gw", "tls": {"cafile": "ca.pem"}}, r"\[tls\]: unknown key 'cafile'; did you mean 'ca_file'\?"),
    ({"wifi": {"ssid": "ot", "pasword": "x"}}, r"\[wifi\]: unknown key 'pasword'; did you mean 'password'\?"),
    ({"sources": [{"type": "simulated", "interval": 5}]},
     r"\[\[sources\]\] 1 \(simulated\): unknown key 'interval'; did you mean 'interval_s'\?"),
    ({"sources": [{"type": "simulated"}, {"type": "dsmr", "port": "/dev/ttyUSB0", "baudrate": 115200}]},
     r"\[\[sources\]\] 2 \(dsmr\): unknown key 'baudrate'; did you mean 'baud'\?"),
    ({"sources": [{"type": "modbus", "port": "/dev/ttyUSB0", "devices": [{"unit": 1, "mapp": "sdm630"}]}]},
     r"\(modbus\) devices\[0\]: unknown key 'mapp'; did you mean 'map'\?"),
    ({"sources": [{"type": "modbus", "port": "/dev/ttyUSB0", "baud": "fast", "devices": []}]},
     r"\(modbus\): 'baud' must be of type int, found 'fast'"),
    ({"sources": [{"type": "dsmr"}]}, r"\[\[sources\]\] 1 \(dsmr\): missing 'port' \(the serial device"),
    ({"sources": [{"type": "p1"}]},
     r"\[\[sources\]\] 1: type must be one of dsmr, iec62056, modbus, modbus_tcp, simulated"),
])
def test_an_unknown_or_missing_key_is_refused_by_name_with_the_nearest_known_one(extra, message):
    with pytest.raises(ConfigError, match=message):
        config.agent_settings(dict(MINIMAL, **extra), False, "agent config x.toml")


def test_a_source_on_a_board_bus_needs_no_port():
    cfg = config.agent_settings(dict(MINIMAL, sources=[{"type": "dsmr", "bus": "p1", "version": 5}]), True, "t")
    assert cfg["sources"] == [{"type": "dsmr", "bus": "p1", "version": 5}]


@pytest.mark.parametrize("tls", [{"ca_file": "ca.pem"}, {"cert_file": "d.pem", "key_file": "d.key"}])
def test_tls_files_with_a_plain_mqtt_broker_url_are_refused_with_a_hint_to_write_mqtts(tls):
    with pytest.raises(ConfigError, match=r"broker 'mqtt://gw:8883' is plain MQTT but \[tls\] is set: "
                                          r"write mqtts://gw:8883"):
        config.agent_settings(dict(MINIMAL, broker="mqtt://gw:8883", tls=tls), True, "device config config.json")
    assert config.agent_settings(dict(MINIMAL, broker="mqtts://gw:8883", tls=tls), True, "t")["tls"] == tls


def test_nearest_is_difflib_like_and_runs_without_difflib():
    import difflib

    known = list(config.AGENT_KEYS)
    for typo in ("windw", "pack_sise", "resend_after", "brokr", "state-dir", "keepalive_s"):
        assert config.nearest(typo, known) == difflib.get_close_matches(typo, known, n=1)[0]
    assert config.nearest("colour", known) is None


def test_the_broker_url_errors_become_config_errors():
    assert config.broker("mqtts://gw.local") == (True, "gw.local", 8883)
    with pytest.raises(ConfigError, match="mqtt"):
        config.broker("http://gw.local")


def test_chain_hash_names_the_agents_digest_function():
    from edgeledger.agent import crypto

    cfg = config.agent_settings(dict(MINIMAL), True, "test")
    assert cfg["chain_hash"] == "sha256" and config.chain_digest("sha256") is crypto.sha256
    assert config.chain_digest("sm3") is crypto.sm3
    assert config.chain_digest("sm3")(b"abc").hex() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # GB/T 32905 example 1
    with pytest.raises(ConfigError, match="chain_hash: hash: expected one of sha256, sm3, found 'md5'"):
        config.chain_digest("md5")

"""Log levels (-v/-q win over the config's level; summaries shown unless errors only), the
[log]/[metrics]/[web] keys, and listen addresses."""
import logging

import pytest

from edgeledger.gateway import config
from edgeledger.gateway.errors import ConfigError
from edgeledger.gateway.observe import logs
from edgeledger.gateway.observe.facts import listen_address


@pytest.fixture(autouse=True)
def _restore_levels():
    root, summary = logging.getLogger(), logging.getLogger(logs.SUMMARY_LOGGER)
    saved = root.level, summary.level, logs._chosen[0]
    yield
    root.setLevel(saved[0])
    summary.setLevel(saved[1])
    logs._chosen[0] = saved[2]


def _levels():
    return logging.getLogger().level, logging.getLogger(logs.SUMMARY_LOGGER).level


@pytest.mark.parametrize("verbose, quiet, config_level, expected", [
    (0, 0, None, (logging.WARNING, logging.INFO)),  # default: warnings, and the summaries
    (0, 0, "error", (logging.ERROR, logging.ERROR)),  # the config's level when the command line says nothing
    (0, 0, "debug", (logging.DEBUG, logging.DEBUG)),
    (1, 0, "error", (logging.INFO, logging.INFO)),  # -v wins over the config
    (2, 0, None, (logging.DEBUG, logging.DEBUG)),
    (1, 1, "debug", (logging.ERROR, logging.ERROR)),  # -q wins over both: no summaries either
])
def test_the_command_line_wins_over_the_config(verbose, quiet, config_level, expected):
    logs.configure(verbose, quiet)
    logs.apply_config(config_level, "gateway config: [log] level")
    assert _levels() == expected


def test_a_level_that_is_not_one_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"agent config a.toml: log_level: expected a log level .*found 'loud'"):
        logs.apply_config("loud", "agent config a.toml: log_level")


@pytest.mark.parametrize("parsed, message", [
    ({"log": {"level": "loud"}}, r"\[log\] level: expected 'debug' or 'info' or 'warning' or 'error', found 'loud'"),
    ({"log": {"summary_s": -1}}, r"\[log\] summary_s: expected at least 0.0"),
    ({"metrics": {"listen": 9108}}, r"\[metrics\] listen: expected a string, found 9108"),
])
def test_the_new_sections_are_checked(parsed, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve(dict(parsed, ledger={"backend": "embedded"}), "/etc/edgeledger")


def test_everything_seen_is_off_unless_configured():
    cfg = config.resolve({"ledger": {"backend": "embedded"}}, "/etc/edgeledger")
    assert cfg.metrics.listen is None and cfg.web.listen is None
    assert cfg.log.level == "warning" and cfg.log.summary_s == 300.0


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9108", ("127.0.0.1", 9108)),
    ("[::1]:8080", ("::1", 8080)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
])
def test_listen_addresses(text, expected):
    assert listen_address(text, "[web] listen") == expected


@pytest.mark.parametrize("text", ["9108", "127.0.0.1", "127.0.0.1:", ":9108", "127.0.0.1:99999", "host:http"])
def test_a_listen_address_that_is_not_one_is_refused_by_key(text):
    with pytest.raises(ConfigError, match=r"\[metrics\] listen: expected host:port .*found %r" % text):
        listen_address(text, "[metrics] listen")

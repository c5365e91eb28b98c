"""docs/configuration.md lists every key of both schemas (gateway/config/schema.py and
agent/config.py), only those, with the schemas' defaults; and its examples are valid."""
import dataclasses
import os
import re
import tomllib

import pytest

from edgeledger.agent import config as agent_config
from edgeledger.gateway import config
from edgeledger.gateway.config import schema

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "configuration.md")


def _chapter(title):
    with open(DOC) as f:
        text = f.read()
    m = re.search(r"\n## %s[^\n]*\n(.*?)(?=\n## |\Z)" % re.escape(title), text, re.S)
    assert m, "docs/configuration.md has no chapter '## %s'" % title
    return m.group(1)


def _tables(title):
    """{heading: {key: [cells after the key]}} of the chapter's tables."""
    out = {}
    for part in _chapter(title).split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        rows = re.findall(r"^\| `(\w+)` \|(.*)\|$", body, re.M)
        out[heading.strip()] = dict((k, [c.strip() for c in rest.split("|")]) for k, rest in rows)
    return out


def _example(title):
    return tomllib.loads(re.search(r"```toml\n(.*?)```", _chapter(title), re.S).group(1))


def _documented_default(cell):
    """The value a default cell shows: a TOML literal in backquotes, or None for "—"."""
    if cell == "—":
        return None
    m = re.fullmatch(r"`(.*)`", cell)
    return tomllib.loads("v = %s" % m.group(1))["v"] if m else cell


def _gateway_tables():
    tables = _tables("gateway.toml")
    out = {"top level": [f for f in dataclasses.fields(schema.GatewayConfig) if f.name not in schema.SECTIONS]}
    for name, cls in schema.SECTIONS.items():
        out["[%s]" % name] = list(dataclasses.fields(cls))
    assert sorted(tables) == sorted(out)
    return [(heading, fields, tables[heading]) for heading, fields in out.items()]


def test_every_gateway_key_is_documented_with_its_default_and_no_other():
    for heading, fields, rows in _gateway_tables():
        assert sorted(rows) == sorted(f.name for f in fields), heading
        for f in fields:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if f.metadata.get("required"):
                default = None
            assert _documented_default(rows[f.name][0]) == default, (heading, f.name)


def test_the_gateway_example_shows_every_key_and_is_valid():
    example = _example("gateway.toml")
    shown = set(k for k, v in example.items() if not isinstance(v, dict))
    shown |= set("%s.%s" % (s, k) for s, v in example.items() if isinstance(v, dict) for k in v)
    keys = set("%s.%s" % (s, f.name) for s, cls in schema.SECTIONS.items() for f in dataclasses.fields(cls))
    keys |= set(f.name for f in dataclasses.fields(schema.GatewayConfig)
                if f.name not in schema.SECTIONS and not f.metadata.get("legacy"))
    assert shown == keys
    config.resolve(example, "/etc/edgeledger")


AGENT_TABLES = {
    "top level": agent_config.AGENT_KEYS,
    "[outbox]": agent_config.OUTBOX_KEYS,
    "[tls]": agent_config.TLS_KEYS,
    "[wifi]": agent_config.WIFI_KEYS,
    "[[sources]], every type": agent_config.COMMON_SOURCE_KEYS,
    "[[sources.devices]] of a modbus or modbus_tcp source": agent_config.MODBUS_DEVICE_KEYS,
}
AGENT_TABLES.update(("[[sources]] of type %s" % t, keys) for t, keys in agent_config.SOURCE_KEYS.items())


def test_every_agent_key_is_documented_and_no_other():
    tables = _tables("agent.toml")
    assert sorted(tables) == sorted(AGENT_TABLES)
    for heading, keys in AGENT_TABLES.items():
        assert sorted(tables[heading]) == sorted(keys), heading


@pytest.mark.parametrize("heading, table", [("top level", agent_config.AGENT_KEYS),
                                            ("[outbox]", agent_config.OUTBOX_KEYS)])
def test_the_agent_defaults_documented_are_the_tables_for_both_runtimes(heading, table):
    rows = _tables("agent.toml")[heading]
    for key, spec in table.items():
        shown = [_documented_default(c) for c in rows[key][:2]]
        assert shown == ([None, None] if len(spec) == 1 else [spec[1], spec[2]]), key


def test_the_agent_example_is_valid():
    agent_config.agent_settings(_example("agent.toml"), False, "docs/configuration.md")


def test_the_examples_of_the_operators_guide_are_valid():
    with open(os.path.join(os.path.dirname(DOC), "operators.md")) as f:
        files = re.search(r"\n## Files\n(.*?)\n## ", f.read(), re.S).group(1)
    gateway_toml, agent_toml = [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", files, re.S)]
    config.resolve(gateway_toml, "/etc/edgeledger")
    agent_config.agent_settings(agent_toml, False, "docs/operators.md")

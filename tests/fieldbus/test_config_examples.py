"""The agent.toml examples in docs/field-buses.md build working sources."""
import os
import re
import tomllib

import pytest

from edgeledger.agent import sources
from edgeledger.agent.errors import ConfigError

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "field-buses.md")


class FakePort:
    baud = None

    def set_baud(self, baud):
        self.baud = baud

    def close(self):
        pass


def doc_sources():
    with open(DOC) as f:
        text = f.read()
    out = []
    for block in re.findall(r"```toml\n(.*?)```", text, re.S):
        out.extend(tomllib.loads(block)["sources"])
    return out


def test_every_documented_source_builds():
    cfgs = doc_sources()
    assert [c["type"] for c in cfgs] == ["modbus", "dsmr", "iec62056"]
    for cfg in cfgs:
        src = sources.from_config(cfg, port=FakePort())
        assert src.name == cfg["name"] and src.interval_s == cfg["interval_s"]
    bus = sources.from_config(cfgs[0], port=FakePort())
    assert [d[0] for d in bus.devices] == [1, 7]
    assert bus.master._delays == {7: 0.2}


@pytest.mark.parametrize("cfg", [
    {"type": "nope"},
    {"type": "modbus", "devices": []},
    {"type": "modbus", "devices": [{"unit": 0, "map": "sdm630"}]},
    {"type": "modbus", "devices": [{"unit": 1, "map": "no-such-map"}]},
    {"type": "dsmr", "version": "9"},
    {"type": "iec62056", "max_baud": 12345},
])
def test_bad_config_is_a_config_error(cfg):
    with pytest.raises(ConfigError):
        sources.from_config(cfg, port=FakePort())

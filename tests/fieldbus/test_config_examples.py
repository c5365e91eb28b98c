"""The agent.toml examples in docs/field-buses.md and the board config.json of
docs/firmware.md build working sources; the documented Modbus example signs one pack per poll."""
import hashlib
import json
import os
import re
import time
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
    assert [c["type"] for c in cfgs] == ["modbus", "modbus", "modbus_tcp", "dsmr", "iec62056"]
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


FIRMWARE_DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "firmware.md")


def board_config():
    """The config.json of docs/firmware.md, section 3."""
    with open(FIRMWARE_DOC) as f:
        return json.loads(re.search(r"`config.json`:\n\n```json\n(.*?)```", f.read(), re.S).group(1))


def test_documented_board_config_fills_its_bus_from_the_board_profile():
    from edgeledger.agent import config
    from edgeledger.firmware import board as boards
    from edgeledger.firmware import startup
    from edgeledger.gateway.boards import image

    cfg = board_config()
    assert config.broker(cfg["broker"]) == (True, "192.168.10.2", 8883)
    profile = image.load_profile("esp32")
    src = startup.source_config(boards.Board(profile), profile, cfg["sources"][0])
    assert (src["port"], src["de_pin"], src["baud"]) == (1, 21, 9600)  # the profile's rs485 bus
    assert sources.from_config(src, port=FakePort()).interval_s == 10
    # nothing in it is left to a default that differs from what the doc explains
    assert cfg["pack_size"] == config.AGENT_KEYS["pack_size"][2] and cfg["watchdog_s"] == 8


@pytest.mark.interop
@pytest.mark.parametrize("where", ["board", "linux"])
def test_documented_modbus_example_signs_one_pack_per_poll(modbus_bus, tmp_path, where):
    # the documented bus (an SDM630 at unit 1, an XY-MD02 at unit 7) answered by pymodbus
    from edgeledger.agent import config
    from edgeledger.agent.core import AgentCore
    from edgeledger.agent.outbox import Outbox
    from edgeledger.agent.signer import generate
    from edgeledger.protocols.cose import verify as cose_verify
    from edgeledger.protocols.reading import validate as reading_validate
    from tests.fieldbus.test_modbus_e2e import SDM_BEFORE, XY_BEFORE, server_devices

    path, _relay, _server = modbus_bus(server_devices(SDM_BEFORE, XY_BEFORE))
    cfg = dict(doc_sources()[0], port=path, interval_s=3600)
    # a board signs with the board default, the Linux agent with its own (agent/config.py)
    pack_size = config.AGENT_KEYS["pack_size"][2 if where == "board" else 1]
    src = sources.from_config(cfg)
    box = Outbox(str(tmp_path / "ob"), hash_fn=lambda b: hashlib.sha256(b).digest())
    core = AgentCore("hall-a-gw-01", generate("ES256", "hall-a-gw-01"), box, [src],
                     lambda b: hashlib.sha256(b).digest(), epoch=1, pack_size=pack_size)
    try:
        deadline = time.monotonic() + 30
        while box.head_seq == 0 and time.monotonic() < deadline:
            core.tick(time.monotonic(), time.time())
            time.sleep(0.005)
    finally:
        src.close()
    assert box.head_seq == 1  # the whole poll in one signed message
    (seq, msg), = box.read(1, 10)
    pack = reading_validate.decode_payload(cose_verify.parse_sign1(msg).payload).pack
    names = [r["n"] for r in reading_validate.resolve(pack)]
    assert len(names) == 20 and names[0] == "hall-a/mains/voltage_l1" and names[-1] == "hall-a/climate/humidity"
    assert pack[0][-2] == "hall-a/" and -3 in pack[0]  # signed with base name and base time


def test_documented_own_register_map_is_the_sdm630_and_reads_an_sdm630(modbus_bus):
    """The user-defined map of docs/field-buses.md, exactly as printed there, read against a
    pymodbus server holding SDM630 registers: the same records as the built-in map."""
    from edgeledger.agent.registermaps import get_map
    from tests.fieldbus.test_modbus_interop import SDM_VALUES, sdm_registers

    cfg = doc_sources()[1]
    own = cfg["devices"][0]["map"]
    assert isinstance(own, dict) and own["name"] == "sdm630-own"
    builtin = get_map("sdm630")
    assert [tuple(e) for e in own["entries"]] == list(builtin["entries"])  # the doc copies no typo
    path, _relay, _server = modbus_bus({1: {"ir": sdm_registers()}})
    src = sources.from_config(dict(cfg, port=path, timeout_s=2.0))
    try:
        recs = src.poll(1764093000)
    finally:
        src.close()
    got = {r[0]: (r[2], r.get(1)) for r in recs}
    want = {"hall-b/mains/" + e[5]: (SDM_VALUES[e[0]] * e[3], e[4]) for e in builtin["entries"]}
    assert got == want and src.master.counters["requests"] == 2

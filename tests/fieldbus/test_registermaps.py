"""The shipped Modbus register maps (agent/registermaps/): each read by the agent's Modbus
source from a real pymodbus 3.x RTU server on a pty that holds known values at the
registers the vendor's table names, and every other register of the read blocks filled
with a value no entry may return; plus the sanity rules every map keeps, and the rule
that a board imports only the maps its devices name."""
import struct

import pytest

from edgeledger.agent import plausible, sources
from edgeledger.agent.errors import ConfigError
from edgeledger.agent.registermaps import MAPS, check_map, get_map
from edgeledger.protocols.modbus import TYPE_WORDS
from tests.support.mpy import run_micropython

# What an unmapped register holds in the test servers (f32 -999.5): an entry one address
# off, or with the wrong word order, reads this or a half of it, never its own value.
FILL = -999.5


def f32_registers(values, size):
    """``size`` input registers: ``values`` (wire address -> float) as big-endian f32,
    most significant register first, FILL everywhere else."""
    regs = list(struct.unpack(">HH", struct.pack(">f", FILL))) * (size // 2)
    for addr, v in values.items():
        regs[addr], regs[addr + 1] = struct.unpack(">HH", struct.pack(">f", v))
    return regs


# Eastron SDM120 (SDM120Modbus protocol V2.4), by data-sheet register number - 30001;
# values exactly representable in f32. Expected records: name -> (value, SenML unit),
# energy in J (1 kWh = 3.6e6 J) and vars (1 kvarh = 3.6e6 var s).
SDM120_REGS = {0x00: 231.5, 0x06: 4.25, 0x0C: -980.5, 0x12: 983.75, 0x18: 61.5, 0x1E: -0.96875,
               0x46: 49.96875, 0x48: 1234.5, 0x4A: 17.25, 0x4C: 3.5, 0x4E: 0.75}
SDM120_RECORDS = {
    "voltage": (231.5, "V"), "current": (4.25, "A"), "power": (-980.5, "W"),
    "apparent_power": (983.75, "VA"), "reactive_power": (61.5, "var"), "power_factor": (-0.96875, "/"),
    "frequency": (49.96875, "Hz"), "energy_import": (4444200000.0, "J"), "energy_export": (62100000.0, "J"),
    "reactive_energy_import": (12600000.0, "vars"), "reactive_energy_export": (2700000.0, "vars"),
}

# Eastron SDM72D-M (user manual V1.5, part 3): 30053, 30073, 30075, 30343, 31281, 31283.
SDM72_REGS = {0x34: 7350.25, 0x48: 52018.5, 0x4A: 311.25, 0x156: 52329.75, 0x500: 7350.25, 0x502: 0.0}
SDM72_RECORDS = {
    "power": (7350.25, "W"), "energy_import": (187266600000.0, "J"), "energy_export": (1120500000.0, "J"),
    "energy_total": (188387100000.0, "J"), "power_import": (7350.25, "W"), "power_export": (0.0, "W"),
}

DEVICES = {1: {"ir": f32_registers(SDM120_REGS, 0x60)}, 2: {"ir": f32_registers(SDM72_REGS, 0x510)}}


def by_name(records):
    return {r[0]: (r[2], r.get(1)) for r in records}


@pytest.mark.interop
def test_sdm120_and_sdm72d_m_read_from_a_pymodbus_server(modbus_bus):
    port, _relay, _server = modbus_bus(DEVICES)
    src = sources.from_config({"type": "modbus", "name": "bus", "port": port, "timeout_s": 1.0,
                               "retries": 2, "inter_request_delay_s": 0.01,
                               "devices": [{"unit": 1, "map": "sdm120", "prefix": "flat3/"},
                                           {"unit": 2, "map": "sdm72d_m", "prefix": "pump/"}]})
    try:
        recs = src.poll(1764093000)
    finally:
        src.close()
    want = {"flat3/" + k: v for k, v in SDM120_RECORDS.items()}
    want.update({"pump/" + k: v for k, v in SDM72_RECORDS.items()})
    assert by_name(recs) == want
    # SDM120: two reads (0x00.., 0x46..); SDM72D-M: one per run of listed registers, so a
    # meter whose table has nothing in between is never asked for unlisted registers
    assert src.master.counters["requests"] == 2 + 4 and src.counters["failed_requests"] == 0
    assert [plausible.check(r) for r in recs] == [None] * len(recs)


@pytest.mark.parametrize("name", sorted(MAPS))
def test_shipped_map_is_well_formed(name):
    m = get_map(name)
    check_map(m)
    assert m["name"] == name
    names = [e[5] for e in m["entries"]]
    assert len(set(names)) == len(names), "two entries share a record name"
    spans = sorted((e[0], e[0] + TYPE_WORDS[e[1]]) for e in m["entries"])
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, "entries overlap at wire address %d" % start
    for e in m["entries"]:
        # every quantity has a SenML unit that `agent test --once` knows a range for
        assert e[4] in plausible.RANGES, "unit %r of %s has no plausible range" % (e[4], e[5])


@pytest.mark.parametrize("bad", ["sdm12O", 5, ["sdm120"], {"function": 4, "entries": [[0, "f33", "big", 1, "V", "v"]]}])
def test_a_map_that_is_no_map_is_a_config_error(bad):
    with pytest.raises(ConfigError) as e:
        sources.from_config({"type": "modbus", "port": "/dev/null", "devices": [{"unit": 1, "map": bad}]})
    assert "sdm120" in str(e.value) or "found" in str(e.value)


@pytest.mark.micropython
def test_a_board_imports_only_the_map_it_names():
    proc = run_micropython(
        "import sys\n"
        "from edgeledger.agent.registermaps import get_map\n"
        "m = get_map('sdm120')\n"
        "print('maps', sorted(k for k in sys.modules if k.startswith('edgeledger.agent.registermaps.')))\n"
        "print('name', m['name'])\n")
    assert "maps ['edgeledger.agent.registermaps.sdm120']" in proc.stdout, proc.stdout
    assert "name sdm120" in proc.stdout

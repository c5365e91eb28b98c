"""Our Modbus RTU master (through the agent's source) against a real pymodbus
3.x RTU server on a socat pty pair, with a relay in between that can drop or
corrupt one reply."""
import struct

import pytest

from edgeledger.agent import sources
from edgeledger.agent.errors import SourceError
from edgeledger.agent.registermaps import get_map
from edgeledger.protocols import modbus

pytestmark = pytest.mark.interop

# f32 test values for the SDM630 map, by register address (exactly representable)
SDM_VALUES = {0x00: 230.5, 0x02: 231.25, 0x04: 229.75, 0x06: 5.5, 0x08: 4.25, 0x0A: 3.125,
              0x0C: 1265.5, 0x0E: 977.0, 0x10: 718.0, 0x34: 2960.5, 0x38: 3100.0,
              0x3C: -420.0, 0x3E: 0.953125, 0x46: 50.0, 0x48: 12345.5, 0x4A: 12.25,
              0x4C: 321.5, 0x4E: 0.5}


def sdm_registers():
    regs = [0] * 0x50
    for addr, v in SDM_VALUES.items():
        hi, lo = struct.unpack(">HH", struct.pack(">f", v))
        regs[addr], regs[addr + 1] = hi, lo
    return regs


DEVICES = {
    1: {"ir": sdm_registers()},
    7: {"ir": [0, 0xFF33, 546], "hr": [0] * 4},  # XY-MD02: -20.5 degC, 54.6 %RH
}

CFG = {"type": "modbus", "name": "bus1", "baud": 9600, "parity": "N", "interval_s": 10,
       "retries": 2, "timeout_s": 0.3, "inter_request_delay_s": 0.01,
       "devices": [{"unit": 1, "map": "sdm630", "prefix": "m1/"},
                   {"unit": 7, "map": "xy_md02", "prefix": "hall/"}]}


def expected_records(t):
    out = {}
    for addr, _kind, _order, scale, unit, name in get_map("sdm630")["entries"]:
        out["m1/" + name] = (SDM_VALUES[addr] * scale, unit)
    out["hall/temperature"] = (-20.5, "Cel")
    out["hall/humidity"] = (54.6, "%RH")
    return out


def split_status(records):
    """(data records, the one status record) of a poll where some devices failed."""
    status = [r for r in records if r[0].endswith("/status")]
    assert len(status) == 1, records
    return [r for r in records if not r[0].endswith("/status")], status[0]


def by_name(records):
    return {r[0]: (r[2], r.get(1)) for r in records}


def make_source(port, **extra):
    cfg = dict(CFG, port=port)
    cfg.update(extra)
    return sources.from_config(cfg)


def test_two_devices_values_match_server(modbus_bus):
    port, relay, server = modbus_bus(DEVICES)
    src = make_source(port)
    try:
        recs = src.poll(1764093000)
        assert by_name(recs) == expected_records(1764093000)
        assert all(r[6] == 1764093000 for r in recs)
        assert src.counters["bad_frames"] == 0 and src.counters["timeouts"] == 0
        assert src.master.counters["requests"] == 3  # two SDM blocks + one XY-MD02 block
    finally:
        src.close()


def test_exception_response_is_typed_and_counted(modbus_bus):
    port, relay, server = modbus_bus(DEVICES)
    bad_map = {"name": "bad", "function": 3, "max_block": 4,
               "entries": ((200, "u16", "big", 1, "count", "nowhere"),)}
    src = make_source(port, devices=[{"unit": 7, "map": bad_map, "prefix": "x/"},
                                     {"unit": 7, "map": "xy_md02", "prefix": "hall/"}])
    try:
        recs = src.poll(1)
        data, status = split_status(recs)
        assert sorted(by_name(data)) == ["hall/humidity", "hall/temperature"]
        assert src.counters["exceptions"] == 1
        assert "ILLEGAL DATA ADDRESS" in src.last_errors[0]
        assert "ILLEGAL DATA ADDRESS" in status[3]  # the failing device is signed, not silent
    finally:
        src.close()


def test_silent_unit_times_out_after_retries(modbus_bus):
    port, relay, server = modbus_bus(DEVICES)
    relay.silent_units.add(9)
    src = make_source(port, retries=1, devices=[{"unit": 9, "map": "xy_md02", "prefix": "ghost/"},
                                                 {"unit": 7, "map": "xy_md02", "prefix": "hall/"}])
    try:
        recs = src.poll(1)
        data, status = split_status(recs)
        assert sorted(by_name(data)) == ["hall/humidity", "hall/temperature"]
        assert src.counters["timeouts"] == 2 and src.counters["failed_requests"] == 1
        assert "timeout after 2 attempts" in src.last_errors[0]
        assert "unit 9" in status[3]
        # a bus where nobody answers is a source error
        lone = make_source(port, retries=0, devices=[{"unit": 9, "map": "xy_md02"}])
        src.close()
        with pytest.raises(SourceError):
            lone.poll(1)
        lone.close()
    finally:
        if src.port._s.is_open:
            src.close()


def test_dropped_reply_is_retried(modbus_bus):
    port, relay, server = modbus_bus(DEVICES)
    src = make_source(port, devices=[{"unit": 7, "map": "xy_md02", "prefix": "hall/"}])
    try:
        relay.drop_replies = 1
        recs = src.poll(1)
        assert by_name(recs) == {"hall/temperature": (-20.5, "Cel"), "hall/humidity": (54.6, "%RH")}
        assert relay.dropped >= 1
        assert src.counters["timeouts"] == 1 and src.counters["retries"] == 1
    finally:
        src.close()


def test_corrupted_reply_is_rejected_counted_and_retried(modbus_bus):
    port, relay, server = modbus_bus(DEVICES)
    src = make_source(port, devices=[{"unit": 7, "map": "xy_md02", "prefix": "hall/"}])
    try:
        relay.corrupt_replies = 1
        recs = src.poll(1)
        assert by_name(recs) == {"hall/temperature": (-20.5, "Cel"), "hall/humidity": (54.6, "%RH")}
        assert relay.corrupted == 1
        assert src.counters["bad_frames"] == 1 and src.counters["retries"] == 1
    finally:
        src.close()


def test_request_bytes_match_pymodbus_framer():
    """Our request ADUs are byte-identical to what pymodbus's own RTU framer builds."""
    from pymodbus.framer import FramerRTU
    from pymodbus.pdu import DecodePDU
    from pymodbus.pdu.register_message import ReadInputRegistersRequest, WriteMultipleRegistersRequest

    framer = FramerRTU(DecodePDU(False))
    ours = modbus.read_input_registers(7, 0x0001, 2).adu
    assert framer.buildFrame(ReadInputRegistersRequest(address=1, count=2, dev_id=7)) == ours
    ours = modbus.write_multiple_registers(3, 0x10, [1, 2, 0xFFFF]).adu
    assert framer.buildFrame(WriteMultipleRegistersRequest(address=0x10, registers=[1, 2, 0xFFFF], dev_id=3)) == ours

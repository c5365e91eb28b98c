"""The Modbus TCP source against a real pymodbus 3.x TCP server on loopback: the register
maps of the RTU source read over TCP, and hostile replies from that server (its reply
bytes rewritten before they are sent) ending as typed, counted failures."""
import struct

import pytest

from edgeledger.agent import sources
from edgeledger.agent.errors import SourceError
from tests.fieldbus.test_modbus_interop import DEVICES, by_name, expected_records
from tests.support.modbus_server import ModbusTcpServerThread
from tests.support.net import free_port

pytestmark = pytest.mark.interop


@pytest.fixture
def tcp_server():
    made = []

    def make(devices=DEVICES, mangle=None, port=None):
        s = ModbusTcpServerThread(port or free_port(), devices, mangle)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def tcp_source(port, **extra):
    cfg = {"type": "modbus_tcp", "name": "eth", "host": "127.0.0.1", "port": port, "timeout_s": 2.0,
           "retries": 1, "devices": [{"unit": 1, "map": "sdm630", "prefix": "m1/"},
                                     {"unit": 7, "map": "xy_md02", "prefix": "hall/"}]}
    cfg.update(extra)
    return sources.from_config(cfg)


def test_register_maps_over_tcp_match_the_server(tcp_server):
    server = tcp_server()
    src = tcp_source(server.port)
    try:
        recs = src.poll(1764093000)
        assert by_name(recs) == expected_records(1764093000)
        assert src.master.counters["requests"] == 3 and src.port.connects == 1
        assert by_name(src.poll(1764093010)) == expected_records(1764093010)  # the same connection
        assert src.port.connects == 1
    finally:
        src.close()


def _field(offset, value):
    """A mangler that overwrites the 16-bit MBAP field at ``offset`` with ``value``."""
    def mangle(adu):
        return adu[:offset] + struct.pack(">H", value) + adu[offset + 2:]
    return mangle


@pytest.mark.parametrize("mangle, reason, counter", [
    (_field(0, 0x4242), "transaction", "transaction_errors"),     # wrong transaction id
    (_field(2, 1), "stream", "stream_errors"),                    # protocol id not 0
    (_field(4, 0x0FFF), "stream", "stream_errors"),               # length over 254
    (lambda adu: adu[:4] + struct.pack(">H", struct.unpack(">H", adu[4:6])[0] - 2) + adu[6:],
     "mismatch", "responses"),                                    # length 2 short: byte count lies
    (lambda adu: adu[:-3], "truncated", "truncated"),             # the reply cut short
], ids=["transaction-id", "protocol-id", "length-over-max", "length-short", "truncated"])
def test_hostile_replies_are_typed_failures(tcp_server, mangle, reason, counter):
    server = tcp_server(mangle=mangle)
    src = tcp_source(server.port, timeout_s=1.0, devices=[{"unit": 7, "map": "xy_md02"}])
    try:
        with pytest.raises(SourceError, match="no device answered: unit 7 @1: %s after 2 attempts" % reason):
            src.poll(1)
    finally:
        src.close()
    m = src.master.counters
    assert m["failed"] == 1 and m["responses"] == 0  # the request failed, nothing was decoded
    if counter != "responses":
        assert m[counter] == 2
    if reason == "stream":
        assert src.port.connects >= 2  # a lost stream is opened anew before the retry


def test_exception_response_is_typed_and_other_devices_still_read(tcp_server):
    server = tcp_server()
    # unit 7 asked for registers pymodbus does not have: ILLEGAL DATA ADDRESS
    bad_map = {"function": 4, "entries": [[0x0100, "u16", "big", 1, "", "missing"]]}
    src = tcp_source(server.port, devices=[{"unit": 1, "map": "sdm630", "prefix": "m1/"},
                                           {"unit": 7, "map": bad_map, "prefix": "hall/"}])
    try:
        recs = src.poll(5)
    finally:
        src.close()
    status = [r for r in recs if r[0] == "eth/status"]
    assert status and "unit 7 @256: ILLEGAL DATA ADDRESS" in status[0][3]
    assert src.counters["exceptions"] == 1 and len(recs) == 19  # the SDM630's 18 records + status


def test_refused_connection_is_one_clear_error_and_a_restarted_device_is_read_again(tcp_server):
    port = free_port()
    src = tcp_source(port)
    try:
        with pytest.raises(SourceError, match="cannot connect to Modbus TCP device 127.0.0.1:%d" % port):
            src.poll(1)
        assert src.port.connect_failures == 1  # tried once for the poll's three requests
        server = tcp_server(port=port)
        assert by_name(src.poll(2)) == expected_records(2)
        server.close()  # the device goes away (closing our connection) and comes back
        tcp_server(port=port)
        assert by_name(src.poll(3)) == expected_records(3)
        assert src.port.connects == 2
    finally:
        src.close()

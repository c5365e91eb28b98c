"""IEC 62056-21 mode C: the agent's source against a simulated meter on a pty.

The meter follows the mode C exchange (sign-on at 300 baud, identification
with baud character '5', option select ACK 0 5 0, readout with BCC). ptys
ignore line speed, so the test checks that the source *asked* for each rate
at the right moment."""
import os
import select
import threading

from edgeledger.agent import sources
from edgeledger.protocols import iec62056
from tests.fieldbus.conftest import open_raw
from tests.fieldbus.vectors import IEC_BLOCK, IEC_IDENT


class SimMeter(threading.Thread):
    def __init__(self, path, messages):
        super().__init__(daemon=True)
        self.fd = open_raw(path)
        self.messages = list(messages)  # data message bytes, one per session
        self.acks = []
        self.requests = []
        self.error = None

    def _read_until(self, end, limit=64, timeout=5.0):
        buf = b""
        while not buf.endswith(end):
            r, _, _ = select.select([self.fd], [], [], timeout)
            if not r:
                raise AssertionError("meter timed out waiting for %r, have %r" % (end, buf))
            buf += os.read(self.fd, 1)
            assert len(buf) <= limit, buf
        return buf

    def run(self):
        try:
            for msg in self.messages:
                self.requests.append(self._read_until(b"!\r\n"))
                os.write(self.fd, IEC_IDENT)
                self.acks.append(self._read_until(b"\r\n"))
                os.write(self.fd, msg)
        except Exception as e:  # reported by the test
            self.error = e

    def close(self):
        os.close(self.fd)


def make_source(path):
    src = sources.from_config({"type": "iec62056", "port": path, "max_baud": 9600,
                               "prefix": "meter7/", "retries": 1}, sleep=lambda s: None)
    bauds = []
    real = src.port.set_baud

    def set_baud(b):
        bauds.append(b)
        real(b)

    src.port.set_baud = set_baud
    return src, bauds


def test_mode_c_readout(pty_pair):
    meter_end, agent_end = pty_pair("opt")
    meter = SimMeter(meter_end, [iec62056.encode_data_message(IEC_BLOCK)])
    meter.start()
    src, bauds = make_source(agent_end)
    try:
        recs = {r[0]: r for r in src.poll(1764093000)}
    finally:
        meter.join(5)
        meter.close()
        src.close()
    assert meter.error is None, meter.error
    assert meter.requests == [b"/?!\r\n"]
    assert meter.acks == [b"\x06050\r\n"]  # ACK, protocol 0, baud '5', data readout
    assert bauds == [300, 9600]
    assert src.last_ident.manufacturer == "ISK"
    assert recs["meter7/energy_import"] == {0: "meter7/energy_import", 1: "J", 2: 1234567 * 3600,
                                            6: 1764093000}
    assert recs["meter7/power_import"][2] == 1250 and recs["meter7/power_import"][1] == "W"
    assert recs["meter7/voltage_l1"][2] == 230.1
    assert recs["meter7/current_l1"][2] == 5.43
    assert recs["meter7/meter_address"][3] == "12345678"


def test_bad_bcc_is_counted_and_retried(pty_pair):
    meter_end, agent_end = pty_pair("opt")
    good = iec62056.encode_data_message(IEC_BLOCK)
    bad = bytearray(good)
    bad[-1] ^= 0x55
    meter = SimMeter(meter_end, [bytes(bad), good])
    meter.start()
    src, bauds = make_source(agent_end)
    try:
        recs = src.poll(1)
    finally:
        meter.join(5)
        meter.close()
        src.close()
    assert meter.error is None, meter.error
    assert src.counters["bad_frames"] == 1 and src.counters["readouts"] == 1
    assert len(recs) == 6
    assert bauds == [300, 9600, 300, 9600]  # a new session signs on at 300 baud again

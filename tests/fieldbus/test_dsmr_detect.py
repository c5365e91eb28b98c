"""DSMR version detection through the P1 source, as docs/field-buses.md promises: a source
with no ``version`` reads a DSMR 2.2 meter (9600 7E1, no CRC) and a DSMR 5 meter alike,
over a pty; a DSMR 5 telegram whose CRC was cut off never passes as 2.2. The rules
themselves (D1-D3 of protocols/dsmr.py) are checked on both runtimes in
codec_checks.check_dsmr_detect."""
import os
import threading

import pytest

from edgeledger.agent import sources
from edgeledger.agent.errors import SourceError
from edgeledger.agent.sources import dsmr as dsmr_source
from tests.fieldbus.conftest import open_raw
from tests.fieldbus.vectors import TELEGRAMS

pytestmark = pytest.mark.interop


def seven_e_one(data):
    """What an 8N1 reader sees of 7E1 characters: the even-parity bit lands in bit 7."""
    out = bytearray()
    for b in data:
        parity = bin(b).count("1") & 1
        out.append(b | (parity << 7))
    return bytes(out)


class Meter:
    """Writes ``frames`` to the meter end of a pty pair, again and again, until stopped (a
    P1 port pushes a telegram every 1 or 10 s; here every 0.05 s), and only while
    ``talks()`` says so."""

    def __init__(self, path, frames, talks=lambda: True):
        self.fd = open_raw(path)
        self.frames = frames
        self.talks = talks
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            for f in self.frames:
                if self.talks():
                    os.write(self.fd, f)
                self.stop.wait(0.05)

    def close(self):
        self.stop.set()
        self.t.join(5)
        os.close(self.fd)


def detecting_source(path, **extra):
    cfg = {"type": "dsmr", "port": path, "prefix": "home/", "timeout_s": 30}
    cfg.update(extra)
    return sources.from_config(cfg)


def test_dsmr22_meter_detected_without_version(pty_pair):
    # the published 2.2 telegram (dsmr_parser's test data) as a 2.2 meter sends it, 7E1;
    # on the code before detection this source required a CRC and never gave a reading
    meter_end, agent_end = pty_pair("p1")
    meter = Meter(meter_end, [seven_e_one(TELEGRAMS["v2.2"][0].encode())])
    src = detecting_source(agent_end)
    try:
        recs = {r[0]: r for r in src.poll(1000)}
    finally:
        meter.close()
        src.close()
    assert src.last_telegram.version == "2.2"
    assert recs["home/energy_import_t1"] == {0: "home/energy_import_t1", 1: "J", 2: 1001 * 3600, 6: 1000}
    assert recs["home/power_import"][2] == 1010 and recs["home/gas_1"][2] == 1.001


def test_dsmr5_without_its_crc_is_refused_then_real_telegram_read(pty_pair):
    meter_end, agent_end = pty_pair("p1")
    good = TELEGRAMS["v5"][0].encode()
    forged = good.replace(b"1-0:1.8.1(000004.426", b"1-0:1.8.1(000009.426")
    forged = forged[: forged.rindex(b"!") + 1] + b"\r\n"  # CRC cut off: would "pass as 2.2"
    fd = open_raw(meter_end)
    src = detecting_source(agent_end)
    try:
        src.begin(src.clock(), 1000)  # the poll starts (and drops older bytes) before the meter sends
        os.write(fd, forged + good)
        while True:
            recs = src.step(src.clock())
            if recs is not None:
                break
            src.sleep(max(0.0, src.wake_at() - src.clock()))
    finally:
        src.close()
        os.close(fd)
    recs = {r[0]: r for r in recs}
    assert recs["home/energy_import_t1"][2] == 4426 * 3600  # the CRC-checked value, not 9.426
    assert src.last_telegram.version == "5"
    assert src.counters["bad_frames"] == 1 and src.counters["telegrams"] == 1
    assert src.framer.require_crc is True  # rule D3: this meter now always needs a CRC


class SilentPort:
    def __init__(self):
        self.bauds = []

    def read(self, n, timeout):
        return b""

    def reset_input(self):
        pass

    def set_baud(self, baud):
        self.bauds.append(baud)

    def close(self):
        pass


@pytest.mark.parametrize("cfg, switches", [
    ({}, [9600, 115200, 9600]),          # neither version nor baud: both P1 speeds in turn
    ({"baud": 115200}, []),              # a configured baud is kept
    ({"version": "5"}, []),              # a configured version fixes the speed
])
def test_detecting_source_tries_both_p1_speeds(cfg, switches):
    port = SilentPort()
    clock = [0.0]
    src = dsmr_source.from_config(dict({"type": "dsmr", "timeout_s": 1}, **cfg), port=port,
                                  clock=lambda: clock[0])
    src.sleep = lambda s: clock.__setitem__(0, clock[0] + s)
    for _ in range(3):
        with pytest.raises(SourceError, match="no valid telegram"):
            src.poll(0)
    assert port.bauds == switches and src.counters["baud_switches"] == len(switches)

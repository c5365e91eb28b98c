"""``edgeledger agent test --once``: each configured source read once over a real line (a
pymodbus RTU server behind a pty relay, a DSMR meter on a pty), values printed with units,
implausible values flagged, source errors one line and a non-zero exit."""
import os
import termios

import pytest

from edgeledger.gateway import cli
from tests.fieldbus.test_dsmr_detect import Meter, seven_e_one
from tests.fieldbus.vectors import TELEGRAMS

pytestmark = pytest.mark.interop

# An XY-MD02-like sensor at unit 7: register 0 holds 13107 (0x3333), register 1 the
# temperature 25.3 degC in 0.1 degC steps, register 2 humidity 54.6 %RH.
SENSOR = {7: {"ir": [13107, 253, 546]}}
# The same sensor read with the data-sheet register numbers taken as wire addresses minus
# one too many: temperature from register 0, which gives 1310.7 degC.
WRONG_MAP = ('{ function = 4, entries = [[0, "u16", "big", 0.1, "Cel", "temperature"], '
             '[2, "u16", "big", 0.1, "%RH", "humidity"]] }')

AGENT = 'device = "meter-01"\nsite = "plant-a"\nkey_file = "meter-01.key"\n'


def modbus_toml(port, map_text='"xy_md02"', timeout_s=0.3):
    return AGENT + ('[[sources]]\ntype = "modbus"\nname = "hall-bus"\nport = "%s"\nretries = 1\n'
                    'timeout_s = %s\n[[sources.devices]]\nunit = 7\nprefix = "hall/"\nmap = %s\n'
                    % (port, timeout_s, map_text))


def run_test(tmp_path, capsys, toml):
    path = tmp_path / "agent.toml"
    path.write_text(toml)
    capsys.readouterr()
    code = cli.main(["agent", "test", "--once", "--config", str(path)])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_correct_map_prints_values_with_units(modbus_bus, tmp_path, capsys):
    port, _relay, _server = modbus_bus(SENSOR)
    code, lines, err = run_test(tmp_path, capsys, modbus_toml(port))
    assert code == 0, (lines, err)
    assert lines[0].startswith("source hall-bus (modbus): 2 records in ")
    assert lines[1].split() == ["hall/temperature", "25.3", "Cel"]
    assert lines[2].split() == ["hall/humidity", "54.6", "%RH"]
    assert not any("WARNING" in line for line in lines)


def test_wrong_map_is_flagged_as_implausible(modbus_bus, tmp_path, capsys):
    port, _relay, _server = modbus_bus(SENSOR)
    code, lines, err = run_test(tmp_path, capsys, modbus_toml(port, WRONG_MAP))
    assert code == 0, (lines, err)  # the meter answered: a warning, not an error
    temp = [line for line in lines if "hall/temperature" in line]
    assert len(temp) == 1 and "1310.7 Cel   WARNING temperature 1310.7 Cel is outside -60..200 Cel" in temp[0]
    assert "check the register map" in temp[0]
    assert not any("WARNING" in line for line in lines if "hall/humidity" in line)


@pytest.mark.parametrize("fault, reason", [("silent", "timeout after 2 attempts"),
                                           ("corrupt", "crc after 2 attempts")])
def test_no_reply_or_bad_crc_is_one_error_line_and_exit_1(modbus_bus, tmp_path, capsys, fault, reason):
    port, relay, _server = modbus_bus(SENSOR)
    if fault == "silent":
        relay.silent_units.add(7)
    else:
        relay.corrupt_replies = 1000
    code, lines, err = run_test(tmp_path, capsys, modbus_toml(port))
    assert code == 1
    assert lines == ["source hall-bus (modbus): ERROR hall-bus: no device answered: unit 7 @1: %s" % reason]


def test_silent_device_of_a_bus_is_named_and_the_others_listed(modbus_bus, tmp_path, capsys):
    port, relay, _server = modbus_bus({7: SENSOR[7], 8: SENSOR[7]})
    relay.silent_units.add(8)
    toml = modbus_toml(port) + '[[sources.devices]]\nunit = 8\nprefix = "store/"\nmap = "xy_md02"\n'
    code, lines, err = run_test(tmp_path, capsys, toml)
    assert code == 1
    assert [line.split()[:3] for line in lines[1:3]] == [["hall/temperature", "25.3", "Cel"],
                                                          ["hall/humidity", "54.6", "%RH"]]
    assert lines[3:] == ["source hall-bus (modbus): ERROR unit 8 @1: timeout after 2 attempts"]


def test_missing_port_is_one_error_line_and_exit_1(tmp_path, capsys):
    code, lines, err = run_test(tmp_path, capsys, modbus_toml(str(tmp_path / "ttyUSB9")))
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("source hall-bus (modbus): ERROR cannot open serial port %s" % (tmp_path / "ttyUSB9"))


def dsmr_test(pty_pair, tmp_path, capsys, telegram, timeout_s, talks_at=None):
    """``agent test`` on a DSMR source without version or baud, a meter on the pty sending
    ``telegram``, at any speed or only once the agent's port is set to ``talks_at``."""
    meter_end, agent_end = pty_pair("p1")
    watch = os.open(agent_end, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)  # sees the agent's termios
    talks = (lambda: True) if talks_at is None else (lambda: termios.tcgetattr(watch)[5] == talks_at)
    meter = Meter(meter_end, [telegram], talks)
    try:
        return run_test(tmp_path, capsys, AGENT + '[[sources]]\ntype = "dsmr"\nname = "p1"\nport = "%s"\n'
                        'prefix = "home/"\ntimeout_s = %d\n' % (agent_end, timeout_s))
    finally:
        meter.close()
        os.close(watch)


def test_dsmr_meter_on_a_pty(pty_pair, tmp_path, capsys):
    code, lines, err = dsmr_test(pty_pair, tmp_path, capsys, TELEGRAMS["v5"][0].encode(), 30)
    assert code == 0, (lines, err)
    assert lines[0].startswith("source p1 (dsmr): ")
    values = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert values["home/energy_import_t1"] == [str(4426 * 3600), "J"]
    assert values["home/voltage_l1"] == ["230", "V"]
    assert not any("WARNING" in line for line in lines)


def test_dsmr22_meter_found_at_9600_baud_without_version_or_baud(pty_pair, tmp_path, capsys):
    """A DSMR 2.2 meter (9600 baud 7E1, no CRC) and a config that names neither version nor
    baud: the first reading at 115200 gets nothing, the command tries 9600 and reads it.
    A pty carries any speed: this meter talks only once the agent listens at 9600."""
    code, lines, err = dsmr_test(pty_pair, tmp_path, capsys, seven_e_one(TELEGRAMS["v2.2"][0].encode()), 5,
                                 talks_at=termios.B9600)
    assert code == 0, (lines, err)
    assert lines[0] == "source p1 (dsmr): p1: no valid telegram within 5.0 s; trying 9600 baud"
    values = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert values["home/energy_import_t1"] == [str(1001 * 3600), "J"] and values["home/gas_1"] == ["1.001", "m3"]

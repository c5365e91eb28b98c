"""Every DSMR test telegram parsed by our codec and by dsmr_parser
(ndokter/dsmr_parser, the reference Python implementation): same values and
units (ours converted to SenML primary units), same timestamps; corrupted CRCs
rejected by ours; and the DSMR source reading a meter on a pty."""
import calendar
import os
import threading
import time
from decimal import Decimal

import pytest

from edgeledger.agent import sources
from edgeledger.protocols import dsmr, obis
from tests.fieldbus.conftest import open_raw
from tests.fieldbus.vectors import TELEGRAMS

pytestmark = pytest.mark.interop

# dsmr_parser value name -> our record name (channel-less objects)
NAMES = {
    "ELECTRICITY_USED_TARIFF_1": "energy_import_t1",
    "ELECTRICITY_USED_TARIFF_2": "energy_import_t2",
    "ELECTRICITY_DELIVERED_TARIFF_1": "energy_export_t1",
    "ELECTRICITY_DELIVERED_TARIFF_2": "energy_export_t2",
    "CURRENT_ELECTRICITY_USAGE": "power_import",
    "CURRENT_ELECTRICITY_DELIVERY": "power_export",
    "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE": "power_import_l1",
    "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE": "power_import_l2",
    "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE": "power_import_l3",
    "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE": "power_export_l1",
    "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE": "power_export_l2",
    "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE": "power_export_l3",
    "INSTANTANEOUS_VOLTAGE_L1": "voltage_l1",
    "INSTANTANEOUS_VOLTAGE_L2": "voltage_l2",
    "INSTANTANEOUS_VOLTAGE_L3": "voltage_l3",
    "INSTANTANEOUS_CURRENT_L1": "current_l1",
    "INSTANTANEOUS_CURRENT_L2": "current_l2",
    "INSTANTANEOUS_CURRENT_L3": "current_l3",
    "BELGIUM_CURRENT_AVERAGE_DEMAND": "demand_average",
    "BELGIUM_MAXIMUM_DEMAND_MONTH": "demand_max_month",
    "ACTUAL_TRESHOLD_ELECTRICITY": "limiter_threshold",
    "FUSE_THRESHOLD_L1": "fuse_threshold_l1",
    "ACTUAL_SWITCH_POSITION": "breaker_state",
    "SHORT_POWER_FAILURE_COUNT": "power_failures",
    "LONG_POWER_FAILURE_COUNT": "long_power_failures",
    "VOLTAGE_SAG_L1_COUNT": "voltage_sags_l1",
    "VOLTAGE_SAG_L2_COUNT": "voltage_sags_l2",
    "VOLTAGE_SAG_L3_COUNT": "voltage_sags_l3",
    "VOLTAGE_SWELL_L1_COUNT": "voltage_swells_l1",
    "VOLTAGE_SWELL_L2_COUNT": "voltage_swells_l2",
    "VOLTAGE_SWELL_L3_COUNT": "voltage_swells_l3",
    "EQUIPMENT_IDENTIFIER": "equipment_id",
    "BELGIUM_EQUIPMENT_IDENTIFIER": "equipment_id",
    "ELECTRICITY_ACTIVE_TARIFF": "tariff",
    "BELGIUM_VERSION_INFORMATION": "p1_version_be",
    "P1_MESSAGE_HEADER": "p1_version",
}
# objects we deliberately keep only in the raw telegram (see dsmr.LAYOUTS)
RAW_ONLY = {"POWER_EVENT_FAILURE_LOG", "BELGIUM_MAXIMUM_DEMAND_13_MONTHS", "TEXT_MESSAGE",
            "TEXT_MESSAGE_CODE", "P1_MESSAGE_TIMESTAMP", "MBUS_DEVICES", "DEVICE_TYPE",
            "EQUIPMENT_IDENTIFIER_GAS", "VALVE_POSITION_GAS", "GAS_METER_READING",
            "HOURLY_GAS_METER_READING"}


def reference(name):
    from dsmr_parser import telegram_specifications
    from dsmr_parser.parsers import TelegramParser

    text, version, spec = TELEGRAMS[name]
    spec = getattr(telegram_specifications, spec)
    return TelegramParser(spec, apply_checksum_validation=spec["checksum_support"]).parse(text)


def ours(name):
    text, version, _ = TELEGRAMS[name]
    raw, used = dsmr.decode_telegram(text.encode(), require_crc=version not in ("2.2", "3.0"))
    tg = dsmr.parse_telegram(raw)
    return tg, {r[0]: r for r in dsmr.to_records(tg, "", now=123)}


def convert(value, unit):
    senml_unit, factor = obis.UNITS[unit.upper()]
    return Decimal(value) * factor, senml_unit


def unix(dt):
    return calendar.timegm(dt.utctimetuple())


@pytest.mark.parametrize("name", sorted(TELEGRAMS))
def test_same_values_as_dsmr_parser(name):
    ref = reference(name)
    tg, recs = ours(name)
    checked = 0
    for key, obj in ref:
        if key in RAW_ONLY:
            continue
        assert key in NAMES, "dsmr_parser object %s has no counterpart in our records" % key
        if key == "P1_MESSAGE_HEADER":
            assert recs["p1_version"][3] == obj.value
            continue
        rec = recs[NAMES[key]]
        if obj.unit:
            want, want_unit = convert(obj.value, obj.unit)
            assert Decimal(str(rec[2])) == want, (key, rec, obj.value)
            assert rec[1] == want_unit, key
        elif 3 in rec:
            assert rec[3] == obj.value, key
        else:  # a count or state: dsmr_parser keeps some as int, some as str
            assert rec[2] == int(obj.value), key
        if key == "BELGIUM_MAXIMUM_DEMAND_MONTH":
            assert rec[6] == unix(obj.datetime)
        checked += 1
    assert checked >= 10
    # the telegram's own timestamp
    if "P1_MESSAGE_TIMESTAMP" in dict(ref):
        assert tg.timestamp == unix(ref.P1_MESSAGE_TIMESTAMP.value)
        assert all(r[6] == tg.timestamp for k, r in recs.items()
                   if not k.startswith(("gas_", "water_", "demand_max")) or k.endswith("_id"))
    # M-Bus readings: value, unit and their own capture time
    readings = ("GAS_METER_READING", "HOURLY_GAS_METER_READING", "MBUS_METER_READING")
    ref_gas = []
    for key, obj in ref:
        if key in readings:
            ref_gas.append(obj)
        if key == "MBUS_DEVICES" and obj:
            for dev in obj:
                for k2, o2 in dev:
                    if k2 in readings and o2 not in ref_gas:
                        ref_gas.append(o2)
    mbus_recs = [r for k, r in recs.items() if k.startswith(("gas_", "water_")) and not k.endswith("_id")]
    for o in ref_gas:
        match = [r for r in mbus_recs if Decimal(str(r[2])) == o.value and r[1] == o.unit]
        assert match, (name, o.value)
        if o.datetime.tzinfo is not None:  # dsmr_parser leaves flagless v2.2 times naive
            assert match[0][6] == unix(o.datetime)
    assert len(mbus_recs) == len({(o.value, o.unit) for o in ref_gas}), name


@pytest.mark.parametrize("name", [n for n in sorted(TELEGRAMS) if TELEGRAMS[n][1] not in ("2.2", "3.0")])
def test_corrupted_crc_rejected(name):
    from dsmr_parser.exceptions import InvalidChecksumError
    from dsmr_parser.parsers import TelegramParser

    text = TELEGRAMS[name][0]
    bad = text.replace("1-0:1.8.2(0", "1-0:1.8.2(1", 1)
    assert bad != text
    with pytest.raises(dsmr.DsmrCrcError):
        dsmr.decode_telegram(bad.encode())
    with pytest.raises(InvalidChecksumError):  # the reference agrees
        TelegramParser.validate_checksum(bad)


def test_dsmr_source_on_pty(pty_pair):
    """A meter pushing telegrams (one corrupted) to the P1 source over a pty."""
    meter_end, agent_end = pty_pair("p1")
    fd = open_raw(meter_end)
    good = TELEGRAMS["v5"][0].encode()
    bad = good.replace(b"1-0:1.8.1(000004.426", b"1-0:1.8.1(000004.427")
    src = sources.from_config({"type": "dsmr", "port": agent_end, "version": "5",
                               "prefix": "home/", "timeout_s": 5})

    def meter():
        time.sleep(0.2)
        for chunk in (good[700:], b"\x00garbage", bad, good):  # mid-telegram start, junk, bad CRC
            os.write(fd, chunk)
            time.sleep(0.05)

    t = threading.Thread(target=meter)
    t.start()
    try:
        recs = {r[0]: r for r in src.poll(999)}
    finally:
        t.join()
        src.close()
        os.close(fd)
    assert recs["home/energy_import_t1"][2] == 4426 * 3600  # 4.426 kWh in J
    assert recs["home/energy_import_t1"][6] == 1483381202  # 17-01-02 19:20:02 W
    assert recs["home/gas_1"][2] == 0.107 and recs["home/gas_1"][6] == 1483369805
    assert src.counters["bad_frames"] == 1
    assert src.counters["telegrams"] == 1

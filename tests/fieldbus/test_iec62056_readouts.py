"""IEC 62056-21 readouts published from real meters: billing periods and short codes.

Sources (data blocks as published; only lines that repeat an unused billing slot are cut):

* Logarex LK13 (German eHZ, 2017 firmware): the ``sample_logarex_data_block`` test vector of an
  open-source Python IEC 62056-21 parser (public GitHub test data, read 2026-12).
* Landis+Gyr ZMD310 (``/LGZ5\\2ZMD3104107.B40``): the ``sample_landis_gyr_data_message_frame``
  of the same test suite, a readout with 15 billing periods, most of them unused (``*00``).
"""
import pytest

from edgeledger.agent.sources.iec62056 import data_sets_to_records
from edgeledger.protocols import iec62056, obis

LOGAREX = (
    b"1-0:96.1.0*255(001LOG0065282495)\r\n"
    b"1-0:1.8.0*255(015882.6927*kWh)\r\n"
    b"1-0:2.8.0*255(000219.4882*kWh)\r\n"
    b"1-0:16.7.0*255(000028*W)\r\n"
    b"1-0:32.7.0*255(235.2*V)\r\n"
    b"1-0:52.7.0*255(235.8*V)\r\n"
    b"1-0:72.7.0*255(237.1*V)\r\n"
    b"1-0:31.7.0*255(000.90*A)\r\n"
    b"1-0:51.7.0*255(002.28*A)\r\n"
    b"1-0:71.7.0*255(001.85*A)\r\n"
    b"1-0:81.7.1*255(117*deg)\r\n"
    b"1-0:14.7.0*255(49.9*Hz)\r\n"
    b"1-0:1.8.0*96(00019.3*kWh)\r\n"
    b"1-0:1.8.0*97(00158.7*kWh)\r\n"
    b"1-0:1.8.0*98(01074.7*kWh)\r\n"
    b"1-0:1.8.0*99(09027.4*kWh)\r\n"
    b"1-0:1.8.0*100(15882.6*kWh)\r\n"
    b"1-0:0.2.0*255(ver.03,432F,20170504)\r\n"
    b"1-0:96.90.2*255(0F66)\r\n"
    b"1-0:97.97.0*255(00000000)\r\n"
    b"!\r\n"
)

LANDIS_GYR = (
    b"1-1:F.F(00000000)\r\n"
    b"1-1:0.0.0(001LGZ0056859504)\r\n"
    b"1-1:0.9.1(185532)\r\n"
    b"1-1:0.9.2(210410)\r\n"
    b"1-1:0.1.0(01)\r\n"
    b"1-1:0.1.2*01(2104010000)\r\n"
    b"1-1:0.1.2*00(0000000000)\r\n"
    b"1-1:1.5.0(00.030*kW)\r\n"
    b"1-1:1.6.0(10.102*kW)(2104070015)\r\n"
    b"1-1:1.6.0*01(06.130)(2101281415)\r\n"
    b"1-1:1.6.0*00(00.000)(0000000000)\r\n"
    b"1-1:1.6.0*00(00.000)(0000000000)\r\n"
    b"1-1:1.8.0(0000094.5*kWh)\r\n"
    b"1-1:1.8.0*01(0000010.2)\r\n"
    b"1-1:1.8.0*00(0000000.0)\r\n"
    b"1-1:1.8.0*00(0000000.0)\r\n"
    b"1-1:2.8.0(0000293.9*kWh)\r\n"
    b"1-1:2.8.0*01(0000106.8)\r\n"
    b"1-1:C.5(0000E0F0)\r\n"
    b"1-1:C.7.0(00000008)\r\n"
    b"1-1:0.2.0(B40)\r\n"
    b"1-1:32.7.0(235.2*V)\r\n"
    b"1-1:52.7.0(235.0*V)\r\n"
    b"1-1:72.7.0(237.6*V)\r\n"
    b"1-1:31.7.0(003.54*A)\r\n"
    b"1-1:36.7.0(-000.82*kW)\r\n"
    b"1-1:56.7.0( 001.67*kW)\r\n"
    b"1-1:76.7.0(-000.81*kW)\r\n"
    b"1-1:16.7.0( 000.03*kW)\r\n"
    b"!\r\n"
)

T = 1767225600


def records(block):
    recs = data_sets_to_records(iec62056.parse_data_sets(block), "m/", T)
    names = [r[0] for r in recs]
    assert len(names) == len(set(names)), "one name twice in one readout: %r" % names
    assert all(r[6] == T for r in recs)
    return dict((r[0], (r.get(2, r.get(3)), r.get(1))) for r in recs)


def test_logarex_billing_periods_are_signed_under_their_own_names():
    got = records(LOGAREX)
    assert got["m/energy_import"] == (57177693720, "J")  # 15882.6927 kWh, the current value
    assert got["m/energy_import/period_96"] == (69480000, "J")
    assert got["m/energy_import/period_100"] == (57177360000, "J")
    assert {n for n in got if "/period_" in n} == {"m/energy_import/period_%d" % f for f in range(96, 101)}
    assert got["m/power_net"] == (28, "W")  # 16.7.0
    assert (got["m/voltage_l1"], got["m/voltage_l3"], got["m/frequency"]) == \
        ((235.2, "V"), (237.1, "V"), (49.9, "Hz"))
    assert got["m/meter_serial"] == ("001LOG0065282495", None)
    assert got["m/error_register"] == ("00000000", None)


def test_landis_gyr_billing_values_take_the_unit_of_their_current_value():
    got = records(LANDIS_GYR)
    assert got["m/error_register"] == ("00000000", None)  # F.F is 97.97.0
    assert got["m/energy_import"] == (340200000, "J")  # 94.5 kWh
    assert got["m/energy_import/period_1"] == (36720000, "J")  # 10.2, no unit printed: kWh
    assert got["m/energy_export/period_1"] == (384480000, "J")
    assert got["m/demand_max_month/period_1"] == (6130, "W")
    assert got["m/energy_import/period_0"] == (0, "J")  # unused slots: signed once, not 14 times
    assert (got["m/power_l1"], got["m/power_l2"], got["m/power_net"]) == ((-820, "W"), (1670, "W"), (30, "W"))


@pytest.mark.parametrize("code,key,name", [
    ("32.7", "32.7.0", "voltage_l1"), ("52.7", "52.7.0", "voltage_l2"), ("72.7", "72.7.0", "voltage_l3"),
    ("15.8.0", "15.8.0", "energy_absolute"), ("16.7.0", "16.7.0", "power_net"),
    ("F.F", "97.97.0", "error_register"), ("C.1.0", "96.1.0", "meter_serial"),
    ("1-0:1.8.0&04", "1.8.0", "energy_import"), ("1.8.0.96", "1.8.0", "energy_import"),
])
def test_short_codes_produce_records(code, key, name):
    assert obis.obis_key(code) == key and obis.OBIS[key][0] == name
    (rec,) = data_sets_to_records(iec62056.parse_data_sets(("%s(1*V)\r\n!\r\n" % code).encode()), "", T)
    period = obis.billing_period(code)
    assert rec[0] == (name if period is None else "%s/period_%d" % (name, period))


def test_billing_period_of_each_form():
    assert [obis.billing_period(c) for c in ("1.8.0", "1.8.0*255", "1-0:1.8.0*96", "1.8.0&04", "1.8.0.01")] \
        == [None, None, 96, 4, 1]
    with pytest.raises(obis.ObisValueError, match="value group F"):
        obis.billing_period("1.8.0*x")

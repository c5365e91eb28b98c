"""OBIS codes, meter units and meter timestamps shared by IEC 62056-21 and DSMR P1.

OBIS (IEC 62056-61) names a quantity as ``A-B:C.D.E*F``; the readouts in this
package use the short forms ``C.D.E`` (IEC 62056-21 data sets) and
``A-B:C.D.E`` (DSMR). ``obis_key`` reduces both to ``C.D.E`` for the table
below; the M-Bus channel (B) of DSMR objects is handled by the DSMR module.

SenML units: every record carries a *primary* SenML unit (RFC 8428 §12.1 and
RFC 8798 §2: J, W, var, vars, VA, V, A, m3, Hz, s, ...). Meters print scaled
units (kWh, kW, kvarh); UNITS maps each to its primary unit and an integer
factor, and ``scaled_value`` applies it with integer arithmetic so that
``001581.123*kWh`` becomes exactly 5692042800 J.
"""
from edgeledger.protocols.errors import DecodeError


class ObisValueError(DecodeError):
    """A meter value, unit or timestamp is malformed."""


# meter unit (upper-cased) -> (SenML unit, factor to that unit)
UNITS = {
    "KWH": ("J", 3600000),
    "WH": ("J", 3600),
    "MWH": ("J", 3600000000),
    "GJ": ("J", 1000000000),
    "MJ": ("J", 1000000),
    "KW": ("W", 1000),
    "W": ("W", 1),
    "MW": ("W", 1000000),
    "KVARH": ("vars", 3600000),
    "VARH": ("vars", 3600),
    "KVAR": ("var", 1000),
    "VAR": ("var", 1),
    "KVAH": ("VAs", 3600000),
    "KVA": ("VA", 1000),
    "VA": ("VA", 1),
    "V": ("V", 1),
    "KV": ("V", 1000),
    "A": ("A", 1),
    "M3": ("m3", 1),
    "HZ": ("Hz", 1),
    "S": ("s", 1),
    "H": ("s", 3600),
    "MIN": ("s", 60),
    "°C": ("Cel", 1),
}


# Digits in one meter number. DSMR registers are printed F9(3) (9 digits, 3 of them
# decimals) or shorter, IEC 62056-21 registers likewise around 8..12 digits; 32 leaves
# room for any meter and keeps every scaled value far inside a float's range, so no
# conversion below can overflow.
MAX_DIGITS = 32
# Scaled integer values stay in CBOR's integer range (major types 0/1); beyond it the
# value is given as a float (reading.py refuses integers outside that range).
_MIN_INT, _MAX_INT = -(2 ** 64), 2 ** 64 - 1


def _ascii_digits(t):
    # str.isdigit() is True for "²" or "٣", which int() refuses or reads as a digit
    for c in t:
        if not "0" <= c <= "9":
            return False
    return True


def parse_decimal(text):
    """Split a meter decimal such as ``-001581.123`` into ``(mantissa, decimals)``.

    Raises ObisValueError if ``text`` is not a plain decimal number of at most
    MAX_DIGITS ASCII digits.
    """
    t = text.strip()
    neg = t.startswith("-")
    if neg or t.startswith("+"):
        t = t[1:]
    whole, _, frac = t.partition(".")
    digits = whole + frac
    if not digits or not _ascii_digits(digits) or len(digits) > MAX_DIGITS:
        raise ObisValueError("expected a decimal number of 1..%d digits, found %r" % (MAX_DIGITS, text))
    m = int(digits)
    return (-m if neg else m), len(frac)


def parse_int(text):
    """A meter integer (counter, state, device type). Raises ObisValueError unless ``text``
    is an optionally signed run of 1..MAX_DIGITS ASCII digits."""
    mantissa, decimals = parse_decimal(text)
    if decimals or "." in text:
        raise ObisValueError("expected an integer, found %r" % (text,))
    return mantissa


def senml_record(name, kind, value, unit, t=None):
    """One SenML record (RFC 8428 CBOR labels) for an OBIS value of table ``kind``:
    "str" (vs), "int" (v, as read) or a number converted by ``scaled_value`` (v, u).
    Raises ObisValueError for a malformed number."""
    rec = {0: name}
    if kind == "str":
        rec[3] = value
    elif kind == "int":
        rec[2] = parse_int(value)
    else:
        v, u = scaled_value(value, unit)
        rec[2] = v
        if u:
            rec[1] = u
    if t is not None:
        rec[6] = t
    return rec


def scaled_value(text, unit):
    """Convert a meter value and unit into ``(value, senml_unit)``.

    The value is an int when the conversion is exact, else a float. A unit
    not in UNITS is kept as printed (with factor 1). Raises ObisValueError for
    a malformed number.
    """
    mantissa, decimals = parse_decimal(text)
    senml_unit, factor = UNITS.get(unit.upper(), (unit, 1)) if unit else (None, 1)
    num = mantissa * factor
    den = 10 ** decimals
    if num % den == 0 and _MIN_INT <= num // den <= _MAX_INT:
        return num // den, senml_unit
    return num / den, senml_unit


# IEC 62056-61 §4.x: in value groups C and D of a short code the letters C, F, L, P stand
# for 96, 97, 98, 99 (e.g. ``F.F`` is 97.97, the error register; ``C.1.0`` the serial number).
LETTER_GROUPS = {"C": "96", "F": "97", "L": "98", "P": "99"}
# Value group F 255 (or no F) is the current value; any other F names a billing period or
# historical value (e.g. ``1.8.0*96``, ``1.8.0&04``).
CURRENT_PERIOD = 255


def _split(reference):
    """``A-B:C.D.E*F`` (or ``&F``, or ``C.D.E.F``) -> (["C", "D", "E"], F text or None)."""
    ref = reference.strip()
    if ":" in ref:
        ref = ref.split(":", 1)[1]
    period = None
    for sep in "*&":
        if sep in ref:
            ref, period = ref.split(sep, 1)
    parts = ref.split(".")
    if len(parts) == 4 and period is None:
        period = parts[3]
    parts = [LETTER_GROUPS.get(p, p) for p in parts[:3]]
    while len(parts) < 3:  # short codes: "32.7" is 32.7.0 (E omitted)
        parts.append("0")
    return parts, period


def obis_key(reference):
    """``1-0:1.8.0*255`` / ``1.8.0.255`` / ``1.8.0`` / ``1.8`` -> ``1.8.0`` (C.D.E); the
    letters C, F, L, P in groups C and D become 96..99 (``F.F`` -> ``97.97.0``)."""
    return ".".join(_split(reference)[0])


def billing_period(reference):
    """Value group F as an int when it names a billing period or historical value
    (``1.8.0*96`` -> 96), None for the current value (no F, or 255).

    Raises ObisValueError when F is not a number."""
    period = _split(reference)[1]
    if period is None:
        return None
    if not period.isdigit():
        raise ObisValueError("OBIS value group F must be a number, found %r in %r" % (period, reference))
    f = int(period)
    return None if f == CURRENT_PERIOD else f


# ---------------------------------------------------------------------------
# Timestamps. DSMR 5.0.2 §6.4 and e-MUCS P1 §"Data formats": YYMMDDhhmmssX,
# local time of the meter (CET/CEST for NL and BE) where X = "S" while DST is
# active (UTC+2) and "W" while it is not (UTC+1). No tz database is needed.

DST_OFFSET_S = {"S": 7200, "W": 3600}


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _eu_dst_active_utc(unix):
    """EU rule (Directive 2000/84/EC): summer time from 01:00 UTC on the last
    Sunday of March to 01:00 UTC on the last Sunday of October."""
    days = unix // 86400
    # civil year of `days`
    y = 1970 + days // 366
    while days_from_civil(y + 1, 1, 1) <= days:
        y += 1

    def last_sunday(month):
        d = days_from_civil(y, month, 31)
        # 1970-01-01 was a Thursday (weekday 3 with Monday = 0)
        return d - ((d + 3) % 7 + 1) % 7

    start = last_sunday(3) * 86400 + 3600
    end = last_sunday(10) * 86400 + 3600
    return start <= unix < end


def parse_timestamp(text):
    """``YYMMDDhhmmssX`` -> unix seconds (int).

    With X = S or W the offset follows from the flag. Without a flag (DSMR
    2.2/3.0 gas timestamps) the EU summer-time rule for CET decides; in the
    repeated October hour the earlier (summer) reading is taken. Raises
    ObisValueError for a malformed or impossible timestamp.
    """
    t = text.strip()
    flag = None
    if len(t) == 13:
        flag = t[12]
        t = t[:12]
        if flag not in DST_OFFSET_S:
            raise ObisValueError("timestamp DST flag must be S or W, found %r" % (flag,))
    if len(t) != 12 or not _ascii_digits(t):
        raise ObisValueError("expected timestamp YYMMDDhhmmss[SW], found %r" % (text,))
    yy, mo, dd, hh, mi, ss = [int(t[i : i + 2]) for i in range(0, 12, 2)]
    if not (1 <= mo <= 12 and 1 <= dd <= 31 and hh <= 23 and mi <= 59 and ss <= 59):
        raise ObisValueError("timestamp fields out of range: %r" % (text,))
    local = days_from_civil(2000 + yy, mo, dd) * 86400 + hh * 3600 + mi * 60 + ss
    if flag is not None:
        return local - DST_OFFSET_S[flag]
    summer = local - 7200
    if _eu_dst_active_utc(summer):
        return summer
    return local - 3600


# ---------------------------------------------------------------------------
# OBIS C.D.E -> (record name, kind). Kinds:
#   "num"   value with a unit (converted by UNITS)
#   "int"   a plain integer (counter, state, device type)
#   "str"   kept as a SenML string value (identifiers, tariff, versions)
# Codes not in the table are not turned into records (they are counted).

OBIS = {
    # electricity energy registers (IEC 62056-61 C=1..4, D=8)
    "1.8.0": ("energy_import", "num"),
    "1.8.1": ("energy_import_t1", "num"),
    "1.8.2": ("energy_import_t2", "num"),
    "2.8.0": ("energy_export", "num"),
    "2.8.1": ("energy_export_t1", "num"),
    "2.8.2": ("energy_export_t2", "num"),
    "3.8.0": ("reactive_energy_import", "num"),
    "4.8.0": ("reactive_energy_export", "num"),
    # instantaneous values (D=7)
    "1.7.0": ("power_import", "num"),
    "2.7.0": ("power_export", "num"),
    "3.7.0": ("reactive_power_import", "num"),
    "4.7.0": ("reactive_power_export", "num"),
    "9.7.0": ("apparent_power_import", "num"),
    "10.7.0": ("apparent_power_export", "num"),
    "21.7.0": ("power_import_l1", "num"),
    "41.7.0": ("power_import_l2", "num"),
    "61.7.0": ("power_import_l3", "num"),
    "22.7.0": ("power_export_l1", "num"),
    "42.7.0": ("power_export_l2", "num"),
    "62.7.0": ("power_export_l3", "num"),
    "32.7.0": ("voltage_l1", "num"),
    "52.7.0": ("voltage_l2", "num"),
    "72.7.0": ("voltage_l3", "num"),
    "31.7.0": ("current_l1", "num"),
    "51.7.0": ("current_l2", "num"),
    "71.7.0": ("current_l3", "num"),
    "14.7.0": ("frequency", "num"),
    # absolute and net sums (IEC 62056-61 C=15: |+A|+|-A|, C=16: +A-(-A)); common on
    # German EDL21/eHZ meters, whose optical readouts print them as 15.8.0 and 16.7.0
    "15.8.0": ("energy_absolute", "num"),
    "15.7.0": ("power_absolute", "num"),
    "16.8.0": ("energy_net", "num"),
    "16.7.0": ("power_net", "num"),
    "36.7.0": ("power_l1", "num"),
    "56.7.0": ("power_l2", "num"),
    "76.7.0": ("power_l3", "num"),
    # demand (Belgian capacity tariff, e-MUCS P1)
    "1.4.0": ("demand_average", "num"),
    "1.6.0": ("demand_max_month", "num"),
    # thresholds and states
    "17.0.0": ("limiter_threshold", "num"),
    "31.4.0": ("fuse_threshold_l1", "num"),
    "96.3.10": ("breaker_state", "int"),
    "96.14.0": ("tariff", "str"),
    # power quality event counters (DSMR 4/5)
    "96.7.21": ("power_failures", "int"),
    "96.7.9": ("long_power_failures", "int"),
    "32.32.0": ("voltage_sags_l1", "int"),
    "52.32.0": ("voltage_sags_l2", "int"),
    "72.32.0": ("voltage_sags_l3", "int"),
    "32.36.0": ("voltage_swells_l1", "int"),
    "52.36.0": ("voltage_swells_l2", "int"),
    "72.36.0": ("voltage_swells_l3", "int"),
    # identification
    "96.1.1": ("equipment_id", "str"),
    "96.1.0": ("meter_serial", "str"),
    "97.97.0": ("error_register", "str"),
    "0.0.0": ("meter_address", "str"),
    "0.2.8": ("p1_version", "str"),
    "96.1.4": ("p1_version_be", "str"),
}

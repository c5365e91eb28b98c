"""Plausible ranges of measured quantities, by SenML unit, to catch a wrong register map
or meter setting before its readings are signed (``edgeledger agent test --once``).

A value outside its range is not refused here (a reading is signed as the meter gave it):
it is reported, because it nearly always means a wrong address, word order, type or
scale. Runs under MicroPython too (plain data, no imports).
"""

# unit -> (low, high, quantity, where the bounds come from)
RANGES = {
    # industrial temperature sensors (PT100/PT1000 transmitters, SHT2x) as commonly ranged;
    # a map that reads 1310.7 Cel has the wrong address or scale
    "Cel": (-60.0, 200.0, "temperature", "industrial sensor range"),
    # IEC 60038: low voltage ends at 1000 V AC; a meter behind voltage transformers that
    # reports primary volts needs its own check
    "V": (0.0, 1000.0, "voltage", "IEC 60038 low voltage"),
    # IEC 61000-4-30 measures 42.5..57.5 Hz on 50 Hz and 51..69 Hz on 60 Hz grids
    "Hz": (40.0, 70.0, "frequency", "IEC 61000-4-30 measurement range"),
    # current: 10 kA is a bound chosen (an estimate, no standard) above the CT primaries
    # low-voltage meters are set to; some meters sign the current with the power flow
    "A": (-10000.0, 10000.0, "current", "10 kA, a chosen bound"),
    # power: three phases at the voltage and current bounds above (3 x 1000 V x 10 kA);
    # active and reactive power are signed (import/export, inductive/capacitive)
    "W": (-3e7, 3e7, "active power", "3 x 1000 V x 10 kA"),
    "var": (-3e7, 3e7, "reactive power", "3 x 1000 V x 10 kA"),
    "VA": (0.0, 3e7, "apparent power", "3 x 1000 V x 10 kA, never negative"),
    # power factor and other ratios (SenML "/"): -1..1 by definition
    "/": (-1.0, 1.0, "power factor", "a ratio"),
    # relative humidity: 0..100 % by definition
    "%RH": (0.0, 100.0, "relative humidity", "a percentage"),
    # a meter's energy registers count up from zero: a negative count is a wrong type
    "J": (0.0, 1e18, "energy", "a counter (1e18 J = 278 TWh)"),
    "vars": (0.0, 1e18, "reactive energy", "a counter"),
}


def check(record):
    """A warning (str) for a SenML record (RFC 8428 CBOR labels) whose numeric value is
    outside its unit's range, or is not a number at all; None when it looks plausible or
    its unit has no range."""
    value = record.get(2)
    unit = record.get(1)
    if value is None or unit not in RANGES:
        return None
    low, high, quantity, why = RANGES[unit]
    if value != value or not low <= value <= high:
        return "%s %r %s is outside %g..%g %s (%s): check the register map (address, type, word order, scale)" % (
            quantity, value, unit, low, high, unit, why)
    return None

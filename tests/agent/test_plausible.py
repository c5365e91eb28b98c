"""The plausible-range table of ``agent test --once`` (agent/plausible.py): each row warns
just outside its bounds and not inside them; units without a row are never judged."""
import pytest

from edgeledger.agent import plausible


@pytest.mark.parametrize("unit", sorted(plausible.RANGES))
def test_each_range_row_warns_outside_its_bounds_only(unit):
    low, high, quantity, _ = plausible.RANGES[unit]
    for inside in (low, high, (low + high) / 2):
        assert plausible.check({0: "x", 1: unit, 2: inside}) is None
    for outside in (low - abs(low) * 0.01 - 0.01, high + abs(high) * 0.01 + 0.01, float("nan")):
        warning = plausible.check({0: "x", 1: unit, 2: outside})
        assert warning is not None and warning.startswith(quantity) and "check the register map" in warning


def test_the_brief_examples():
    assert "outside -60..200 Cel" in plausible.check({1: "Cel", 2: 1310.7})
    assert plausible.check({1: "Hz", 2: 50.02}) is None and plausible.check({1: "Hz", 2: 0}) is not None
    assert plausible.check({1: "/", 2: -0.95}) is None and plausible.check({1: "/", 2: 1.5}) is not None


def test_units_without_a_row_and_string_records_are_not_judged():
    assert plausible.check({1: "m3", 2: -5e9}) is None
    assert plausible.check({0: "id", 3: "E0025"}) is None

"""``reading.with_base_fields``: the rules by which a board folds a pack's names,
times and units into SenML base fields (RFC 8428 §4.1, §4.6), and the one property that
matters: the pack resolves to exactly the records it was made from."""
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.reading import with_base_fields


def same(pack):
    """Resolved alike, value for value and type for type."""
    a, b = reading_validate.resolve(pack), reading_validate.resolve(with_base_fields(pack))
    assert a == b
    assert [[type(r[k]) for k in sorted(r)] for r in a] == [[type(r[k]) for k in sorted(r)] for r in b]


def test_base_name_is_the_common_prefix_cut_after_a_slash():
    pack = [{0: "meter-01/m1/voltage_l1", 2: 1}, {0: "meter-01/m1/voltage_l2", 2: 2},
            {0: "meter-01/status", 3: "ok"}]
    out = with_base_fields(pack)
    assert out[0][-2] == "meter-01/"
    assert [r.get(0) for r in out] == ["m1/voltage_l1", "m1/voltage_l2", "status"]
    same(pack)


def test_one_channel_keeps_its_whole_name_as_base_and_no_record_name():
    pack = [{0: "meter-01/power", 1: "W", 2: i, 6: 1000 + i} for i in range(3)]
    out = with_base_fields(pack)
    assert out == [{-2: "meter-01/power", -3: 1000, -4: "W", 2: 0}, {2: 1, 6: 1}, {2: 2, 6: 2}]
    same(pack)


def test_units_other_than_the_base_unit_stay_on_their_record():
    pack = [{0: "m/v", 1: "V", 2: 1, 6: 5}, {0: "m/a", 1: "A", 2: 2, 6: 5}, {0: "m/w", 2: 3, 6: 5}]
    out = with_base_fields(pack)
    assert -4 not in out[0]  # one record has no unit: no base unit
    assert [r.get(1) for r in out] == ["V", "A", None]
    same(pack)


def test_times_whose_offset_is_not_exact_keep_their_own_time():
    # an int base time and a float record time: the offset (0.0) gives a float back
    pack = [{0: "m/a", 2: 1, 6: 1767225600}, {0: "m/b", 2: 2, 6: 1767225600.0}]
    out = with_base_fields(pack)
    assert out[1] == {0: "b", 2: 2, 6: 0.0}
    same(pack)
    # a time on one record only: no base time, each keeps its own
    pack = [{0: "m/a", 2: 1, 6: 10}, {0: "m/b", 2: 2}]
    assert all(-3 not in r for r in with_base_fields(pack))
    same(pack)


def test_a_single_record_and_a_pack_with_base_fields_are_left_as_they_are():
    one = [{0: "meter-01/energy", 1: "kWh", 2: 1.5, 6: 1}]
    assert with_base_fields(one) is one
    based = [{-2: "m/", 0: "a", 2: 1}, {0: "b", 2: 2}]
    assert with_base_fields(based) is based


names = st.sampled_from(["dev/m1/voltage_l1", "dev/m1/voltage_l2", "dev/power", "dev/m2/x",
                         "other", "dev/", "dev/m1/"])
times = st.one_of(st.integers(0, 2 ** 31), st.floats(0, 2e9, allow_nan=False),
                  st.floats(0, 2e9, allow_nan=False).map(lambda x: struct.unpack(">f", struct.pack(">f", x))[0]))
records = st.fixed_dictionaries({0: names, 2: st.integers(-10, 10)},
                                optional={1: st.sampled_from(["V", "A", "W"]), 6: times})


@settings(max_examples=300, deadline=None)
@given(st.lists(records, min_size=1, max_size=12))
def test_every_pack_resolves_to_the_records_it_was_made_from(pack):
    same(pack)


def test_a_signed_pack_of_10_is_at_most_half_the_same_as_json():
    from edgeledger.gateway.bench import device as bench

    for alg in ("EdDSA", "ES256"):
        w = bench.wire_sizes(alg)["pack10"]
        assert w["cose"] <= 0.5 * w["json_base64"], w


@settings(max_examples=300, deadline=None)
@given(st.lists(records, min_size=1, max_size=12))
def test_time_range_and_names_are_those_of_the_resolved_records(pack):
    """The gateway takes a pack's time range and names without building the resolved records
    (``time_range``, ``names``): the same values, of the same types, as ``resolve`` gives,
    with base fields or without."""
    for form in (pack, with_base_fields(pack)):
        resolved = reading_validate.resolve(form)
        times = [r["t"] for r in resolved]
        first, last = reading_validate.time_range(form)
        assert (first, last) == (min(times), max(times))
        assert (type(first), type(last)) == (type(min(times)), type(max(times)))
        assert reading_validate.names(form) == [r["n"] for r in resolved]

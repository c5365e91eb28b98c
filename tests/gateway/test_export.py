"""Readings out of the store (gateway/export.py, `edgeledger readings` / `export`): decoded
records, base fields resolved, each with its message's anchoring status, as text, CSV and
InfluxDB line protocol."""
import csv
import hashlib
import io

import pytest

from edgeledger.gateway import export
from edgeledger.gateway.cli import main
from edgeledger.gateway.store import Store
from edgeledger.protocols import cose
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.reading import with_base_fields
from tests.support.anchoring import anchor_stored, chain_site
from tests.support.devices import FakeDevice, encrypted_pack

# SenML CBOR labels (RFC 8428 §6): n 0, u 1, v 2, vs 3, vb 4, s 5, t 6
N, U, V, VS, VB, S, T = 0, 1, 2, 3, 4, 5, 6


def _signed(dev, pack=None, enc=None):
    msg = cose.sign1(reading_validate.encode_payload(dev.name, dev.seq + 1, dev.prev, 1, pack, enc), dev.signer)
    dev.seq += 1
    dev.prev = hashlib.sha256(msg).digest()
    return msg


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Device m1: seq 1 (base fields, 3 records) anchored on the embedded chain; seq 2 (text
    and boolean values), seq 3 (encrypted) stored, not batched. Device m2: seq 1 stored."""
    m1, m2 = FakeDevice("m1"), FakeDevice("m2", alg="ES256")
    path = str(tmp_path_factory.mktemp("export") / "gw.db")
    st, _reg, pipe, led, t0 = chain_site(path, [m1, m2])
    pack = with_base_fields([{N: "m1/power", U: "W", V: 1000 + i, T: t0 + i} for i in range(3)])
    pipe.process(m1.topic, _signed(m1, pack))
    pipe.commit()
    anchor_stored(st, led, 1)
    pipe.process(m1.topic, _signed(m1, [{N: "m1/door", VS: 'open, "wide"', T: t0 + 100},
                                        {N: "m1/alarm", VB: True, T: t0 + 100},
                                        {N: "m1/energy", U: "J", S: 2 ** 40, T: t0 + 100}]))
    pipe.process(m1.topic, _signed(m1, enc=encrypted_pack("m1", m1.seq + 1)))
    pipe.process(m2.topic, _signed(m2, [{N: "m2/temp", U: "Cel", V: -20.5, T: t0 + 50}]))
    pipe.commit()
    # the embedded chain may take the batch past its finality depth at once: then it is "final"
    done = "final" if st.batch(1).final_at is not None else "anchored"
    st.close()
    yield {"path": path, "t0": t0, "done": done}


@pytest.fixture
def config(site, tmp_path):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('store = "%s"\n[ledger]\nbackend = "none"\n' % site["path"])
    return str(cfg)


def _rows(site, **kw):
    st = Store(site["path"])
    try:
        return list(export.rows(st.readings_between(float("-inf"), float("inf"), **kw)))
    finally:
        st.close()


def test_records_are_resolved_and_carry_their_status(site):
    t0 = site["t0"]
    rows = _rows(site)
    # an encrypted reading has no record times: the gateway dates it by its arrival
    (enc,) = [r for r in rows if r.value == "encrypted"]
    rows = [r for r in rows if r is not enc] + [enc]
    assert [(r.device, r.seq, r.name, r.kind, r.value, r.unit, r.status) for r in rows] == [
        ("m1", 1, "m1/power", "v", 1000, "W", site["done"]),  # base fields resolved back to full records
        ("m1", 1, "m1/power", "v", 1001, "W", site["done"]),
        ("m1", 1, "m1/power", "v", 1002, "W", site["done"]),
        ("m2", 1, "m2/temp", "v", -20.5, "Cel", "stored"),
        ("m1", 2, "m1/door", "vs", 'open, "wide"', "", "stored"),
        ("m1", 2, "m1/alarm", "vb", True, "", "stored"),
        ("m1", 2, "m1/energy", "s", 2 ** 40, "J", "stored"),
        ("m1", 3, "", "", "encrypted", "", "stored"),
    ]
    assert [r.time for r in rows[:3]] == [t0, t0 + 1, t0 + 2]
    assert rows[0].batch == 1 and rows[0].block is not None and rows[3].batch is None


def test_device_and_time_range_select_messages(site):
    t0 = site["t0"]
    st = Store(site["path"])
    try:
        assert [(r.device, r.seq) for r in st.readings_between(t0 + 1, t0 + 60)] == [("m1", 1), ("m2", 1)]
        assert [r.seq for r in st.readings_between(float("-inf"), float("inf"), device="m2")] == [1]
        assert st.readings_between(t0 + 1000, t0 + 2000) == []
        assert len(st.readings_between(float("-inf"), float("inf"), limit=2)) == 2
    finally:
        st.close()


def test_csv_round_trips_through_a_csv_reader(site):
    text = "".join(export.to_csv(_rows(site)))
    got = list(csv.DictReader(io.StringIO(text)))
    assert tuple(got[0]) == export.CSV_COLUMNS
    door = next(r for r in got if r["name"] == "m1/door")
    assert door["value"] == 'open, "wide"' and door["status"] == "stored" and door["batch"] == ""
    power = [r for r in got if r["name"] == "m1/power"]
    assert len(power) == 3 and all(r["status"] == site["done"] and r["batch"] == "1" for r in power)
    assert power[0]["time"].endswith("Z") and power[0]["value"] == "1000"
    assert next(r for r in got if r["name"] == "m1/alarm")["value"] == "true"


def test_influx_lines_escape_and_type_their_fields(site):
    lines = "".join(export.to_influx(r for r in _rows(site) if r.value != "encrypted")).splitlines()
    assert len(lines) == 7
    t0 = site["t0"]
    assert lines[0] == "edgeledger,device=m1,name=m1/power,unit=W value=1000i,seq=1i,status=\"%s\",batch=1i %d" % (
        site["done"], t0 * 10 ** 9)
    assert 'value_text="open, \\"wide\\""' in lines[4]  # a string field, quotes escaped
    assert "value=true" in lines[5] and "value=1099511627776i" in lines[6]
    (enc,) = [line for line in "".join(export.to_influx(_rows(site))).splitlines() if "encrypted" in line]
    assert enc.startswith("edgeledger,device=m1 value_text=\"encrypted\",seq=3i")
    assert export._tag("a b,c=d") == "a\\ b\\,c\\=d"  # tag values: space, comma, equals escaped


def test_a_stored_message_that_does_not_decode_is_a_row_not_a_crash(site):
    from edgeledger.gateway.store import StoredReading

    bad = StoredReading("m9", 1, 5.0, 5.0, b"\xff not cose", None, None, None, False)
    (row,) = export.rows([bad])
    assert (row.device, row.status, row.value) == ("m9", "undecodable", None)


def test_readings_command_prints_one_line_per_record(site, config, capsys):
    assert main(["readings", "--config", config, "--device", "m1", "--since", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 7
    assert sum("m1 #1  m1/power = " in line and "[%s, batch 1, block " % site["done"] in line for line in out) == 3
    assert sum(line.endswith("m1 #3  - = encrypted  [stored]") for line in out) == 1
    assert sum("m1 #2  m1/door = open, \"wide\"  [stored]" in line for line in out) == 1


def test_export_command_writes_a_file(config, tmp_path, capsys):
    out = tmp_path / "r.influx"
    assert main(["export", "--config", config, "--format", "influx", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 8


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "expected a time as ISO 8601"),
    (["--since", "2026-12-06", "--until", "2026-12-05"], "is after --until"),
])
def test_bad_times_are_one_clear_line(config, capsys, args, message):
    assert main(["readings", "--config", config] + args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_iso_dates_are_utc_unless_they_say_otherwise():
    from edgeledger.gateway.cli.readings import parse_time

    assert parse_time("1970-01-02") == 86400.0
    assert parse_time("1970-01-01T01:00:00+01:00") == 0.0
    assert parse_time("86400.5") == 86400.5

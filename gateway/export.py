"""Readings out of the store: each stored message decoded into its SenML records (base
fields resolved, RFC 8428 §4.6), with where the message stands on the way to the chain, and
written as text, CSV or InfluxDB line protocol.

A row is one record: time, device, seq, name, value (``v``, ``vs``, ``vb`` or ``s``), unit,
and the message's anchoring status: ``final`` (its batch is anchored and past the finality
depth), ``anchored``, the batch's earlier lifecycle state (``built``, ``signed``, ``sent``,
``mined``), or ``stored`` (not in a batch yet). An encrypted reading (payload ``enc``) is one
row with the value ``encrypted``: only its data owner can read the values. What is stored
passed every check at ingest, so a message that does not decode here is a store corruption:
it is one row with the status ``undecodable`` rather than a crash.
"""
import csv
import io
import math
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from edgeledger.gateway.store import StoredReading
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.errors import ProtocolError
from edgeledger.protocols.reading import validate as reading_validate

FORMATS = ("text", "csv", "influx")
CSV_COLUMNS = ("time", "device", "seq", "name", "value", "unit", "status", "batch", "block")
# InfluxDB line protocol: one measurement for every reading; device, name and unit are tags.
MEASUREMENT = "edgeledger"


class Row(NamedTuple):
    """One SenML record of a stored message and its message's anchoring status."""

    time: float
    device: str
    seq: int
    name: str
    kind: str  # "v", "vs", "vb", "s", or "" (encrypted / undecodable: no value)
    value: Any
    unit: str
    status: str
    batch: int | None
    block: int | None


def status_of(r: StoredReading) -> str:
    """``final``, ``anchored``, the batch's state, or ``stored`` (not batched yet)."""
    if r.batch is None:
        return "stored"
    return "final" if r.final else str(r.state)


def rows(readings: Iterable[StoredReading]) -> Iterator[Row]:
    """The records of ``readings``, in order."""
    for r in readings:
        status = status_of(r)
        try:
            body = reading_validate.decode_payload(cose_verify.parse_sign1(r.bytes).payload)
        except (ProtocolError, ValueError):
            yield Row(r.t_first, r.device, r.seq, "", "", None, "", "undecodable", r.batch, r.block_number)
            continue
        if body.pack is None:
            yield Row(r.t_first, r.device, r.seq, "", "", "encrypted", "", status, r.batch, r.block_number)
            continue
        for rec in reading_validate.resolve(body.pack):
            kind = next((k for k in ("v", "vs", "vb", "s") if k in rec), "")
            yield Row(float(rec["t"]), r.device, r.seq, rec["n"], kind, rec.get(kind), rec.get("u", ""), status,
                      r.batch, r.block_number)


def _iso(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _value_text(row: Row) -> str:
    if row.kind == "vb":
        return "true" if row.value else "false"
    return "" if row.value is None else str(row.value)


def text(rows_: Iterable[Row]) -> Iterator[str]:
    """One line per record, for a person."""
    for r in rows_:
        where = r.status if r.batch is None else "%s, batch %d%s" % (
            r.status, r.batch, "" if r.block is None else ", block %d" % r.block)
        value = ("%s %s" % (_value_text(r), r.unit)).strip()
        name = r.name or "-"
        yield "%s  %s #%d  %s = %s  [%s]" % (_iso(r.time), r.device, r.seq, name, value, where)


def to_csv(rows_: Iterable[Row]) -> Iterator[str]:
    """RFC 4180 CSV with a header line; time in ISO 8601 UTC."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    for r in rows_:
        buf.seek(0)
        buf.truncate()
        w.writerow((_iso(r.time), r.device, r.seq, r.name, _value_text(r), r.unit, r.status,
                    "" if r.batch is None else r.batch, "" if r.block is None else r.block))
        yield buf.getvalue()


def _tag(s: str) -> str:
    """A tag key or value: commas, equals signs and spaces escaped with a backslash."""
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _string_field(s: str) -> str:
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def _number_field(x: Any) -> str | None:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return "%di" % x if -2 ** 63 <= x < 2 ** 63 else None  # Influx integers are signed 64-bit
    if isinstance(x, float) and math.isfinite(x):
        return repr(x)
    return None


def to_influx(rows_: Iterable[Row]) -> Iterator[str]:
    """InfluxDB line protocol, nanosecond timestamps: tags device, name, unit; fields value
    (number, string or boolean by the record's kind), seq, status, batch."""
    for r in rows_:
        tags = "%s,device=%s" % (MEASUREMENT, _tag(r.device))
        if r.name:
            tags += ",name=%s" % _tag(r.name)
        if r.unit:
            tags += ",unit=%s" % _tag(r.unit)
        fields = []
        if r.kind in ("v", "s", "vb"):
            number = _number_field(r.value)
            fields.append("value=%s" % number if number is not None else "value_text=%s" % _string_field(str(r.value)))
        elif r.kind == "vs":
            fields.append("value_text=%s" % _string_field(str(r.value)))
        elif r.value is not None:
            fields.append("value_text=%s" % _string_field(str(r.value)))
        fields.append("seq=%di" % r.seq)
        fields.append("status=%s" % _string_field(r.status))
        if r.batch is not None:
            fields.append("batch=%di" % r.batch)
        yield "%s %s %d\n" % (tags, ",".join(fields), round(r.time * 1e9))


def write(fmt: str, rows_: Iterable[Row]) -> Iterator[str]:
    """``rows_`` in ``fmt`` (one of FORMATS), as chunks of text."""
    if fmt == "csv":
        return to_csv(rows_)
    if fmt == "influx":
        return to_influx(rows_)
    return (line + "\n" for line in text(rows_))

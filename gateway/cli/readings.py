"""``edgeledger readings`` (decoded readings for a person) and ``edgeledger export`` (CSV or
InfluxDB line protocol for other tools), by device and time range, each with its anchoring
status (gateway/export.py)."""
import argparse
import datetime
import sys

from edgeledger.gateway.cli.common import add_config, device_id, open_store
from edgeledger.gateway.errors import ConfigError

# Messages read per command at most unless --limit says otherwise: a day of one reading per
# second from one device, which a terminal can still page through.
DEFAULT_LIMIT = 86400


def parse_time(text: str) -> float:
    """Seconds since the epoch from ``text``: ISO 8601 (a date, or a date and time; UTC unless
    it names a zone) or a number of seconds. Raises ConfigError."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError("expected a time as ISO 8601 (2026-12-06 or 2026-12-06T10:00:00Z) or epoch seconds, "
                          "found %r" % text) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def _run(args: argparse.Namespace, fmt: str) -> int:
    from edgeledger.gateway import export

    t_from = parse_time(args.since) if args.since else float("-inf")
    t_to = parse_time(args.until) if args.until else float("inf")
    if t_from > t_to:
        raise ConfigError("--since %s is after --until %s" % (args.since, args.until))
    _cfg, st = open_store(args.config)
    try:
        stored = st.readings_between(t_from, t_to, args.device, args.limit)
    finally:
        st.close()
    out = open(args.out, "w", newline="") if getattr(args, "out", None) else sys.stdout
    try:
        for chunk in export.write(fmt, export.rows(stored)):
            out.write(chunk)
    finally:
        if out is not sys.stdout:
            out.close()
    if len(stored) == args.limit:
        print("edgeledger: stopped at --limit %d messages; narrow the range or raise the limit" % args.limit,
              file=sys.stderr)
    return 0


def _readings(args: argparse.Namespace) -> int:
    return _run(args, "text")


def _export(args: argparse.Namespace) -> int:
    return _run(args, args.format)


def _common(p: argparse.ArgumentParser) -> None:
    add_config(p)
    p.add_argument("--device", type=device_id, help="one device (default: every device)")
    p.add_argument("--since", help="from this time (ISO 8601 or epoch seconds; default: the first)")
    p.add_argument("--until", help="up to this time (default: the last)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="messages at most (default %d)" % DEFAULT_LIMIT)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``readings`` and ``export``."""
    r = sub.add_parser("readings", help="show stored readings, decoded, with their anchoring status")
    _common(r)
    r.set_defaults(func=_readings)
    e = sub.add_parser("export", help="write stored readings as CSV or InfluxDB line protocol")
    _common(e)
    e.add_argument("--format", choices=("csv", "influx"), default="csv")
    e.add_argument("-o", "--out", help="file to write (default: standard output)")
    e.set_defaults(func=_export)

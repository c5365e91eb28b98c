"""``edgeledger agent test --once --config agent.toml``: read every configured source once,
print what it decoded, and warn about values no meter would show (``agent/plausible.py``).

Nothing is signed, stored or published, and the key file is not opened: the command is for
the first day at a meter, before the agent runs. Exit code 0 when every source answered,
1 when one did not (no reply, bad CRCs, a port that does not exist: one line each says
which and why), 2 for a configuration error. Plausibility warnings do not change the exit
code: a reading is what the meter said, the warning says it is likely misread.
"""
import argparse
import time
from typing import Any, Callable

# Width of the record-name column of the listing.
NAME_WIDTH = 36


def _value(record: dict[int, Any]) -> str:
    if 2 in record:
        text = "%r" % (record[2],)
    elif 3 in record:
        text = "%r" % (record[3],)
    elif 4 in record:
        text = "true" if record[4] else "false"
    else:
        text = "(no value)"
    unit = record.get(1)
    return text + (" " + unit if unit else "")


def _poll(src: Any, now: float, label: str, say: Callable[[str], None]) -> list[dict[int, Any]]:
    """One reading of ``src``; a source that switched its speed after an empty poll (a DSMR
    source finding a meter's baud rate) is given the one more poll it needs."""
    from edgeledger.agent.errors import SourceError

    try:
        result: list[dict[int, Any]] = src.poll(now)
        return result
    except SourceError as e:
        if not getattr(src, "counters", {}).get("baud_switches"):
            raise
        say("%s: %s; trying %d baud" % (label, e, src.port.baud))
        result = src.poll(now)
        return result


def test_source(cfg: dict[str, Any], now: float, say: Callable[[str], None]) -> bool:
    """Poll the source of ``cfg`` once and list its records; True if it answered in full.
    A source error (or a device of a bus that did not answer) is one ``ERROR`` line."""
    from edgeledger.agent import plausible, sources
    from edgeledger.agent.errors import AgentError
    from edgeledger.protocols.errors import ProtocolError

    label = "source %s (%s)" % (cfg.get("name", "?"), cfg.get("type", "?"))
    try:
        src = sources.from_config(cfg)
    except AgentError as e:
        say("%s: ERROR %s" % (label, e))
        return False
    try:
        started = time.monotonic()
        records = _poll(src, now, label, say)
        took = time.monotonic() - started
    except (AgentError, ProtocolError) as e:
        say("%s: ERROR %s" % (label, e))
        return False
    finally:
        src.close()
    say("%s: %d records in %.2f s" % (label, len(records), took))
    ok = True
    for rec in records:
        name = str(rec.get(0, "?"))
        if name.endswith("/status") and 3 in rec:  # some devices of a bus did not answer
            say("%s: ERROR %s" % (label, rec[3]))
            ok = False
            continue
        warning = plausible.check(rec)
        say("  %-*s %s%s" % (NAME_WIDTH, name, _value(rec), "" if warning is None else "   WARNING " + warning))
    return ok


def _test(args: argparse.Namespace) -> int:
    from edgeledger.agent import linux

    cfg = linux.load_config(args.config)
    now = time.time()
    results = [test_source(s, now, lambda line: print(line, flush=True)) for s in cfg["sources"]]
    return 0 if all(results) else 1


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add ``agent test`` to the ``agent`` group."""
    at = groups["agent"].add_parser("test", help="read every configured source once and print the values "
                                                 "(nothing is signed or sent)")
    at.add_argument("--config", required=True, help="agent.toml")
    at.add_argument("--once", action="store_true", required=True,
                    help="one reading of each source, then exit (the only mode so far)")
    at.set_defaults(func=_test)

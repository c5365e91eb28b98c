"""``edgeledger``: the one console script.

This package only builds the parser and dispatches: each command group lives in a
module of its own (device.py, gateway.py, broker.py, proof.py for proof and verify,
decrypt.py, deployment.py, agent.py, demo.py, status.py for the status report), which imports what its
commands need when they run, so ``edgeledger --help`` stays fast. Exit codes: 0 success,
1 a check failed (verification, lost data), 2 usage or configuration error; ``verify``
also 3 when the chain cannot be reached. ``main`` says how errors are shown.
"""
import argparse
import importlib
import sys
from typing import Callable, Sequence

from edgeledger.gateway.cli import (
    agent,
    broker,
    decrypt,
    demo,
    deployment,
    device,
    doctor,
    gateway,
    proof,
    readings,
    site,
)

# Modules outside this package that add their own commands, each with ``add_commands(groups)``
# where ``groups`` maps "top", "device", "agent" and "gateway" to argparse subparser sets: the
# bench suites and the firmware image builder (both owned by the board/bench side).
COMMAND_MODULES = (
    "edgeledger.gateway.bench.cmd",
    "edgeledger.gateway.boards.cmd",
    "edgeledger.gateway.cli.agent_test",
)


def _version() -> str:
    """The installed distribution's version (pyproject.toml), or "unknown" from a bare tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgeledger")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The whole ``edgeledger`` parser; each command's ``func`` is in its defaults."""
    p = argparse.ArgumentParser(prog="edgeledger", description=(
        "Tamper-evident sensor and meter readings: agents sign, gateways store and anchor, "
        "anyone verifies."))
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log information too (-vv: debugging); default: warnings, errors and summaries")
    p.add_argument("-q", "--quiet", action="count", default=0, help="log errors only")
    p.add_argument("--version", action="version", version="edgeledger %s" % _version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    groups = {"top": sub, "device": device.add_commands(sub), "agent": agent.add_commands(sub),
              "gateway": gateway.add_commands(sub)}
    broker.add_commands(sub)
    proof.add_commands(sub)
    decrypt.add_commands(sub)
    deployment.add_commands(sub)
    demo.add_commands(sub)
    readings.add_commands(sub)
    site.add_commands(sub)
    doctor.add_commands(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(groups)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv) and run the command.

    A user's mistake never shows a traceback: argparse refuses a bad option (exit 2, with the
    usage), and what the command raises for bad input, a bad file or a peer that is not there
    is one line on stderr, ``edgeledger: error: ...``, and exit code 2. Those are our packages'
    error roots (their messages say what was expected and what was found; third-party errors
    are translated into them where they enter our code) and OSError (a file that cannot be
    read or written, a connection refused). Anything else is a bug in edgeledger: its
    traceback is shown, to be reported."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from edgeledger.gateway.observe import logs

    logs.configure(args.verbose, args.quiet)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from edgeledger.agent.errors import AgentError
    from edgeledger.gateway.errors import GatewayError
    from edgeledger.protocols.errors import ProtocolError

    try:
        return func(args)
    except (AgentError, GatewayError, ProtocolError, OSError) as e:
        print("edgeledger: error: %s" % error_line(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def error_line(e: BaseException) -> str:
    """``e`` as one line: an OSError as "file: reason" (its errno text, not "[Errno 2] ...")."""
    if isinstance(e, OSError) and e.strerror:
        names = [n for n in (e.filename, e.filename2) if n is not None]
        text = "%s: %s" % (" -> ".join(str(n) for n in names), e.strerror) if names else e.strerror
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())

"""CLI registration of the bench suites:
``edgeledger bench ingest|curves|pipeline|anchor|proof|flood|device|flash [--json]``.

Listed in gateway/cli.py COMMAND_MODULES; the one place the ``bench`` group is made. A
suite's module is imported only when it runs, so ``edgeledger --help`` stays fast.
"""
import argparse
import importlib
import os
from typing import Callable


def _numbers(kind: type) -> Callable[[str], str]:
    """argparse type: comma-separated numbers of ``kind`` (the suite splits the text)."""
    def check(text: str) -> str:
        try:
            [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError("expected comma-separated %s, found %r" % (
                "integers" if kind is int else "numbers", text)) from None
        return text

    return check


def _runner(suite: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        code: int = importlib.import_module("edgeledger.gateway.bench." + suite).main(args)
        return code
    return run


def add_commands(groups: dict) -> None:
    bench = groups["top"].add_parser(
        "bench", help="measure the system (suites: ingest, curves, pipeline, anchor, proof, flood, device, flash)")
    bench.set_defaults(func=lambda args: bench.print_help() or 2)
    suites = bench.add_subparsers(dest="bench_suite", metavar="SUITE")
    _gateway_suites(suites)
    _device_suites(suites)


def _gateway_suites(suites: argparse._SubParsersAction) -> None:
    p = suites.add_parser("ingest", help="signed messages/s through Mosquitto and the gateway, vs a bare subscriber")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seconds", type=float, default=60.0, help="measured run per gateway phase (default 60)")
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="gateway ingest worker processes (gateway run --workers; default: nproc)")
    p.add_argument("--no-packs", action="store_true", help="skip the packs-of-10 phase")
    p.add_argument("--no-durability-compare", action="store_true",
                   help="skip the phase with durability = process_crash_only (not durable)")
    p.add_argument("--count-fsyncs", action="store_true", help="run the gateway under strace counting fsync calls")
    p.add_argument("--alg", choices=["EdDSA", "SM2"], default="EdDSA",
                   help="what the bench devices sign with (default EdDSA); the verify-only rates cover all")
    p.set_defaults(func=_runner("ingest"))

    c = suites.add_parser("curves", help="msgs/s and CPU per message against workers and devices, "
                                         "latency percentiles at steady loads, gateway memory against devices")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--quick", action="store_true", help="every curve tiny (a smoke test: the figures mean nothing)")
    c.add_argument("--seconds", type=float, default=None, help="measured window per point (default 8)")
    c.add_argument("--device-counts", default=None, type=_numbers(int),
                   help="devices curve (default 10,100,1000,10000,100000)")
    c.add_argument("--devices", type=int, default=None, help="devices of the workers and latency curves (default 100)")
    c.add_argument("--max-workers", type=int, default=None, help="workers curve 1..N (default: nproc)")
    c.add_argument("--loads", default=None, type=_numbers(float),
                   help="latency curve: fractions of the flat-out rate (default 0.5,0.8)")
    c.set_defaults(func=_runner("curves"))
    pl = suites.add_parser("pipeline", help="gateway CPU per message in process (no MQTT), vs one Ed25519 verify")
    pl.add_argument("--json", action="store_true", help="print one JSON object")
    pl.add_argument("--messages", type=int, default=3000, help="messages per run (default 3000)")
    pl.add_argument("--repeats", type=int, default=3, help="runs per phase, the median is reported (default 3)")
    pl.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also print the top N functions of a cProfile run of each phase")
    pl.set_defaults(func=_runner("pipeline"))

    a = suites.add_parser("anchor", help="gas per batch and per reading, anchors/min, reading-to-anchored latency")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.add_argument("--sizes", default="1000,10000,100000", type=_numbers(int),
                   help="readings per batch (comma-separated)")
    a.add_argument("--batch-age", type=float, default=5.0, help="batch max_age_s for the latency run")
    a.add_argument("--latency-seconds", type=float, default=30.0, help="length of the latency run")
    a.add_argument("--block-time", type=int, default=1, help="anvil block time (s)")
    a.set_defaults(func=_runner("anchor"))

    fl = suites.add_parser("flood", help="how much one flooding device delays the other devices' acks")
    fl.add_argument("--json", action="store_true", help="print one JSON object")
    fl.add_argument("--seconds", type=float, default=20.0, help="measured run per phase (default 20)")
    fl.add_argument("--devices", type=int, default=10, help="good devices (default 10)")
    fl.add_argument("--rate", type=float, default=10.0, help="readings/s per good device (default 10)")
    fl.set_defaults(func=_runner("flood"))

    r = suites.add_parser("proof", help="bundle size, offline verify time, on-chain verify gas by depth")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--sizes", default="1000,100000,1000000", type=_numbers(int),
                   help="leaves per tree (comma-separated)")
    r.add_argument("--repeat", type=int, default=200, help="offline verifications timed per size")
    r.set_defaults(func=_runner("proof"))


def _device_suites(suites: argparse._SubParsersAction) -> None:
    d = suites.add_parser(
        "device", help="heap (64-bit floors, 32-bit per configuration), per-reading cost, flash wear, "
                       "image size and wire bytes under MicroPython")
    d.add_argument("--json", action="store_true", help="print the figures as JSON")
    d.add_argument("--readings", type=int, default=20, help="readings timed per signer")
    d.add_argument("--heap-readings", type=int, default=10,
                   help="readings the loop must publish and get acked at each heap size")
    d.set_defaults(func=_runner("device"))

    fl = suites.add_parser(
        "flash", help="outbox flash wear on littlefs and FAT: erases per reading, projected life")
    fl.add_argument("--json", action="store_true", help="print the figures as JSON")
    fl.add_argument("--seconds", type=int, default=2000, help="seconds of device time per configuration")
    fl.add_argument("--board", default="esp32", help="board profile whose outbox settings are used")
    fl.set_defaults(func=_runner("flash"))

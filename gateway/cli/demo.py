"""``edgeledger demo``: the command, its progress bars and its summary table; the site it runs
is ``edgeledger.gateway.demo`` (demo/site.py)."""
import argparse
import json
import os
import time
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.cli.common import broker_url, private_key, rpc_url
from edgeledger.gateway.demo.site import (
    CONFIRMATIONS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEVICES,
    DEFAULT_INTERVAL_S,
    DEFAULT_READINGS,
    DEFAULT_SAMPLES,
    DEFAULT_TIMEOUT_S,
    DEVICE_ALGS,
    LEDGER_KEY_ENV,
    Demo,
    DemoOptions,
    ProgressFn,
)

if TYPE_CHECKING:  # rich is imported when the demo runs: `edgeledger --help` stays fast
    from rich.console import Console
    from rich.progress import Progress




def _progress_display(console: "Console") -> tuple["Progress", ProgressFn]:
    """A rich Progress with one bar each for sent, stored and anchored, and an ``update``
    callback for Demo.run. The rate column is the last second's while a bar is filling and
    the run's average once it is full."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:>8.0f}/s"), TimeElapsedColumn(), console=console)
    tasks: dict[str, Any] = {}
    started: list[float] = []

    def update(sent: int, stored: int, anchored: int, expected: int, rates: Any) -> None:
        now = time.monotonic()
        if not tasks:
            started.append(now)
            for name in ("sent", "stored", "anchored"):
                tasks[name] = bar.add_task(name, total=expected, rate=0.0)
        for i, (name, value) in enumerate((("sent", sent), ("stored", stored), ("anchored", anchored))):
            task = bar.tasks[tasks[name]]
            if value >= expected:
                if task.completed < expected:  # just filled: freeze the average
                    bar.update(tasks[name], rate=value / max(now - started[0], 1e-3))
            else:
                bar.update(tasks[name], rate=rates.rate(i))
            bar.update(tasks[name], completed=value)

    return bar, update


def _summary(console: "Console", r: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="edgeledger demo: %d devices x %d readings" % (r["devices"], r["readings"]))
    for col in ("device", "kind", "alg", "sent", "stored", "anchored", "bundles verified"):
        t.add_column(col, justify="left" if col in ("device", "kind", "alg") else "right")
    for name, d in r["per_device"].items():
        t.add_row(name, d["kind"], d["alg"], str(d["sent"]), str(d["stored"]), str(d["anchored"]),
                  "%d" % d["verified"])
    t.add_row("total", "", "", str(r["sent"]), str(r["stored"]), str(r["anchored"]),
              "%d of %d" % (r["verified"], r["checked"]), style="bold")
    console.print(t)
    console.print("lost %d, duplicated %d, rejected %d, redelivered and stored once %d; %d batches anchored "
                  "with %d confirmations on %s (chain %d, contract %s); tampered bundle %s; %.1f s"
                  % (r["lost"], r["duplicated"], r["rejected"], r["redelivered"], r["batches"], CONFIRMATIONS,
                     r["ledger"], r["chain_id"], r["contract"],
                     "refused" if r["tamper_rejected"] else "NOT refused", r["elapsed_s"]))
    if r["out"]:
        console.print("store, gateway.toml and bundles in %s (try: edgeledger verify %s)"
                      % (r["out"], os.path.join(r["out"], "bundles", "*.cbor")))
    for f in r["failures"]:
        console.print("[red]FAIL[/red] %s" % f)
    if r["timed_out"]:
        console.print("[red]timed out[/red] before every reading was stored and anchored")
    console.print("[green]OK[/green]" if r["ok"] else "[red]FAILED[/red]")


def _demo_cmd(args: argparse.Namespace) -> int:
    opts = DemoOptions(devices=args.devices, readings=args.readings, out=args.out, broker=args.broker,
                       ledger=args.ledger, ledger_key=args.ledger_key, interval_s=args.interval,
                       samples=args.samples, batch_size=args.batch_size, timeout_s=args.timeout, alg=args.alg)
    if args.json:
        result = Demo(opts).run()
        result.pop("per_device")
        print(json.dumps(result, sort_keys=True))
        return 0 if result["ok"] else 1
    from rich.console import Console

    err, out = Console(stderr=True), Console()
    demo = Demo(opts, say=lambda text: err.print(text, highlight=False))
    bar, update = _progress_display(err)
    with bar:
        result = demo.run(progress=update)
    _summary(out, result)
    return 0 if result["ok"] else 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    p = sub.add_parser(
        "demo", help="run a whole site in one process: devices, broker, gateway, ledger, verification",
        description="Simulated meters and sensors sign readings and publish them through an MQTT broker to "
                    "the gateway, which stores and anchors them; then proof bundles of sampled readings are "
                    "verified offline and against the chain's state root. Exit 1 if anything is lost or fails.")
    p.add_argument("--devices", type=int, default=DEFAULT_DEVICES,
                   help="simulated devices (default %d)" % DEFAULT_DEVICES)
    p.add_argument("--readings", type=int, default=DEFAULT_READINGS,
                   help="signed messages per device (default %d)" % DEFAULT_READINGS)
    p.add_argument("--out", metavar="DIR", help="keep the gateway store, gateway.toml and bundles in DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object with the counts, no progress display")
    p.add_argument("--broker", metavar="URL", type=broker_url,
                   help="use this MQTT broker (mqtt://host:port) instead of the embedded one")
    p.add_argument("--ledger", metavar="URL", type=rpc_url,
                   help="use this Ethereum JSON-RPC node instead of the embedded chain")
    p.add_argument("--ledger-key", metavar="HEX", type=private_key,
                   help="funded account key for --ledger (better: the %s environment variable; "
                        "command-line arguments are visible to other users)" % LEDGER_KEY_ENV)
    p.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S,
                   help="seconds between a device's readings (default %s)" % DEFAULT_INTERVAL_S)
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help="bundles verified per device (default %d)" % DEFAULT_SAMPLES)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help="readings per Merkle batch at most (default %d)" % DEFAULT_BATCH_SIZE)
    p.add_argument("--alg", choices=DEVICE_ALGS,
                   help="every device signs with this algorithm (default: a mix of EdDSA and ES256); SM2 is "
                        "GB/T 32918.2 with SM3, for deployments on China's national algorithms")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help="give up (exit 1) after this many seconds of running (default %.0f)" % DEFAULT_TIMEOUT_S)
    p.set_defaults(func=_demo_cmd)

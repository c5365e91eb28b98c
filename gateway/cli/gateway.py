"""``edgeledger gateway ...``: run the site gateway, report its state, make its ledger account key.

    edgeledger gateway run    [--config gateway.toml] [--duration S] [--workers N]
    edgeledger gateway status [--config gateway.toml] [--json]
    edgeledger gateway keygen --out FILE (--passphrase-file F | --passphrase-env VAR)
"""
import argparse
import json

from edgeledger.gateway.cli.common import add_config, open_store


def _run(args: argparse.Namespace) -> int:
    from edgeledger.gateway.ingest import runner

    return runner.main(args.config, duration_s=args.duration, workers=args.workers)


def _status(args: argparse.Namespace) -> int:
    from edgeledger.gateway.cli import status

    cfg, st = open_store(args.config)
    try:
        if args.json:
            print(json.dumps(status.snapshot(cfg, st), indent=1, default=_json_bytes))
            return 0
        lines = status.report(cfg, st, args.config)
    finally:
        st.close()
    for line in lines:
        print(line)
    return 0


def _json_bytes(x: object) -> str:
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).hex()
    raise TypeError("not JSON serialisable: %r" % (x,))


def _keygen(args: argparse.Namespace) -> int:
    from edgeledger.gateway.anchor import keystore

    passphrase = keystore.read_passphrase(args.passphrase_file, args.passphrase_env)
    key = keystore.generate(args.out, passphrase)
    print("wrote %s (mode 0600): gateway account %s" % (args.out, key.address))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``gateway`` group; returns its subparsers."""
    gw = sub.add_parser("gateway", help="run or inspect the site gateway")
    gsub = gw.add_subparsers(dest="gateway_command", metavar="ACTION")
    gr = gsub.add_parser("run", help="ingest, store, acknowledge, batch and anchor")
    add_config(gr)
    gr.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    gr.add_argument("--workers", type=int, default=None,
                    help="ingest worker processes, each owning a hash share of the devices (ingest/runner.py)")
    gr.set_defaults(func=_run)
    gs = gsub.add_parser("status", help="counters, quarantine, batches, anchoring, chain gaps and recent events")
    add_config(gs)
    gs.add_argument("--json", action="store_true",
                    help="one JSON object: counters, quarantine, batches, backlog, devices, gaps, events, CRL")
    gs.set_defaults(func=_status)
    kg = gsub.add_parser("keygen", help="new ledger account key, encrypted (Ethereum keystore, mode 0600)")
    kg.add_argument("--out", required=True)
    g = kg.add_mutually_exclusive_group(required=True)
    g.add_argument("--passphrase-file", help="file holding the passphrase (mode 0600)")
    g.add_argument("--passphrase-env", help="environment variable holding the passphrase")
    kg.set_defaults(func=_keygen)
    return gsub

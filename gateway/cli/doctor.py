"""``edgeledger doctor [--config gateway.toml]``: one OK/FAIL line per check (gateway/doctor/).

Exit codes: 0 every check passed, 1 at least one failed, 2 the configuration cannot be read.
"""
import argparse

from edgeledger.gateway.cli.common import add_config, site_broker


def _doctor(args: argparse.Namespace) -> int:
    from edgeledger.gateway import config, doctor

    cfg = config.load(args.config)
    checks = doctor.run(doctor.Inputs(cfg, site_broker(cfg), min_batches=args.min_batches,
                                      max_skew_s=args.max_skew))
    for c in checks:
        print(c.line(), flush=True)
    failed = [c.name for c in checks if not c.ok]
    print("%d of %d checks failed: %s" % (len(failed), len(checks), ", ".join(failed)) if failed
          else "all %d checks passed" % len(checks))
    return 1 if failed else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``doctor``."""
    dr = sub.add_parser("doctor", help="check broker, TLS names, chain, contract, funds, certificates, disk, clock")
    add_config(dr)
    dr.add_argument("--min-batches", type=int, default=100,
                    help="anchor batches the ledger account must pay for at current fees (default 100)")
    dr.add_argument("--max-skew", type=float, default=300.0,
                    help="seconds this host's clock may differ from the latest block's (default 300)")
    dr.set_defaults(func=_doctor)

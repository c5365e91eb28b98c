"""``edgeledger agent run``: the device agent on a Linux device (the CLI may reach into agent/)."""
import argparse


def _run(args: argparse.Namespace) -> int:
    from edgeledger.agent import linux
    from edgeledger.gateway.observe import logs

    cfg = linux.load_config(args.config)
    logs.apply_config(cfg["log_level"], "agent config %s: log_level" % args.config)
    result: int = linux.run(cfg, until_seq=args.until_seq, drain_timeout_s=args.drain_timeout)
    return result


def add_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``agent`` group; returns its subparsers."""
    ag = sub.add_parser("agent", help="run the device agent on a Linux device")
    asub = ag.add_subparsers(dest="agent_command", metavar="ACTION")
    ar = asub.add_parser("run", help="sample, sign, persist and publish readings")
    ar.add_argument("--config", required=True, help="agent.toml")
    ar.add_argument("--until-seq", type=int, default=None,
                    help="stop sealing after this seq and exit once the gateway has acked it")
    ar.add_argument("--drain-timeout", type=float, default=120.0)
    ar.set_defaults(func=_run)
    return asub

"""``edgeledger site init``: broker, ledger account, contract, gateway.toml and deployment file
of a new site in one command (gateway/enrol/site_init.py).

    edgeledger site init --dir DIR --site ID --rpc URL [--contract 0x..] [--broker-port P] ...

Exit codes: 0 the site is ready; 3 waiting for someone: fund the printed address (or the
contract owner authorizes the gateway), then run the same command again; 2 an error.
"""
import argparse
import os
import sys

from edgeledger.gateway.errors import ConfigError

SITE_WAITING = 3


def _funder_key(args: argparse.Namespace) -> bytes | None:
    """The funder's key from the environment variable ``--fund-from-key-env`` names (never an
    argument: ``ps`` shows arguments to every user)."""
    if not args.fund_from_key_env:
        return None
    text = os.environ.get(args.fund_from_key_env, "").strip()
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError("--fund-from-key-env %s: expected the variable to hold a 32-byte hex key, found %s"
                          % (args.fund_from_key_env, "nothing" if not text else "something else"))
    return key


def _init(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol import site_init

    opts = site_init.SiteOptions(
        directory=args.dir, site=args.site, rpc=args.rpc, gateway_id=args.gateway_id, contract=args.contract,
        broker_port=args.broker_port, gateway_port=args.gateway_port, bind=args.bind, names=args.name,
        auth=args.auth, run_as=args.run_as, keystore_file=args.keystore, passphrase_file=args.passphrase_file,
        funder_key=_funder_key(args), fund_batches=args.fund_batches, force=args.force)

    def say(step: str, text: str) -> None:
        print("%-11s %s" % (step, text), flush=True)

    try:
        r = site_init.init_site(opts, say)
    except (site_init.WaitingForFunds, site_init.WaitingForOwner) as e:
        print("NOT DONE: %s" % e, file=sys.stderr)
        return SITE_WAITING
    print("site %s is ready. Next:" % args.site)
    print("  /usr/sbin/mosquitto -c %s        # the broker (a service: deploy/systemd)" % r.broker.paths["config"])
    print("  edgeledger gateway run --config %s" % r.config)
    print("  edgeledger device provision --config %s --device ID --site %s --out DIR" % (r.config, args.site))
    print("  edgeledger doctor --config %s" % r.config)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``site`` group."""
    st = sub.add_parser("site", help="set up a site: broker, ledger account, contract, gateway.toml")
    ssub = st.add_subparsers(dest="site_command", metavar="ACTION")
    si = ssub.add_parser("init", help="broker config, ledger account, contract (deploy or adopt), authorization, "
                                      "gateway.toml, deployment file; idempotent: run again to go on")
    si.add_argument("--dir", required=True, help="the site directory (created)")
    si.add_argument("--site", required=True, help="the site id (in MQTT topics and on chain)")
    si.add_argument("--rpc", required=True, help="the chain's JSON-RPC URL")
    si.add_argument("--contract", help="adopt this EdgeLedgerAnchor (0x...) instead of deploying one")
    si.add_argument("--gateway-id", default="gw-1", help="this gateway's name (default gw-1)")
    si.add_argument("--broker-port", type=int, default=None,
                    help="the devices' TLS listener (default 8883, or the existing broker's)")
    si.add_argument("--gateway-port", type=int, default=None,
                    help="the gateway's TLS listener (default: the devices' port + 1, or the existing broker's)")
    si.add_argument("--bind", default="0.0.0.0", help="the broker's listen address (default 0.0.0.0)")
    si.add_argument("--host", "--name", dest="name", action="append", default=[], metavar="NAME",
                    help="a DNS name or IP address devices use for the broker (repeatable; localhost, "
                         "127.0.0.1 and this machine's names are always in its certificate)")
    si.add_argument("--auth", default="mtls", choices=["mtls", "password"], help="how devices log in")
    si.add_argument("--run-as", default="mosquitto", help="the user Mosquitto drops to when started as root")
    si.add_argument("--keystore", help="use this existing ledger keystore (import) instead of creating one")
    si.add_argument("--passphrase-file", help="its passphrase (default: DIR/ledger.passphrase, made if missing)")
    si.add_argument("--fund-from-key-env", metavar="VAR",
                    help="environment variable holding a funded account's key: site init sends the gateway "
                         "account what it needs (test chains, or a funding wallet)")
    si.add_argument("--fund-batches", type=int, default=1000,
                    help="with --fund-from-key-env: fund this many anchor batches at current fees (default 1000)")
    si.add_argument("--force", action="store_true",
                    help="generate the broker directory again and replace a gateway.toml naming another contract "
                         "(keys are never overwritten)")
    si.set_defaults(func=_init)

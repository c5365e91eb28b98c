"""``edgeledger broker ...``: a secured Mosquitto configuration for a site, and its CRL.

    edgeledger broker config    --dir DIR [--site S] [--port P] [--auth mtls|password] [--host NAME]...
    edgeledger broker renew-crl --dir DIR            (monthly, from a timer; then reload)

``--site`` is the site id here as in every other command (``--site-id`` is its older
spelling); the broker's directory is ``--dir``. ``broker config`` was once given its directory
as ``--site DIR``: a ``--site`` without ``--dir`` is refused with a hint, not taken as a
directory. ``renew-crl`` still takes ``--site DIR`` (timers installed from older units call it
so) with a deprecation line on stderr.

Passwords are never taken as arguments (``ps`` shows them to every user).
"""
import argparse
import os
import sys

from edgeledger.gateway.cli.common import RELOAD_HINT
from edgeledger.gateway.config.schema import DEFAULT_MAX_MESSAGE_BYTES
from edgeledger.gateway.errors import ConfigError


def _broker_config(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol.broker_config import BrokerSite
    from edgeledger.protocols import topics

    if args.dir is None:
        raise ConfigError("broker config needs --dir DIR, the directory to write (--site names the site id, as in "
                          "every command; it was once the directory): e.g. --dir /etc/edgeledger/broker --site %s"
                          % (os.path.basename(os.path.abspath(args.site)) if args.site else "plant-a"))
    site_id = args.site or os.path.basename(os.path.abspath(args.dir))
    try:
        topics.check_id(site_id, "site")
    except ValueError as e:
        raise ConfigError("%s; pass --site ID" % e) from e
    os.makedirs(args.dir, exist_ok=True)
    bs = BrokerSite(args.dir).generate(site_id, port=args.port, auth=args.auth, bind=args.bind,
                                        names=args.name, gateway_user=args.gateway_user, run_as=args.run_as,
                                        gateway_port=args.gateway_port, max_message_bytes=args.max_message_bytes,
                                        machine_names=not args.no_machine_names)
    print("wrote %s: site %s, devices (%s) on %s:%d, the gateway on port %d (TLS 1.2+), ACL %s" % (
        bs.paths["config"], site_id, args.auth, args.bind, args.port, bs.gateway_port, bs.paths["acl"]))
    print("broker certificate names: %s" % ", ".join(bs.meta["hosts"]))
    print("gateway settings: %s" % bs.paths["gateway_snippet"])
    print("start it with: mosquitto -c %s" % bs.paths["config"])
    return 0


def _broker_renew_crl(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol.broker_config import BrokerSite

    if args.old_site:
        print("edgeledger: warning: `broker renew-crl --site DIR` is now `--dir DIR` (--site names a site id "
              "elsewhere); the old spelling will be refused in a later release", file=sys.stderr)
    directory = args.dir or args.old_site
    if not directory:
        raise ConfigError("broker renew-crl needs --dir DIR, the directory `broker config` wrote")
    bs = BrokerSite.load(directory)
    until = bs.pki.renew_crl()
    print("renewed %s: %d revoked certificate(s), valid until %s; %s" % (
        bs.pki.crl_path, len(bs.pki.revoked_serials()), until.strftime("%Y-%m-%d %H:%M UTC"), RELOAD_HINT))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``broker`` group."""
    br = sub.add_parser("broker", help="generate a secured Mosquitto configuration for a site")
    bsub = br.add_subparsers(dest="broker_command", metavar="ACTION")
    bc = bsub.add_parser("config", help="site CA, broker certificate, TLS listener, per-device ACL")
    bc.add_argument("--dir", metavar="DIR", help="directory to write (created); required")
    bc.add_argument("--site", "--site-id", metavar="ID", help="the site id in topics (default: the directory's name)")
    bc.add_argument("--port", type=int, default=8883, help="the devices' listener (default 8883)")
    bc.add_argument("--gateway-port", type=int, default=None,
                    help="the gateway's listener, which only the gateway's password opens (default: port + 1)")
    bc.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
                    help="the gateway's max_message_bytes: the broker refuses larger publishes (default %d)"
                         % DEFAULT_MAX_MESSAGE_BYTES)
    bc.add_argument("--bind", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    bc.add_argument("--auth", default="mtls", choices=["mtls", "password"])
    bc.add_argument("--host", "--name", dest="name", action="append", default=[], metavar="NAME",
                    help="a DNS name or IP address devices use to reach the broker, added to its "
                         "certificate (repeatable); this machine's host name and addresses are added anyway")
    bc.add_argument("--no-machine-names", action="store_true",
                    help="leave this machine's host name and addresses out of the broker certificate")
    bc.add_argument("--gateway-user", default="gateway", help="the gateway's MQTT user name / certificate CN")
    bc.add_argument("--run-as", default="mosquitto",
                    help="user Mosquitto drops to when started as root (files are chowned to it); "
                         "'root' keeps root")
    bc.set_defaults(func=_broker_config)
    rc = bsub.add_parser("renew-crl", help="sign the CRL again for another year (run monthly; then reload)")
    rc.add_argument("--dir", metavar="DIR", help="directory from `broker config`; required")
    rc.add_argument("--site", dest="old_site", metavar="DIR", help=argparse.SUPPRESS)
    rc.set_defaults(func=_broker_renew_crl)

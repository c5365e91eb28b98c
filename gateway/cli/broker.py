"""``edgeledger broker ...``: a secured Mosquitto configuration for a site, and its CRL.

    edgeledger broker config   --site DIR [--site-id S] [--port P] [--auth mtls|password] [--host NAME]...
    edgeledger broker renew-crl --site DIR            (monthly, from a timer; then reload)

Passwords are never taken as arguments (``ps`` shows them to every user).
"""
import argparse
import os

from edgeledger.gateway.cli.common import RELOAD_HINT
from edgeledger.gateway.config.schema import DEFAULT_MAX_MESSAGE_BYTES
from edgeledger.gateway.errors import ConfigError


def _broker_config(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol.broker_config import BrokerSite
    from edgeledger.protocols import topics

    site_id = args.site_id or os.path.basename(os.path.abspath(args.site))
    try:
        topics.check_id(site_id, "site")
    except ValueError as e:
        raise ConfigError("%s; pass --site-id" % e) from e
    os.makedirs(args.site, exist_ok=True)
    bs = BrokerSite(args.site).generate(site_id, port=args.port, auth=args.auth, bind=args.bind,
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

    bs = BrokerSite.load(args.site)
    until = bs.pki.renew_crl()
    print("renewed %s: %d revoked certificate(s), valid until %s; %s" % (
        bs.pki.crl_path, len(bs.pki.revoked_serials()), until.strftime("%Y-%m-%d %H:%M UTC"), RELOAD_HINT))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``broker`` group."""
    br = sub.add_parser("broker", help="generate a secured Mosquitto configuration for a site")
    bsub = br.add_subparsers(dest="broker_command", metavar="ACTION")
    bc = bsub.add_parser("config", help="site CA, broker certificate, TLS listener, per-device ACL")
    bc.add_argument("--site", required=True, metavar="DIR", help="directory to write (created)")
    bc.add_argument("--site-id", help="site id in topics (default: the directory's name)")
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
    rc.add_argument("--site", required=True, metavar="DIR", help="directory from `broker config`")
    rc.set_defaults(func=_broker_renew_crl)

"""Operator commands for broker security, provisioning and the gateway's ledger key.

    edgeledger broker config   --site DIR [--site-id S] [--port P] [--auth mtls|password] ...
    edgeledger broker renew-crl --site DIR            (monthly, from a timer; then reload)
    edgeledger device provision --config gateway.toml --device ID --site S --out DIR ...
    edgeledger device enroll    --config gateway.toml --device ID --site S --port TTY --out DIR ...
    edgeledger device revoke    --config gateway.toml --device ID [--at T] [--kid HEX]
    edgeledger device rotate    --config gateway.toml --device ID --overlap-s N [--out DIR]
    edgeledger device sync-chain --config gateway.toml
    edgeledger gateway keygen   --out FILE (--passphrase-file F | --passphrase-env VAR)

Passphrases and passwords are never taken as arguments (``ps`` shows them to every user).
The broker rereads its password file and CRL on SIGHUP (``systemctl reload mosquitto``);
the commands that change either say so.
"""
import os

from edgeledger.gateway.errors import ConfigError

RELOAD_HINT = "reload the broker to apply it: kill -HUP <mosquitto pid> (or systemctl reload mosquitto)"


# --------------------------------------------------------------------------- helpers

def _open(args):
    from edgeledger.gateway import config
    from edgeledger.gateway.registry import Registry
    from edgeledger.gateway.store import Store

    cfg = config.load(args.config)
    st = Store(cfg.store, cfg.sqlite_synchronous)
    return cfg, st, Registry(st)


def _broker_for(args, cfg):
    """The BrokerSite from --broker-dir, else the one whose CA gateway.toml [mqtt] names."""
    from edgeledger.gateway.enrol.broker_config import META_FILE, BrokerSite

    if args is not None and getattr(args, "broker_dir", None):
        return BrokerSite.load(args.broker_dir)
    ca = cfg.mqtt.ca_file
    if ca:
        candidate = os.path.dirname(os.path.dirname(ca))  # DIR/pki/ca.pem -> DIR
        if os.path.exists(os.path.join(candidate, META_FILE)):
            return BrokerSite.load(candidate)
    return None


def crl_status(cfg: dict, now=None) -> list[str]:
    """Lines for `gateway status` about the broker CRL of gateway.toml's site (mutual TLS
    only): when it expires, and a warning when that is less than CRL_WARN_DAYS away."""
    import datetime

    from edgeledger.gateway.enrol.pki import CRL_WARN_DAYS, PkiError

    broker = _broker_for(None, cfg)
    if broker is None or broker.auth != "mtls":
        return []
    try:
        until = broker.pki.crl_next_update()
    except PkiError as e:
        return ["WARNING: %s" % e]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    days = (until - now).total_seconds() / 86400.0
    lines = ["broker CRL %s valid until %s (%.0f days)" % (broker.pki.crl_path, until.strftime("%Y-%m-%d %H:%M"),
                                                         days)]
    if days <= 0:
        lines.append("ERROR: the broker CRL has expired: every device certificate is refused. Run "
                     "`edgeledger broker renew-crl --site %s` and reload the broker" % broker.dir)
    elif days < CRL_WARN_DAYS:
        lines.append("WARNING: the broker CRL expires in %.0f days; when it does every device certificate is "
                     "refused. Run `edgeledger broker renew-crl --site %s` (monthly) and reload the broker"
                     % (days, broker.dir))
    return lines


def _ledger(args, cfg):
    from edgeledger.gateway.anchor import ledger_for_operator

    if getattr(args, "no_ledger", False):
        return None, "--no-ledger: gateway registry only"
    return ledger_for_operator(cfg)


# --------------------------------------------------------------------------- commands

def _broker_config(args):
    from edgeledger.gateway.enrol.broker_config import BrokerSite
    from edgeledger.protocols import topics

    site_id = args.site_id or os.path.basename(os.path.abspath(args.site))
    try:
        topics.check_id(site_id, "site")
    except ValueError as e:
        raise ConfigError("%s; pass --site-id" % e)
    os.makedirs(args.site, exist_ok=True)
    bs = BrokerSite(args.site).generate(site_id, port=args.port, auth=args.auth, bind=args.bind,
                                        names=args.name, gateway_user=args.gateway_user, run_as=args.run_as,
                                        gateway_port=args.gateway_port, max_message_bytes=args.max_message_bytes)
    print("wrote %s: site %s, devices (%s) on %s:%d, the gateway on port %d (TLS 1.2+), ACL %s" % (
        bs.paths["config"], site_id, args.auth, args.bind, args.port, bs.gateway_port, bs.paths["acl"]))
    print("gateway settings: %s" % bs.paths["gateway_snippet"])
    print("start it with: mosquitto -c %s" % bs.paths["config"])
    return 0


def _broker_renew_crl(args) -> int:
    from edgeledger.gateway.enrol.broker_config import BrokerSite

    bs = BrokerSite.load(args.site)
    until = bs.pki.renew_crl()
    print("renewed %s: %d revoked certificate(s), valid until %s; %s" % (
        bs.pki.crl_path, len(bs.pki.revoked_serials()), until.strftime("%Y-%m-%d %H:%M UTC"), RELOAD_HINT))
    return 0


def _device_provision(args):
    from edgeledger.gateway.enrol import provision

    cfg, st, reg = _open(args)
    try:
        broker = _broker_for(args, cfg)
        if broker is None:
            raise ConfigError("no broker directory: pass --broker-dir DIR (from `edgeledger broker config`)")
        ledger, note = _ledger(args, cfg)
        public = bytes.fromhex(args.public_key) if args.public_key else None
        b = provision.provision(reg, args.device, args.site, args.out, alg=args.alg, public_key=public,
                                broker=broker, auth=args.auth, broker_host=args.broker_host, ledger=ledger)
    finally:
        st.close()
    print("provisioned %s on site %s: %s kid %s (%s)" % (b.device, b.site, b.alg, b.kid.hex(), note))
    for name in sorted(b.files):
        print("  %-12s %s" % (name, b.files[name]))
    if broker.auth == "password":
        print("password added to %s: %s" % (broker.paths["passwd"], RELOAD_HINT))
    return 0


def _device_enroll(args):
    from edgeledger.gateway.enrol import enroll

    cfg, st, reg = _open(args)
    try:
        broker = _broker_for(args, cfg)
        if broker is None and not args.broker_url:
            raise ConfigError("no broker: pass --broker-dir DIR (from `edgeledger broker config`) or --broker-url")
        ledger, note = _ledger(args, cfg)
        b = enroll.enroll(reg, args.device, args.site, args.out, args.port, alg=args.alg, key_file=args.key_file,
                          baudrate=args.baud, upload=not args.no_upload, broker=broker, auth=args.auth,
                          broker_host=args.broker_host, broker_url=args.broker_url, ledger=ledger)
    finally:
        st.close()
    print("enrolled %s on site %s: %s kid %s, key made on the board (%s)" % (b.device, b.site, b.alg, b.kid.hex(), note))
    for name in sorted(b.files):
        print("  %-12s %s%s" % (name, b.files[name], "" if args.no_upload else " (copied to the board)"
                                  if name in enroll.BOARD_FILES else ""))
    if broker is not None and broker.auth == "password":
        print("password added to %s: %s" % (broker.paths["passwd"], RELOAD_HINT))
    return 0


def _device_revoke(args):
    from edgeledger.gateway.enrol import provision

    cfg, st, reg = _open(args)
    try:
        broker = _broker_for(args, cfg)
        ledger, note = _ledger(args, cfg)
        kid = bytes.fromhex(args.kid) if getattr(args, "kid", None) else None
        r = provision.revoke(reg, args.device, at=args.at, kid=kid, ledger=ledger, broker=broker)
    finally:
        st.close()
    print("revoked %d key(s) of %s from %d; on chain: %d (%s)" % (r["revoked"], args.device, r["at"], r["chain"], note))
    if r["broker"]:
        print("broker credentials of %s withdrawn: %s" % (args.device, RELOAD_HINT))
    return 0 if (r["revoked"] or r["chain"] or r["broker"]) else 1


def _device_rotate(args):
    from edgeledger.gateway.enrol import provision

    cfg, st, reg = _open(args)
    try:
        ledger, note = _ledger(args, cfg)
        public = bytes.fromhex(args.public_key) if args.public_key else None
        kid, until = provision.rotate(reg, args.device, args.overlap_s, out_dir=args.out, alg=args.alg,
                                      public_key=public, ledger=ledger)
    finally:
        st.close()
    print("rotated %s: new kid %s; previous keys valid until %d (%s)" % (args.device, kid.hex(), until, note))
    return 0


def _device_sync_chain(args):
    from edgeledger.gateway.anchor import keysync, ledger_for_operator

    cfg, st, reg = _open(args)
    try:
        ledger, note = ledger_for_operator(cfg)
        if ledger is None:
            raise ConfigError("sync-chain needs a jsonrpc ledger in [ledger]: %s" % note)
        r = keysync.sync_chain(reg, ledger)
    finally:
        st.close()
    print("chain in step with the registry: %d key(s) registered, %d revocation(s) sent" % (r["registered"], r["revoked"]))
    return 0


def _gateway_keygen(args):
    from edgeledger.gateway.anchor import keystore

    passphrase = keystore.read_passphrase(args.passphrase_file, args.passphrase_env)
    key = keystore.generate(args.out, passphrase)
    print("wrote %s (mode 0600): gateway account %s" % (args.out, key.address))
    return 0


# --------------------------------------------------------------------------- parser

def _common(p, ledger=True):
    p.add_argument("--config", required=True, help="gateway.toml")
    p.add_argument("--device", required=True)
    if ledger:
        p.add_argument("--no-ledger", action="store_true",
                       help="do not touch the on-chain key registry (gateway registry only)")


def _bundle_args(p, out_help, alg):
    """Arguments of the commands that write a device bundle (provision, enroll)."""
    _common(p)
    p.add_argument("--site", required=True)
    p.add_argument("--alg", default=alg, choices=["EdDSA", "ES256"])
    p.add_argument("--auth", choices=["mtls", "password"], help="must match the broker (default: the broker's)")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--broker-dir", help="directory from `broker config` (default: found via [mqtt] ca_file)")
    p.add_argument("--broker-host", help="broker name the device connects to (a name in its certificate)")


def add_commands(groups):
    top, dev, gw = groups["top"], groups["device"], groups["gateway"]

    br = top.add_parser("broker", help="generate a secured Mosquitto configuration for a site")
    bsub = br.add_subparsers(dest="broker_command", metavar="ACTION")
    bc = bsub.add_parser("config", help="site CA, broker certificate, TLS listener, per-device ACL")
    bc.add_argument("--site", required=True, metavar="DIR", help="directory to write (created)")
    bc.add_argument("--site-id", help="site id in topics (default: the directory's name)")
    bc.add_argument("--port", type=int, default=8883, help="the devices' listener (default 8883)")
    bc.add_argument("--gateway-port", type=int, default=None,
                    help="the gateway's listener, which only the gateway's password opens (default: port + 1)")
    bc.add_argument("--max-message-bytes", type=int, default=65536,
                    help="the gateway's max_message_bytes: the broker refuses larger publishes (default 65536)")
    bc.add_argument("--bind", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    bc.add_argument("--auth", default="mtls", choices=["mtls", "password"])
    bc.add_argument("--name", action="append", default=[],
                    help="extra DNS name or IP address for the broker certificate (repeatable)")
    bc.add_argument("--gateway-user", default="gateway", help="the gateway's MQTT user name / certificate CN")
    bc.add_argument("--run-as", default="mosquitto",
                    help="user Mosquitto drops to when started as root (files are chowned to it); "
                         "'root' keeps root")
    bc.set_defaults(func=_broker_config)
    rc = bsub.add_parser("renew-crl", help="sign the CRL again for another year (run monthly; then reload)")
    rc.add_argument("--site", required=True, metavar="DIR", help="directory from `broker config`")
    rc.set_defaults(func=_broker_renew_crl)

    pv = dev.add_parser("provision", help="key, registration (registry and chain), MQTT credentials, bundle")
    _bundle_args(pv, "bundle directory for the device", "EdDSA")
    pv.add_argument("--public-key", help="raw public key as hex, exported from a secure element")
    pv.set_defaults(func=_device_provision)

    en = dev.add_parser("enroll", help="make the device key on the board over its serial REPL; register "
                                       "the public key (registry and chain); write and upload the bundle")
    _bundle_args(en, "bundle directory (public files; no private key)", "ES256")
    en.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyUSB0)")
    en.add_argument("--baud", type=int, default=115200)
    en.add_argument("--key-file", help="key file name on the board (default: DEVICE.key)")
    en.add_argument("--broker-url", help="mqtt://host:port when there is no broker directory")
    en.add_argument("--no-upload", action="store_true", help="do not copy config.json and certificates to the board")
    en.set_defaults(func=_device_enroll)

    # `device revoke` may already exist (registry only): extend it rather than clash with it.
    rv = dev.choices.get("revoke")
    if rv is None:
        rv = dev.add_parser("revoke", help="revoke a device's keys: registry, chain and broker")
        _common(rv, ledger=False)
        rv.add_argument("--at", type=float, default=None, help="unix time the revocation takes effect")
    rv.add_argument("--kid", help="revoke only this key (hex); the device keeps its MQTT credentials")
    rv.add_argument("--broker-dir", help="directory from `broker config` (default: found via [mqtt] ca_file)")
    rv.add_argument("--no-ledger", action="store_true", help="gateway registry (and broker) only")
    rv.set_defaults(func=_device_revoke)

    rt = dev.add_parser("rotate", help="new key now; the current keys stay valid for --overlap-s")
    _common(rt)
    rt.add_argument("--overlap-s", type=float, required=True)
    rt.add_argument("--out", help="the device's bundle directory: its key file is replaced")
    rt.add_argument("--alg", choices=["EdDSA", "ES256"], help="default: the current key's algorithm")
    rt.add_argument("--public-key", help="new raw public key as hex, from a secure element")
    rt.set_defaults(func=_device_rotate)

    sc = dev.add_parser("sync-chain", help="push every registry key and revocation to the chain")
    sc.add_argument("--config", required=True)
    sc.set_defaults(func=_device_sync_chain)

    kg = gw.add_parser("keygen", help="new ledger account key, encrypted (Ethereum keystore, mode 0600)")
    kg.add_argument("--out", required=True)
    g = kg.add_mutually_exclusive_group(required=True)
    g.add_argument("--passphrase-file", help="file holding the passphrase (mode 0600)")
    g.add_argument("--passphrase-env", help="environment variable holding the passphrase")
    kg.set_defaults(func=_gateway_keygen)

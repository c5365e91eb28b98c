"""``edgeledger device ...``: device keys and the gateway's device registry.

    edgeledger device keygen     --device ID [--alg ES256|EdDSA|SM2] -o FILE
    edgeledger device register   [--config gateway.toml] --device ID --site S (--key-file F | --public-key HEX)
    edgeledger device provision  [--config gateway.toml] --device ID --site S --out DIR ...
    edgeledger device enroll     [--config gateway.toml] --device ID --site S --port TTY --out DIR ...
    edgeledger device revoke     [--config gateway.toml] --device ID [--at T] [--kid HEX]
    edgeledger device rotate     [--config gateway.toml] --device ID --overlap-s N [--out DIR]
    edgeledger device sync-chain [--config gateway.toml]
    edgeledger device accept-gap [--config gateway.toml] --device ID --reason TEXT [--through SEQ]
    edgeledger device list       [--config gateway.toml]

The broker rereads its password file and CRL on SIGHUP (``systemctl reload mosquitto``); the
commands that change either say so.
"""
import argparse
from typing import TYPE_CHECKING, Collection

from edgeledger.gateway.cli.common import (
    RELOAD_HINT,
    add_config,
    broker_url,
    device_id,
    hex_bytes,
    open_registry,
    open_store,
    operator_ledger,
    site_broker,
    site_id,
)
from edgeledger.gateway.errors import ConfigError

KEY_ALGS = ["EdDSA", "ES256", "SM2"]  # every one of them also goes into the on-chain key registry

if TYPE_CHECKING:
    from edgeledger.gateway.enrol.broker_config import BrokerSite


def _keygen(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol import keys

    key = keys.generate(args.alg, args.device)
    keys.create_key_file(args.out, key)
    print("wrote %s: device %s, %s, kid %s" % (args.out, args.device, key.alg.name, key.kid.hex()))
    return 0


def _register(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol import keys, provision

    if args.key_file:
        key = keys.load_key_file(args.key_file)
    else:
        key = keys.public_only(args.alg, args.device, args.public_key)
    cfg, st, reg = open_registry(args.config)
    try:
        ledger, note = operator_ledger(args, cfg)
        provision.register(reg, args.device, args.site, key, ledger=ledger)
    finally:
        st.close()
    print("registered %s on site %s, kid %s (%s)" % (args.device, args.site, key.kid.hex(), note))
    return 0


def alg_name(alg: int | None) -> str:
    """The name of a COSE algorithm id (-8 -> "EdDSA"); the number if it has none."""
    from edgeledger.protocols.cose.verify import ALGORITHMS

    return str(ALGORITHMS[alg]["name"]) if alg in ALGORITHMS else "-" if alg is None else str(alg)


def _list(args: argparse.Namespace) -> int:
    _cfg, st = open_store(args.config)
    print("%-20s %-12s %8s %8s %6s %-32s %-5s %s" % ("device", "site", "contig", "max_seq", "online",
                                                    "kid", "alg", "revoked_at"))
    for r in st.device_listing():
        print("%-20s %-12s %8d %8d %6s %-32s %-5s %s" % (r.device, r.site, r.contig, r.max_seq, r.online,
                                                         (r.kid or b"").hex(), alg_name(r.alg), r.revoked_at or "-"))
    st.close()
    return 0


def _accept_gap(args: argparse.Namespace) -> int:
    from edgeledger.gateway.registry import accept_gap

    _cfg, st = open_store(args.config)
    try:
        g = accept_gap(st, args.device, args.reason, through=args.through)
    finally:
        st.close()
    print("accepted the gap of %s: seqs %d..%d are not in its chain; it goes on at seq %d (%s: %s)"
          % (g.device, g.after_seq + 1, g.resume_seq - 1, g.resume_seq, g.kind, g.reason))
    return 0


def _print_bundle(headline: str, files: dict[str, str], broker: "BrokerSite | None",
                  copied: Collection[str] = ()) -> None:
    """What provision and enroll wrote: the headline, the bundle's files (those in ``copied``
    marked as copied to the board), and the broker reload a new password needs."""
    print(headline)
    for name in sorted(files):
        print("  %-12s %s%s" % (name, files[name], " (copied to the board)" if name in copied else ""))
    if broker is not None and broker.auth == "password":
        print("password added to %s: %s" % (broker.paths["passwd"], RELOAD_HINT))


def _provision(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol import provision

    cfg, st, reg = open_registry(args.config)
    try:
        broker = site_broker(cfg, args.broker_dir)
        if broker is None:
            raise ConfigError("no broker directory: pass --broker-dir DIR (from `edgeledger broker config`)")
        ledger, note = operator_ledger(args, cfg)
        b = provision.provision(reg, args.device, args.site, args.out, alg=args.alg, public_key=args.public_key,
                                broker=broker, auth=args.auth, broker_host=args.broker_host, ledger=ledger)
    finally:
        st.close()
    _print_bundle("provisioned %s on site %s: %s kid %s (%s)" % (b.device, b.site, b.alg, b.kid.hex(), note),
                  b.files, broker)
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol import enroll

    cfg, st, reg = open_registry(args.config)
    try:
        broker = site_broker(cfg, args.broker_dir)
        if broker is None and not args.broker_url:
            raise ConfigError("no broker: pass --broker-dir DIR (from `edgeledger broker config`) or --broker-url")
        ledger, note = operator_ledger(args, cfg)
        b = enroll.enroll(reg, args.device, args.site, args.out, args.port, alg=args.alg, key_file=args.key_file,
                          baudrate=args.baud, upload=not args.no_upload, broker=broker, auth=args.auth,
                          broker_host=args.broker_host, broker_url=args.broker_url, ledger=ledger)
    finally:
        st.close()
    copied = () if args.no_upload else enroll.BOARD_FILES
    _print_bundle("enrolled %s on site %s: %s kid %s, key made on the board (%s)"
                  % (b.device, b.site, b.alg, b.kid.hex(), note), b.files, broker, copied)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol import provision

    cfg, st, reg = open_registry(args.config)
    try:
        broker = site_broker(cfg, args.broker_dir)
        ledger, note = operator_ledger(args, cfg)
        r = provision.revoke(reg, args.device, at=args.at, kid=args.kid, ledger=ledger, broker=broker)
    finally:
        st.close()
    print("revoked %d key(s) of %s from %d; on chain: %d (%s)" % (r["revoked"], args.device, r["at"], r["chain"], note))
    if r["broker"]:
        print("broker credentials of %s withdrawn: %s" % (args.device, RELOAD_HINT))
    return 0 if (r["revoked"] or r["chain"] or r["broker"]) else 1


def _rotate(args: argparse.Namespace) -> int:
    from edgeledger.gateway.enrol import provision

    cfg, st, reg = open_registry(args.config)
    try:
        ledger, note = operator_ledger(args, cfg)
        kid, until = provision.rotate(reg, args.device, args.overlap_s, out_dir=args.out, alg=args.alg,
                                      public_key=args.public_key, ledger=ledger)
    finally:
        st.close()
    print("rotated %s: new kid %s; previous keys valid until %d (%s)" % (args.device, kid.hex(), until, note))
    return 0


def _sync_chain(args: argparse.Namespace) -> int:
    from edgeledger.gateway.anchor import keysync, ledger_for_operator

    cfg, st, reg = open_registry(args.config)
    try:
        ledger, note = ledger_for_operator(cfg)
        if ledger is None:
            raise ConfigError("sync-chain needs a jsonrpc ledger in [ledger]: %s" % note)
        r = keysync.sync_chain(reg, ledger)
    finally:
        st.close()
    print("chain in step with the registry: %d key(s) registered, %d key end(s) sent (revocations, rotations)"
          % (r["registered"], r["ended"]))
    return 0


# --------------------------------------------------------------------------- parser

def _common(p: argparse.ArgumentParser) -> None:
    add_config(p)
    p.add_argument("--device", required=True, type=device_id)
    p.add_argument("--no-ledger", action="store_true",
                   help="do not touch the on-chain key registry (gateway registry only)")


def _bundle_args(p: argparse.ArgumentParser, out_help: str, alg: str) -> None:
    """Arguments of the commands that write a device bundle (provision, enroll)."""
    _common(p)
    p.add_argument("--site", required=True, type=site_id)
    p.add_argument("--alg", default=alg, choices=KEY_ALGS)
    p.add_argument("--auth", choices=["mtls", "password"], help="must match the broker (default: the broker's)")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--broker-dir", help="directory from `broker config` (default: found via [mqtt] ca_file)")
    p.add_argument("--broker-host", help="broker name the device connects to (a name in its certificate)")


def _add_registry_commands(dsub: argparse._SubParsersAction) -> None:
    k = dsub.add_parser("keygen", help="create a device key file (mode 0600)")
    k.add_argument("--device", required=True, type=device_id)
    k.add_argument("--alg", default="ES256", choices=KEY_ALGS,
                   help="ES256 (default) signs cheapest on a 32-bit board (bench device); "
                        "EdDSA suits a Linux device too; SM2 where GB/T 32918 is required")
    k.add_argument("-o", "--out", required=True)
    k.set_defaults(func=_keygen)
    r = dsub.add_parser("register", help="register a device key in the gateway registry and, with a jsonrpc "
                                         "[ledger], on chain")
    add_config(r)
    r.add_argument("--device", required=True, type=device_id)
    r.add_argument("--site", required=True, type=site_id)
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--key-file", help="device key file (only the public key is used)")
    g.add_argument("--public-key", type=hex_bytes,
                   help="raw public key as hex (e.g. exported from a secure element)")
    r.add_argument("--alg", default="EdDSA", choices=KEY_ALGS, help="with --public-key")
    r.add_argument("--no-ledger", action="store_true",
                   help="do not touch the on-chain key registry (gateway registry only)")
    r.set_defaults(func=_register)
    ag = dsub.add_parser("accept-gap", help="give up the seqs a device can never deliver, so its chain goes on")
    add_config(ag)
    ag.add_argument("--device", required=True, type=device_id)
    ag.add_argument("--reason", required=True, help="why (kept with the gap, shown to verifiers)")
    ag.add_argument("--through", type=int, default=None,
                    help="last seq to give up (default: up to the next stored seq)")
    ag.set_defaults(func=_accept_gap)
    ls = dsub.add_parser("list", help="list registered devices and keys")
    add_config(ls)
    ls.set_defaults(func=_list)


def _add_lifecycle_commands(dsub: argparse._SubParsersAction) -> None:
    pv = dsub.add_parser("provision", help="key, registration (registry and chain), MQTT credentials, bundle")
    _bundle_args(pv, "bundle directory for the device", "EdDSA")
    pv.add_argument("--public-key", type=hex_bytes, help="raw public key as hex, exported from a secure element")
    pv.set_defaults(func=_provision)
    en = dsub.add_parser("enroll", help="make the device key on the board over its serial REPL; register "
                                        "the public key (registry and chain); write and upload the bundle")
    _bundle_args(en, "bundle directory (public files; no private key)", "ES256")
    en.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyUSB0)")
    en.add_argument("--baud", type=int, default=115200)
    en.add_argument("--key-file", help="key file name on the board (default: DEVICE.key)")
    en.add_argument("--broker-url", type=broker_url, help="mqtt://host:port when there is no broker directory")
    en.add_argument("--no-upload", action="store_true", help="do not copy config.json and certificates to the board")
    en.set_defaults(func=_enroll)
    rv = dsub.add_parser("revoke", help="revoke a device's keys: registry, chain and broker")
    _common(rv)
    rv.add_argument("--at", type=float, default=None, help="unix time the revocation takes effect")
    rv.add_argument("--kid", type=hex_bytes,
                    help="revoke only this key (hex); the device keeps its MQTT credentials")
    rv.add_argument("--broker-dir", help="directory from `broker config` (default: found via [mqtt] ca_file)")
    rv.set_defaults(func=_revoke)
    rt = dsub.add_parser("rotate", help="new key now; the current keys stay valid for --overlap-s")
    _common(rt)
    rt.add_argument("--overlap-s", type=float, required=True)
    rt.add_argument("--out", help="the device's bundle directory: its key file is replaced")
    rt.add_argument("--alg", choices=KEY_ALGS, help="default: the current key's algorithm")
    rt.add_argument("--public-key", type=hex_bytes, help="new raw public key as hex, from a secure element")
    rt.set_defaults(func=_rotate)
    sc = dsub.add_parser("sync-chain", help="push every registry key and revocation to the chain")
    add_config(sc)
    sc.set_defaults(func=_sync_chain)


def add_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``device`` group; returns its subparsers."""
    dev = sub.add_parser("device", help="device keys and the gateway's device registry")
    dsub = dev.add_subparsers(dest="device_command", metavar="ACTION")
    _add_registry_commands(dsub)
    _add_lifecycle_commands(dsub)
    return dsub

"""``edgeledger``: the one console script.

Each command's work lives in its own module; this file only parses arguments
and imports the module a command needs, so ``edgeledger --help`` stays fast.
Exit codes: 0 success, 1 a check failed (verification, lost data), 2 usage or
configuration error; ``verify`` also 3 when the chain cannot be reached.
"""
import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `edgeledger --help` stays fast
    from edgeledger.gateway.verifier import TrustRoot


def _device_keygen(args):
    from edgeledger.agent import key_file, signer

    s = signer.generate(args.alg, args.device)
    text = key_file.key_file_content(args.device, args.alg, s.private_bytes())
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    print("wrote %s: device %s, %s, kid %s" % (args.out, args.device, s.alg_name, s.kid.hex()))
    return 0


def _open_gateway_store(args):
    from edgeledger.gateway import config, store

    cfg = config.load(args.config)
    return cfg, store.Store(cfg["store"], cfg["synchronous"])


def _device_register(args):
    from edgeledger.agent import key_file, signer
    from edgeledger.gateway.registry import Registry

    if args.key_file:
        s = key_file.load_key_file(args.key_file)
        alg, public = s.alg, s.public_key
    else:
        alg = signer.algorithm(args.alg).cose_id
        public = bytes.fromhex(args.public_key)
    kid = signer.key_id(public)
    _cfg, st = _open_gateway_store(args)
    reg = Registry(st)
    reg.register(args.device, args.site, alg, public, kid)
    print("registered %s on site %s, kid %s" % (args.device, args.site, kid.hex()))
    return 0


def _device_revoke(args):
    from edgeledger.gateway.registry import Registry

    _cfg, st = _open_gateway_store(args)
    n = Registry(st).revoke(args.device, at=args.at)
    print("revoked %d key(s) of %s" % (n, args.device))
    return 0 if n else 1


def _device_list(args):
    _cfg, st = _open_gateway_store(args)
    rows = st.db.execute(
        "SELECT d.device, d.site, d.contig, d.max_seq, d.online, k.kid, k.alg, k.revoked_at"
        " FROM devices d LEFT JOIN device_keys k ON k.device = d.device ORDER BY d.device").fetchall()
    print("%-20s %-12s %8s %8s %6s %-32s %5s %s" % ("device", "site", "contig", "max_seq", "online",
                                                   "kid", "alg", "revoked_at"))
    for r in rows:
        print("%-20s %-12s %8d %8d %6s %-32s %5s %s" % (r[0], r[1], r[2], r[3], bool(r[4]),
                                                        (r[5] or b"").hex(), r[6], r[7] or "-"))
    return 0


def _device_accept_gap(args):
    from edgeledger.gateway import gaps

    _cfg, st = _open_gateway_store(args)
    g = gaps.accept_gap(st, args.device, args.reason, through=args.through)
    print("accepted the gap of %s: seqs %d..%d are not in its chain; it goes on at seq %d (%s: %s)"
          % (g.device, g.after_seq + 1, g.resume_seq - 1, g.resume_seq, g.kind, g.reason))
    return 0


def _agent_run(args):
    from edgeledger.agent import linux

    cfg = linux.load_config(args.config)
    return linux.run(cfg, until_seq=args.until_seq, drain_timeout_s=args.drain_timeout)


def _gateway_run(args):
    from edgeledger.gateway import runner

    return runner.main(args.config, duration_s=args.duration, workers=args.workers)


def _gateway_status(args):
    from edgeledger.gateway import status

    cfg, st = _open_gateway_store(args)
    for line in status.report(cfg, st, args.config):
        print(line)
    return 0


# Modules that add their own subcommands: each has ``add_commands(groups)`` where
# ``groups`` maps "top", "device", "agent" and "gateway" to argparse subparser sets.
COMMAND_MODULES = (
    "edgeledger.gateway.cmd_security",
    "edgeledger.gateway.bench.cmd",
    "edgeledger.gateway.demo",
    "edgeledger.gateway.boards.cmd",
)


def _proof(args):
    from edgeledger.gateway import proofs

    cfg, st = _open_gateway_store(args)
    meta = st.ledger_meta()
    if not meta:
        print("edgeledger: this store has never anchored a batch (no [ledger] configured?)", file=sys.stderr)
        return 2
    b = proofs.bundle_for(st, args.device, args.seq, int(meta["chain_id"]), meta["contract"])
    data = b.encode()
    with open(args.out, "wb") as f:
        f.write(data)
    print("wrote %s: %s seq %d, batch %d, leaf %d of %d, %d bytes"
          % (args.out, args.device, args.seq, b.header.number, b.index, b.header.tree_size, len(data)))
    return 0


# Exit codes of `edgeledger verify` (VERIFY_EPILOG says the same to the user).
VERIFY_OK, VERIFY_REFUSED, VERIFY_USAGE, VERIFY_UNREACHABLE = 0, 1, 2, 3
VERIFY_EPILOG = """\
trust roots: with --rpc, give either --chain-id and --contract, or --deployment FILE with
--deployment-sha256 HEX (the file's SHA-256 from whoever published it). Nothing in the bundle
can name its own trust root.

exit codes: 0 verified (or, without --rpc, the offline checks passed), 1 refused (the line says
which check failed), 2 usage error (missing or contradicting trust roots, unreadable file),
3 chain unreachable (the node did not answer, or refused a request)."""


def _trust(args: argparse.Namespace) -> "TrustRoot | None":
    from edgeledger.gateway.verifier import TrustError, TrustRoot

    pinned = args.chain_id is not None or args.contract is not None
    if args.deployment and pinned:
        raise TrustError("give either --deployment FILE or --chain-id/--contract, not both")
    if args.deployment:
        return TrustRoot.from_deployment(args.deployment, args.deployment_sha256)
    if args.deployment_sha256:
        raise TrustError("--deployment-sha256 needs --deployment FILE")
    if pinned:
        if args.chain_id is None or args.contract is None:
            raise TrustError("give both --chain-id and --contract")
        return TrustRoot(args.chain_id, args.contract)
    if args.rpc:
        raise TrustError("--rpc needs trust roots from outside the bundle: --chain-id N --contract 0x.., or "
                         "--deployment FILE --deployment-sha256 HEX")
    return None


def _fmt_time(t: float | None) -> str:
    import datetime

    if t is None:
        return "?"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_report(name: str, r: dict) -> None:
    print("OK %s: %s seq %d on site %s, %s" % (
        name, r["device"], r["seq"], r["site"],
        "verified on chain" if r["verdict"] == "verified" else "offline checks only (no --rpc: NOT proven on chain)"))
    if r["encrypted"]:
        print("  values    encrypted for the data owner (times not visible)")
    else:
        print("  time      %s .. %s" % (_fmt_time(r["t_first"]), _fmt_time(r["t_last"])))
        for v in r["values"]:
            value = v.get("v", v.get("vs", v.get("vb", v.get("s"))))
            print("  value     %s = %s %s (at %s)" % (v["n"], value, v.get("u", ""), _fmt_time(v["t"])))
    print("  batch     %d of gateway %s, leaf %d of %d" % (r["batch"], r["gateway"], r["leaf_index"], r["tree_size"]))
    if "chain_restart" in r:
        print("  chain     this reading starts a new chain segment of %s (signed by the device): %s"
              % (r["device"], r["chain_restart"]))
    for g in r.get("chain_gaps", ()):
        print("  gap       recorded by the gateway (not proven by the bundle): seqs %d..%d are not in the chain of "
              "%s, it goes on at seq %d (%s: %s)" % (g["missing_from"], g["missing_to"], r["device"],
                                                     g["resumes_at"], g["kind"], g["reason"]))
    if r["verdict"] != "verified":
        return
    k = r["key"]
    print("  anchored  block %d at %s, %d confirmations (storage proof at block %d %s)" % (
        r["anchor_block"], _fmt_time(r["anchor_time"]), r["confirmations"], r["proven_at_block"],
        r["proven_at_block_hash"]))
    print("  key       %s, registered block %d at %s from seq %d; %s%s" % (
        k["kid"], k["registered_block"], _fmt_time(k["registered_time"]), k["first_seq"], k["status"],
        "" if k["status"] == "valid" else " (end %s, last seq %s): the reading is inside its window" % (
            _fmt_time(k["end_time"]), k["last_seq"] if k["last_seq"] is not None else "open")))
    t = r["trust"]
    print("  trusted   chain %d, contract %s (EdgeLedgerAnchor v%d), %s%s" % (
        t["chain_id"], t["contract"], r["contract_version"], t["source"],
        " sha256 %s" % t["deployment_sha256"] if "deployment_sha256" in t else ""))


def _verify(args: argparse.Namespace) -> int:
    import json

    from edgeledger.gateway import verifier
    from edgeledger.gateway.errors import LedgerError
    from edgeledger.gateway.ledger import LedgerUnavailable
    from edgeledger.protocols.bundle import BundleError

    def refuse(code, check, reason):
        if args.json:
            print(json.dumps({"verdict": "refused" if code == VERIFY_REFUSED else "error", "check": check,
                              "reason": reason, "bundle": args.bundle}, sort_keys=True))
        else:
            print("%s %s: %s: %s" % ("FAIL" if code == VERIFY_REFUSED else "ERROR", args.bundle, check, reason))
        return code

    try:
        trust = _trust(args)
        with open(args.bundle, "rb") as f:
            data = f.read()
    except (verifier.TrustError, OSError) as e:
        return refuse(VERIFY_USAGE, "usage", str(e))
    block = "latest" if args.block is None else args.block
    try:
        report = verifier.verify_bundle(data, rpc=args.rpc, min_confirmations=args.confirmations, trust=trust,
                                        block=block)
    except verifier.BundleCheckFailed as e:
        return refuse(VERIFY_REFUSED, e.kind, str(e))
    except BundleError as e:
        return refuse(VERIFY_REFUSED, "offline", str(e))
    except LedgerUnavailable as e:
        return refuse(VERIFY_UNREACHABLE, "chain_unreachable", str(e))
    except LedgerError as e:  # the node refused a request (no eth_getProof, no such block, ...)
        return refuse(VERIFY_UNREACHABLE, "chain_unusable", str(e))
    if args.json:
        print(json.dumps(dict(report, bundle=args.bundle), sort_keys=True))
    else:
        _print_report(args.bundle, report)
    return VERIFY_OK


def _deployment_export(args: argparse.Namespace) -> int:
    import hashlib

    from edgeledger.gateway import deployment

    d = deployment.export(args.rpc, args.contract, block="latest" if args.block is None else args.block)
    data = deployment.dumps(d)
    with open(args.out, "wb") as f:
        f.write(data)
    print("wrote %s: chain %d, contract %s (v%d), %d site(s), as of block %d" % (
        args.out, d["chain_id"], d["contract"], d["contract_version"], len(d["sites"]), d["as_of_block"]))
    print("sha256 %s" % hashlib.sha256(data).hexdigest())
    return 0


def _deployment_authorize(args: argparse.Namespace) -> int:
    from edgeledger.gateway import keystore
    from edgeledger.gateway.ledger import JsonRpcLedger

    key = keystore.account_key({"keystore_file": args.keystore, "passphrase_file": args.passphrase_file,
                                "passphrase_env": args.passphrase_env, "key_file": args.key_file})
    if key is None:
        print("edgeledger: the contract owner's key is needed: --keystore FILE (with --passphrase-file or "
              "--passphrase-env) or --key-file FILE", file=sys.stderr)
        return 2
    owner = JsonRpcLedger(args.rpc, key=key)
    owner.attach(args.contract)
    if args.deployment_command == "authorize":
        owner.authorize_gateway(args.site, args.gateway, key=key)
    else:
        owner.deauthorize_gateway(args.site, args.gateway, key=key)
    start, end = owner.authorization(args.site, args.gateway)
    print("gateway %s for site %s: authorized from block %d%s" % (
        args.gateway, args.site, start, ", until block %d" % end if end else ""))
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="edgeledger", description=(
        "Tamper-evident sensor and meter readings: agents sign, gateways store and anchor, "
        "anyone verifies."))
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    dev = sub.add_parser("device", help="device keys and the gateway's device registry")
    dsub = dev.add_subparsers(dest="device_command", metavar="ACTION")
    k = dsub.add_parser("keygen", help="create a device key file (mode 0600)")
    k.add_argument("--device", required=True)
    k.add_argument("--alg", default="ES256", choices=["EdDSA", "ES256", "SM2"],
                   help="ES256 (default) signs cheapest on a 32-bit board (bench device); "
                        "EdDSA suits a Linux device too; SM2 where GB/T 32918 is required")
    k.add_argument("-o", "--out", required=True)
    k.set_defaults(func=_device_keygen)
    r = dsub.add_parser("register", help="register a device key in the gateway registry")
    r.add_argument("--config", required=True, help="gateway.toml")
    r.add_argument("--device", required=True)
    r.add_argument("--site", required=True)
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--key-file", help="device key file (only the public key is used)")
    g.add_argument("--public-key", help="raw public key as hex (e.g. exported from a secure element)")
    r.add_argument("--alg", default="EdDSA", choices=["EdDSA", "ES256", "SM2"], help="with --public-key")
    r.set_defaults(func=_device_register)
    v = dsub.add_parser("revoke", help="revoke a device's keys from now (or --at)")
    v.add_argument("--config", required=True)
    v.add_argument("--device", required=True)
    v.add_argument("--at", type=float, default=None, help="unix time the revocation takes effect")
    v.set_defaults(func=_device_revoke)
    ag_ = dsub.add_parser("accept-gap", help="give up the seqs a device can never deliver, so its chain goes on")
    ag_.add_argument("--config", required=True)
    ag_.add_argument("--device", required=True)
    ag_.add_argument("--reason", required=True, help="why (kept with the gap, shown to verifiers)")
    ag_.add_argument("--through", type=int, default=None,
                     help="last seq to give up (default: up to the next stored seq)")
    ag_.set_defaults(func=_device_accept_gap)
    ls = dsub.add_parser("list", help="list registered devices and keys")
    ls.add_argument("--config", required=True)
    ls.set_defaults(func=_device_list)

    ag = sub.add_parser("agent", help="run the device agent on a Linux device")
    asub = ag.add_subparsers(dest="agent_command", metavar="ACTION")
    ar = asub.add_parser("run", help="sample, sign, persist and publish readings")
    ar.add_argument("--config", required=True, help="agent.toml")
    ar.add_argument("--until-seq", type=int, default=None,
                    help="stop sealing after this seq and exit once the gateway has acked it")
    ar.add_argument("--drain-timeout", type=float, default=120.0)
    ar.set_defaults(func=_agent_run)

    gw = sub.add_parser("gateway", help="run or inspect the site gateway")
    gsub = gw.add_subparsers(dest="gateway_command", metavar="ACTION")
    gr = gsub.add_parser("run", help="ingest, store, acknowledge, batch and anchor")
    gr.add_argument("--config", required=True, help="gateway.toml")
    gr.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    gr.add_argument("--workers", type=int, default=None,
                    help="ingest worker processes, each owning a hash share of the devices (runner.py)")
    gr.set_defaults(func=_gateway_run)
    gs = gsub.add_parser("status", help="counters, quarantine, batches, anchoring, chain gaps and recent events")
    gs.add_argument("--config", required=True)
    gs.set_defaults(func=_gateway_status)

    pr = sub.add_parser("proof", help="write the proof bundle of one stored reading")
    pr.add_argument("device")
    pr.add_argument("seq", type=int)
    pr.add_argument("-o", "--out", required=True)
    pr.add_argument("--config", default="gateway.toml", help="gateway.toml (default: ./gateway.toml)")
    pr.set_defaults(func=_proof)
    ve = sub.add_parser("verify", help="check a proof bundle offline, or with --rpc as a light client",
                        epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ve.add_argument("bundle")
    ve.add_argument("--rpc", help="Ethereum JSON-RPC URL: prove anchor, gateway and key from a state root")
    ve.add_argument("--chain-id", type=int, help="trusted chain id")
    ve.add_argument("--contract", help="trusted EdgeLedgerAnchor address (0x...)")
    ve.add_argument("--deployment", metavar="FILE", help="trusted deployment file (`edgeledger deployment export`)")
    ve.add_argument("--deployment-sha256", metavar="HEX", help="the deployment file's SHA-256, as published")
    ve.add_argument("--block", type=int, help="prove at this block (default: the node's latest)")
    ve.add_argument("--confirmations", type=int, default=2, help="required confirmations of the anchor (default 2)")
    ve.add_argument("--json", action="store_true", help="one JSON object: the report, or the refusal")
    ve.set_defaults(func=_verify)

    dp = sub.add_parser("deployment", help="the deployment file verifiers pin as their trust root")
    dpsub = dp.add_subparsers(dest="deployment_command", metavar="ACTION")
    de = dpsub.add_parser("export", help="write the deployment file from the chain (by proof) and print its SHA-256")
    de.add_argument("--rpc", required=True, help="Ethereum JSON-RPC URL")
    de.add_argument("--contract", required=True, help="the EdgeLedgerAnchor address (0x...)")
    de.add_argument("--block", type=int, help="as of this block (default: the latest); the same block gives the same file")
    de.add_argument("-o", "--out", required=True)
    de.set_defaults(func=_deployment_export)
    for action, text in (("authorize", "the contract owner lets a gateway anchor and manage keys for a site"),
                         ("deauthorize", "the contract owner ends a gateway's authorization for a site")):
        da = dpsub.add_parser(action, help=text)
        da.add_argument("--rpc", required=True)
        da.add_argument("--contract", required=True)
        da.add_argument("--site", required=True)
        da.add_argument("--gateway", required=True, help="the gateway's account address (0x...)")
        da.add_argument("--keystore", help="the owner's encrypted key (edgeledger gateway keygen)")
        da.add_argument("--passphrase-file")
        da.add_argument("--passphrase-env")
        da.add_argument("--key-file", help="the owner's key as plain hex, mode 0600 (test chains)")
        da.set_defaults(func=_deployment_authorize)

    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(
            {"top": sub, "device": dsub, "agent": asub, "gateway": gsub})
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from edgeledger.agent.errors import AgentError
    from edgeledger.gateway.errors import GatewayError
    from edgeledger.protocols.errors import ProtocolError

    try:
        return func(args)
    except (AgentError, GatewayError, ProtocolError, OSError) as e:
        print("edgeledger: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

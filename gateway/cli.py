"""``edgeledger``: the one console script.

Each command's work lives in its own module; this file only parses arguments
and imports the module a command needs, so ``edgeledger --help`` stays fast.
Exit codes: 0 success, 1 a check failed (verification, lost data), 2 usage or
configuration error.
"""
import argparse
import logging
import os
import sys
import time


def _device_keygen(args):
    from edgeledger.agent import signer

    s = signer.generate(args.alg, args.device)
    text = signer.key_file_content(args.device, args.alg, s.private_bytes())
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
    from edgeledger.agent import signer
    from edgeledger.gateway.registry import Registry

    if args.key_file:
        s = signer.load_key_file(args.key_file)
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
    "edgeledger.firmware.cmd",
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


def _verify(args):
    import json

    from edgeledger.gateway import verifier
    from edgeledger.protocols.bundle import BundleError

    with open(args.bundle, "rb") as f:
        data = f.read()
    try:
        report = verifier.verify_bundle(data, rpc=args.rpc, min_confirmations=args.confirmations)
    except (BundleError, verifier.BundleCheckFailed) as e:
        print("FAIL %s: %s" % (args.bundle, e))
        return 1
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print("OK %s: %s seq %d is leaf %d of batch %d%s" % (
            args.bundle, report["device"], report["seq"], report["leaf_index"], report["batch"],
            ", anchored at block %d with %d confirmations (storage proof checked)" % (
                report["block_number"], report["confirmations"]) if "block_number" in report else
            " (offline checks only)"))
        if "chain_restart" in report:
            print("  this reading starts a new chain segment of %s (signed by the device): %s"
                  % (report["device"], report["chain_restart"]))
        for g in report.get("chain_gaps", ()):
            print("  gap recorded by the gateway (not proven by the bundle): seqs %d..%d are not in the chain of %s, "
                  "it goes on at seq %d (%s: %s)" % (g["missing_from"], g["missing_to"], report["device"],
                                                     g["resumes_at"], g["kind"], g["reason"]))
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
    ve = sub.add_parser("verify", help="check a proof bundle offline, or with --rpc as a light client")
    ve.add_argument("bundle")
    ve.add_argument("--rpc", help="Ethereum JSON-RPC URL: also prove the anchor from the state root")
    ve.add_argument("--confirmations", type=int, default=2, help="required confirmations (default 2)")
    ve.add_argument("--json", action="store_true")
    ve.set_defaults(func=_verify)

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

"""``edgeledger proof`` (write a reading's proof bundle) and ``edgeledger verify`` (check one,
offline or as a light client against trust roots the verifier brings)."""
import argparse
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.cli.common import add_config, address, device_id, open_store, rpc_url
from edgeledger.gateway.errors import ConfigError

if TYPE_CHECKING:  # imported where used: `edgeledger --help` stays fast
    from edgeledger.gateway.proofs.verifier import TrustRoot


# `proof --wait`: how often the store is asked whether the reading is anchored yet.
PROOF_POLL_S = 0.5


def _proof(args: argparse.Namespace) -> int:
    import time

    from edgeledger.gateway import proofs

    deadline = time.monotonic() + args.wait
    while True:
        _cfg, st = open_store(args.config)
        try:
            meta = st.ledger_meta()
            if not meta and time.monotonic() >= deadline:
                raise ConfigError("%s: this store has never anchored a batch (is [ledger] backend \"none\"?)"
                                  % args.config)
            if meta:
                b = proofs.bundle_for(st, args.device, args.seq, int(meta["chain_id"]), meta["contract"])
                break
        except proofs.NotYetProvable:
            if time.monotonic() >= deadline:
                raise
        finally:
            st.close()
        time.sleep(PROOF_POLL_S)
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
    from edgeledger.gateway.proofs.verifier import TrustError, TrustRoot

    pinned = args.chain_id is not None or args.contract is not None
    if args.deployment and pinned:
        raise TrustError("give either --deployment FILE or --chain-id/--contract, not both")
    if args.deployment:
        return TrustRoot.from_deployment(args.deployment, args.deployment_sha256, args.tree_hash)
    if args.deployment_sha256:
        raise TrustError("--deployment-sha256 needs --deployment FILE")
    if pinned:
        if args.chain_id is None or args.contract is None:
            raise TrustError("give both --chain-id and --contract")
        return TrustRoot(args.chain_id, args.contract, tree_hash=args.tree_hash)
    if args.rpc:
        raise TrustError("--rpc needs trust roots from outside the bundle: --chain-id N --contract 0x.., or "
                         "--deployment FILE --deployment-sha256 HEX")
    return None


def _fmt_time(t: float | None) -> str:
    import datetime

    if t is None:
        return "?"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_report(name: str, r: dict[str, Any]) -> None:
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
    print("  batch     %d of gateway %s, leaf %d of %d (tree hash %s)" % (
        r["batch"], r["gateway"], r["leaf_index"], r["tree_size"], r["tree_hash"]))
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
    code, report = verified_report(args)
    if report is None:
        return code
    if args.json:
        import json

        print(json.dumps(dict(report, bundle=args.bundle), sort_keys=True))
    else:
        print_report(args.bundle, report)
    return VERIFY_OK


def refuse(args: argparse.Namespace, code: int, check: str, reason: str) -> int:
    """Print why ``args.bundle`` is refused (``check`` names the check, JSON with ``--json``);
    returns ``code``."""
    import json

    if args.json:
        print(json.dumps({"verdict": "refused" if code == VERIFY_REFUSED else "error", "check": check,
                          "reason": reason, "bundle": args.bundle}, sort_keys=True))
    else:
        print("%s %s: %s: %s" % ("FAIL" if code == VERIFY_REFUSED else "ERROR", args.bundle, check, reason))
    return code


def verified_report(args: argparse.Namespace) -> tuple[int, dict[str, Any] | None]:
    """(VERIFY_OK, the report) when the bundle ``args.bundle`` passes every check ``verify``'s
    arguments ask for; else (the exit code, None) after printing the refusal (as a line, or
    JSON with ``--json``)."""
    from edgeledger.gateway.anchor.ledger import LedgerUnavailable
    from edgeledger.gateway.errors import LedgerError
    from edgeledger.gateway.proofs import verifier
    from edgeledger.protocols.bundle import BundleError

    try:
        trust = _trust(args)
        with open(args.bundle, "rb") as f:
            data = f.read()
    except (verifier.TrustError, OSError) as e:
        return refuse(args, VERIFY_USAGE, "usage", str(e)), None
    block = "latest" if args.block is None else args.block
    try:
        report = verifier.verify_bundle(data, rpc=args.rpc, min_confirmations=args.confirmations, trust=trust,
                                        block=block)
    except verifier.BundleCheckFailed as e:
        return refuse(args, VERIFY_REFUSED, e.kind, str(e)), None
    except BundleError as e:
        return refuse(args, VERIFY_REFUSED, "offline", str(e)), None
    except LedgerUnavailable as e:
        return refuse(args, VERIFY_UNREACHABLE, "chain_unreachable", str(e)), None
    except LedgerError as e:  # the node refused a request (no eth_getProof, no such block, ...)
        return refuse(args, VERIFY_UNREACHABLE, "chain_unusable", str(e)), None
    return VERIFY_OK, report


def add_verify_args(ve: argparse.ArgumentParser) -> None:
    """The bundle and trust-root arguments of ``verify`` (``decrypt`` takes the same)."""
    ve.add_argument("bundle")
    ve.add_argument("--rpc", type=rpc_url,
                    help="Ethereum JSON-RPC URL: prove anchor, gateway and key from a state root")
    ve.add_argument("--chain-id", type=int, help="trusted chain id")
    ve.add_argument("--contract", type=address, help="trusted EdgeLedgerAnchor address (0x...)")
    ve.add_argument("--deployment", metavar="FILE", help="trusted deployment file (`edgeledger deployment export`)")
    ve.add_argument("--deployment-sha256", metavar="HEX", help="the deployment file's SHA-256, as published")
    ve.add_argument("--tree-hash", choices=("sha256", "sm3"),
                    help="the deployment's tree hash; refuse a batch hashed with the other (default: the "
                         "deployment file's; with --chain-id/--contract: whichever the anchored header names)")
    ve.add_argument("--block", type=int, help="prove at this block (default: the node's latest)")
    ve.add_argument("--confirmations", type=int, default=2, help="required confirmations of the anchor (default 2)")
    ve.add_argument("--json", action="store_true", help="one JSON object: the report, or the refusal")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``proof`` and ``verify``."""
    pr = sub.add_parser("proof", help="write the proof bundle of one stored reading")
    pr.add_argument("device", type=device_id)
    pr.add_argument("seq", type=int)
    pr.add_argument("-o", "--out", required=True)
    add_config(pr)
    pr.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                    help="wait up to this long for the reading to be stored and anchored (default: not at all)")
    pr.set_defaults(func=_proof)
    ve = sub.add_parser("verify", help="check a proof bundle offline, or with --rpc as a light client",
                        epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verify_args(ve)
    ve.set_defaults(func=_verify)

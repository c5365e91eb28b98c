"""``edgeledger deployment ...``: the deployment file verifiers pin as their trust root, and the
contract owner's authorizations of gateways for sites."""
import argparse

from edgeledger.gateway.cli.common import address, rpc_url, site_id
from edgeledger.gateway.errors import ConfigError


def _deployment_export(args: argparse.Namespace) -> int:
    import hashlib

    from edgeledger.gateway.proofs import deployment

    d = deployment.export(args.rpc, args.contract, block="latest" if args.block is None else args.block,
                          tree_hash=args.tree_hash)
    data = deployment.dumps(d)
    with open(args.out, "wb") as f:
        f.write(data)
    print("wrote %s: chain %d, contract %s (v%d), %d site(s), as of block %d, tree hash %s" % (
        args.out, d["chain_id"], d["contract"], d["contract_version"], len(d["sites"]), d["as_of_block"],
        d["tree_hash"]))
    print("sha256 %s" % hashlib.sha256(data).hexdigest())
    return 0


def _deployment_authorize(args: argparse.Namespace) -> int:
    from edgeledger.gateway.anchor import keystore
    from edgeledger.gateway.anchor.ledger import JsonRpcLedger
    from edgeledger.gateway.config import LedgerConfig

    key = keystore.account_key(LedgerConfig(keystore_file=args.keystore, passphrase_file=args.passphrase_file,
                                            passphrase_env=args.passphrase_env, key_file=args.key_file))
    if key is None:
        raise ConfigError("the contract owner's key is needed: --keystore FILE (with --passphrase-file or "
                          "--passphrase-env) or --key-file FILE")
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``deployment`` group."""
    dp = sub.add_parser("deployment", help="the deployment file verifiers pin as their trust root")
    dpsub = dp.add_subparsers(dest="deployment_command", metavar="ACTION")
    de = dpsub.add_parser("export", help="write the deployment file from the chain (by proof) and print its SHA-256")
    de.add_argument("--rpc", required=True, type=rpc_url, help="Ethereum JSON-RPC URL")
    de.add_argument("--contract", required=True, type=address, help="the EdgeLedgerAnchor address (0x...)")
    de.add_argument("--block", type=int,
                    help="as of this block (default: the latest); the same block gives the same file")
    de.add_argument("-o", "--out", required=True)
    de.add_argument("--tree-hash", choices=("sha256", "sm3"), default="sha256",
                    help="the deployment's tree hash (gateway.toml deployment_hash); verifiers refuse any other")
    de.set_defaults(func=_deployment_export)
    for action, text in (("authorize", "the contract owner lets a gateway anchor and manage keys for a site"),
                         ("deauthorize", "the contract owner ends a gateway's authorization for a site")):
        da = dpsub.add_parser(action, help=text)
        da.add_argument("--rpc", required=True, type=rpc_url)
        da.add_argument("--contract", required=True, type=address)
        da.add_argument("--site", required=True, type=site_id)
        da.add_argument("--gateway", required=True, type=address, help="the gateway's account address (0x...)")
        da.add_argument("--keystore", help="the owner's encrypted key (edgeledger gateway keygen)")
        da.add_argument("--passphrase-file")
        da.add_argument("--passphrase-env")
        da.add_argument("--key-file", help="the owner's key as plain hex, mode 0600 (test chains)")
        da.set_defaults(func=_deployment_authorize)

"""The deployment file: a verifier's trust root, written from the chain and pinned by its hash.

``edgeledger deployment export --rpc URL --contract 0x.. [--block N]`` writes it and prints its
SHA-256; ``edgeledger verify BUNDLE --rpc URL --deployment FILE --deployment-sha256 HEX`` uses
it. The file says which chain and contract hold the anchors, which contract version that is,
and which gateways each site has authorized; a bundle whose chain, contract, site or gateway is
not in it is refused, whatever the bundle says about itself.

Everything in it is read by proof against the state root of block N (proofs/lightclient.py):
the contract's code hash (its version), ``owner`` and ``deployedBlock`` (slot 0), and each
site's gateway authorization window. The list of (site, gateway) pairs comes from the
contract's GatewayAuthorized events, and each pair's window is then proven in storage, so a
node that hides or invents an event changes nothing that is written: an invented pair proves
empty and is refused, a hidden pair is simply not trusted. The JSON is deterministic (sorted
keys, fixed layout, one trailing newline): anyone who exports the same contract at the same
block N gets the same bytes and the same SHA-256, which is how a regulator checks the file an
operator hands over (docs/verifying.md).

Format ``edgeledger-deployment/1``::

    {
      "as_of_block": 123, "as_of_block_hash": "0x..",
      "chain_id": 31337, "code_hash": "0x..", "contract": "0x..", "contract_version": 2,
      "deployment_block": 5, "format": "edgeledger-deployment/1", "owner": "0x..",
      "sites": {"plant-a": {"0xGateway..": {"from_block": 7, "until_block": null}}},
      "tree_hash": "sha256"
    }

``tree_hash`` ("sha256" or "sm3", protocols/hashes.py) is the one thing in the file not read
from the chain: the deployment's tree hash, which the exporter states (``--tree-hash``; a file
without it means SHA-256). Pinned with the rest of the file, it stops a verifier from accepting
a batch hashed with the other algorithm (proofs/verifier.py ``WrongTreeHash``).

Raises ``DeploymentError`` (a bad or mismatching file), ``LedgerUnavailable``,
``LightClientError``/``ProofMismatch`` (the node's answers do not check out).
"""
import hashlib
import json
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from edgeledger.gateway.anchor.ledger import known_code_hashes
from edgeledger.gateway.errors import GatewayError
from edgeledger.gateway.proofs import lightclient
from edgeledger.protocols import hashes

FORMAT = "edgeledger-deployment/1"
# A deployment file lists sites and gateways: thousands at most. A bigger file is refused
# before it is parsed.
MAX_FILE_BYTES = 4 * 1024 * 1024
_AUTHORIZED = keccak(text="GatewayAuthorized(bytes32,address,string,uint64)")


class DeploymentError(GatewayError):
    """A deployment file is missing, malformed, or not the one its pinned SHA-256 names; or the
    contract named for export is not a known EdgeLedgerAnchor."""


def dumps(d: dict) -> bytes:
    """The file's bytes: JSON, sorted keys, two-space indent, one trailing newline."""
    return (json.dumps(d, indent=2, sort_keys=True) + "\n").encode("utf-8")


def export(rpc: Any, contract: str, block: int | str = "latest", tree_hash: str = "sha256") -> dict:
    """The deployment dict of ``contract`` at ``block`` (see the module docstring), for a
    deployment whose trees are hashed with ``tree_hash``."""
    try:
        hashes.by_name(tree_hash)
    except hashes.UnknownHash as e:
        raise DeploymentError("tree hash: %s" % e) from e
    contract = to_checksum_address(contract)
    base = lightclient.prove_slots(rpc, contract, [lightclient.word(lightclient.SLOT_OWNER)], block=block)
    n = base["block_number"]
    version = known_code_hashes().get(base["code_hash"])
    if version is None:
        raise DeploymentError("%s holds code with hash 0x%s at block %d: not a known EdgeLedgerAnchor build"
                              % (contract, base["code_hash"].hex(), n))
    owner_int, deployed = lightclient.fields(base["values"][lightclient.word(lightclient.SLOT_OWNER)], (160, 64))
    logs = lightclient.request(rpc, "eth_getLogs", [{"address": contract, "fromBlock": hex(deployed),
                                                     "toBlock": hex(n), "topics": ["0x" + _AUTHORIZED.hex()]}]) or []
    found: set[tuple[str, str]] = set()
    for log in logs:
        try:
            gateway = to_checksum_address("0x" + log["topics"][2][-40:])
            site = abi_decode(["string", "uint64"], bytes.fromhex(log["data"][2:]))[0]
        except (KeyError, IndexError, TypeError, ValueError, DecodingError) as e:
            raise lightclient.LightClientError("eth_getLogs: malformed GatewayAuthorized log from the node: %s"
                                               % e) from e
        found.add((site, gateway))
    sites: dict[str, Any] = {}
    pairs = sorted(found)
    for i in range(0, len(pairs), lightclient.MAX_SLOTS_PER_PROOF):
        chunk = pairs[i:i + lightclient.MAX_SLOTS_PER_PROOF]
        slots = [lightclient.authorization_slot(site, gw) for site, gw in chunk]
        proof = lightclient.prove_slots(rpc, contract, slots, block=n, block_hash=base["block_hash"])
        for (site, gw), slot in zip(chunk, slots):
            from_block, until_block = lightclient.fields(proof["values"][slot], (64, 64))
            if from_block == 0:
                continue  # the node showed an event the state does not back: not trusted
            sites.setdefault(site, {})[gw] = {"from_block": from_block, "until_block": until_block or None}
    return {"format": FORMAT, "chain_id": lightclient.chain_id(rpc), "contract": contract,
            "contract_version": version, "code_hash": "0x" + base["code_hash"].hex(),
            "deployment_block": deployed, "owner": to_checksum_address(owner_int.to_bytes(20, "big")),
            "as_of_block": n, "as_of_block_hash": "0x" + base["block_hash"].hex(), "sites": sites,
            "tree_hash": tree_hash}


def load(path: str, expected_sha256: str | None) -> tuple[dict, str]:
    """(deployment dict, its SHA-256 hex) of the file at ``path``, which must hash to
    ``expected_sha256`` (hex). Raises DeploymentError."""
    if not expected_sha256:
        raise DeploymentError("a deployment file is trusted only with its SHA-256 pinned "
                              "(--deployment-sha256 HEX, from whoever published the file)")
    want = expected_sha256.lower().removeprefix("0x")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise DeploymentError("cannot read deployment file %s: %s" % (path, e)) from e
    if len(data) > MAX_FILE_BYTES:
        raise DeploymentError("deployment file %s is larger than %d bytes" % (path, MAX_FILE_BYTES))
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise DeploymentError("deployment file %s has SHA-256 %s, the pinned hash is %s" % (path, got, want))
    try:
        d = json.loads(data.decode("utf-8"))
        if d.get("format") != FORMAT:
            raise ValueError("format must be %r, found %r" % (FORMAT, d.get("format")))
        d["contract"] = to_checksum_address(d["contract"])
        if isinstance(d["chain_id"], bool) or not isinstance(d["chain_id"], int):
            raise ValueError("chain_id must be an integer")
        sites = {}
        for site, gateways in d["sites"].items():
            sites[site] = dict((to_checksum_address(gw), w) for gw, w in gateways.items())
        d["sites"] = sites
        hashes.by_name(d.setdefault("tree_hash", hashes.NAMES[hashes.DEFAULT]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DeploymentError("deployment file %s is not an %s file: %s" % (path, FORMAT, e)) from e
    return d, got

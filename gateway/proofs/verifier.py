"""``edgeledger verify``: check a proof bundle offline, and as a light client with ``--rpc``.

Offline (protocols/bundle.py): the message decodes and is in its one canonical form, the
bundle's key is the one its kid names, the signature verifies, the audit path leads to the
header's root, the record times are finite and inside the header's time range.

On chain the verifier believes only its own trust roots — a chain id and contract address, or a
deployment file it pins by SHA-256 (proofs/deployment.py) — and what it proves against a block's
state root (gateway/lightclient.py). Nothing a bundle says about itself decides: its chain id,
contract, site and gateway are compared with the trust roots; its key registration is checked
against the commitment proven in storage. With one ``eth_getProof`` at the latest block (or the
``block`` the caller picks), no archive node and no ``eth_call`` answer:

* the account's codeHash is a known EdgeLedgerAnchor version (the trusted contract is what it
  claims to be);
* ``anchors[gateway][number]`` holds this header's hash, with the anchoring block number and
  time stored next to it; the anchor has ``min_confirmations`` blocks on top, counting its own;
* the gateway's authorization for the reading's site covers the anchoring block (and, with a
  deployment file, the file lists that gateway for that site);
* the key entry ``keys[site][kid]`` holds the commitment of the bundle's registration claims
  (device, site, alg, public key, registration block and time, first seq), registered no later
  than the anchor;
* the key window (protocols/keywindow.py, the rule the gateway applied) admits the reading by
  its seq and times, against the key's proven end (revocation or rotation).

The tree hash. The audit path is hashed with the algorithm the batch header names (SHA-256
or SM3, protocols/hashes.py); that byte is part of the anchored header hash, so a bundle
cannot change it without failing the anchor check. The trust root also says which tree hash
the deployment uses — a deployment file's ``tree_hash`` (SHA-256 when absent), or
``TrustRoot(tree_hash=...)`` — and a header naming another is refused (``WrongTreeHash``), so
neither an operator nor a bundle can move a deployment to the other hash.

Raises a ``BundleCheckFailed`` subclass (its ``kind`` names the check), ``BundleError`` (offline
checks, protocols/bundle.py), ``LedgerUnavailable`` (the node cannot be reached), ``TrustError``
(the trust roots given are unusable: a usage error).

The report also says where the reading stands in its device's chain: ``chain_restart``
when the message itself starts a new chain segment (seq > 1 with a zero ``prev``: signed
by the device), and ``chain_gaps``, the gaps the gateway recorded before it (bundle
field 13: the gateway's statement, not proven by the bundle).
"""
import hashlib
import math
from typing import Any, NamedTuple

from eth_utils import to_checksum_address

from edgeledger.gateway.anchor.ledger import known_code_hashes
from edgeledger.gateway.config import schema
from edgeledger.gateway.errors import GatewayError
from edgeledger.gateway.proofs import deployment as deployment_file
from edgeledger.gateway.proofs import lightclient
from edgeledger.gateway.registry import signatures
from edgeledger.protocols import chain, hashes, keywindow
from edgeledger.protocols.bundle import Bundle, ReadingOutOfRange, check_offline
from edgeledger.protocols.errors import PayloadError
from edgeledger.protocols.reading import validate as reading_validate

# Confirmations a verifier asks for unless told otherwise (the anchoring block counts 1): the
# gateway's own default before it serves a proof.
DEFAULT_CONFIRMATIONS = schema.DEFAULT_CONFIRMATIONS


class TrustError(GatewayError):
    """The trust roots given to the verifier are missing, contradict each other, or a pinned
    deployment file does not match its hash (a usage error, not a verdict on the bundle)."""


class BundleCheckFailed(GatewayError):
    """A bundle does not check out; ``kind`` names the check that failed."""

    kind = "failed"


def _kind(name: str, kind: str, doc: str) -> type[BundleCheckFailed]:
    return type(name, (BundleCheckFailed,), {"kind": kind, "__doc__": doc})


OfflineCheckFailed = _kind("OfflineCheckFailed", "offline", "Signature, key binding or Merkle path.")
BadReadingNumber = _kind("BadReadingNumber", "reading_range",
                         "A number in the reading is not finite or outside the wire format's bounds.")
BadReadingTime = _kind("BadReadingTime", "reading_time",
                       "A record time is not finite or is outside the header's range.")
WrongChain = _kind("WrongChain", "wrong_chain", "The bundle or the node is on another chain than the trust root.")
WrongContract = _kind("WrongContract", "wrong_contract", "The bundle names another contract than the trust root.")
UnknownContract = _kind("UnknownContract", "unknown_contract",
                        "The trusted address holds no known EdgeLedgerAnchor code.")
WrongSite = _kind("WrongSite", "wrong_site", "The deployment file lists no such site.")
WrongGateway = _kind("WrongGateway", "wrong_gateway",
                     "The gateway that anchored the batch is not authorized for the reading's site.")
RootNotOnChain = _kind("RootNotOnChain", "root_not_on_chain", "The header is not the one anchored.")
NotEnoughConfirmations = _kind("NotEnoughConfirmations", "too_few_confirmations", "The anchor is not deep enough.")
KeyNotRegistered = _kind("KeyNotRegistered", "key_not_registered",
                         "The chain has no registration of this key for this device and site.")
KeyOutsideWindow = _kind("KeyOutsideWindow", "key_window",
                         "The key may not have signed this reading (protocols/keywindow.py).")
WrongTreeHash = _kind("WrongTreeHash", "wrong_tree_hash",
                      "The batch header names another tree hash than the trusted deployment uses.")
ProofFailed = _kind("ProofFailed", "proof_mismatch", "The node's answers do not check out against its state root.")
KeyRevoked = KeyOutsideWindow  # the name earlier releases used


def _restart_reason(body: Any) -> Any:
    """What the device signed about its chain restart (its ``agent/chain_restart`` record)."""
    if body.pack is not None:
        for rec in reading_validate.resolve(body.pack):
            if rec.get("n") == chain.RESTART_RECORD:
                return str(rec.get("vs", rec.get("v")))
    return "no reason given"


class TrustRoot:
    """What the verifier trusts: a chain id and contract, and optionally a pinned deployment
    file (proofs/deployment.py) naming the sites and their gateways."""

    def __init__(self, chain_id: int, contract: str, deployment: dict | None = None,
                 deployment_sha256: str | None = None, tree_hash: str | None = None) -> None:
        """``tree_hash``: the deployment's tree hash ("sha256", "sm3"); by default the
        deployment file's, else any. Raises TrustError."""
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
            raise TrustError("expected a positive chain id, found %r" % (chain_id,))
        try:
            self.contract = to_checksum_address(contract)
        except (ValueError, TypeError) as e:
            raise TrustError("expected a 0x-prefixed 20-byte contract address, found %r (%s)" % (contract, e)) from e
        self.chain_id = chain_id
        self.deployment = deployment
        self.deployment_sha256 = deployment_sha256
        if tree_hash is None and deployment is not None:
            tree_hash = deployment.get("tree_hash", hashes.NAMES[hashes.DEFAULT])
        try:
            self.tree_alg: int | None = None if tree_hash is None else hashes.by_name(tree_hash)
        except hashes.UnknownHash as e:
            raise TrustError("tree hash: %s" % e) from e

    @classmethod
    def from_deployment(cls, path: str, sha256_hex: str | None, tree_hash: str | None = None) -> "TrustRoot":
        try:
            d, digest = deployment_file.load(path, sha256_hex)
        except deployment_file.DeploymentError as e:
            raise TrustError(str(e)) from e
        root = cls(d["chain_id"], d["contract"], d, digest)
        pinned = d["tree_hash"]  # deployment.load fills in the default
        if tree_hash is not None and tree_hash != pinned:
            raise TrustError("--tree-hash %s contradicts the deployment file, which says %s" % (tree_hash, pinned))
        return root

    def describe(self) -> dict:
        out = {"chain_id": self.chain_id, "contract": self.contract}
        if self.deployment is not None:
            out["deployment_sha256"] = self.deployment_sha256
            out["source"] = "deployment file"
        else:
            out["source"] = "chain id and contract given"
        if self.tree_alg is not None:
            out["tree_hash"] = hashes.NAMES[self.tree_alg]
        return out


def report_values(body: reading_validate.Payload) -> list[dict] | None:
    """The reading's records for a report: name, unit, value and time (SenML resolved)."""
    if body.pack is None:
        return None
    out = []
    for r in reading_validate.resolve(body.pack):
        item = {"n": r["n"], "t": r["t"]}
        if "u" in r:
            item["u"] = r["u"]
        for k in ("v", "vs", "vb", "s"):
            if k in r:
                item[k] = r[k]
        out.append(item)
    return out


def check_reading_times(b: Bundle, body: reading_validate.Payload) -> tuple[Any, Any]:
    """(t_first, t_last) of the reading, None for an encrypted one. Raises BadReadingTime if a
    time is not finite or lies outside the batch header's range (the gateway sets that range
    from the readings it batched)."""
    if body.pack is None:
        return None, None
    try:
        t_first, t_last = reading_validate.time_range(body.pack)
    except PayloadError as e:
        raise BadReadingTime("bad reading time: %s" % e) from e
    if math.floor(t_first) < b.header.first_time or math.ceil(t_last) > b.header.last_time:
        raise BadReadingTime("bad reading time: records timed %s..%s, the batch header covers %d..%d"
                             % (t_first, t_last, b.header.first_time, b.header.last_time))
    return t_first, t_last


def verify_bundle(data: bytes, rpc: Any = None, min_confirmations: int = DEFAULT_CONFIRMATIONS,
                  trust: TrustRoot | None = None, block: int | str = "latest") -> dict:
    """Check bundle bytes; return a report dict (see docs/verifying.md).

    Without ``rpc`` only the offline checks run (``report["verdict"] == "offline-only"``). With
    ``rpc`` (an URL, a ledger, or a ``(method, params) -> result`` callable) ``trust`` (a
    TrustRoot) is required. Raises BundleCheckFailed, BundleError, LedgerUnavailable, TrustError.
    """
    b = Bundle.decode(data)
    try:
        body = check_offline(b, signatures.verify)
    except ReadingOutOfRange as e:
        raise BadReadingNumber(str(e)) from e
    t_first, t_last = check_reading_times(b, body)
    gateway = to_checksum_address("0x" + b.header.gateway.hex())
    report = {"verdict": "offline-only", "device": body.device, "site": b.site, "seq": body.seq,
              "epoch": body.epoch, "t_first": t_first, "t_last": t_last, "values": report_values(body),
              "encrypted": body.pack is None, "gateway": gateway, "batch": b.header.number,
              "leaf_index": b.index, "tree_size": b.header.tree_size, "root": b.header.root.hex(),
              "tree_hash": hashes.NAMES[b.header.tree_alg], "offline": "ok"}
    if body.seq > chain.FIRST_SEQ and body.prev == chain.GENESIS:
        report["chain_restart"] = _restart_reason(body)
    if b.gaps:
        report["chain_gaps"] = [{"missing_from": a + 1, "missing_to": r - 1, "resumes_at": r, "kind": k,
                                 "reason": why, "accepted_at": at} for a, r, k, why, at in b.gaps]
    if rpc is None:
        if trust is not None:  # what can be compared without a node
            _check_trust(b, trust)
        return report
    if trust is None:
        raise TrustError("a check on chain needs trust roots: a chain id and contract, or a pinned deployment file")
    report.update(prove_on_chain(b, body, (t_first, t_last), rpc, trust, block, min_confirmations))
    report["verdict"] = "verified"
    return report


def _check_trust(b: Bundle, trust: TrustRoot) -> tuple[str, str]:
    contract = to_checksum_address("0x" + b.contract.hex())
    gateway = to_checksum_address("0x" + b.header.gateway.hex())
    if b.chain_id != trust.chain_id:
        raise WrongChain("wrong chain: the bundle names chain %d, the trusted chain is %d"
                         % (b.chain_id, trust.chain_id))
    if contract != trust.contract:
        raise WrongContract("wrong contract: the bundle names %s, the trusted contract is %s"
                            % (contract, trust.contract))
    if trust.tree_alg is not None and b.header.tree_alg != trust.tree_alg:
        raise WrongTreeHash("wrong tree hash: batch %d's header names %s, the trusted deployment hashes its trees "
                            "with %s" % (b.header.number, hashes.NAMES[b.header.tree_alg],
                                         hashes.NAMES[trust.tree_alg]))
    if trust.deployment is not None:
        sites = trust.deployment["sites"]
        if b.site not in sites:
            raise WrongSite("wrong site: the bundle's key is registered for site %r, the deployment file lists %s"
                            % (b.site, sorted(sites)))
        if gateway not in sites[b.site]:
            raise WrongGateway("wrong gateway: batch %d was anchored by %s, the deployment file lists %s for site %r"
                               % (b.header.number, gateway, sorted(sites[b.site]), b.site))
    return contract, gateway


class _Slots(NamedTuple):
    """The anchor-contract storage words one bundle's on-chain check reads."""

    anchor: bytes  # the batch's header hash
    anchor_meta: bytes  # the anchoring block and time
    auth: bytes  # the gateway's authorization for the site
    key: bytes  # the key's registration commitment
    key_end: bytes  # the key's end time, last seq, end block and flags


def prove_on_chain(b: Bundle, body: reading_validate.Payload, times: tuple[Any, Any], rpc: Any, trust: TrustRoot,
                   block: int | str = "latest", min_confirmations: int = DEFAULT_CONFIRMATIONS) -> dict:
    """The on-chain half of ``verify_bundle`` (see the module docstring); returns the report's
    chain fields."""
    contract, gateway = _check_trust(b, trust)
    transport = getattr(rpc, "proof_rpc", rpc)
    node_chain = lightclient.chain_id(transport)
    if node_chain != trust.chain_id:
        raise WrongChain("wrong chain: the node serves chain %d, the trusted chain is %d"
                         % (node_chain, trust.chain_id))
    kid = hashlib.sha256(b.public_key).digest()[:16]
    anchor = lightclient.anchor_slot(gateway, b.header.number)
    key = lightclient.key_slot(b.site, kid)
    slots = _Slots(anchor, lightclient.slot_plus(anchor, 1), lightclient.authorization_slot(b.site, gateway), key,
                   lightclient.slot_plus(key, 1))
    try:
        proof = lightclient.prove_slots(transport, contract, list(slots), block=block)
    except lightclient.ProofMismatch as e:
        raise ProofFailed("proof mismatch: the node's answer does not check out against its state root (%s)" % e) from e
    values = proof["values"]
    version = _contract_version(proof, contract, trust)
    anchor_block, anchor_time, confirmations = _check_anchor(b, values, slots, proof, gateway, contract,
                                                             min_confirmations)
    from_block, until_block = _check_authorization(b, values[slots.auth], gateway, anchor_block)
    _check_key_registration(b, body, values[slots.key], kid, contract, anchor_block)
    end_time, last_seq, end_block, flags = lightclient.fields(values[slots.key_end], (64, 64, 64, 8))
    window = keywindow.KeyWindow(b.key_time, b.first_seq, end_time or None, last_seq if flags & 1 else None)
    t_first, t_last = times
    refusal = keywindow.refusal(window, body.seq, t_first, t_last,
                                signed_before=anchor_time if t_last is None else None)
    if refusal is not None:
        raise KeyOutsideWindow("key outside its window: key %s of %s, %s" % (kid.hex(), body.device, refusal))
    status = "revoked" if flags & 2 else "rotated" if flags & 4 else "valid"
    return {"chain_id": trust.chain_id, "contract": contract, "contract_version": version,
            "anchor_block": anchor_block, "anchor_time": anchor_time, "block_number": anchor_block,
            "confirmations": confirmations, "proven_at_block": proof["block_number"],
            "proven_at_block_hash": "0x" + proof["block_hash"].hex(), "storage_proof": "ok",
            "gateway_authorized": {"from_block": from_block, "until_block": until_block or None},
            "key": {"kid": kid.hex(), "alg": b.alg, "registered_block": b.key_block, "registered_time": b.key_time,
                    "first_seq": b.first_seq, "end_time": end_time or None,
                    "last_seq": last_seq if flags & 1 else None, "end_block": end_block or None, "status": status},
            "key_status": "valid", "trust": trust.describe()}


def _contract_version(proof: dict, contract: str, trust: TrustRoot) -> int:
    """The EdgeLedgerAnchor version whose code hash the proven account holds. Raises
    UnknownContract for other code, or code other than the deployment file names."""
    version = known_code_hashes().get(proof["code_hash"])
    if version is None:
        raise UnknownContract("unknown contract: %s holds code with hash 0x%s, not a known EdgeLedgerAnchor build"
                              % (contract, proof["code_hash"].hex()))
    code_hash = "0x" + proof["code_hash"].hex()
    if trust.deployment is not None and trust.deployment.get("code_hash") not in (None, code_hash):
        raise UnknownContract("unknown contract: the deployment file names code hash %s, %s holds 0x%s"
                              % (trust.deployment["code_hash"], contract, proof["code_hash"].hex()))
    return version


def _check_anchor(b: Bundle, values: dict[bytes, bytes], slots: _Slots, proof: dict, gateway: str, contract: str,
                  min_confirmations: int) -> tuple[int, int, int]:
    """(anchoring block, its time, confirmations) of the bundle's batch. Raises RootNotOnChain
    (not anchored, or anchored with another header) and NotEnoughConfirmations."""
    header_hash = b.header.hash()
    if values[slots.anchor] == bytes(32):
        raise RootNotOnChain("root not on chain: batch %d of gateway %s is not anchored in %s at block %d"
                             % (b.header.number, gateway, contract, proof["block_number"]))
    if values[slots.anchor] != header_hash:
        raise RootNotOnChain("root not on chain: batch %d of gateway %s is anchored with header hash 0x%s, the "
                             "bundle's header hashes to 0x%s" % (b.header.number, gateway,
                                                                 values[slots.anchor].hex(), header_hash.hex()))
    anchor_block, anchor_time = lightclient.fields(values[slots.anchor_meta], (64, 64))
    confirmations = proof["tip"] - anchor_block + 1
    if confirmations < min_confirmations:
        raise NotEnoughConfirmations("too few confirmations: the anchor in block %d has %d, %d required"
                                     % (anchor_block, confirmations, min_confirmations))
    return anchor_block, anchor_time, confirmations


def _check_authorization(b: Bundle, auth: bytes, gateway: str, anchor_block: int) -> tuple[int, int]:
    """(from block, until block) of the gateway's authorization for the bundle's site. Raises
    WrongGateway if it did not cover the anchoring block."""
    from_block, until_block = lightclient.fields(auth, (64, 64))
    if from_block == 0 or anchor_block < from_block or (until_block and anchor_block >= until_block):
        raise WrongGateway("wrong gateway: %s anchored batch %d in block %d, but its authorization for site %r is %s"
                           % (gateway, b.header.number, anchor_block, b.site,
                              "blocks %d..%s" % (from_block, until_block - 1 if until_block else "now")
                              if from_block else "none"))
    return from_block, until_block


def _check_key_registration(b: Bundle, body: reading_validate.Payload, commitment: bytes, kid: bytes,
                            contract: str, anchor_block: int) -> None:
    """The chain's key entry commits to the bundle's registration claims, made before the
    anchor. Raises KeyNotRegistered."""
    if commitment == bytes(32):
        raise KeyNotRegistered("key not registered: %s has no key %s for site %r"
                               % (contract, kid.hex(), b.site))
    try:
        claimed = keywindow.key_commitment(b.site, body.device, b.alg, b.public_key, b.key_block, b.key_time,
                                           b.first_seq)
    except ValueError as e:
        raise KeyNotRegistered("key not registered: the bundle's registration claims are malformed (%s)" % e) from e
    if claimed != commitment:
        raise KeyNotRegistered("key not registered: the chain's entry for key %s of site %r does not commit to "
                               "device %r with this key, registered in block %d at %d from seq %d"
                               % (kid.hex(), b.site, body.device, b.key_block, b.key_time, b.first_seq))
    if b.key_block > anchor_block:
        raise KeyNotRegistered("key not registered: key %s was registered in block %d, after the batch was "
                               "anchored in block %d" % (kid.hex(), b.key_block, anchor_block))


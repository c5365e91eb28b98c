"""``edgeledger verify``: check a proof bundle offline, and as a light client with ``--rpc``.

Offline (protocols/bundle.py): the message decodes and is in its one canonical form, the
bundle's key is the one its kid names, the signature verifies, the audit path leads to the
header's root.

With ``--rpc URL`` (or, in the demo, the embedded ledger object):

* the node's chain id is the bundle's;
* ``headers[gateway][number]`` in the contract's storage equals the hash of the
  bundle's batch header, proven from the block's stateRoot by EIP-1186 proofs
  (gateway/lightclient.py), at the bundle's block, pinned by its hash;
* the block has at least ``--confirmations`` confirmations;
* the device key is registered on chain with the same public key, and was not
  revoked at or before the reading's time.

Every failure is a ``BundleCheckFailed`` subclass whose message says what is wrong.

The report also says where the reading stands in its device's chain: ``chain_restart``
when the message itself starts a new chain segment (seq > 1 with a zero ``prev``: signed
by the device), and ``chain_gaps``, the gaps the gateway recorded before it (bundle
field 13: the gateway's statement, not proven by the bundle).
"""
from eth_utils import to_checksum_address

from edgeledger.gateway import signatures
from edgeledger.gateway.errors import GatewayError
from edgeledger.gateway.ledger import JsonRpcLedger
from edgeledger.gateway.lightclient import NotAnchored, ProofMismatch, TooFewConfirmations, verify_anchor_storage
from edgeledger.protocols import chain, cose, reading
from edgeledger.protocols.bundle import Bundle, check_offline


class BundleCheckFailed(GatewayError):
    """A bundle does not check out; ``kind`` names the way."""

    kind = "failed"


def _kind(name, kind):
    return type(name, (BundleCheckFailed,), {"kind": kind})


RootNotOnChain = _kind("RootNotOnChain", "root_not_on_chain")
NotEnoughConfirmations = _kind("NotEnoughConfirmations", "too_few_confirmations")
WrongChain = _kind("WrongChain", "wrong_chain")
KeyRevoked = _kind("KeyRevoked", "key_revoked")
KeyNotRegistered = _kind("KeyNotRegistered", "key_not_registered")
OfflineCheckFailed = _kind("OfflineCheckFailed", "offline")


def _restart_reason(body):
    """What the device signed about its chain restart (its ``agent/chain_restart`` record)."""
    if body.pack is not None:
        for rec in reading.resolve(body.pack):
            if rec.get("n") == chain.RESTART_RECORD:
                return str(rec.get("vs", rec.get("v")))
    return "no reason given"


def verify_bundle(data, rpc=None, min_confirmations=2):
    """Check bundle bytes; return a report dict. Raises BundleCheckFailed or BundleError."""
    b = Bundle.decode(data)
    body = check_offline(b, signatures.verify)
    t_first, t_last = reading.time_range(body.pack) if body.pack is not None else (None, None)
    report = {"device": body.device, "seq": body.seq, "batch": b.header.number, "leaf_index": b.index,
              "tree_size": b.header.tree_size, "root": b.header.root.hex(), "offline": "ok"}
    if body.seq > chain.FIRST_SEQ and body.prev == chain.GENESIS:
        report["chain_restart"] = _restart_reason(body)
    if b.gaps:
        report["chain_gaps"] = [{"missing_from": a + 1, "missing_to": r - 1, "resumes_at": r, "kind": k,
                                 "reason": why, "accepted_at": at} for a, r, k, why, at in b.gaps]
    if rpc is None:
        return report
    ledger = JsonRpcLedger(rpc) if isinstance(rpc, str) else rpc
    chain_id = ledger.chain_id
    if chain_id != b.chain_id:
        raise WrongChain("wrong chain: the bundle was anchored on chain %d, %s is chain %d" % (b.chain_id, rpc, chain_id))
    contract = to_checksum_address("0x" + b.contract.hex())
    gateway = to_checksum_address("0x" + b.header.gateway.hex())
    try:
        proof = verify_anchor_storage(ledger.proof_rpc, contract, gateway, b.header.number, expected_header_hash=b.header.hash(),
                                      block_number=b.block_number, block_hash=b.block_hash,
                                      min_confirmations=min_confirmations)
    except TooFewConfirmations as e:
        raise NotEnoughConfirmations("too few confirmations: block %d has %s, %d required"
                                     % (b.block_number, getattr(e, "have", "?"), min_confirmations))
    except (NotAnchored, ProofMismatch) as e:
        raise RootNotOnChain("root not on chain: batch %d of gateway %s is not anchored with this header in "
                             "contract %s at block %d (%s)" % (b.header.number, gateway, contract, b.block_number, e))
    ledger.attach(contract)
    kid = cose.parse_sign1(b.message).kid
    key = ledger.get_key(kid, block=b.block_number)
    if key is None or key["public_key"] != b.public_key:
        key = ledger.get_key(kid)
    if key is None:
        raise KeyNotRegistered("device key %s is not in the on-chain registry of %s" % (kid.hex(), contract))
    if key["public_key"] != b.public_key:
        raise KeyNotRegistered("device key %s on chain is a different public key than the bundle's" % kid.hex())
    latest = ledger.get_key(kid)
    revoked_at = latest["revoked_at"] if latest else 0
    if revoked_at and t_last is not None and revoked_at <= t_last:
        raise KeyRevoked("device key revoked before the reading: key %s revoked at %d, reading timed %d"
                         % (kid.hex(), revoked_at, t_last))
    report.update({"chain_id": chain_id, "block_number": proof["block_number"],
                   "confirmations": proof["confirmations"], "storage_proof": "ok", "key_status": "valid"})
    return report


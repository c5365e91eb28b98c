"""Proof bundles for stored readings (``edgeledger proof``)."""
from eth_utils import to_checksum_address

from edgeledger.gateway.anchor.lifecycle import ANCHORED
from edgeledger.gateway.errors import GatewayError
from edgeledger.gateway.store import Store
from edgeledger.protocols import merkle
from edgeledger.protocols.batch import BatchHeader
from edgeledger.protocols.bundle import Bundle
from edgeledger.protocols.cose import verify as cose_verify


class NotYetProvable(GatewayError):
    """The reading is not stored, not batched yet, or its batch is not anchored yet."""


def bundle_for(store: Store, device: str, seq: int, chain_id: int, contract: str,
               storage_proof: object = None) -> Bundle:
    """The Bundle of (device, seq). Raises NotYetProvable with the reason."""
    stored = store.message(device, seq)
    if stored is None:
        raise NotYetProvable("no stored message %s seq %d" % (device, seq))
    b = store.batch_of_message(stored.id)
    if b is None:
        raise NotYetProvable("%s seq %d is stored but not in a batch yet" % (device, seq))
    if b.state != ANCHORED:
        raise NotYetProvable("%s seq %d is in batch %d, which is %s, not anchored yet" % (device, seq, b.number,
                                                                                           b.state))
    kid = cose_verify.parse_sign1(stored.bytes).kid
    key = store.key_binding(kid)
    if key is None:
        raise NotYetProvable("the key %s of %s seq %d is not in the registry" % (kid.hex(), device, seq))
    if key.chain_block is None:
        raise NotYetProvable("the key %s of %s is not registered on the chain yet (run `device sync-chain`)"
                             % (kid.hex(), device))
    index = stored.id - b.first_id
    tree = store.batch_tree(b.number)
    assert tree is not None and b.tx_hash is not None and b.block_hash is not None  # an anchored batch has them
    gateway = store.ledger_meta()["gateway"]
    header = BatchHeader(bytes.fromhex(to_checksum_address(gateway)[2:]), b.number, b.prev_header_hash, b.root,
                         b.tree_size, b.first_time, b.last_time, tree_alg=b.tree_alg)
    gaps = [(g.after_seq, g.resume_seq, g.kind, g.reason, None if g.accepted_at is None else int(g.accepted_at))
            for g in store.chain_gaps(device) if g.resume_seq <= seq]
    return Bundle(stored.bytes, index, merkle.path_from_levels(tree, index), header, chain_id,
                  bytes.fromhex(to_checksum_address(contract)[2:]), b.tx_hash, b.block_number, b.block_hash,
                  key.alg, key.public_key, key.site, key.chain_block, key.chain_time, key.first_seq, storage_proof,
                  gaps)

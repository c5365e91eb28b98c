"""Proof bundles for stored readings (``edgeledger proof``)."""
from eth_utils import to_checksum_address

from edgeledger.gateway.batcher import path_from_blob
from edgeledger.gateway.errors import GatewayError
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.batch import BatchHeader
from edgeledger.protocols.bundle import Bundle


class NotYetProvable(GatewayError):
    """The reading is not stored, not batched yet, or its batch is not anchored yet."""


def bundle_for(store, device, seq, chain_id, contract, storage_proof=None):
    """The Bundle of (device, seq). Raises NotYetProvable with the reason."""
    row = store.message(device, seq)
    if row is None:
        raise NotYetProvable("no stored message %s seq %d" % (device, seq))
    msg_id, message = row[0], bytes(row[1])
    b = store.db.execute(
        "SELECT number, first_id, tree_size, root, prev_header_hash, first_time, last_time, tree, state,"
        " tx_hash, block_number, block_hash FROM batches WHERE first_id <= ? AND last_id >= ?",
        (msg_id, msg_id)).fetchone()
    if b is None:
        raise NotYetProvable("%s seq %d is stored but not in a batch yet" % (device, seq))
    number, first_id, size, root, prev, t0, t1, tree, state, tx_hash, block_number, block_hash = b
    if state != "anchored":
        raise NotYetProvable("%s seq %d is in batch %d, which is %s, not anchored yet" % (device, seq, number, state))
    kid = cose_verify.parse_sign1(message).kid
    key = store.db.execute(
        "SELECT k.alg, k.public_key, d.site, k.chain_block, k.chain_time, k.first_seq FROM device_keys k"
        " JOIN devices d ON d.device = k.device WHERE k.kid=?", (kid,)).fetchone()
    if key is None:
        raise NotYetProvable("the key %s of %s seq %d is not in the registry" % (kid.hex(), device, seq))
    if key[3] is None:
        raise NotYetProvable("the key %s of %s is not registered on the chain yet (run `device sync-chain`)"
                             % (kid.hex(), device))
    index = msg_id - first_id
    gateway = store.db.execute("SELECT value FROM ledger_meta WHERE name='gateway'").fetchone()
    header = BatchHeader(bytes.fromhex(to_checksum_address(gateway[0])[2:]), number, bytes(prev), bytes(root),
                         size, t0, t1)
    gaps = [(g.after_seq, g.resume_seq, g.kind, g.reason, None if g.accepted_at is None else int(g.accepted_at))
            for g in store.chain_gaps(device) if g.resume_seq <= seq]
    return Bundle(message, index, path_from_blob(bytes(tree), size, index), header, chain_id,
                  bytes.fromhex(to_checksum_address(contract)[2:]), bytes(tx_hash), block_number,
                  bytes(block_hash), key[0], bytes(key[1]), key[2], key[3], key[4], key[5], storage_proof, gaps)

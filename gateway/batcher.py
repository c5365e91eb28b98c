"""The batcher: close Merkle batches, anchor them in order, wait for confirmations.

A batch is a contiguous range of message ids (``messages.id`` grows by one per
stored message, in commit order). Its life, one row in ``batches``::

    built ──► signed ──► sent ──► mined ──► anchored
      │        │  the signed raw transaction (nonce, fees, hash) is persisted
      │        │  *before* it is sent, so a crash at any point re-sends the very
      │        │  same transaction (the node answers "already known": harmless)
      │        └─ NonceConflict (the nonce went to another transaction): re-sign
      └─ the tree (every level) is persisted before anything is signed

* A batch closes when it has ``max_size`` messages or its oldest message is
  ``max_age_s`` old.
* At most ``max_in_flight`` batches wait for their receipts; the contract accepts
  batch numbers only in order, so they are signed in order.
* ``anchored`` is set only after ``confirmations`` blocks (the mined block counts 1),
  and the receipt is re-read then: a reorg that dropped it sends it again.
* On start, ``reconcile`` compares the store with the contract (``last_batch``): a
  batch the chain has but the store does not know as mined is looked up in the
  event log; a signed batch the chain lacks is re-sent. Nothing is anchored twice
  and no number is skipped.
* When the ledger is unreachable, batches keep closing (the backlog) and are
  anchored in order when it comes back.
"""
import hashlib
import json
import logging
import math
import time

from edgeledger.gateway.errors import LedgerError
from edgeledger.gateway.ledger import LedgerUnavailable, NonceConflict
from edgeledger.protocols import merkle
from edgeledger.protocols.batch import ZERO_HASH, BatchHeader

log = logging.getLogger("edgeledger.batcher")

DEFAULT_MAX_SIZE = 10000
DEFAULT_MAX_AGE_S = 10.0
DEFAULT_CONFIRMATIONS = 2
# Batches sent but not yet mined. Each costs one nonce; more in flight means a longer
# replay after a crash, fewer means idle blocks under load.
DEFAULT_MAX_IN_FLIGHT = 8
# The largest batch: 2**20 messages keep a proof at 20 hashes (640 bytes).
MAX_BATCH_SIZE = 1 << 20


# -- trees ------------------------------------------------------------------------------------

def tree_levels(leaf_hashes):
    """Every level of the RFC 9162 tree, leaves first; an odd last node is carried up.

    (Pairing left to right and promoting a lone last node gives the same tree as
    RFC 9162's split at the largest power of two below n.)
    """
    levels = [list(leaf_hashes)]
    sha = hashlib.sha256
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [sha(b"\x01" + cur[i] + cur[i + 1]).digest() for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


def pack_levels(levels):
    return b"".join(b"".join(level) for level in levels)


def path_from_blob(blob, size, index):
    """RFC 9162 audit path of leaf ``index`` from a packed tree of ``size`` leaves."""
    path = []
    offset, n, i = 0, size, index
    while n > 1:
        sibling = i ^ 1
        if sibling < n:
            start = offset + 32 * sibling
            path.append(bytes(blob[start:start + 32]))
        offset += 32 * n
        n = (n + 1) // 2
        i >>= 1
    return path


# -- the batcher ------------------------------------------------------------------------------

class Batcher:
    def __init__(self, store, ledger, max_size=DEFAULT_MAX_SIZE, max_age_s=DEFAULT_MAX_AGE_S,
                 confirmations=DEFAULT_CONFIRMATIONS, max_in_flight=DEFAULT_MAX_IN_FLIGHT, clock=time.time):
        if not 1 <= max_size <= MAX_BATCH_SIZE:
            raise ValueError("batch max_size must be 1..%d, got %r" % (MAX_BATCH_SIZE, max_size))
        self.store = store
        self.db = store.db
        self.ledger = ledger
        self.gateway = ledger.account
        self.max_size = max_size
        self.max_age_s = max_age_s
        self.confirmations = max(1, confirmations)
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.reconciled = False
        self.counters = {"batches_closed": 0, "batches_anchored": 0, "ledger_unavailable": 0,
                         "resends": 0, "nonce_conflicts": 0}

    # -- closing batches -------------------------------------------------------------------

    def _last_batch(self):
        return self.db.execute("SELECT number, last_id, header_hash FROM batches ORDER BY number DESC LIMIT 1").fetchone()

    def close_due(self, force=False):
        """Close every batch that is due; returns how many were closed."""
        closed = 0
        while self._close_one(force):
            closed += 1
        return closed

    def _close_one(self, force):
        last = self._last_batch()
        number, after_id, prev = (last[0] + 1, last[1], bytes(last[2])) if last else (1, 0, ZERO_HASH)
        row = self.db.execute("SELECT COUNT(*), MIN(received_at) FROM (SELECT received_at FROM messages"
                              " WHERE id > ? ORDER BY id LIMIT ?)", (after_id, self.max_size)).fetchone()
        count, oldest = row
        if count == 0:
            return False
        if count < self.max_size and not force and self.clock() - oldest < self.max_age_s:
            return False
        rows = self.db.execute("SELECT id, bytes, t_first, t_last FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                               (after_id, self.max_size)).fetchall()
        first_id, last_id = rows[0][0], rows[-1][0]
        if last_id - first_id + 1 != len(rows):
            raise LedgerError("message ids %d..%d are not contiguous: the store was edited" % (first_id, last_id))
        leaves = [merkle.leaf_hash(bytes(r[1])) for r in rows]
        levels = tree_levels(leaves)
        root = levels[-1][0]
        first_time = int(math.floor(min(r[2] for r in rows)))
        last_time = int(math.ceil(max(r[3] for r in rows)))
        header = BatchHeader(bytes.fromhex(self.gateway[2:]), number, prev, root, len(rows), first_time, last_time)
        with self.store.lock:
            self.db.execute(
                "INSERT INTO batches (number, first_id, last_id, tree_size, root, prev_header_hash, header_hash,"
                " first_time, last_time, tree, state, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (number, first_id, last_id, len(rows), root, prev, header.hash(), first_time, last_time,
                 pack_levels(levels), "built", self.clock()))
        self.counters["batches_closed"] += 1
        log.info("closed batch %d: %d messages, root %s", number, len(rows), root.hex())
        return True

    # -- anchoring ---------------------------------------------------------------------------

    def _batches(self, states):
        q = ",".join("?" * len(states))
        return self.db.execute(
            "SELECT number, prev_header_hash, root, tree_size, first_time, last_time, raw_tx, tx_hash, nonce,"
            " state FROM batches WHERE state IN (%s) ORDER BY number" % q, states).fetchall()

    def _set(self, number, **fields):
        cols = ", ".join("%s=?" % k for k in fields)
        with self.store.lock:
            self.db.execute("UPDATE batches SET %s WHERE number=?" % cols, list(fields.values()) + [number])

    def reconcile(self):
        """Bring the store in line with the contract after a (re)start."""
        chain_last, chain_head = self.ledger.last_batch(self.gateway)
        local_last = self._last_batch()
        if chain_last and (local_last is None or local_last[0] < chain_last):
            raise LedgerError("the contract has batch %d of gateway %s but this store only knows %s: "
                              "wrong store or wrong contract" % (chain_last, self.gateway,
                                                                 local_last[0] if local_last else "none"))
        for number, *_rest, state in self._batches(("built", "signed", "sent")):
            if number <= chain_last:
                found = self.ledger.find_anchor(self.gateway, number)
                if found is None:
                    raise LedgerError("batch %d is anchored on chain but its event is missing" % number)
                self._set(number, state="mined", tx_hash=found["tx_hash"], block_number=found["block_number"],
                          block_hash=found["block_hash"])
                log.info("reconciled batch %d: already anchored in block %d", number, found["block_number"])
        self.reconciled = True

    def step(self):
        """One round: close due batches, send what is ready, follow receipts. Never raises
        for an unreachable ledger (the backlog waits); returns True if anything moved."""
        moved = self.close_due() > 0
        try:
            if not self.reconciled:
                self.reconcile()
            moved |= self._send_ready()
            moved |= self._follow_receipts()
        except LedgerUnavailable as e:
            self.counters["ledger_unavailable"] += 1
            log.warning("ledger unavailable, %d batches waiting: %s", self.backlog(), e)
            self.ledger.resync_nonce()
        return moved

    def backlog(self):
        return self.db.execute("SELECT COUNT(*) FROM batches WHERE state != 'anchored'").fetchone()[0]

    def _send_ready(self):
        moved = False
        in_flight = len(self._batches(("signed", "sent")))
        for number, prev, root, size, t0, t1, raw, tx_hash, nonce, state in self._batches(("built", "signed")):
            if state == "built":
                if in_flight >= self.max_in_flight:
                    break
                prepared = self.ledger.sign_anchor(number, bytes(prev), bytes(root), size, t0, t1)
                self._set(number, state="signed", raw_tx=json.dumps(prepared.to_dict()).encode(),
                          tx_hash=prepared.tx_hash, nonce=prepared.nonce)
                in_flight += 1
            else:
                prepared = self._restore(number, prev, root, size, t0, t1, raw)
                self.counters["resends"] += 1
            try:
                self.ledger.send(prepared)
            except NonceConflict:
                self.counters["nonce_conflicts"] += 1
                chain_last, _ = self.ledger.last_batch(self.gateway)
                if chain_last >= number:
                    self.reconciled = False  # it is anchored after all: look it up
                else:
                    self._set(number, state="built", raw_tx=None, tx_hash=None, nonce=None)
                return True
            self._set(number, state="sent")
            moved = True
        return moved

    def _restore(self, number, prev, root, size, t0, t1, raw):
        saved = json.loads(bytes(raw).decode())
        return self.ledger.sign_anchor(number, bytes(prev), bytes(root), size, t0, t1,
                                       nonce=saved["nonce"], fees=saved["fees"])

    def _follow_receipts(self):
        moved = False
        for number, prev, root, size, t0, t1, raw, tx_hash, nonce, state in self._batches(("sent", "mined")):
            receipt = self.ledger.receipt(bytes(tx_hash))
            if receipt is None:
                # reorged away, or the node lost it from its pool (a restart): send it again
                if state == "mined" or not self.ledger.transaction_known(bytes(tx_hash)):
                    self._set(number, state="signed")
                    moved = True
                continue
            if receipt["status"] != 1:
                chain_last, _ = self.ledger.last_batch(self.gateway)
                if chain_last >= number:
                    self.reconciled = False
                else:
                    log.error("anchor of batch %d reverted; re-signing it", number)
                    self._set(number, state="built", raw_tx=None, tx_hash=None, nonce=None)
                moved = True
                continue
            if state == "sent":
                self._set(number, state="mined", block_number=receipt["blockNumber"],
                          block_hash=bytes(receipt["blockHash"]))
                moved = True
            if self.ledger.confirmations(receipt) >= self.confirmations:
                self._set(number, state="anchored", anchored_at=self.clock(),
                          block_number=receipt["blockNumber"], block_hash=bytes(receipt["blockHash"]))
                self.counters["batches_anchored"] += 1
                log.info("batch %d anchored in block %d", number, receipt["blockNumber"])
                moved = True
        return moved

    # -- queries ---------------------------------------------------------------------------

    def anchored_messages(self):
        row = self.db.execute("SELECT COALESCE(SUM(tree_size), 0) FROM batches WHERE state='anchored'").fetchone()
        return row[0]

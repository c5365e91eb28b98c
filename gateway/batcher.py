"""The batcher: close Merkle batches, anchor them in order, follow them to finality.

A batch is a contiguous range of message ids (``messages.id`` grows by one per
stored message, in commit order). Its life, one row in ``batches``::

    built ──► signed ──► sent ──► mined ──► anchored ──► (final_at set)
      │        │  the signed raw transaction (nonce, fees, hash) is persisted
      │        │  *before* it is sent, so a crash at any point re-sends the very
      │        │  same transaction (the node answers "already known": harmless)
      │        └─ NonceConflict (the nonce went to another transaction): re-sign
      └─ the tree (every level) is persisted before anything is signed

    anchored/mined ──► signed    a reorg removed it: the same transaction again

* A batch closes when it has ``max_size`` messages or its oldest message is
  ``max_age_s`` old.
* At most ``max_in_flight`` batches wait for their receipts; the contract accepts
  batch numbers only in order, so they are signed in order.
* ``anchored`` is set after ``confirmations`` blocks (the mined block counts 1);
  proofs are served from then on. The batch is followed further: ``final_at`` is set
  once its block is ``finality`` blocks deep and still canonical.
* Every CHECK_S the contract's head for this gateway (``head``: last number and its
  header hash; one call) is compared with the store. Headers are hash-chained, so a
  matching head vouches for every batch below it:

  - head number below a batch the store holds as mined or anchored: a reorg took it
    away. It goes back to ``signed`` and the very same transaction is sent again
    (the nonces of the lost transactions are free again, so nothing is left in a
    gap); logged once per reorg, counted (``reorgs``, ``batches_reanchored``) and
    recorded as an event for ``gateway status``.
  - head number above the store's last batch, or a head header hash that is not the
    store's: another gateway anchors with this account (or the store belongs to
    another deployment). Anchoring stops (``AnchorConflict``), said once, shown by
    ``gateway status``; no transaction is sent, so no gas is burnt. Batches keep
    closing; ingest goes on.
  - the first waiting anchor's nonce above the account's next nonce, with nothing
    pending for that nonce, on two checks in a row: a nonce gap. The waiting anchors
    are signed again from the next nonce on, with fees above the ones they replace
    (``nonce_gaps_repaired``).
* On start, ``reconcile`` runs the same head check, then looks up in the event log
  the batches the chain has but the store does not know as mined, adopting each only
  if its header hash is the store's. Nothing is anchored twice, no number is skipped.
* When the ledger is unreachable, batches keep closing (the backlog) and are
  anchored in order when it comes back; the outage is logged when it starts and when
  it ends, not at every step.
"""
import hashlib
import json
import logging
import math
import time

from edgeledger.gateway.config.schema import DEFAULT_BATCH_AGE_S, DEFAULT_BATCH_SIZE, DEFAULT_CONFIRMATIONS, MAX_BATCH_SIZE
from edgeledger.gateway.errors import AnchorConflict, LedgerError, StoreError
from edgeledger.gateway.ledger import LedgerUnavailable, NonceConflict
from edgeledger.protocols import merkle
from edgeledger.protocols.batch import ZERO_HASH, BatchHeader

log = logging.getLogger("edgeledger.batcher")

# Batches sent but not yet mined. Each costs one nonce; more in flight means a longer
# replay after a crash, fewer means idle blocks under load.
DEFAULT_MAX_IN_FLIGHT = 8


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

# How often the contract's head is compared with the store (reorgs, a second gateway,
# nonce gaps): one view call; a reorg is seen within this time of the node seeing it.
CHECK_S = 2.0
# How often anchored batches short of finality are looked at (one block lookup each for
# the ones that reached the depth).
FINALITY_CHECK_S = 5.0
# Fees of a re-signed anchor that replaces one still in a node's pool: at least this
# factor above the old ones (geth and anvil refuse a replacement below +10 %).
REPLACEMENT_FEE_BUMP = 1.125

_STATES_ON_CHAIN = ("mined", "anchored")


class Batcher:
    def __init__(self, store, ledger, max_size=DEFAULT_BATCH_SIZE, max_age_s=DEFAULT_BATCH_AGE_S,
                 confirmations=DEFAULT_CONFIRMATIONS, max_in_flight=DEFAULT_MAX_IN_FLIGHT, clock=time.time,
                 finality=None):
        if not 1 <= max_size <= MAX_BATCH_SIZE:
            raise ValueError("batch max_size must be 1..%d, got %r" % (MAX_BATCH_SIZE, max_size))
        self.store = store
        self.db = store.db
        self.ledger = ledger
        self.gateway = ledger.account
        self.max_size = max_size
        self.max_age_s = max_age_s
        self.confirmations = max(1, confirmations)
        # blocks after which an anchored batch is final (never below the confirmations)
        self.finality = max(self.confirmations, finality or self.confirmations)
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.reconciled = False
        self.halted = None  # the AnchorConflict that stopped anchoring, if any
        self.unavailable_since = None
        self._next_check = 0.0
        self._next_finality = 0.0
        self._gap_seen = None
        self.counters = {"batches_closed": 0, "batches_anchored": 0, "ledger_unavailable": 0,
                         "resends": 0, "nonce_conflicts": 0, "batches_final": 0, "reorgs": 0,
                         "batches_reanchored": 0, "nonce_gaps_repaired": 0, "anchors_reverted": 0}

    # -- closing batches -------------------------------------------------------------------

    def _last_batch(self):
        return self.db.execute("SELECT number, last_id, header_hash FROM batches ORDER BY number DESC LIMIT 1").fetchone()

    def _header_hash(self, number):
        row = self.db.execute("SELECT header_hash FROM batches WHERE number=?", (number,)).fetchone()
        return bytes(row[0]) if row else None

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
        self.store.write(
            "closing batch %d" % number,
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
        self.store.write("updating batch %d" % number, "UPDATE batches SET %s WHERE number=?" % cols,
                         list(fields.values()) + [number])

    def _event(self, kind, detail):
        try:
            self.store.record_event(kind, detail)
        except StoreError as e:
            log.warning("could not record %s event: %s", kind, e)

    def _check_head(self):
        """Compare the contract's head for this gateway with the store. Raises AnchorConflict;
        returns the chain's last batch number."""
        chain_last, chain_head = self.ledger.last_batch(self.gateway)
        local = self._last_batch()
        local_last = local[0] if local else 0
        if chain_last > local_last:
            raise AnchorConflict(
                "anchoring stopped: the contract %s already holds batch %d of account %s, but this store's last "
                "batch is %s. Another gateway anchors with the same account key, or this store belongs to another "
                "deployment. Give each gateway its own account (edgeledger gateway keygen) and authorize it."
                % (self.ledger.address, chain_last, self.gateway, local_last or "none"))
        if chain_last:
            ours = self._header_hash(chain_last)
            if ours != chain_head:
                raise AnchorConflict(
                    "anchoring stopped: batch %d of account %s in contract %s has header hash %s, this store's "
                    "batch %d has %s. Another gateway anchors with the same account key (or this store belongs to "
                    "another deployment); no transaction is sent. Give each gateway its own account "
                    "(edgeledger gateway keygen)." % (chain_last, self.gateway, self.ledger.address,
                                                       chain_head.hex(), chain_last, (ours or b"").hex()))
        return chain_last

    def reconcile(self):
        """Bring the store in line with the contract after a (re)start. Raises AnchorConflict
        if the chain holds batches of this account that are not this store's."""
        chain_last = self._check_head()
        for number, *_rest, state in self._batches(("built", "signed", "sent")):
            if number <= chain_last:
                found = self.ledger.find_anchor(self.gateway, number)
                if found is None:
                    raise LedgerError("batch %d is anchored on chain but its event is missing" % number)
                ours = self._header_hash(number)
                if bytes(found["header_hash"]) != ours:
                    raise AnchorConflict(
                        "anchoring stopped: the Anchored event of batch %d (transaction %s) has header hash %s, this "
                        "store's batch %d has %s: not this gateway's batch, so it is not adopted. Another gateway "
                        "anchors with the same account key." % (number, found["tx_hash"].hex(),
                                                                 bytes(found["header_hash"]).hex(), number,
                                                                 (ours or b"").hex()))
                self._set(number, state="mined", tx_hash=found["tx_hash"], block_number=found["block_number"],
                          block_hash=found["block_hash"])
                log.info("reconciled batch %d: already anchored in block %d", number, found["block_number"])
        self.reconciled = True

    def step(self):
        """One round: close due batches, send what is ready, follow receipts and the chain.
        Never raises for an unreachable ledger (the backlog waits) nor for a conflict (it
        halts anchoring, once); returns True if anything moved. Raises StoreError when the
        store cannot be written (the caller waits and calls again)."""
        moved = self.close_due() > 0
        if self.halted is not None:
            return moved
        try:
            if not self.reconciled:
                self.reconcile()
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + CHECK_S
                moved |= self._check_chain()
            moved |= self._send_ready()
            moved |= self._follow_receipts()
            if now >= self._next_finality:
                self._next_finality = now + FINALITY_CHECK_S
                moved |= self._follow_finality()
            if self.unavailable_since is not None:
                down = time.monotonic() - self.unavailable_since
                self.unavailable_since = None
                log.warning("ledger reachable again after %.0f s; anchoring the %d waiting batches", down,
                            self.backlog())
                self.store.set_anchor_state("ok", "ledger reachable again after %.0f s" % down)
                self._event("ledger_back", "ledger unreachable for %.0f s; batches anchored in order since" % down)
        except LedgerUnavailable as e:
            self.counters["ledger_unavailable"] += 1
            if self.unavailable_since is None:
                self.unavailable_since = time.monotonic()
                log.warning("ledger unavailable (%s): ingest goes on, %d batches wait and are anchored in order "
                            "when it returns", e, self.backlog())
                self.store.set_anchor_state("unreachable", "ledger unreachable since %s: %s" % (
                    time.strftime("%Y-%m-%d %H:%M:%S"), e))
            self.ledger.resync_nonce()
        except AnchorConflict as e:
            self.halted = e
            log.error("%s", e)
            self.store.set_anchor_state("halted", str(e))
            self._event("anchor_conflict", str(e))
        return moved

    def backlog(self):
        return self.db.execute("SELECT COUNT(*) FROM batches WHERE state != 'anchored'").fetchone()[0]

    # -- the chain's view: reorgs, nonce gaps ------------------------------------------------

    def _check_chain(self):
        chain_last = self._check_head()
        moved = self._take_back(chain_last)
        return self._repair_nonce_gap() or moved

    def _take_back(self, chain_last):
        """Batches the store holds as mined or anchored above the chain's head: a reorg
        removed them. Send the same transactions again."""
        gone = self.db.execute("SELECT number, block_number, final_at FROM batches WHERE number > ? AND state IN"
                               " ('mined', 'anchored') ORDER BY number", (chain_last,)).fetchall()
        if not gone:
            return False
        numbers = [r[0] for r in gone]
        with self.store.transaction("taking back batches %d..%d" % (numbers[0], numbers[-1])):
            self.db.execute("UPDATE batches SET state='signed', anchored_at=NULL, final_at=NULL,"
                            " reanchors=reanchors+1 WHERE number > ? AND state IN ('mined', 'anchored')",
                            (chain_last,))
        self.counters["reorgs"] += 1
        self.counters["batches_reanchored"] += len(numbers)
        deeper = [r[0] for r in gone if r[2] is not None]
        detail = ("chain reorganisation: batches %d..%d (mined in blocks %s..%s) are no longer on chain (its head is "
                  "batch %d); sending their transactions again" % (numbers[0], numbers[-1], gone[0][1], gone[-1][1],
                                                                  chain_last))
        if deeper:
            detail += "; %d of them were final (%d blocks deep): a reorg deeper than the configured finality" % (
                len(deeper), self.finality)
        log.error("%s", detail)
        self._event("reorg", detail)
        self.ledger.resync_nonce()
        return True

    def _repair_nonce_gap(self):
        waiting = self._batches(("signed", "sent"))
        if not waiting:
            self._gap_seen = None
            return False
        nonces = [r[8] for r in waiting if r[8] is not None]
        if not nonces:
            return False
        low = min(nonces)
        latest = self.ledger.transaction_count(self.gateway, "latest")
        pending = self.ledger.transaction_count(self.gateway, "pending")
        if not (pending == latest < low):
            self._gap_seen = None
            return False
        if self._gap_seen != (latest, low):
            self._gap_seen = (latest, low)  # seen once: a transaction may be on its way into the pool
            return False
        self._gap_seen = None
        old = _max_fees([r[6] for r in waiting if r[6]])
        fees = _bumped(self.ledger.current_fees(), old)
        for i, (number, prev, root, size, t0, t1, raw, _h, _n, _state) in enumerate(waiting):
            prepared = self.ledger.sign_anchor(number, bytes(prev), bytes(root), size, t0, t1, nonce=latest + i,
                                               fees=fees)
            self._set(number, state="signed", raw_tx=json.dumps(prepared.to_dict()).encode(),
                      tx_hash=prepared.tx_hash, nonce=prepared.nonce)
        # the old anchors above the new range still wait in the node's pool: replace each
        # with an empty transfer, or it would run later and revert (gas for nothing)
        for nonce in sorted(set(r[8] for r in waiting if r[8] is not None and r[8] >= latest + len(waiting))):
            self.ledger.send(self.ledger.sign_cancel(nonce, fees))
        self.ledger.resync_nonce()
        self.counters["nonce_gaps_repaired"] += 1
        detail = ("nonce gap: the account's next nonce is %d but the first waiting anchor had nonce %d; %d anchors "
                  "signed again from nonce %d" % (latest, low, len(waiting), latest))
        log.warning("%s", detail)
        self._event("nonce_gap", detail)
        return True

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
                self._next_check = 0.0  # another user of the key? look at the head next step
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
                self.counters["anchors_reverted"] += 1
                self._next_check = 0.0
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

    def _follow_finality(self):
        """Anchored batches whose block is ``finality`` deep: final if the block is still the
        canonical one; if a shallow reorg moved the transaction, the new block is recorded
        and the batch waits again."""
        rows = self.db.execute("SELECT number, tx_hash, block_number, block_hash FROM batches WHERE state='anchored'"
                               " AND final_at IS NULL ORDER BY number").fetchall()
        if not rows:
            return False
        latest = self.ledger.block_number()
        moved = False
        for number, tx_hash, block_number, block_hash in rows:
            if latest - block_number + 1 < self.finality:
                break
            if self.ledger.block_hash(block_number) == bytes(block_hash):
                self._set(number, final_at=self.clock())
                self.counters["batches_final"] += 1
                moved = True
                continue
            receipt = self.ledger.receipt(bytes(tx_hash))
            if receipt is None or receipt["status"] != 1:
                self._set(number, state="mined")  # _follow_receipts and the head check take it from here
            else:
                log.warning("batch %d moved from block %d to block %d (a shallow reorg)", number, block_number,
                            receipt["blockNumber"])
                self._set(number, block_number=receipt["blockNumber"], block_hash=bytes(receipt["blockHash"]))
            moved = True
        return moved

    # -- queries ---------------------------------------------------------------------------

    def anchored_messages(self):
        row = self.db.execute("SELECT COALESCE(SUM(tree_size), 0) FROM batches WHERE state='anchored'").fetchone()
        return row[0]


def _max_fees(raws):
    """{fee field: highest value} over persisted PreparedTx dicts."""
    out = {}
    for raw in raws:
        for k, v in (json.loads(bytes(raw).decode()).get("fees") or {}).items():
            if k != "type":
                out[k] = max(out.get(k, 0), v)
    return out


def _bumped(fees, old):
    """``fees`` raised so that each field is at least REPLACEMENT_FEE_BUMP x the same field
    of ``old`` (what a node needs to replace a pooled transaction of the same nonce)."""
    out = dict(fees)
    for k, v in old.items():
        if k in out:
            out[k] = max(out[k], int(math.ceil(v * REPLACEMENT_FEE_BUMP)) + 1)
    if out.get("maxPriorityFeePerGas", 0) > out.get("maxFeePerGas", 0) and "maxFeePerGas" in out:
        out["maxFeePerGas"] = out["maxPriorityFeePerGas"]
    return out

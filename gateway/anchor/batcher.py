"""The batcher: close Merkle batches, anchor them in order, follow them to finality.

A batch is a contiguous range of message ids (``messages.id`` grows by one per stored
message, in commit order), with every level of its RFC 9162 tree (protocols/merkle.py, the
code the published vectors test). Its life is the table in lifecycle.py; this module
decides when each move happens:

* A batch closes when it has ``max_size`` messages or its oldest message is
  ``max_age_s`` old. Its tree is hashed with the deployment's tree hash (``tree_alg``,
  protocols/hashes.py: SHA-256 or SM3), which the batch keeps and its header names.
* At most ``max_in_flight`` batches wait for their receipts; the contract accepts
  batch numbers only in order, so they are signed in order.
* ``anchored`` is set after ``confirmations`` blocks (the mined block counts 1);
  proofs are served from then on. The batch is followed further: ``final_at`` is set
  once its block is ``finality`` blocks deep and still canonical.
* Every CHECK_S the contract's head for this gateway (``head``: last number and its
  header hash; one call) is compared with the store. Headers are hash-chained, so a
  matching head vouches for every batch below it:

  - head number below a batch the store holds as mined or anchored: a reorg took it
    away (L10). The very same transaction is sent again (the nonces of the lost
    transactions are free again, so nothing is left in a gap); logged once per reorg,
    counted (``reorgs``, ``batches_reanchored``) and recorded as an event for
    ``gateway status``.
  - head number above the store's last batch, or a head header hash that is not the
    store's: another gateway anchors with this account (or the store belongs to
    another deployment). Anchoring stops (``AnchorConflict``), said once, shown by
    ``gateway status``; no transaction is sent, so no gas is burnt. Batches keep
    closing; ingest goes on.
  - the first waiting anchor's nonce above the account's next nonce, with nothing
    pending for that nonce, on two checks in a row: a nonce gap (L4). The waiting
    anchors are signed again from the next nonce on, with fees above the ones they
    replace (``nonce_gaps_repaired``).
* On start, ``reconcile`` runs the same head check, then looks up in the event log
  the batches the chain has but the store does not know as mined, adopting each only
  if its header hash is the store's (L9). Nothing is anchored twice, no number is
  skipped.
* When the ledger is unreachable, batches keep closing (the backlog) and are
  anchored in order when it comes back; the outage is logged when it starts and when
  it ends, not at every step.
"""
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from edgeledger.gateway.anchor import lifecycle
from edgeledger.gateway.anchor.ledger import Ledger, LedgerUnavailable, NonceConflict, PreparedTx
from edgeledger.gateway.anchor.lifecycle import ANCHORED, BUILT, IN_FLIGHT, MINED, ON_CHAIN, SENT, SIGNED
from edgeledger.gateway.config.schema import (
    DEFAULT_BATCH_AGE_S,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONFIRMATIONS,
    MAX_BATCH_SIZE,
)
from edgeledger.gateway.errors import AnchorConflict, LedgerError, StoreError
from edgeledger.gateway.store import Batch, BatchMessage, PackedTree, Store
from edgeledger.protocols import hashes, merkle
from edgeledger.protocols.batch import ZERO_HASH, BatchHeader
from edgeledger.protocols.repeats import Repeats, repeated

log = logging.getLogger("edgeledger.batcher")

# Batches sent but not yet mined. Each costs one nonce; more in flight means a longer
# replay after a crash, fewer means idle blocks under load.
DEFAULT_MAX_IN_FLIGHT = 8
# How often the contract's head is compared with the store (reorgs, a second gateway,
# nonce gaps): one view call; a reorg is seen within this time of the node seeing it.
CHECK_S = 2.0
# How often anchored batches short of finality are looked at (one block lookup each for
# the ones that reached the depth).
FINALITY_CHECK_S = 5.0
# Fees of a re-signed anchor that replaces one still in a node's pool: at least this
# factor above the old ones (geth and anvil refuse a replacement below +10 %).
REPLACEMENT_FEE_BUMP = 1.125
COUNTERS = ("batches_closed", "batches_anchored", "ledger_unavailable", "resends", "nonce_conflicts",
            "batches_final", "reorgs", "batches_reanchored", "nonce_gaps_repaired", "anchors_reverted")


class Batcher:
    """Closes and anchors the batches of one store with one ledger account (``step``)."""

    def __init__(self, store: Store, ledger: Ledger, max_size: int = DEFAULT_BATCH_SIZE,
                 max_age_s: float = DEFAULT_BATCH_AGE_S, confirmations: int = DEFAULT_CONFIRMATIONS,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, clock: Callable[[], float] = time.time,
                 finality: int | None = None, tree_alg: int = hashes.DEFAULT) -> None:
        """Raises ValueError for a ``max_size`` outside 1..MAX_BATCH_SIZE, UnknownHash (a
        ValueError) for a ``tree_alg`` this runtime cannot compute."""
        if not 1 <= max_size <= MAX_BATCH_SIZE:
            raise ValueError("batch max_size must be 1..%d, got %r" % (MAX_BATCH_SIZE, max_size))
        self.store = store
        self.ledger = ledger
        self.gateway: str = ledger.account
        self.max_size = max_size
        self.max_age_s = max_age_s
        self.tree_alg = tree_alg
        self._tree_digest = hashes.function(hashes.alg_for("tree", tree_alg))
        self.confirmations = max(1, confirmations)
        # blocks after which an anchored batch is final (never below the confirmations)
        self.finality = max(self.confirmations, finality or self.confirmations)
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.reconciled = False
        self.halted: AnchorConflict | None = None  # the conflict that stopped anchoring, if any
        self.unavailable_since: float | None = None
        self._down = Repeats()  # says an outage of the node at once, then less and less often
        self._next_check = 0.0
        self._next_finality = 0.0
        self._gap_seen: tuple[int, int] | None = None
        self.counters = dict((name, 0) for name in COUNTERS)

    # -- closing batches -------------------------------------------------------------------

    def close_due(self, force: bool = False) -> int:
        """Close every batch that is due; returns how many were closed. Raises StoreError."""
        closed = 0
        while self._close_one(force):
            closed += 1
        return closed

    def _close_one(self, force: bool) -> bool:
        last = self.store.last_batch()
        number, after_id, prev = (last.number + 1, last.last_id, last.header_hash) if last else (1, 0, ZERO_HASH)
        count, oldest = self.store.unbatched(after_id, self.max_size)
        if count == 0 or oldest is None:
            return False
        if count < self.max_size and not force and self.clock() - oldest < self.max_age_s:
            return False
        rows = self.store.batch_messages(after_id, self.max_size)
        first_id, last_id = rows[0].id, rows[-1].id
        if last_id - first_id + 1 != len(rows):
            raise LedgerError("message ids %d..%d are not contiguous: the store was edited" % (first_id, last_id))
        self._store_batch(number, prev, rows)
        self.counters["batches_closed"] += 1
        return True

    def _store_batch(self, number: int, prev: bytes, rows: list[BatchMessage]) -> None:
        digest = self._tree_digest
        levels = merkle.levels([merkle.leaf_hash(m.bytes, digest) for m in rows], digest)
        root = levels[-1][0]
        first_time = int(math.floor(min(m.t_first for m in rows)))
        last_time = int(math.ceil(max(m.t_last for m in rows)))
        header = BatchHeader(bytes.fromhex(self.gateway[2:]), number, prev, root, len(rows), first_time, last_time,
                             tree_alg=self.tree_alg)
        batch = Batch(number, rows[0].id, rows[-1].id, len(rows), root, prev, header.hash(), first_time, last_time,
                      self.clock(), lifecycle.transition("closed").target, tree_alg=self.tree_alg)
        self.store.insert_batch(batch, PackedTree.pack(levels))
        log.info("closed batch %d: %d messages, root %s", number, len(rows), root.hex())

    # -- moving along the lifecycle ----------------------------------------------------------

    def _move(self, number: int, event: str, **fields: Any) -> None:
        """Move batch ``number`` by the lifecycle rule of ``event`` (setting ``fields``).
        Raises BatchStateError if the batch is not in a state the rule starts from."""
        t = lifecycle.transition(event)
        self.store.move_batch(number, t.sources, t.target, **fields)

    def _signed(self, number: int, event: str, prepared: PreparedTx) -> None:
        self._move(number, event, raw_tx=json.dumps(prepared.to_dict()).encode(), tx_hash=prepared.tx_hash,
                   nonce=prepared.nonce)

    def _event(self, kind: str, detail: str) -> None:
        try:
            self.store.record_event(kind, detail)
        except StoreError as e:
            log.warning("could not record %s event: %s", kind, e)

    # -- the chain's head --------------------------------------------------------------------

    def _header_hash(self, number: int) -> bytes | None:
        b = self.store.batch(number)
        return b.header_hash if b else None

    def _check_head(self) -> int:
        """Compare the contract's head for this gateway with the store. Raises AnchorConflict;
        returns the chain's last batch number."""
        chain_last, chain_head = self.ledger.last_batch(self.gateway)
        local = self.store.last_batch()
        local_last = local.number if local else 0
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

    def reconcile(self) -> None:
        """Bring the store in line with the contract after a (re)start (L9). Raises
        AnchorConflict if the chain holds batches of this account that are not this store's,
        LedgerError if an anchored batch's event is missing."""
        chain_last = self._check_head()
        for b in self.store.batches_in((BUILT, SIGNED, SENT)):
            if b.number > chain_last:
                continue
            found = self.ledger.find_anchor(self.gateway, b.number)
            if found is None:
                raise LedgerError("batch %d is anchored on chain but its event is missing" % b.number)
            if bytes(found["header_hash"]) != b.header_hash:
                raise AnchorConflict(
                    "anchoring stopped: the Anchored event of batch %d (transaction %s) has header hash %s, this "
                    "store's batch %d has %s: not this gateway's batch, so it is not adopted. Another gateway "
                    "anchors with the same account key." % (b.number, found["tx_hash"].hex(),
                                                             bytes(found["header_hash"]).hex(), b.number,
                                                             b.header_hash.hex()))
            self._move(b.number, "adopted", tx_hash=found["tx_hash"], block_number=found["block_number"],
                       block_hash=found["block_hash"])
            log.info("reconciled batch %d: already anchored in block %d", b.number, found["block_number"])
        self.reconciled = True

    # -- one round ---------------------------------------------------------------------------

    def step(self) -> bool:
        """One round: close due batches, send what is ready, follow receipts and the chain.
        Never raises for an unreachable ledger (the backlog waits) nor for a conflict (it
        halts anchoring, once); returns True if anything moved. Raises StoreError when the
        store cannot be written (the caller waits and calls again)."""
        moved = self.close_due() > 0
        if self.halted is not None:
            return moved
        try:
            moved |= self._anchor_round()
        except LedgerUnavailable as e:
            self._ledger_down(e)
        except AnchorConflict as e:
            self.halted = e
            log.error("%s", e)
            self.store.set_anchor_state("halted", str(e))
            self._event("anchor_conflict", str(e))
        return moved

    def _anchor_round(self) -> bool:
        now = time.monotonic()
        if self.unavailable_since is not None and now < self._next_check:
            # The node is away: only the next chain check (every CHECK_S) asks whether it is
            # back. A round that asks the node nothing proves nothing, and taking it for
            # "reachable again" said down/up twice a check and recorded an event each time.
            return False
        if not self.reconciled:
            self.reconcile()
        moved = False
        if now >= self._next_check:
            self._next_check = now + CHECK_S
            moved |= self._check_chain()
        moved |= self._send_ready()
        moved |= self._follow_receipts()
        if now >= self._next_finality:
            self._next_finality = now + FINALITY_CHECK_S
            moved |= self._follow_finality()
        if self.unavailable_since is not None:
            self._ledger_back()
        return moved

    def _ledger_down(self, e: LedgerUnavailable) -> None:
        self.counters["ledger_unavailable"] += 1
        self._next_check = max(self._next_check, time.monotonic() + CHECK_S)
        now = time.monotonic()
        if self.unavailable_since is None:
            self.unavailable_since = now
            self._down.clear()
            self.store.set_anchor_state("unreachable", "ledger unreachable since %s: %s" % (
                time.strftime("%Y-%m-%d %H:%M:%S"), e))
        unsaid = self._down.say("unavailable", now)  # at once, then at growing intervals
        if unsaid is not None:
            log.warning("ledger unavailable for %.0f s (%s): ingest goes on, %d batches wait and are anchored in "
                        "order when it returns%s", now - self.unavailable_since, e, self.backlog(), repeated(unsaid))
        self.ledger.resync_nonce()

    def _ledger_back(self) -> None:
        down = time.monotonic() - (self.unavailable_since or time.monotonic())
        self.unavailable_since = None
        log.warning("ledger reachable again after %.0f s; anchoring the %d waiting batches", down, self.backlog())
        self.store.set_anchor_state("ok", "ledger reachable again after %.0f s" % down)
        self._event("ledger_back", "ledger unreachable for %.0f s; batches anchored in order since" % down)

    def backlog(self) -> int:
        """Batches not anchored yet."""
        return self.store.count_batches(exclude=(ANCHORED,))

    # -- the chain's view: reorgs, nonce gaps ------------------------------------------------

    def _check_chain(self) -> bool:
        chain_last = self._check_head()
        moved = self._take_back(chain_last)
        return self._repair_nonce_gap() or moved

    def _take_back(self, chain_last: int) -> bool:
        """Batches the store holds as mined or anchored above the chain's head: a reorg
        removed them (L10). Send the same transactions again."""
        gone = self.store.batches_above(chain_last, ON_CHAIN)
        if not gone:
            return False
        rule = lifecycle.transition("reorg")
        self.store.take_back_batches(chain_last, rule.sources, rule.target)
        self.counters["reorgs"] += 1
        self.counters["batches_reanchored"] += len(gone)
        deeper = [b.number for b in gone if b.final_at is not None]
        detail = ("chain reorganisation: batches %d..%d (mined in blocks %s..%s) are no longer on chain (its head is "
                  "batch %d); sending their transactions again" % (gone[0].number, gone[-1].number,
                                                                  gone[0].block_number, gone[-1].block_number,
                                                                  chain_last))
        if deeper:
            detail += "; %d of them were final (%d blocks deep): a reorg deeper than the configured finality" % (
                len(deeper), self.finality)
        log.error("%s", detail)
        self._event("reorg", detail)
        self.ledger.resync_nonce()
        return True

    def _repair_nonce_gap(self) -> bool:
        """L4, when the first waiting anchor's nonce is above the account's next nonce on two
        checks in a row (once, a transaction may be on its way into the pool)."""
        waiting = self.store.batches_in(IN_FLIGHT)
        nonces = [b.nonce for b in waiting if b.nonce is not None]
        if not nonces:
            self._gap_seen = None
            return False
        low = min(nonces)
        latest = self.ledger.transaction_count(self.gateway, "latest")
        pending = self.ledger.transaction_count(self.gateway, "pending")
        if not (pending == latest < low) or self._gap_seen != (latest, low):
            self._gap_seen = (latest, low) if pending == latest < low else None
            return False
        self._gap_seen = None
        fees = _bumped(self.ledger.current_fees(), _max_fees(b.raw_tx for b in waiting if b.raw_tx))
        for i, b in enumerate(waiting):
            self._signed(b.number, "resign", self.ledger.sign_anchor(
                b.number, b.prev_header_hash, b.root, b.tree_size, b.first_time, b.last_time, nonce=latest + i,
                fees=fees, tree_alg=b.tree_alg))
        # the old anchors above the new range still wait in the node's pool: replace each
        # with an empty transfer, or it would run later and revert (gas for nothing)
        for nonce in sorted(set(n for n in nonces if n >= latest + len(waiting))):
            self.ledger.send(self.ledger.sign_cancel(nonce, fees))
        self.ledger.resync_nonce()
        self.counters["nonce_gaps_repaired"] += 1
        detail = ("nonce gap: the account's next nonce is %d but the first waiting anchor had nonce %d; %d anchors "
                  "signed again from nonce %d" % (latest, low, len(waiting), latest))
        log.warning("%s", detail)
        self._event("nonce_gap", detail)
        return True

    # -- sending and following ---------------------------------------------------------------

    def _send_ready(self) -> bool:
        moved = False
        in_flight = len(self.store.batches_in(IN_FLIGHT))
        for b in self.store.batches_in((BUILT, SIGNED)):
            if b.state == BUILT:
                if in_flight >= self.max_in_flight:
                    break
                prepared = self.ledger.sign_anchor(b.number, b.prev_header_hash, b.root, b.tree_size, b.first_time,
                                                   b.last_time, tree_alg=b.tree_alg)
                self._signed(b.number, "sign", prepared)
                in_flight += 1
            else:
                prepared = self._restore(b)
                self.counters["resends"] += 1
            try:
                self.ledger.send(prepared)
            except NonceConflict:
                self._nonce_taken(b.number)
                return True
            self._move(b.number, "send")
            moved = True
        return moved

    def _nonce_taken(self, number: int) -> None:
        self.counters["nonce_conflicts"] += 1
        self._next_check = 0.0  # another user of the key? look at the head next step
        chain_last, _ = self.ledger.last_batch(self.gateway)
        if chain_last >= number:
            self.reconciled = False  # it is anchored after all: look it up (L9)
        else:
            self._move(number, "nonce_taken", raw_tx=None, tx_hash=None, nonce=None)

    def _restore(self, b: Batch) -> PreparedTx:
        """The very transaction stored for ``b`` (signing is deterministic)."""
        saved = json.loads(bytes(b.raw_tx or b"{}").decode())
        return self.ledger.sign_anchor(b.number, b.prev_header_hash, b.root, b.tree_size, b.first_time, b.last_time,
                                       nonce=saved["nonce"], fees=saved["fees"], tree_alg=b.tree_alg)

    def _follow_receipts(self) -> bool:
        moved = False
        for b in self.store.batches_in((SENT, MINED)):
            receipt = self.ledger.receipt(bytes(b.tx_hash or b""))
            if receipt is None:
                # reorged away, or the node lost it from its pool (a restart): send it again
                if b.state == MINED or not self.ledger.transaction_known(bytes(b.tx_hash or b"")):
                    self._move(b.number, "lost")
                    moved = True
                continue
            if receipt["status"] != 1:
                self._reverted(b.number)
                moved = True
                continue
            moved |= self._mined(b, receipt)
        return moved

    def _reverted(self, number: int) -> None:
        self.counters["anchors_reverted"] += 1
        self._next_check = 0.0
        chain_last, _ = self.ledger.last_batch(self.gateway)
        if chain_last >= number:
            self.reconciled = False
        else:
            log.error("anchor of batch %d reverted; re-signing it", number)
            self._move(number, "reverted", raw_tx=None, tx_hash=None, nonce=None)

    def _mined(self, b: Batch, receipt: Any) -> bool:
        moved = False
        if b.state == SENT:
            self._move(b.number, "mined", block_number=receipt["blockNumber"], block_hash=bytes(receipt["blockHash"]))
            moved = True
        if self.ledger.confirmations(receipt) >= self.confirmations:
            self._move(b.number, "confirmed", anchored_at=self.clock(), block_number=receipt["blockNumber"],
                       block_hash=bytes(receipt["blockHash"]))
            self.counters["batches_anchored"] += 1
            log.info("batch %d anchored in block %d", b.number, receipt["blockNumber"])
            moved = True
        return moved

    def _follow_finality(self) -> bool:
        """Anchored batches whose block is ``finality`` deep: final if the block is still the
        canonical one (L11); if a shallow reorg moved the transaction, the new block is
        recorded and the batch waits again (L12); if it is gone, back to mined (L13)."""
        waiting = self.store.unfinal_batches(ANCHORED)
        if not waiting:
            return False
        latest = self.ledger.block_number()
        moved = False
        for b in waiting:
            assert b.block_number is not None  # set by L6
            if latest - b.block_number + 1 < self.finality:
                break
            moved = True
            if self.ledger.block_hash(b.block_number) == b.block_hash:
                self._move(b.number, "final", final_at=self.clock())
                self.counters["batches_final"] += 1
                continue
            receipt = self.ledger.receipt(bytes(b.tx_hash or b""))
            if receipt is None or receipt["status"] != 1:
                self._move(b.number, "dropped")  # _follow_receipts and the head check take it from here
            else:
                log.warning("batch %d moved from block %d to block %d (a shallow reorg)", b.number, b.block_number,
                            receipt["blockNumber"])
                self._move(b.number, "moved", block_number=receipt["blockNumber"],
                           block_hash=bytes(receipt["blockHash"]))
        return moved

    # -- queries ---------------------------------------------------------------------------

    def anchored_messages(self) -> int:
        """Messages in anchored batches."""
        return self.store.messages_in_batches(ANCHORED)


def _max_fees(raws: Iterable[bytes]) -> dict[str, int]:
    """{fee field: highest value} over persisted PreparedTx dicts."""
    out: dict[str, int] = {}
    for raw in raws:
        for k, v in (json.loads(bytes(raw).decode()).get("fees") or {}).items():
            if k != "type":
                out[k] = max(out.get(k, 0), v)
    return out


def _bumped(fees: dict[str, int], old: dict[str, int]) -> dict[str, int]:
    """``fees`` raised so that each field is at least REPLACEMENT_FEE_BUMP x the same field
    of ``old`` (what a node needs to replace a pooled transaction of the same nonce)."""
    out = dict(fees)
    for k, v in old.items():
        if k in out:
            out[k] = max(out[k], int(math.ceil(v * REPLACEMENT_FEE_BUMP)) + 1)
    if out.get("maxPriorityFeePerGas", 0) > out.get("maxFeePerGas", 0) and "maxFeePerGas" in out:
        out["maxFeePerGas"] = out["maxPriorityFeePerGas"]
    return out

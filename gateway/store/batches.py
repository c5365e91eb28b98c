"""Merkle batches (``batches``): their headers, stored trees and lifecycle state.

The state column holds the batch lifecycle's states (anchor/lifecycle.py, the one table of
its transitions); the store names none of them itself: callers pass the states a query or
an update is about, and ``move_batch`` changes a state only from the ones a transition
allows.
"""
from collections.abc import Iterable, Sequence
from typing import Any

from edgeledger.gateway.errors import StoreError
from edgeledger.gateway.store.base import StoreBase
from edgeledger.gateway.store.rows import Batch, BatchSummary, LastBatch

HASH_SIZE = 32  # SHA-256 or SM3 (the batch's tree_alg): every node of a stored tree
_BATCH_COLUMNS = ("number, first_id, last_id, tree_size, root, prev_header_hash, header_hash, first_time, last_time,"
                  " created_at, state, nonce, raw_tx, tx_hash, block_number, block_hash, anchored_at, final_at,"
                  " reanchors, tree_alg")
_NEW_BATCH_COLUMNS = 11  # number .. state: what a batch has when it is closed
# Columns ``move_batch`` may set besides the state.
_SETTABLE = frozenset(("nonce", "raw_tx", "tx_hash", "block_number", "block_hash", "anchored_at", "final_at"))


class BatchStateError(StoreError):
    """A batch was not in a state the transition starts from (a batcher bug: the row is left
    as it was)."""


class PackedTree:
    """A batch's stored tree (``batches.tree``): every level, leaves first and the root last,
    32-byte hashes end to end. Reads as a sequence of levels (``len``, ``[k]``, each level
    a sequence of hashes), which is what ``protocols.merkle.path_from_levels`` takes, without
    copying the blob."""

    def __init__(self, blob: bytes, size: int) -> None:
        self._blob = bytes(blob)
        self._levels: list[tuple[int, int]] = []  # (offset, count) per level
        offset, n = 0, size
        while True:
            self._levels.append((offset, n))
            if n <= 1:
                break
            offset += HASH_SIZE * n
            n = (n + 1) // 2
        if offset + HASH_SIZE * n != len(self._blob):
            raise StoreError("a stored tree of %d leaves must hold %d bytes, found %d"
                             % (size, offset + HASH_SIZE * n, len(self._blob)))

    @staticmethod
    def pack(levels: Sequence[Sequence[bytes]]) -> bytes:
        """The blob of ``levels`` (``protocols.merkle.levels``' output)."""
        return b"".join(b"".join(level) for level in levels)

    def __len__(self) -> int:
        return len(self._levels)

    def __getitem__(self, k: int) -> "_Level":
        offset, count = self._levels[k]
        return _Level(self._blob, offset, count)


class _Level:
    """One level of a PackedTree: ``count`` hashes from ``offset``."""

    def __init__(self, blob: bytes, offset: int, count: int) -> None:
        self._blob, self._offset, self._count = blob, offset, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> bytes:
        if not 0 <= i < self._count:
            raise IndexError("node %d of a level of %d" % (i, self._count))
        start = self._offset + HASH_SIZE * i
        return self._blob[start:start + HASH_SIZE]


class Batches(StoreBase):
    def insert_batch(self, batch: Batch, tree: bytes) -> None:
        """Record a closed batch (in its first lifecycle state) and its ``tree`` (PackedTree.pack).
        Raises StoreError."""
        columns = ", ".join(_BATCH_COLUMNS.split(", ")[:_NEW_BATCH_COLUMNS])
        self.write("closing batch %d" % batch.number,
                   "INSERT INTO batches (%s, tree, tree_alg) VALUES (%s)"
                   % (columns, ",".join("?" * (_NEW_BATCH_COLUMNS + 2))),
                   tuple(batch)[:_NEW_BATCH_COLUMNS] + (tree, batch.tree_alg))

    def last_batch(self) -> LastBatch | None:
        row = self.db.execute("SELECT number, last_id, header_hash FROM batches ORDER BY number DESC LIMIT 1"
                              ).fetchone()
        return LastBatch(row[0], row[1], bytes(row[2])) if row else None

    def batch(self, number: int) -> Batch | None:
        row = self.db.execute("SELECT %s FROM batches WHERE number=?" % _BATCH_COLUMNS, (number,)).fetchone()
        return _batch(row) if row else None

    def batch_of_message(self, msg_id: int) -> Batch | None:
        """The batch holding message ``msg_id``, or None (not batched yet)."""
        row = self.db.execute("SELECT %s FROM batches WHERE first_id <= ? AND last_id >= ?" % _BATCH_COLUMNS,
                              (msg_id, msg_id)).fetchone()
        return _batch(row) if row else None

    def batch_tree(self, number: int) -> PackedTree | None:
        """The stored tree of batch ``number`` (every level), or None."""
        row = self.db.execute("SELECT tree, tree_size FROM batches WHERE number=?", (number,)).fetchone()
        return PackedTree(row[0], row[1]) if row else None

    def batches_in(self, states: Iterable[str]) -> list[Batch]:
        """The batches in any of ``states``, by number."""
        states = tuple(states)
        return [_batch(r) for r in self.db.execute(
            "SELECT %s FROM batches WHERE state IN (%s) ORDER BY number"
            % (_BATCH_COLUMNS, ",".join("?" * len(states))), states)]

    def newest_batch_in(self, state: str) -> Batch | None:
        """The highest-numbered batch in ``state``, or None."""
        row = self.db.execute("SELECT %s FROM batches WHERE state=? ORDER BY number DESC LIMIT 1" % _BATCH_COLUMNS,
                              (state,)).fetchone()
        return _batch(row) if row else None

    def batches_above(self, number: int, states: Iterable[str]) -> list[Batch]:
        """The batches after ``number`` in any of ``states``, by number."""
        states = tuple(states)
        return [_batch(r) for r in self.db.execute(
            "SELECT %s FROM batches WHERE number > ? AND state IN (%s) ORDER BY number"
            % (_BATCH_COLUMNS, ",".join("?" * len(states))), (number,) + states)]

    def unfinal_batches(self, state: str) -> list[Batch]:
        """The batches in ``state`` whose ``final_at`` is not set, by number."""
        return [_batch(r) for r in self.db.execute(
            "SELECT %s FROM batches WHERE state=? AND final_at IS NULL ORDER BY number" % _BATCH_COLUMNS, (state,))]

    def count_batches(self, exclude: Iterable[str] = ()) -> int:
        """How many batches there are, not counting those in the states ``exclude``."""
        exclude = tuple(exclude)
        if not exclude:
            return int(self._one("SELECT COUNT(*) FROM batches"))
        return int(self._one("SELECT COUNT(*) FROM batches WHERE state NOT IN (%s)" % ",".join("?" * len(exclude)),
                             exclude))

    def messages_in_batches(self, state: str) -> int:
        """How many messages the batches in ``state`` hold."""
        return int(self._one("SELECT COALESCE(SUM(tree_size), 0) FROM batches WHERE state=?", (state,)))

    def device_messages_in_batches(self, device: str, state: str) -> int:
        """How many of ``device``'s messages are in batches in ``state``."""
        return int(self._one(
            "SELECT COUNT(*) FROM messages m JOIN batches b ON m.id BETWEEN b.first_id AND b.last_id"
            " WHERE b.state=? AND m.device=?", (state, device)))

    def reading_latencies(self) -> list[float]:
        """For every batched message: its batch's ``anchored_at`` minus its first record time
        (None where the batch is not anchored yet is left out), sorted."""
        return sorted(r[0] for r in self.db.execute(
            "SELECT b.anchored_at - m.t_first FROM messages m JOIN batches b ON m.id BETWEEN b.first_id AND b.last_id"
            " WHERE b.anchored_at IS NOT NULL"))

    def batch_summary(self) -> BatchSummary:
        """How many batches, by state, and how many are final."""
        by_state = dict(self.db.execute("SELECT state, COUNT(*) FROM batches GROUP BY state"))
        final = int(self._one("SELECT COUNT(*) FROM batches WHERE final_at IS NOT NULL"))
        return BatchSummary(sum(by_state.values()), by_state, final)

    def move_batch(self, number: int, sources: Iterable[str], target: str, **fields: Any) -> None:
        """Set batch ``number``'s state to ``target`` (and ``fields``), only if it is in one of
        ``sources``. Raises BatchStateError if it is not, StoreError if the write fails."""
        unknown = set(fields) - _SETTABLE
        if unknown:
            raise ValueError("move_batch: %s cannot be set" % ", ".join(sorted(unknown)))
        sources = tuple(sources)
        cols = "".join(", %s=?" % k for k in fields)
        cur = self.write("updating batch %d" % number,
                         "UPDATE batches SET state=?%s WHERE number=? AND state IN (%s)"
                         % (cols, ",".join("?" * len(sources))),
                         (target,) + tuple(fields.values()) + (number,) + sources)
        if cur.rowcount != 1:
            raise BatchStateError("batch %d: expected it in state %s to move to %s, found %s"
                                  % (number, " or ".join(sources), target,
                                     self._one("SELECT state FROM batches WHERE number=?", (number,)) or "no batch"))

    def take_back_batches(self, above: int, sources: Iterable[str], target: str) -> int:
        """Move every batch after ``above`` that is in one of ``sources`` back to ``target``,
        clearing ``anchored_at`` and ``final_at`` and counting one more re-anchoring. Returns
        how many moved. Raises StoreError."""
        sources = tuple(sources)
        with self.transaction("taking back the batches after %d" % above):
            cur = self.db.execute("UPDATE batches SET state=?, anchored_at=NULL, final_at=NULL, reanchors=reanchors+1"
                                  " WHERE number > ? AND state IN (%s)" % ",".join("?" * len(sources)),
                                  (target, above) + sources)
        return cur.rowcount

    def delete_batches(self) -> int:
        """Forget every batch (the embedded chain was re-created: they are anchored again).
        Returns how many there were. Raises StoreError."""
        with self.transaction("deleting the batches of a chain that is gone"):
            return self.db.execute("DELETE FROM batches").rowcount


def _batch(row: tuple) -> Batch:
    r = list(row)
    for i in (4, 5, 6, 12, 13, 15):  # root, prev, header hash, raw_tx, tx_hash, block_hash
        if r[i] is not None:
            r[i] = bytes(r[i])
    return Batch(*r)

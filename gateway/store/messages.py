"""Accepted messages (``messages``): stored exactly as received, in commit order."""
from collections.abc import Iterable

from edgeledger.gateway.store.base import StoreBase
from edgeledger.gateway.store.rows import BatchMessage, Link, MessageRow, StoredMessage, StoredReading


class Messages(StoreBase):
    def insert_messages(self, rows: Iterable[MessageRow]) -> None:
        """Stage accepted messages, inside the caller's transaction; each gets the next id."""
        self.db.executemany(
            "INSERT INTO messages (device, seq, prev, digest, epoch, kid, t_first, t_last,"
            " received_at, bytes) VALUES (?,?,?,?,?,?,?,?,?,?)", [tuple(r) for r in rows])

    def message_link(self, device: str, seq: int) -> Link | None:
        """The Link (digest, prev) of a stored message, or None."""
        row = self.db.execute("SELECT digest, prev FROM messages WHERE device=? AND seq=?", (device, seq)).fetchone()
        return Link(row[0], row[1]) if row else None

    def message(self, device: str, seq: int) -> StoredMessage | None:
        """The stored message (id, bytes) of ``device`` at ``seq``, or None."""
        row = self.db.execute("SELECT id, bytes FROM messages WHERE device=? AND seq=?", (device, seq)).fetchone()
        return StoredMessage(row[0], bytes(row[1])) if row else None

    def last_seq_signed_by(self, device: str, kid: bytes) -> int | None:
        """The highest seq stored from ``device`` under key ``kid``, or None. Walks the (device,
        seq) index from the top, so it stops at the key's last message."""
        return self._one("SELECT seq FROM messages WHERE device=? AND kid=? ORDER BY seq DESC LIMIT 1",
                         (device, bytes(kid)))

    def count_messages(self, device: str | None = None) -> int:
        if device is None:
            return int(self._one("SELECT COUNT(*) FROM messages"))
        return int(self._one("SELECT COUNT(*) FROM messages WHERE device=?", (device,)))

    def message_places(self) -> list[tuple[int, str, int]]:
        """(id, device, seq) of every stored message, in commit order (benchmarks match what
        their load generators sent against it)."""
        return [(r[0], r[1], r[2]) for r in self.db.execute("SELECT id, device, seq FROM messages ORDER BY id")]

    def last_message_id(self) -> int:
        """The id of the newest stored message (0 for none): how many were ever stored."""
        return int(self._one("SELECT COALESCE(MAX(id), 0) FROM messages"))

    def seqs(self, device: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT seq FROM messages WHERE device=? ORDER BY seq", (device,))]

    def seq_counts(self, device: str, up_to: int) -> tuple[int, int]:
        """(rows, distinct seqs) stored from ``device`` with seq 1..``up_to``: a run that lost
        nothing and duplicated nothing has both equal to ``up_to``."""
        rows, distinct = self.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT seq) FROM messages WHERE device=? AND seq BETWEEN 1 AND ?",
            (device, up_to)).fetchone()
        return rows, distinct

    def next_stored_seq(self, device: str, after: int) -> int | None:
        """The lowest stored seq above ``after``, or None."""
        return self._one("SELECT MIN(seq) FROM messages WHERE device=? AND seq>?", (device, after))

    def unbatched(self, after_id: int, limit: int) -> tuple[int, float | None]:
        """(count, oldest receive time) of the first ``limit`` messages after id ``after_id``."""
        count, oldest = self.db.execute(
            "SELECT COUNT(*), MIN(received_at) FROM (SELECT received_at FROM messages WHERE id > ? ORDER BY id"
            " LIMIT ?)", (after_id, limit)).fetchone()
        return count, oldest

    def batch_messages(self, after_id: int, limit: int) -> list[BatchMessage]:
        """The first ``limit`` messages after id ``after_id``, in id order."""
        return [BatchMessage(r[0], bytes(r[1]), r[2], r[3]) for r in self.db.execute(
            "SELECT id, bytes, t_first, t_last FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))]

    def readings_between(self, t_from: float, t_to: float, device: str | None = None,
                         limit: int = 10000) -> list[StoredReading]:
        """Stored messages with a record time in [t_from, t_to] (of ``device``, or of every
        device), by first record time, at most ``limit``; each with its batch, if any."""
        where = "m.t_last >= ? AND m.t_first <= ?" + (" AND m.device = ?" if device is not None else "")
        params: tuple = (t_from, t_to) + ((device,) if device is not None else ()) + (limit,)
        rows = self.db.execute(
            "SELECT m.device, m.seq, m.t_first, m.t_last, m.bytes, b.number, b.state, b.block_number,"
            " b.final_at IS NOT NULL FROM messages m"
            " LEFT JOIN batches b ON m.id BETWEEN b.first_id AND b.last_id"
            " WHERE " + where + " ORDER BY m.t_first, m.device, m.seq LIMIT ?", params).fetchall()
        return [StoredReading(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], r[7], bool(r[8])) for r in rows]

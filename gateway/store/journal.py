"""What the gateway notes beside the evidence: counters, the ledger identity and anchoring
state (``ledger_meta``), events for ``gateway status`` and recorded chain gaps."""
import time
from collections.abc import Mapping

from edgeledger.gateway.store.base import StoreBase
from edgeledger.gateway.store.rows import ChainGap, Event

# Rows kept in ``events``: the oldest go when more are recorded (a month of a few
# events an hour).
MAX_EVENTS = 1000
_GAP_COLUMNS = "device, after_seq, resume_seq, kind, reason, recorded_at, accepted_at, accepted_by"


class Journal(StoreBase):
    # -- counters ---------------------------------------------------------------------------

    def save_counters(self, counters: Mapping[str, int]) -> None:
        """Set named counters, inside the caller's transaction."""
        self.db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value=excluded.value", list(counters.items()))

    def load_counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counters"))

    def add_counters(self, increments: Mapping[str, int]) -> None:
        """Add to named counters (written by a writer that does not own the whole set),
        inside the caller's transaction or on its own."""
        self.db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value=value+excluded.value", list(increments.items()))

    # -- ledger identity and anchoring state ------------------------------------------------

    def ledger_meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, value FROM ledger_meta"))

    def set_ledger_meta(self, values: Mapping[str, object]) -> None:
        """Set ledger_meta names. Raises StoreFull/StoreBusy/StoreError."""
        with self.transaction("saving the ledger identity"):
            self.db.executemany("INSERT INTO ledger_meta (name, value) VALUES (?, ?)"
                                " ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                                [(k, str(v)) for k, v in values.items()])

    def set_anchor_state(self, state: str, note: str) -> None:
        """What anchoring is doing, for ``gateway status``: state "ok", "unreachable" or
        "halted", and a sentence. Raises StoreFull/StoreBusy/StoreError."""
        self.set_ledger_meta({"anchor_state": state, "anchor_note": note, "anchor_state_at": "%.3f" % time.time()})

    # -- events -----------------------------------------------------------------------------

    def record_event(self, kind: str, detail: str, at: float | None = None) -> None:
        """Record something an operator should see in ``gateway status`` (kept: MAX_EVENTS).
        Raises StoreFull/StoreBusy/StoreError."""
        at = time.time() if at is None else at
        with self.transaction("recording a %s event" % kind):
            cur = self.db.execute("INSERT INTO events (at, kind, detail) VALUES (?,?,?)", (at, kind, detail))
            self.db.execute("DELETE FROM events WHERE id <= ?", ((cur.lastrowid or 0) - MAX_EVENTS,))

    def recent_events(self, limit: int = 20) -> list[Event]:
        """The last ``limit`` events, oldest first."""
        rows = self.db.execute("SELECT at, kind, detail FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Event(*r) for r in reversed(rows)]

    # -- chain gaps -------------------------------------------------------------------------

    def chain_gaps(self, device: str | None = None) -> list[ChainGap]:
        """Recorded gaps (all, or one device's), in order."""
        sql = "SELECT %s FROM chain_gaps" % _GAP_COLUMNS
        args: tuple[str, ...] = ()
        if device is not None:
            sql += " WHERE device=?"
            args = (device,)
        return [ChainGap(*r) for r in self.db.execute(sql + " ORDER BY device, resume_seq", args)]

    def insert_gap(self, gap: ChainGap) -> None:
        """Stage a gap, inside the caller's transaction (a gap recorded already is kept)."""
        self.db.execute("INSERT OR IGNORE INTO chain_gaps (%s) VALUES (?,?,?,?,?,?,?,?)" % _GAP_COLUMNS, tuple(gap))

    def accept_gap(self, device: str, resume_seq: int, by: str, at: float | None = None) -> bool:
        """Mark a recorded gap accepted. Returns True if one was waiting. Raises StoreError."""
        at = time.time() if at is None else at
        cur = self.write("accepting a chain gap",
                         "UPDATE chain_gaps SET accepted_at=?, accepted_by=? WHERE device=? AND resume_seq=?"
                         " AND accepted_at IS NULL", (at, by, device, resume_seq))
        return cur.rowcount > 0

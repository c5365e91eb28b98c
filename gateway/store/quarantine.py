"""Rejected messages (``quarantine``) and the per-device reject tally (``device_rejects``)."""
from collections.abc import Iterable

from edgeledger.gateway.store.base import StoreBase
from edgeledger.gateway.store.rows import DeviceRejects, QuarantineRow, QuarantineUsage


class Quarantine(StoreBase):
    def insert_quarantine(self, rows: Iterable[QuarantineRow]) -> None:
        """Stage quarantine rows, inside the caller's transaction."""
        self.db.executemany(
            "INSERT INTO quarantine (received_at, topic, reason, detail, device, seq, bytes)"
            " VALUES (?,?,?,?,?,?,?)", [tuple(r) for r in rows])

    def quarantine_reasons(self) -> dict[str, int]:
        """{reason: rows} of the quarantine."""
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason"))

    def count_quarantine(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM quarantine"))

    def quarantine_usage(self) -> list[QuarantineUsage]:
        """The rows and raw bytes of the quarantine, by topic (ingest/quarantine.py's bound)."""
        return [QuarantineUsage(*r) for r in self.db.execute(
            "SELECT topic, COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM quarantine GROUP BY topic")]

    def quarantined(self, reason: str | None = None) -> list[QuarantineRow]:
        """Every quarantine row (of one ``reason``), oldest first."""
        sql = "SELECT received_at, topic, reason, detail, device, seq, bytes FROM quarantine"
        args: tuple[str, ...] = ()
        if reason is not None:
            sql += " WHERE reason=?"
            args = (reason,)
        return [QuarantineRow(*r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def quarantined_seqs(self, device: str, first: int, last: int) -> dict[str, int]:
        """{reason: count} of quarantine rows of ``device`` with seq in first..last."""
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM quarantine WHERE device=? AND seq BETWEEN ? AND ?"
                                    " GROUP BY reason", (device, first, last)))

    def add_device_rejects(self, rows: Iterable[DeviceRejects]) -> None:
        """Add to the reject tallies, inside the caller's transaction: each row holds the
        increments (``last_at`` replaces the stored one when later)."""
        self.db.executemany(
            "INSERT INTO device_rejects (device, rejected, quarantined, dropped, last_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT(device) DO UPDATE SET rejected=rejected+excluded.rejected,"
            " quarantined=quarantined+excluded.quarantined, dropped=dropped+excluded.dropped,"
            " last_at=MAX(COALESCE(last_at, 0), excluded.last_at)", [tuple(r) for r in rows])

    def device_rejects(self, limit: int = 10) -> list[DeviceRejects]:
        """The ``limit`` devices with the most rejects, most first."""
        return [DeviceRejects(*r) for r in self.db.execute(
            "SELECT device, rejected, quarantined, dropped, last_at FROM device_rejects"
            " ORDER BY rejected DESC, device LIMIT ?", (limit,))]

    def rejected_since(self, since: float) -> list[str]:
        """Devices with a reject after ``since`` (device_rejects)."""
        return [r[0] for r in self.db.execute("SELECT device FROM device_rejects WHERE last_at > ?", (since,))]

"""Devices (``devices``: site, chain marks, last birth) and their keys (``device_keys``)."""
from collections.abc import Iterable

from edgeledger.gateway.store.base import StoreBase
from edgeledger.gateway.store.rows import DeviceListing, DeviceMarks, DeviceState, KeyBinding, KeyRow, Marks

_KEY_COLUMNS = ("kid, device, alg, public_key, valid_from, valid_until, revoked_at, revoked_after_seq, first_seq,"
                " chain_block, chain_time")


class Devices(StoreBase):
    # -- what changed -----------------------------------------------------------------------

    def data_version(self) -> int:
        """SQLite's data version of this connection: it changes when another connection
        commits (the operator CLI registering or revoking a key)."""
        return int(self._one("PRAGMA data_version"))

    # -- devices and chain marks ------------------------------------------------------------

    def devices(self) -> list[str]:
        """Every registered device id, sorted."""
        return [r[0] for r in self.db.execute("SELECT device FROM devices ORDER BY device")]

    def sites(self) -> dict[str, str]:
        """{device: site} of every registered device."""
        return dict(self.db.execute("SELECT device, site FROM devices"))

    def device_site(self, device: str) -> str | None:
        return self._one("SELECT site FROM devices WHERE device=?", (device,))

    def device_marks(self) -> dict[str, Marks]:
        """{device: Marks(contig, max_seq)} for every registered device."""
        return dict((r[0], Marks(r[1], r[2])) for r in self.db.execute("SELECT device, contig, max_seq FROM devices"))

    def marks_of(self, device: str) -> Marks | None:
        row = self.db.execute("SELECT contig, max_seq FROM devices WHERE device=?", (device,)).fetchone()
        return Marks(row[0], row[1]) if row else None

    def update_marks(self, marks: Iterable[DeviceMarks]) -> None:
        """Write chain marks, inside the caller's transaction. Marks only move forward: a
        stale writer can never move a device's marks back (MAX)."""
        self.db.executemany("UPDATE devices SET contig=MAX(contig, ?), max_seq=MAX(max_seq, ?) WHERE device=?",
                            [(m.contig, m.max_seq, m.device) for m in marks])

    def set_birth(self, device: str, payload: bytes | None, online: bool) -> None:
        """Record a birth (payload) or death (None). Raises StoreFull/StoreBusy/StoreError."""
        self.write("recording the birth of %s" % device,
                   "UPDATE devices SET last_birth=COALESCE(?, last_birth), online=? WHERE device=?",
                   (payload, 1 if online else 0, device))

    def session_of(self, device: str) -> tuple[bool, bytes | None] | None:
        """(online, last birth payload) of ``device``, or None if it is not registered."""
        row = self.db.execute("SELECT online, last_birth FROM devices WHERE device=?", (device,)).fetchone()
        return (bool(row[0]), None if row[1] is None else bytes(row[1])) if row else None

    def device_states(self) -> list[DeviceState]:
        """Every registered device with its marks, session and newest arrival, by device (the
        newest message is found through the (device, seq) index, not by a scan)."""
        return [DeviceState(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in self.db.execute(
            "SELECT d.device, d.site, d.contig, d.max_seq, d.online,"
            " (SELECT m.received_at FROM messages m WHERE m.device = d.device ORDER BY m.seq DESC LIMIT 1)"
            " FROM devices d ORDER BY d.device")]

    def device_listing(self) -> list[DeviceListing]:
        """Every device with each of its keys (a device without keys once), by device."""
        return [DeviceListing(r[0], r[1], r[2], r[3], bool(r[4]), None if r[5] is None else bytes(r[5]), r[6], r[7])
                for r in self.db.execute(
                    "SELECT d.device, d.site, d.contig, d.max_seq, d.online, k.kid, k.alg, k.revoked_at"
                    " FROM devices d LEFT JOIN device_keys k ON k.device = d.device ORDER BY d.device")]

    def revoked_devices(self, now: float) -> dict[str, float]:
        """{device: time of its latest revocation} for the devices every key of which is
        revoked at or before ``now``."""
        return dict(self.db.execute(
            "SELECT device, MAX(revoked_at) FROM device_keys GROUP BY device"
            " HAVING SUM(revoked_at IS NULL OR revoked_at > ?) = 0", (now,)))

    # -- keys -------------------------------------------------------------------------------

    def keys(self) -> list[KeyRow]:
        """Every registered key."""
        return [KeyRow(bytes(r[0]), r[1], r[2], bytes(r[3]), *r[4:])
                for r in self.db.execute("SELECT %s FROM device_keys" % _KEY_COLUMNS)]

    def add_keys(self, site: str, keys: list[KeyRow], added_at: float) -> None:
        """Register ``keys`` (and their devices on ``site`` where new) in one transaction.
        The caller checks the devices' sites first. Raises StoreError."""
        with self.transaction("registering %d key(s) of site %s" % (len(keys), site)):
            self.db.executemany("INSERT OR IGNORE INTO devices (device, site, added_at) VALUES (?,?,?)",
                                [(key.device, site, added_at) for key in keys])
            self.db.executemany("INSERT INTO device_keys (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?)" % _KEY_COLUMNS,
                                [tuple(key) for key in keys])

    def revoke_keys(self, device: str, at: float, last_seq: int, kid: bytes | None = None) -> int:
        """Revoke ``device``'s unrevoked keys (or the one ``kid``) from time ``at``, their last
        seq at most ``last_seq``. Returns how many. Raises StoreError."""
        sql = ("UPDATE device_keys SET revoked_at=?, revoked_after_seq=CASE WHEN revoked_after_seq IS NULL OR"
               " revoked_after_seq > ? THEN ? ELSE revoked_after_seq END WHERE device=? AND revoked_at IS NULL")
        args: list[object] = [at, last_seq, last_seq, device]
        if kid is not None:
            sql += " AND kid=?"
            args.append(bytes(kid))
        return self.write("revoking the keys of %s" % device, sql, args).rowcount

    def expire_key(self, kid: bytes, until: float) -> None:
        """End a key's validity at ``until`` (a rotation's overlap); never later than it is."""
        self.write("ending the validity of key %s" % bytes(kid).hex(),
                   "UPDATE device_keys SET valid_until=? WHERE kid=? AND (valid_until IS NULL OR valid_until > ?)",
                   (until, bytes(kid), until))

    def seal_key(self, kid: bytes, last_seq: int) -> bool:
        """Close a key's sequence window at ``last_seq`` (its own transaction); never later than
        it is. Returns True if it changed."""
        cur = self.write("sealing key %s" % bytes(kid).hex(),
                         "UPDATE device_keys SET revoked_after_seq=? WHERE kid=? AND"
                         " (revoked_after_seq IS NULL OR revoked_after_seq > ?)",
                         (int(last_seq), bytes(kid), int(last_seq)))
        return cur.rowcount > 0

    def seal_keys(self, seals: Iterable[tuple[bytes, int]]) -> None:
        """Close rotated-out keys' sequence windows: ``seals`` of (kid, last seq), inside the
        caller's transaction; a window only ever closes earlier."""
        self.db.executemany(
            "UPDATE device_keys SET revoked_after_seq=? WHERE kid=? AND (revoked_after_seq IS NULL OR"
            " revoked_after_seq > ?)", [(int(last), bytes(kid), int(last)) for kid, last in seals])

    def record_chain_registration(self, kid: bytes, block_number: int, timestamp: int, first_seq: int) -> None:
        """Note the key's registration on the gateway's chain: a key registered on chain for the
        first time takes the chain's window start (``valid_from`` = block time, ``first_seq``);
        one registered again (on a new embedded chain) keeps its start."""
        self.write("recording the chain registration of key %s" % bytes(kid).hex(),
                   "UPDATE device_keys SET"
                   " valid_from = CASE WHEN chain_block IS NULL THEN ? ELSE valid_from END,"
                   " first_seq = CASE WHEN chain_block IS NULL THEN ? ELSE first_seq END,"
                   " chain_block=?, chain_time=? WHERE kid=?",
                   (timestamp, int(first_seq), int(block_number), int(timestamp), bytes(kid)))

    def key_binding(self, kid: bytes) -> KeyBinding | None:
        """What a proof bundle says of key ``kid``: algorithm, public key, the device's site and
        the key's registration on chain; None if the key is not registered."""
        row = self.db.execute(
            "SELECT k.alg, k.public_key, d.site, k.chain_block, k.chain_time, k.first_seq FROM device_keys k"
            " JOIN devices d ON d.device = k.device WHERE k.kid=?", (bytes(kid),)).fetchone()
        return KeyBinding(row[0], bytes(row[1]), *row[2:]) if row else None

"""The device registry: which key may speak for which device, and since when.

A device has one or more keys (rotation keeps an overlap window). Each key has a
validity window ``[valid_from, valid_until)`` and may be revoked: a revoked key
rejects every message whose records are timed at or after ``revoked_at``, and
every message with a seq above ``revoked_after_seq`` (the device's contiguous
mark when it was revoked), so a leaked key can neither speak for the future nor
backdate new messages.
"""
import time

from edgeledger.gateway import signatures
from edgeledger.gateway.errors import RegistryError
from edgeledger.protocols import topics
from edgeledger.protocols.cose import ALGORITHMS


class Key:
    __slots__ = ("kid", "device", "alg", "public_key", "valid_from", "valid_until",
                 "revoked_at", "revoked_after_seq")

    def __init__(self, kid, device, alg, public_key, valid_from, valid_until=None,
                 revoked_at=None, revoked_after_seq=None):
        self.kid = bytes(kid)
        self.device = device
        self.alg = alg
        self.public_key = bytes(public_key)
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.revoked_at = revoked_at
        self.revoked_after_seq = revoked_after_seq

    def refusal(self, seq, t_first, t_last):
        """None if the key may sign this message, else why not (a sentence)."""
        if self.revoked_at is not None:
            if t_last >= self.revoked_at:
                return "key %s revoked at %s, message timed %s" % (self.kid.hex(), self.revoked_at, t_last)
            if self.revoked_after_seq is not None and seq > self.revoked_after_seq:
                return "key %s revoked after seq %d, message has seq %d" % (
                    self.kid.hex(), self.revoked_after_seq, seq)
        if self.valid_until is not None and t_last >= self.valid_until:
            return "key %s valid until %s, message timed %s" % (self.kid.hex(), self.valid_until, t_last)
        return None


_COLUMNS = "kid, device, alg, public_key, valid_from, valid_until, revoked_at, revoked_after_seq"


class Registry:
    """Keys by kid, cached in memory; changes go to the store first."""

    def __init__(self, store):
        self.store = store
        self._keys = {}
        self._data_version = None
        self._sites = {}
        self.reload()

    def reload_if_changed(self):
        """Reload when another connection (the operator CLI) committed since the last look.
        Returns True if it reloaded."""
        version = self.store.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self.reload()
            return True
        return False

    def reload(self):
        self._data_version = self.store.db.execute("PRAGMA data_version").fetchone()[0]
        rows = self.store.db.execute("SELECT %s FROM device_keys" % _COLUMNS).fetchall()
        self._keys = dict((bytes(r[0]), Key(*r)) for r in rows)
        self._sites = dict(self.store.db.execute("SELECT device, site FROM devices"))

    def key(self, kid):
        return self._keys.get(bytes(kid))

    def keys_of(self, device):
        return [k for k in self._keys.values() if k.device == device]

    def devices(self):
        return [r[0] for r in self.store.db.execute("SELECT device FROM devices ORDER BY device")]

    def site_of(self, device):
        return self._sites.get(device)

    def register(self, device, site, alg, public_key, kid, valid_from=None):
        """Add a device (if new) and a key. Raises RegistryError on conflicts and for a key
        that is not a valid point of its curve, or of an algorithm no installed library
        verifies (signatures.check_public_key): such a key would verify nothing, or, of
        small order, too much. TopicError for a bad id."""
        topics.check_id(device, "device id")
        topics.check_id(site, "site")
        if alg not in ALGORITHMS:
            raise RegistryError("unsupported algorithm %r; supported: %s" % (alg, sorted(ALGORITHMS)))
        if len(public_key) != ALGORITHMS[alg]["pub_len"]:
            raise RegistryError("%s public key must be %d bytes, got %d" % (
                ALGORITHMS[alg]["name"], ALGORITHMS[alg]["pub_len"], len(public_key)))
        try:
            signatures.check_public_key(alg, public_key)
        except ValueError as e:
            raise RegistryError("%s key for %r refused: %s" % (ALGORITHMS[alg]["name"], device, e))
        existing = self.key(kid)
        if existing is not None:
            if existing.device != device or existing.public_key != bytes(public_key):
                raise RegistryError("kid %s is already registered for device %r" % (kid.hex(), existing.device))
            return existing
        now = time.time()
        db = self.store.db
        with self.store.lock:
            row = db.execute("SELECT site FROM devices WHERE device=?", (device,)).fetchone()
            if row and row[0] != site:
                raise RegistryError("device %r is registered on site %r, not %r" % (device, row[0], site))
            db.execute("BEGIN IMMEDIATE")
            try:
                if not row:
                    db.execute("INSERT INTO devices (device, site, added_at) VALUES (?,?,?)",
                               (device, site, now))
                db.execute("INSERT INTO device_keys (kid, device, alg, public_key, valid_from)"
                           " VALUES (?,?,?,?,?)", (bytes(kid), device, alg, bytes(public_key),
                                                   valid_from if valid_from is not None else now))
                db.execute("COMMIT")
            except Exception:
                db.execute("ROLLBACK")
                raise
        self.reload()
        return self.key(kid)

    def revoke(self, device, at=None, kid=None):
        """Revoke a device's key(s) from time ``at`` (default now). Returns the count revoked."""
        at = time.time() if at is None else at
        db = self.store.db
        row = db.execute("SELECT contig FROM devices WHERE device=?", (device,)).fetchone()
        if row is None:
            raise RegistryError("unknown device %r" % (device,))
        args = [at, row[0], device]
        sql = "UPDATE device_keys SET revoked_at=?, revoked_after_seq=? WHERE device=? AND revoked_at IS NULL"
        if kid is not None:
            sql += " AND kid=?"
            args.append(bytes(kid))
        with self.store.lock:
            n = db.execute(sql, args).rowcount
        self.reload()
        return n

    def expire(self, kid, until):
        """End a key's validity at ``until`` (rotation overlap)."""
        with self.store.lock:
            self.store.db.execute("UPDATE device_keys SET valid_until=? WHERE kid=?", (until, bytes(kid)))
        self.reload()

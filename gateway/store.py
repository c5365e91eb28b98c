"""The gateway store: one SQLite database in WAL mode.

Tables
------
``devices``      one row per device: site, chain marks (``contig``: every seq up to it
                 is stored; ``max_seq``), last birth, online flag.
``device_keys``  registered keys by kid: algorithm, public key, window (``valid_from``,
                 ``first_seq``, ``valid_until``, ``revoked_at``, ``revoked_after_seq``: the
                 last seq it may sign) and its registration on chain (``chain_block``,
                 ``chain_time``).
``messages``     every accepted message exactly as received (``bytes``), with its
                 seq, prev and digest. ``id`` grows by one per message in commit
                 order; a batch is a contiguous range of ids.
``quarantine``   every rejected message: raw bytes, topic, typed reason, detail.
``counters``     named counters, written with the commits.
``device_rejects`` per device (the topic's): messages rejected, rows quarantined, rejects
                 only counted (past the quarantine bounds), time of the last one.
``batches``      Merkle batches and their anchoring state (see batcher.py).
``ledger_meta``  which chain, contract and gateway account the batches are anchored with,
                 and the anchoring state operators see (``anchor_state``, ``anchor_note``).
``chain_gaps``   recorded breaks in a device's chain: a restart the device declared, or
                 a gap an operator accepted (pipeline.py, ``edgeledger device accept-gap``).
``events``       what happened, for ``gateway status``: store full and writable again,
                 reorgs, re-anchored batches, threads and workers restarted, ... (bounded).

The store never re-encodes a message: the bytes that were signed are the
evidence. Writes happen in explicit transactions that the caller commits in
groups. ``synchronous=FULL`` (the default; ``durability = "power_loss"`` in
gateway.toml) fsyncs the WAL at every commit, so a commit, and the end-to-end
ack sent after it, survives a power cut; one fsync per group of messages.
``NORMAL`` (``durability = "process_crash_only"``) survives a process crash
only: a power cut can lose commits that were already acknowledged.

SQLite errors are translated where they leave this module (``store_error``):
``StoreFull`` (the disk is full), ``StoreBusy`` (the database stayed locked past
the busy timeout), ``StoreError`` for the rest; a failed transaction is rolled
back first, quietly, so the cause is never hidden by a second error.
"""
import contextlib
import os
import sqlite3
import threading
import time
from typing import Dict, NamedTuple, Optional

from edgeledger.gateway.errors import StoreBusy, StoreError, StoreFull

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    added_at REAL NOT NULL,
    contig INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0,
    last_birth BLOB,
    online INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS device_keys (
    kid BLOB PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices(device),
    alg INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    valid_from REAL NOT NULL,
    valid_until REAL,
    revoked_at REAL,
    revoked_after_seq INTEGER,
    first_seq INTEGER NOT NULL DEFAULT 1,
    chain_block INTEGER,
    chain_time INTEGER
);
CREATE INDEX IF NOT EXISTS device_keys_device ON device_keys(device);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    prev BLOB NOT NULL,
    digest BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    kid BLOB NOT NULL,
    t_first REAL NOT NULL,
    t_last REAL NOT NULL,
    received_at REAL NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (device, seq)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    device TEXT,
    seq INTEGER,
    bytes BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine(reason);
CREATE TABLE IF NOT EXISTS device_rejects (
    device TEXT PRIMARY KEY,
    rejected INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    last_at REAL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_gaps (
    device TEXT NOT NULL,
    after_seq INTEGER NOT NULL,
    resume_seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    accepted_at REAL,
    accepted_by TEXT,
    PRIMARY KEY (device, resume_seq)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    number INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    tree_size INTEGER NOT NULL,
    root BLOB NOT NULL,
    prev_header_hash BLOB NOT NULL,
    header_hash BLOB NOT NULL,
    first_time INTEGER NOT NULL,
    last_time INTEGER NOT NULL,
    tree BLOB NOT NULL,
    state TEXT NOT NULL,
    nonce INTEGER,
    raw_tx BLOB,
    tx_hash BLOB,
    block_number INTEGER,
    block_hash BLOB,
    created_at REAL NOT NULL,
    anchored_at REAL,
    final_at REAL,
    reanchors INTEGER NOT NULL DEFAULT 0
);
"""

# synchronous pragma per ``durability`` (gateway.toml): what a commit survives.
DURABILITY = {"power_loss": "FULL", "process_crash_only": "NORMAL"}
DEFAULT_SYNCHRONOUS = DURABILITY["power_loss"]
# How long a writer waits for another connection's write lock before StoreBusy: the
# batcher and the operator CLI hold it for milliseconds; 30 s covers a checkpoint of a
# large WAL on a slow SD card.
BUSY_TIMEOUT_S = 30.0
# Rows kept in ``events``: the oldest go when more are recorded (a month of a few
# events an hour).
MAX_EVENTS = 1000

# SQLite primary result codes (sqlite3.h): the low byte of an extended code.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13


class DeviceRejects(NamedTuple):
    """One device's reject tally (``device_rejects`` table)."""

    device: str
    rejected: int
    quarantined: int
    dropped: int
    last_at: float | None


def store_error(e, doing):
    """The StoreError for a sqlite3 error met while ``doing`` something (a phrase)."""
    code = getattr(e, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = "%s: %s" % (doing, e)
    if primary == _SQLITE_FULL or "disk is full" in str(e):
        return StoreFull("the disk holding the gateway store is full while %s" % text)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in str(e):
        return StoreBusy("the gateway store stayed locked by another connection while %s" % text)
    return StoreError("gateway store error while %s" % text)


def connect(path, synchronous=DEFAULT_SYNCHRONOUS):
    """Open (and create) the store. Raises StoreError if it cannot be opened."""
    if synchronous not in ("NORMAL", "FULL"):
        raise StoreError("synchronous must be NORMAL or FULL, got %r" % (synchronous,))
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=%s" % synchronous)
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)
        _add_columns(db)
    except (sqlite3.Error, OSError) as e:
        raise StoreError("cannot open gateway store %s: %s" % (path, e))
    return db


# Columns added after a table was first released: (table, column, declaration). A store made by
# an older release gets them on open (CREATE TABLE IF NOT EXISTS leaves an existing table alone).
ADDED_COLUMNS = (
    ("batches", "final_at", "REAL"),
    ("batches", "reanchors", "INTEGER NOT NULL DEFAULT 0"),
    ("device_keys", "first_seq", "INTEGER NOT NULL DEFAULT 1"),
    ("device_keys", "chain_block", "INTEGER"),
    ("device_keys", "chain_time", "INTEGER"),
)


def _add_columns(db: sqlite3.Connection) -> None:
    for table, column, decl in ADDED_COLUMNS:
        have = [r[1] for r in db.execute("PRAGMA table_info(%s)" % table)]
        if column not in have:
            db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, decl))


class Store:
    """Thin typed access to the database; one writer thread at a time."""

    def __init__(self, path, synchronous=DEFAULT_SYNCHRONOUS):
        self.path = path
        self.synchronous = synchronous
        self.db = connect(path, synchronous)
        self.lock = threading.RLock()

    def close(self):
        self.db.close()

    # -- transactions -----------------------------------------------------------------------

    def begin(self):
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self):
        self.db.execute("COMMIT")

    def rollback(self):
        """Roll back the open transaction, if any. Never raises: SQLite may already have
        rolled it back itself (after a full disk, say), and the error that made the caller
        roll back is the one to report."""
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextlib.contextmanager
    def transaction(self, doing):
        """``with store.transaction("storing 12 messages"):`` BEGIN IMMEDIATE ... COMMIT
        under the store lock. Raises StoreFull, StoreBusy or StoreError (rolled back first);
        any other exception rolls back and passes through."""
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                yield self
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self.rollback()
                raise store_error(e, doing) from e
            except BaseException:
                self.rollback()
                raise

    def write(self, doing, sql, args=()):
        """One statement in its own transaction (autocommit). Raises as ``transaction``."""
        with self.lock:
            try:
                return self.db.execute(sql, args)
            except sqlite3.Error as e:
                self.rollback()
                raise store_error(e, doing) from e

    # -- messages ---------------------------------------------------------------------------

    def insert_messages(self, rows):
        """rows: (device, seq, prev, digest, epoch, kid, t_first, t_last, received_at, bytes)."""
        self.db.executemany(
            "INSERT INTO messages (device, seq, prev, digest, epoch, kid, t_first, t_last,"
            " received_at, bytes) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

    def insert_quarantine(self, rows):
        """rows: (received_at, topic, reason, detail, device, seq, bytes)."""
        self.db.executemany(
            "INSERT INTO quarantine (received_at, topic, reason, detail, device, seq, bytes)"
            " VALUES (?,?,?,?,?,?,?)", rows)

    def message_link(self, device, seq):
        """(digest, prev) of a stored message, or None."""
        row = self.db.execute("SELECT digest, prev FROM messages WHERE device=? AND seq=?",
                              (device, seq)).fetchone()
        return (row[0], row[1]) if row else None

    def message(self, device, seq):
        row = self.db.execute("SELECT id, bytes FROM messages WHERE device=? AND seq=?",
                              (device, seq)).fetchone()
        return row

    def seal_keys(self, seals) -> None:
        """Close rotated-out keys' sequence windows: ``seals`` of (kid, last seq), inside the
        caller's transaction; a window only ever closes earlier."""
        self.db.executemany(
            "UPDATE device_keys SET revoked_after_seq=? WHERE kid=? AND (revoked_after_seq IS NULL OR revoked_after_seq > ?)",
            [(int(last), bytes(kid), int(last)) for kid, last in seals])

    def last_seq_signed_by(self, device: str, kid: bytes) -> int | None:
        """The highest seq stored from ``device`` under key ``kid``, or None. Walks the (device,
        seq) index from the top, so it stops at the key's last message."""
        row = self.db.execute("SELECT seq FROM messages WHERE device=? AND kid=? ORDER BY seq DESC LIMIT 1",
                              (device, bytes(kid))).fetchone()
        return row[0] if row else None

    def count_messages(self, device=None):
        if device is None:
            return self.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM messages WHERE device=?", (device,)).fetchone()[0]

    def seqs(self, device):
        return [r[0] for r in self.db.execute(
            "SELECT seq FROM messages WHERE device=? ORDER BY seq", (device,))]

    def quarantine_reasons(self):
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason"))

    def quarantine_usage(self) -> list[tuple[str, int, int]]:
        """[(topic, rows, bytes)] of the quarantine, by topic (ratelimit.quarantine_bound)."""
        return self.db.execute("SELECT topic, COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM quarantine"
                               " GROUP BY topic").fetchall()

    def add_device_rejects(self, rows) -> None:
        """rows: DeviceRejects of increments (``last_at`` replaces the stored one)."""
        self.db.executemany(
            "INSERT INTO device_rejects (device, rejected, quarantined, dropped, last_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT(device) DO UPDATE SET rejected=rejected+excluded.rejected,"
            " quarantined=quarantined+excluded.quarantined, dropped=dropped+excluded.dropped,"
            " last_at=MAX(COALESCE(last_at, 0), excluded.last_at)", [tuple(r) for r in rows])

    def device_rejects(self, limit: int = 10) -> list[DeviceRejects]:
        """The ``limit`` devices with the most rejects, most first: [DeviceRejects]."""
        return [DeviceRejects(*r) for r in self.db.execute(
            "SELECT device, rejected, quarantined, dropped, last_at FROM device_rejects"
            " ORDER BY rejected DESC, device LIMIT ?", (limit,))]

    # -- devices and chain marks ------------------------------------------------------------

    def device_marks(self):
        """{device: (contig, max_seq)} for every registered device."""
        return dict((r[0], (r[1], r[2])) for r in self.db.execute(
            "SELECT device, contig, max_seq FROM devices"))

    def update_marks(self, marks):
        """marks: iterable of (contig, max_seq, device). Marks only move forward: a stale
        writer can never move a device's marks back (MAX)."""
        self.db.executemany("UPDATE devices SET contig=MAX(contig, ?), max_seq=MAX(max_seq, ?) WHERE device=?",
                            marks)

    def revoked_devices(self, now: float) -> dict[str, float]:
        """{device: time of its latest revocation} for the devices every key of which is
        revoked at or before ``now``."""
        return dict(self.db.execute(
            "SELECT device, MAX(revoked_at) FROM device_keys GROUP BY device"
            " HAVING SUM(revoked_at IS NULL OR revoked_at > ?) = 0", (now,)))

    def rejected_since(self, since: float) -> list[str]:
        """Devices with a reject after ``since`` (device_rejects)."""
        return [r[0] for r in self.db.execute("SELECT device FROM device_rejects WHERE last_at > ?", (since,))]

    def set_birth(self, device, payload, online):
        """Record a birth (payload) or death (None). Raises StoreFull/StoreBusy/StoreError."""
        self.write("recording the birth of %s" % device,
                   "UPDATE devices SET last_birth=COALESCE(?, last_birth), online=? WHERE device=?",
                   (payload, 1 if online else 0, device))

    # -- counters ---------------------------------------------------------------------------

    def save_counters(self, counters):
        self.db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value=excluded.value", list(counters.items()))

    def load_counters(self):
        return dict(self.db.execute("SELECT name, value FROM counters"))

    def add_counters(self, increments: dict[str, int]) -> None:
        """Add to named counters (written by a writer that does not own the whole set)."""
        self.db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value=value+excluded.value", list(increments.items()))

    # -- ledger identity --------------------------------------------------------------------

    def ledger_meta(self):
        return dict(self.db.execute("SELECT name, value FROM ledger_meta"))

    def set_ledger_meta(self, values):
        """Set ledger_meta names. Raises StoreFull/StoreBusy/StoreError."""
        with self.transaction("saving the ledger identity"):
            self.db.executemany("INSERT INTO ledger_meta (name, value) VALUES (?, ?)"
                                " ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                                [(k, str(v)) for k, v in values.items()])

    def batch_summary(self):
        """BatchSummary: how many batches, by state, and how many are final."""
        by_state = dict(self.db.execute("SELECT state, COUNT(*) FROM batches GROUP BY state"))
        final = self.db.execute("SELECT COUNT(*) FROM batches WHERE final_at IS NOT NULL").fetchone()[0]
        return BatchSummary(sum(by_state.values()), by_state, final)

    def set_anchor_state(self, state, note):
        """What anchoring is doing, for ``gateway status``: state "ok", "unreachable" or
        "halted", and a sentence. Raises as ``write``."""
        self.set_ledger_meta({"anchor_state": state, "anchor_note": note, "anchor_state_at": "%.3f" % time.time()})

    # -- events -----------------------------------------------------------------------------

    def record_event(self, kind, detail, at=None):
        """Record something an operator should see in ``gateway status`` (kept: MAX_EVENTS).
        Raises StoreFull/StoreBusy/StoreError."""
        at = time.time() if at is None else at
        with self.transaction("recording a %s event" % kind):
            cur = self.db.execute("INSERT INTO events (at, kind, detail) VALUES (?,?,?)", (at, kind, detail))
            self.db.execute("DELETE FROM events WHERE id <= ?", (cur.lastrowid - MAX_EVENTS,))

    def recent_events(self, limit=20):
        """The last ``limit`` events, oldest first, as Event rows."""
        rows = self.db.execute("SELECT at, kind, detail FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Event(*r) for r in reversed(rows)]

    # -- chain gaps -------------------------------------------------------------------------

    def chain_gaps(self, device=None):
        """Recorded gaps (all, or one device's), in order, as ChainGap rows."""
        sql = "SELECT %s FROM chain_gaps" % _GAP_COLUMNS
        args = ()
        if device is not None:
            sql += " WHERE device=?"
            args = (device,)
        return [ChainGap(*r) for r in self.db.execute(sql + " ORDER BY device, resume_seq", args)]

    def insert_gap(self, gap):
        """Stage a ChainGap row (inside the caller's transaction)."""
        self.db.execute("INSERT OR IGNORE INTO chain_gaps (%s) VALUES (?,?,?,?,?,?,?,?)" % _GAP_COLUMNS, tuple(gap))

    def accept_gap(self, device, resume_seq, by, at=None):
        """Mark a recorded gap accepted. Returns True if one was waiting."""
        at = time.time() if at is None else at
        cur = self.write("accepting a chain gap",
                         "UPDATE chain_gaps SET accepted_at=?, accepted_by=? WHERE device=? AND resume_seq=?"
                         " AND accepted_at IS NULL", (at, by, device, resume_seq))
        return cur.rowcount > 0

    def next_stored_seq(self, device, after):
        """The lowest stored seq above ``after``, or None."""
        row = self.db.execute("SELECT MIN(seq) FROM messages WHERE device=? AND seq>?", (device, after)).fetchone()
        return row[0]

    def quarantined_seqs(self, device, first, last):
        """{reason: count} of quarantine rows of ``device`` with seq in first..last."""
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM quarantine WHERE device=? AND seq BETWEEN ? AND ?"
                                    " GROUP BY reason", (device, first, last)))


class Event(NamedTuple):
    """One ``events`` row."""

    at: float
    kind: str
    detail: str


class BatchSummary(NamedTuple):
    total: int
    by_state: Dict[str, int]
    final: int


class ChainGap(NamedTuple):
    """One ``chain_gaps`` row: seqs ``after_seq + 1 .. resume_seq - 1`` of ``device`` are
    not in its chain (some may be stored, none is linked), and its chain goes on at
    ``resume_seq``. ``kind`` is "restart" (the device declared it, signed) or "operator"
    (``edgeledger device accept-gap``). Until ``accepted_at`` the device's contiguous mark
    stops before ``resume_seq``."""

    device: str
    after_seq: int
    resume_seq: int
    kind: str
    reason: str
    recorded_at: float
    accepted_at: Optional[float]
    accepted_by: Optional[str]


_GAP_COLUMNS = "device, after_seq, resume_seq, kind, reason, recorded_at, accepted_at, accepted_by"

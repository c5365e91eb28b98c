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
``batches``      Merkle batches and their anchoring state (see batcher.py).
``ledger_meta``  which chain, contract and gateway account the batches are anchored with.

The store never re-encodes a message: the bytes that were signed are the
evidence. Writes happen in explicit transactions that the caller commits in
groups (``synchronous=NORMAL`` in WAL mode: a commit survives a process crash;
``FULL`` makes it survive power loss too, configurable).
"""
import os
import sqlite3
import threading

from edgeledger.gateway.errors import StoreError

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
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
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
    anchored_at REAL
);
"""


def connect(path, synchronous="NORMAL"):
    """Open (and create) the store. Raises StoreError if it cannot be opened."""
    if synchronous not in ("NORMAL", "FULL"):
        raise StoreError("synchronous must be NORMAL or FULL, got %r" % (synchronous,))
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
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

    def __init__(self, path, synchronous="NORMAL"):
        self.path = path
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
        self.db.execute("ROLLBACK")

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

    # -- devices and chain marks ------------------------------------------------------------

    def device_marks(self):
        """{device: (contig, max_seq)} for every registered device."""
        return dict((r[0], (r[1], r[2])) for r in self.db.execute(
            "SELECT device, contig, max_seq FROM devices"))

    def update_marks(self, marks):
        """marks: iterable of (contig, max_seq, device)."""
        self.db.executemany("UPDATE devices SET contig=?, max_seq=? WHERE device=?", marks)

    def set_birth(self, device, payload, online):
        self.db.execute("UPDATE devices SET last_birth=COALESCE(?, last_birth), online=? WHERE device=?",
                        (payload, 1 if online else 0, device))

    # -- counters ---------------------------------------------------------------------------

    def save_counters(self, counters):
        self.db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value=excluded.value", list(counters.items()))

    def load_counters(self):
        return dict(self.db.execute("SELECT name, value FROM counters"))

    # -- ledger identity --------------------------------------------------------------------

    def ledger_meta(self):
        return dict(self.db.execute("SELECT name, value FROM ledger_meta"))

    def set_ledger_meta(self, values):
        with self.lock:
            self.db.executemany("INSERT INTO ledger_meta (name, value) VALUES (?, ?)"
                                " ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                                [(k, str(v)) for k, v in values.items()])

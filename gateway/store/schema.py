"""The store's tables, how a database is opened, and how SQLite errors are translated.

``SCHEMA`` is the DDL of every table (the package docstring says what each holds);
``ADDED_COLUMNS`` the columns added after a table was first released, which a store made
by an older release gets on open (``CREATE TABLE IF NOT EXISTS`` leaves an existing table
alone).
"""
import os
import sqlite3

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
    reanchors INTEGER NOT NULL DEFAULT 0,
    tree_alg INTEGER NOT NULL DEFAULT 1
);
"""

# Columns added after a table was first released: (table, column, declaration).
ADDED_COLUMNS = (
    ("batches", "final_at", "REAL"),
    ("batches", "reanchors", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "tree_alg", "INTEGER NOT NULL DEFAULT 1"),  # protocols/hashes.py ids; 1 SHA-256
    ("device_keys", "first_seq", "INTEGER NOT NULL DEFAULT 1"),
    ("device_keys", "chain_block", "INTEGER"),
    ("device_keys", "chain_time", "INTEGER"),
)

# SQLite's synchronous pragma: FULL fsyncs the WAL at every commit (a commit survives a
# power cut), NORMAL does not (it survives a process crash only). gateway.toml chooses with
# ``durability`` (config/schema.py).
SYNCHRONOUS_MODES = ("FULL", "NORMAL")
DEFAULT_SYNCHRONOUS = "FULL"
# How long a writer waits for another connection's write lock before StoreBusy: the
# batcher and the operator CLI hold it for milliseconds; 30 s covers a checkpoint of a
# large WAL on a slow SD card.
BUSY_TIMEOUT_S = 30.0

# SQLite primary result codes (sqlite3.h): the low byte of an extended code.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13


def store_error(e: sqlite3.Error, doing: str) -> StoreError:
    """The StoreError for a sqlite3 error met while ``doing`` something (a phrase):
    StoreFull (the disk is full), StoreBusy (locked past the busy timeout), else StoreError."""
    code = getattr(e, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = "%s: %s" % (doing, e)
    if primary == _SQLITE_FULL or "disk is full" in str(e):
        return StoreFull("the disk holding the gateway store is full while %s" % text)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in str(e):
        return StoreBusy("the gateway store stayed locked by another connection while %s" % text)
    return StoreError("gateway store error while %s" % text)


def connect(path: str, synchronous: str = DEFAULT_SYNCHRONOUS) -> sqlite3.Connection:
    """Open (and create) the store's database in WAL mode. Raises StoreError if it cannot be
    opened or ``synchronous`` is not one of SYNCHRONOUS_MODES."""
    if synchronous not in SYNCHRONOUS_MODES:
        raise StoreError("synchronous must be NORMAL or FULL, got %r" % (synchronous,))
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        _create_private(path)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=%s" % synchronous)
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)
        _add_columns(db)
    except (sqlite3.Error, OSError) as e:
        raise StoreError("cannot open gateway store %s: %s" % (path, e)) from e
    return db


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600) if it does not exist yet:
    it holds every reading of the site. SQLite gives its -wal and -shm files the mode of the
    database file, so they are private too. An existing file keeps the mode it has."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _add_columns(db: sqlite3.Connection) -> None:
    for table, column, decl in ADDED_COLUMNS:
        have = [r[1] for r in db.execute("PRAGMA table_info(%s)" % table)]
        if column not in have:
            db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, decl))

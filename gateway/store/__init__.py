"""The gateway store: one SQLite database in WAL mode, and the only code that speaks SQL.

Everything else calls the ``Store``'s named methods, which take and return the named rows
of ``rows.py``. The class is put together from one part per concern:

==================  ==========================================================================
``messages.py``     ``messages``: every accepted message exactly as received (``bytes``), with
                    its seq, prev and digest. ``id`` grows by one per message in commit order;
                    a batch is a contiguous range of ids.
``quarantine.py``   ``quarantine``: every rejected message (raw bytes, topic, typed reason,
                    detail); ``device_rejects``: per device (the topic's) messages rejected,
                    rows quarantined, rejects only counted (past the quarantine bounds), time
                    of the last one.
``devices.py``      ``devices``: one row per device (site, chain marks ``contig``/``max_seq``,
                    last birth, online flag); ``device_keys``: registered keys by kid
                    (algorithm, public key, window, registration on chain).
``batches.py``      ``batches``: Merkle batches, their stored trees and lifecycle state
                    (anchor/lifecycle.py holds the transitions).
``journal.py``      ``counters``; ``ledger_meta`` (which chain, contract and gateway account the
                    batches are anchored with, and the anchoring state operators see);
                    ``events`` (what happened, for ``gateway status``, bounded);
                    ``chain_gaps`` (breaks in a device's chain: a restart the device declared,
                    records it declared lost, a gap an operator accepted).
``schema.py``       the DDL, columns added since, opening, and translating SQLite's errors.
==================  ==========================================================================

The store never re-encodes a message: the bytes that were signed are the evidence. Writes
happen in explicit transactions that the caller commits in groups. ``synchronous=FULL``
(the default; ``durability = "power_loss"`` in gateway.toml) fsyncs the WAL at every
commit, so a commit, and the end-to-end ack sent after it, survives a power cut; one fsync
per group of messages. ``NORMAL`` (``durability = "process_crash_only"``) survives a
process crash only: a power cut can lose commits that were already acknowledged.

SQLite errors are translated where they leave this package (``store_error``):
``StoreFull`` (the disk is full), ``StoreBusy`` (the database stayed locked past the busy
timeout), ``StoreError`` for the rest; a failed transaction is rolled back first, quietly,
so the cause is never hidden by a second error.
"""
from edgeledger.gateway.store.batches import Batches, BatchStateError, PackedTree
from edgeledger.gateway.store.devices import Devices
from edgeledger.gateway.store.journal import MAX_EVENTS, Journal
from edgeledger.gateway.store.messages import Messages
from edgeledger.gateway.store.quarantine import Quarantine
from edgeledger.gateway.store.rows import (
    Batch,
    BatchMessage,
    BatchSummary,
    ChainGap,
    DeviceListing,
    DeviceMarks,
    DeviceRejects,
    DeviceState,
    Event,
    KeyBinding,
    KeyRow,
    LastBatch,
    Link,
    Marks,
    MessageRow,
    QuarantineRow,
    QuarantineUsage,
    StoredMessage,
    StoredReading,
)
from edgeledger.gateway.store.schema import (
    ADDED_COLUMNS,
    BUSY_TIMEOUT_S,
    DEFAULT_SYNCHRONOUS,
    SYNCHRONOUS_MODES,
    connect,
    store_error,
)


class Store(Messages, Quarantine, Devices, Batches, Journal):
    """Typed access to the gateway database; one writer thread at a time (``lock``).

    ``Store(path, synchronous="FULL")`` opens (and creates) it; raises StoreError."""


__all__ = [
    "ADDED_COLUMNS", "BUSY_TIMEOUT_S", "DEFAULT_SYNCHRONOUS", "MAX_EVENTS", "SYNCHRONOUS_MODES", "Batch",
    "BatchMessage", "BatchStateError", "BatchSummary", "ChainGap", "DeviceListing", "DeviceMarks",
    "DeviceRejects", "DeviceState", "Event", "KeyBinding", "KeyRow", "LastBatch", "Link", "Marks", "MessageRow",
    "PackedTree", "QuarantineRow", "QuarantineUsage", "Store", "StoredMessage", "StoredReading", "connect",
    "store_error",
]

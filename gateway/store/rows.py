"""The store's named rows: what its methods take and return, one type per table use.

Every type is a NamedTuple whose fields are the table's columns in the table's order, so
``Row(*sqlite_row)`` builds one and ``tuple(row)`` is what an INSERT binds: no file other
than the store needs to know a column's position.
"""
from typing import NamedTuple, Optional


class MessageRow(NamedTuple):
    """One accepted message, as the pipeline stages it (``messages``; ``id`` is given by the
    store in commit order). ``bytes`` are exactly what the device signed."""

    device: str
    seq: int
    prev: bytes
    digest: bytes
    epoch: int
    kid: bytes
    t_first: float
    t_last: float
    received_at: float
    bytes: bytes


class StoredMessage(NamedTuple):
    """A stored message's id (its place in commit order) and bytes."""

    id: int
    bytes: bytes


class Link(NamedTuple):
    """A stored message's place in its device's chain: its digest and its ``prev``."""

    digest: bytes
    prev: bytes


class BatchMessage(NamedTuple):
    """What closing a batch reads of each message: its id, bytes and record times."""

    id: int
    bytes: bytes
    t_first: float
    t_last: float


class StoredReading(NamedTuple):
    """A stored message with where it stands: the batch that holds it (None: not batched yet),
    that batch's lifecycle state, block and whether it is final."""

    device: str
    seq: int
    t_first: float
    t_last: float
    bytes: bytes
    batch: Optional[int]
    state: Optional[str]
    block_number: Optional[int]
    final: bool


class DeviceState(NamedTuple):
    """A registered device as ``gateway status --json`` shows it: its marks (contiguous and
    highest stored seq), whether its session is up (birth / death), and when its newest stored
    message arrived (None: nothing stored yet)."""

    device: str
    site: str
    contig: int
    max_seq: int
    online: bool
    last_seen: Optional[float]


class QuarantineRow(NamedTuple):
    """One rejected message (``quarantine``): the raw bytes and the typed reason."""

    received_at: float
    topic: str
    reason: str
    detail: str
    device: Optional[str]
    seq: Optional[int]
    bytes: bytes


class QuarantineUsage(NamedTuple):
    """Rows and raw bytes the quarantine holds for one topic."""

    topic: str
    rows: int
    nbytes: int


class DeviceRejects(NamedTuple):
    """One device's reject tally (``device_rejects``)."""

    device: str
    rejected: int
    quarantined: int
    dropped: int
    last_at: Optional[float]


class Marks(NamedTuple):
    """A device's chain marks: every seq up to ``contig`` is stored (or given up in an
    accepted gap); ``max_seq`` is the highest stored."""

    contig: int
    max_seq: int


class DeviceMarks(NamedTuple):
    """Marks to write for one device (they only move forward)."""

    device: str
    contig: int
    max_seq: int


class KeyRow(NamedTuple):
    """One registered key (``device_keys``; registry/registry.py says what the window means)."""

    kid: bytes
    device: str
    alg: int
    public_key: bytes
    valid_from: float
    valid_until: Optional[float] = None
    revoked_at: Optional[float] = None
    revoked_after_seq: Optional[int] = None
    first_seq: int = 1
    chain_block: Optional[int] = None
    chain_time: Optional[int] = None


class KeyBinding(NamedTuple):
    """What a proof bundle says about the key that signed a reading: its algorithm, public
    key, the device's site and the key's registration on chain."""

    alg: int
    public_key: bytes
    site: str
    chain_block: Optional[int]
    chain_time: Optional[int]
    first_seq: int


class DeviceListing(NamedTuple):
    """One line of ``edgeledger device list``: a device with one of its keys (or none)."""

    device: str
    site: str
    contig: int
    max_seq: int
    online: bool
    kid: Optional[bytes]
    alg: Optional[int]
    revoked_at: Optional[float]


class ChainGap(NamedTuple):
    """One ``chain_gaps`` row: seqs ``after_seq + 1 .. resume_seq - 1`` of ``device`` are
    not in its chain (some may be stored, none is linked), and its chain goes on at
    ``resume_seq``. ``kind`` is "restart" (the device declared it, signed), "lost" (the
    device declared records lost) or "operator" (``edgeledger device accept-gap``). Until
    ``accepted_at`` the device's contiguous mark stops before ``resume_seq``."""

    device: str
    after_seq: int
    resume_seq: int
    kind: str
    reason: str
    recorded_at: float
    accepted_at: Optional[float]
    accepted_by: Optional[str]


class Event(NamedTuple):
    """One ``events`` row."""

    at: float
    kind: str
    detail: str


class Batch(NamedTuple):
    """One ``batches`` row without its tree (``batch_tree`` reads that): its header fields, when
    it was closed, its lifecycle state (anchor/lifecycle.py) and its anchor transaction. A
    batch just closed has the defaults."""

    number: int
    first_id: int
    last_id: int
    tree_size: int
    root: bytes
    prev_header_hash: bytes
    header_hash: bytes
    first_time: int
    last_time: int
    created_at: float
    state: str
    nonce: Optional[int] = None
    raw_tx: Optional[bytes] = None
    tx_hash: Optional[bytes] = None
    block_number: Optional[int] = None
    block_hash: Optional[bytes] = None
    anchored_at: Optional[float] = None
    final_at: Optional[float] = None
    reanchors: int = 0
    tree_alg: int = 1  # the tree hash (protocols/hashes.py ids; the batch header's byte 1)


class LastBatch(NamedTuple):
    """The newest batch: its number, last message id and header hash."""

    number: int
    last_id: int
    header_hash: bytes


class BatchSummary(NamedTuple):
    """How many batches there are, by lifecycle state, and how many are final."""

    total: int
    by_state: dict[str, int]
    final: int

"""The quarantine's bound: what the rejects of one device, or of all, may store.

``QuarantineBound`` caps what rejects may store, globally and per device: past ``max_rows``
rows or ``max_bytes`` of raw bytes in all, or ``device_rows`` / ``device_bytes`` for the one
device (the topic's) a reject is charged to, its row is not written; the reject is still
counted (``rejected_<reason>``, ``quarantine_dropped``, and per device in the store's
``device_rejects``). So one noisy device fills its own share and no more, and later
evidence from every other device is still kept.

gateway.toml::

    [quarantine]
    max_rows = 1000000
    max_bytes = 1073741824
    device_rows = 10000
    device_bytes = 16777216
"""
from edgeledger.gateway.config.schema import (
    DEFAULT_DEVICE_BYTES,
    DEFAULT_DEVICE_ROWS,
    DEFAULT_QUARANTINE_BYTES,
    DEFAULT_QUARANTINE_ROWS,
    QuarantineConfig,
)
from edgeledger.gateway.ingest.ratelimit import MAX_TRACKED_DEVICES
from edgeledger.gateway.store import Store
from edgeledger.protocols import topics

# Rejects that name no device (a topic that is not a readings topic) share one account.
UNATTRIBUTED = ""
# Past MAX_TRACKED_DEVICES accounts, new devices share this one (a loose ACL lets one
# client publish under any number of invented device ids).
OTHERS = "*"


class QuarantineBound:
    """Admits quarantine rows until ``max_rows`` rows or ``max_bytes`` bytes are stored in all,
    and ``device_rows`` / ``device_bytes`` for the device a reject is charged to."""

    def __init__(self, rows: int = 0, nbytes: int = 0, max_rows: int = DEFAULT_QUARANTINE_ROWS,
                 max_bytes: int = DEFAULT_QUARANTINE_BYTES, device_rows: int = DEFAULT_DEVICE_ROWS,
                 device_bytes: int = DEFAULT_DEVICE_BYTES, used: dict[str, list[int]] | None = None,
                 max_devices: int = MAX_TRACKED_DEVICES) -> None:
        self.rows, self.nbytes = rows, nbytes
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.device_rows, self.device_bytes = device_rows, device_bytes
        self.max_devices = max_devices
        self.used = dict((k, list(v)) for k, v in (used or {}).items())  # device -> [rows, bytes]

    def key(self, device: str | None) -> str:
        """The account a reject charged to ``device`` (None: no device) is counted in."""
        key = UNATTRIBUTED if device is None else device
        if key not in self.used and len(self.used) >= self.max_devices:
            return OTHERS
        return key

    def admit(self, size: int, device: str | None = None) -> bool:
        """True (and the row counted) if a row of ``size`` bytes charged to ``device`` fits."""
        u = self.used.setdefault(self.key(device), [0, 0])
        if self.rows + 1 > self.max_rows or self.nbytes + size > self.max_bytes:
            return False
        if u[0] + 1 > self.device_rows or u[1] + size > self.device_bytes:
            return False
        self.rows += 1
        self.nbytes += size
        u[0] += 1
        u[1] += size
        return True


def device_of(topic: object) -> str | None:
    """The device a reject on ``topic`` is charged to: the device of a readings topic, else
    None (UNATTRIBUTED)."""
    try:
        _site, device, kind = topics.parse(topic)
    except Exception:  # TopicError, or not text
        return None
    return device if kind == "r" else None


def quarantine_bound(store: Store, sec: QuarantineConfig | None = None) -> QuarantineBound:
    """A QuarantineBound primed with what ``store`` already holds; limits from ``[quarantine]``."""
    sec = sec or QuarantineConfig()
    used: dict[str, list[int]] = {}
    rows, nbytes = 0, 0
    for topic, n, size in store.quarantine_usage():
        key = device_of(topic)
        key = UNATTRIBUTED if key is None else key
        u = used.setdefault(key, [0, 0])
        u[0] += n
        u[1] += size
        rows += n
        nbytes += size
    return QuarantineBound(rows, nbytes, sec.max_rows, sec.max_bytes, sec.device_rows, sec.device_bytes, used)

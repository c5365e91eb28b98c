"""Per-device rate limits and the quarantine bound: what a flooding device can cost.

``RateLimiter`` is a token bucket per device (rate tokens/s, ``burst`` at most): each message
takes one token; with none left the pipeline rejects it as ``rate_limited`` before decoding
anything (a flood costs a dictionary lookup, not a CBOR decode or a signature check),
quarantined and counted like any reject. The device keeps the record in its outbox and
sends it again after ``resend_after_s``, so a limited reading is delayed, not lost. The
device is the one the topic names: the broker lets a device publish on its own topics only.

On by default (issue 12). The numbers, and why an honest device is never limited:

* ``DEFAULT_RATE`` = 1000 messages/s per device. A 1 kHz sensor signs one pack per second,
  a meter one reading per interval: live traffic is 1..10 messages/s, 100x below. An
  outbox catching up after an outage is paced by the agent at ``DEFAULT_SEND_RATE`` = 500
  messages/s (agent/core.py): half the limit.
* ``DEFAULT_BURST`` = 5000 messages. The agent sends at most one window (256) at once; what
  the broker queued for the gateway while the gateway was away arrives in one go when it
  comes back: 5000 is 83 minutes of a device that sends every second. Past that, the rest
  is refused for now and re-sent by the device (delayed, not lost).
* What it bounds: one device gets at most 1000 signature verifications per second plus
  one burst (Ed25519 verifies at ~10,000/s on one core of the founding machine).

``QuarantineBound`` caps what rejects may store, globally and per device: past ``max_rows``
rows or ``max_bytes`` of raw bytes in all, or ``device_rows`` / ``device_bytes`` for the one
device (the topic's) a reject is charged to, its row is not written; the reject is still
counted (``rejected_<reason>``, ``quarantine_dropped``, and per device in the store's
``device_rejects``). So one noisy device fills its own share and no more, and later
evidence from every other device is still kept.

gateway.toml::

    [ratelimit]
    rate = 1000.0         # messages/s per device, sustained; 0 turns the limit off
    burst = 5000          # messages a device may send at once

    [quarantine]
    max_rows = 1000000
    max_bytes = 1073741824
    device_rows = 10000
    device_bytes = 16777216
"""
import time

from edgeledger.gateway.config.schema import (
    DEFAULT_DEVICE_BYTES,
    DEFAULT_DEVICE_ROWS,
    DEFAULT_QUARANTINE_BYTES,
    DEFAULT_QUARANTINE_ROWS,
    QuarantineConfig,
    RateLimitConfig,
)
from edgeledger.protocols import topics

# Buckets kept in memory. A full bucket is the same as no bucket, so when the table is full
# the full (idle) buckets are dropped first; a site has at most a few thousand devices.
MAX_TRACKED_DEVICES = 100000
# Rejects that name no device (a topic that is not a readings topic) share one account.
UNATTRIBUTED = ""
# Past MAX_TRACKED_DEVICES accounts, new devices share this one (a loose ACL lets one
# client publish under any number of invented device ids).
OTHERS = "*"


class RateLimiter:
    """Token buckets by device. ``allow(device, now)`` -> bool; ``counters`` has the totals."""

    def __init__(self, rate, burst, max_devices=MAX_TRACKED_DEVICES):
        if rate <= 0 or burst < 1:
            raise ValueError("rate limit: expected rate > 0 and burst >= 1, found rate %r burst %r" % (rate, burst))
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_devices = max_devices
        self._buckets = {}  # device -> [tokens, last time]
        self.counters = {"ratelimit_allowed": 0, "ratelimit_limited": 0, "ratelimit_evicted": 0}
        self.limited_by_device = {}

    def allow(self, device, now=None):
        now = time.monotonic() if now is None else now
        b = self._buckets.get(device)
        if b is None:
            if len(self._buckets) >= self.max_devices:
                self._evict(now)
            b = self._buckets[device] = [self.burst, now]
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate)
        b[1] = now
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            self.counters["ratelimit_allowed"] += 1
            return True
        b[0] = tokens
        self.counters["ratelimit_limited"] += 1
        if device in self.limited_by_device or len(self.limited_by_device) < self.max_devices:
            self.limited_by_device[device] = self.limited_by_device.get(device, 0) + 1
        return False

    def _evict(self, now):
        full = [d for d, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]
        if not full:  # every device is busy: drop the fullest bucket (it loses the least)
            full = [max(self._buckets, key=lambda d: self._buckets[d][0])]
        for d in full:
            del self._buckets[d]
        self.counters["ratelimit_evicted"] += len(full)


def from_config(sec: RateLimitConfig) -> "RateLimiter | None":
    """A RateLimiter from gateway.toml's ``[ratelimit]`` (defaults: on, at DEFAULT_RATE and
    DEFAULT_BURST), or None when ``rate = 0`` turns it off."""
    if sec.rate <= 0:
        return None
    return RateLimiter(sec.rate, sec.burst)


class QuarantineBound:
    """Admits quarantine rows until ``max_rows`` rows or ``max_bytes`` bytes are stored in all,
    and ``device_rows`` / ``device_bytes`` for the device a reject is charged to."""

    def __init__(self, rows=0, nbytes=0, max_rows=DEFAULT_QUARANTINE_ROWS, max_bytes=DEFAULT_QUARANTINE_BYTES,
                 device_rows=DEFAULT_DEVICE_ROWS, device_bytes=DEFAULT_DEVICE_BYTES, used=None,
                 max_devices=MAX_TRACKED_DEVICES):
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


def readings_device(topic: object) -> str | None:
    """The device of an ``el/v1/<site>/<device>/r`` topic, or None: the cheap split the
    receive thread uses for every message (the pipeline checks the id itself later)."""
    parts = topic.split("/") if isinstance(topic, str) else ()
    if len(parts) == 5 and parts[0] == "el" and parts[1] == "v1" and parts[4] == "r":
        return parts[3]
    return None


def quarantine_bound(store, sec: QuarantineConfig | None = None) -> QuarantineBound:
    """A QuarantineBound primed with what ``store`` already holds; limits from ``[quarantine]``."""
    sec = sec or QuarantineConfig()
    used, rows, nbytes = {}, 0, 0
    for topic, n, size in store.quarantine_usage():
        key = device_of(topic)
        key = UNATTRIBUTED if key is None else key
        u = used.setdefault(key, [0, 0])
        u[0] += n
        u[1] += size
        rows += n
        nbytes += size
    return QuarantineBound(rows, nbytes, sec.max_rows, sec.max_bytes, sec.device_rows, sec.device_bytes, used)

"""Per-device rate limits and the quarantine bound: what a flooding device can cost.

``RateLimiter`` is a token bucket per device (rate tokens/s, ``burst`` at most): each message
takes one token; with none left the pipeline rejects it as ``rate_limited`` (quarantined and
counted like any reject, before the signature is checked, so a flood costs a CBOR decode,
not a verification). The device keeps the record in its outbox and sends it again after
``resend_after_s``, so a limited reading is delayed, not lost.

``QuarantineBound`` caps what rejects may store: past ``max_rows`` rows or ``max_bytes`` of
raw bytes, a rejected message is still counted (``rejected_<reason>``) but its row is not
written; ``quarantine_dropped`` counts those.

gateway.toml::

    [ratelimit]
    rate = 200.0          # messages/s per device, sustained; 0 or absent = no limit
    burst = 2000          # messages a device may send at once (an outbox replay after an outage)

    [quarantine]
    max_rows = 1000000
    max_bytes = 1073741824
"""
import time

# Buckets kept in memory. A full bucket is the same as no bucket, so when the table is full
# the full (idle) buckets are dropped first; a site has at most a few thousand devices.
MAX_TRACKED_DEVICES = 100000
# Quarantine defaults: a million rows or 1 GiB of raw bytes (~ 16k maximum-size messages),
# whichever comes first; far beyond honest failure rates, small next to the message store.
DEFAULT_QUARANTINE_ROWS = 1000000
DEFAULT_QUARANTINE_BYTES = 1 << 30


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


def from_config(cfg):
    """A RateLimiter from a resolved gateway config's ``[ratelimit]``, or None (no limit)."""
    sec = cfg.get("ratelimit") or {}
    rate = float(sec.get("rate", 0) or 0)
    if rate <= 0:
        return None
    return RateLimiter(rate, int(sec.get("burst", max(1, int(rate)))))


class QuarantineBound:
    """Admits quarantine rows until ``max_rows`` rows or ``max_bytes`` bytes are stored."""

    def __init__(self, rows=0, nbytes=0, max_rows=DEFAULT_QUARANTINE_ROWS, max_bytes=DEFAULT_QUARANTINE_BYTES):
        self.rows, self.nbytes = rows, nbytes
        self.max_rows, self.max_bytes = max_rows, max_bytes

    def admit(self, size):
        if self.rows + 1 > self.max_rows or self.nbytes + size > self.max_bytes:
            return False
        self.rows += 1
        self.nbytes += size
        return True


def quarantine_bound(store, cfg=None):
    """A QuarantineBound primed with what ``store`` already holds; limits from ``[quarantine]``."""
    sec = (cfg or {}).get("quarantine") or {}
    rows, nbytes = store.db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM quarantine").fetchone()
    return QuarantineBound(rows, nbytes, int(sec.get("max_rows", DEFAULT_QUARANTINE_ROWS)),
                           int(sec.get("max_bytes", DEFAULT_QUARANTINE_BYTES)))

"""Per-device rate limits: what a flooding device can cost (the quarantine's bound is
quarantine.py).

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

gateway.toml::

    [ratelimit]
    rate = 1000.0         # messages/s per device, sustained; 0 turns the limit off
    burst = 5000          # messages a device may send at once
"""
import time

from edgeledger.gateway.config.schema import RateLimitConfig

# Buckets kept in memory. A full bucket is the same as no bucket, so when the table is full
# the full (idle) buckets are dropped first; a site has at most a few thousand devices.
MAX_TRACKED_DEVICES = 100000


class RateLimiter:
    """Token buckets by device. ``allow(device, now)`` -> bool; ``counters`` has the totals."""

    def __init__(self, rate: float, burst: float, max_devices: int = MAX_TRACKED_DEVICES) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate limit: expected rate > 0 and burst >= 1, found rate %r burst %r" % (rate, burst))
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_devices = max_devices
        self._buckets: dict[str, list[float]] = {}  # device -> [tokens, last time]
        self.counters = {"ratelimit_allowed": 0, "ratelimit_limited": 0, "ratelimit_evicted": 0}
        self.limited_by_device: dict[str, int] = {}

    def allow(self, device: str, now: float | None = None) -> bool:
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

    def _evict(self, now: float) -> None:
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


def readings_device(topic: object) -> str | None:
    """The device of an ``el/v1/<site>/<device>/r`` topic, or None: the cheap split the
    receive thread uses for every message (the pipeline checks the id itself later)."""
    parts = topic.split("/") if isinstance(topic, str) else ()
    if len(parts) == 5 and parts[0] == "el" and parts[1] == "v1" and parts[4] == "r":
        return parts[3]
    return None

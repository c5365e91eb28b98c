"""The ingest pipeline: one message in, a verdict out; commits in groups.

``process(topic, data, received_at)`` checks a message in this order and
stages the result in memory:

  1. size              -> Oversized
  2. CBOR              -> TruncatedCose (input ends early) / MalformedCbor
  3. COSE_Sign1 shape  -> NotCoseSign1
  4. payload fields    -> BadPayload
  5. duplicate?        same (device, seq, digest) as stored: acked again, not
                       re-verified (the bytes were verified when first stored)
  5b. rate limit       -> RateLimited (per topic device, before the costly verify;
                       ratelimit.py)
  6. key by kid        -> UnknownDevice; key/topic/payload disagree -> TopicMismatch
  7. key window        -> RevokedDevice (protocols/keywindow.py: registration, revocation,
                       rotation, by seq and record time)
  8. signature         -> BadSignature
  9. record times      -> ClockSkew
 10. chain rules       -> Fork / Replay / ChainBreak (protocols/chain.py)

A rejected message is quarantined with its raw bytes while the quarantine is under
its bound (``ratelimit.QuarantineBound``); beyond it, it is only counted
(``quarantine_dropped``).

``commit()`` writes the staged messages, quarantine rows, chain marks and
counters in one transaction and returns the end-to-end acks to send: only
after it returns may the caller PUBACK the messages and publish acks.
"""
import hashlib
import io
import time

import cbor2

from edgeledger.gateway import errors, ratelimit, signatures
from edgeledger.protocols import chain, cose, reading, topics
from edgeledger.protocols.errors import CoseError, PayloadError

DEFAULT_MAX_MESSAGE_BYTES = 65536  # one pack of 1000 samples is ~12 KB; 5x headroom
DEFAULT_CLOCK_SKEW_S = 7 * 86400.0  # a device may replay a week-old outbox; not a year-off clock
DEFAULT_FUTURE_SKEW_S = 300.0  # record times ahead of the gateway clock
# Chain links kept in memory per device; older ones are looked up in the store.
RECENT_LINKS = 4096
MAX_CBOR_DEPTH = 16  # our deepest structure (tag > array > map > array > map) is 5


def _decode(data):
    """cbor2, strict: no indefinite lengths, no duplicate keys, no trailing bytes.

    (``cbor2.loads`` alone ignores bytes after the first item; a message with a
    tail would be stored with bytes nobody signed.)
    """
    fp = io.BytesIO(data)
    item = cbor2.CBORDecoder(fp, max_depth=MAX_CBOR_DEPTH, allow_indefinite=False,
                             allow_duplicate_keys=False).decode()
    if fp.tell() != len(data):
        raise ValueError("%d bytes after the CBOR item" % (len(data) - fp.tell()))
    return item


class Accepted:
    __slots__ = ("device", "seq", "verdict")

    def __init__(self, device, seq, verdict):
        self.device, self.seq, self.verdict = device, seq, verdict


class Pipeline:
    def __init__(self, store, registry, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                 clock_skew_s=DEFAULT_CLOCK_SKEW_S, future_skew_s=DEFAULT_FUTURE_SKEW_S,
                 verify=signatures.verify, rate_limiter=None, quarantine=None):
        self.store = store
        self.rate_limiter = rate_limiter  # ratelimit.RateLimiter or None (no limit)
        self.quarantine = quarantine if quarantine is not None else ratelimit.quarantine_bound(store)
        self.registry = registry
        self.max_message_bytes = max_message_bytes
        self.clock_skew_s = clock_skew_s
        self.future_skew_s = future_skew_s
        self.verify = verify
        self.counters = dict((name, 0) for name in (
            "received", "stored", "duplicates", "rejected", "quarantine_dropped"))
        for reason in errors.REASONS:
            self.counters["rejected_" + reason] = 0
        self.counters.update(store.load_counters())
        self.marks = dict((d, list(m)) for d, m in store.device_marks().items())
        self._recent = {}
        self._rows = []
        self._qrows = []
        self._touched = set()

    # -- chain lookups ----------------------------------------------------------------------

    def _lookup_fn(self, device):
        recent = self._recent.setdefault(device, {})
        mark = self.marks.get(device)

        def lookup(seq):
            hit = recent.get(seq)
            if hit is not None:
                return hit
            if mark is None or seq > mark[1]:
                return None
            return self.store.message_link(device, seq)

        return lookup

    def _remember(self, device, seq, digest, prev):
        recent = self._recent.setdefault(device, {})
        recent[seq] = (digest, prev)
        if len(recent) > 2 * RECENT_LINKS:
            floor = max(recent) - RECENT_LINKS
            for old in [s for s in recent if s < floor]:
                del recent[old]

    # -- one message ------------------------------------------------------------------------

    def process(self, topic, data, received_at=None):
        """Check and stage one message. Returns Accepted or raises RejectedMessage
        (already staged for quarantine and counted)."""
        received_at = time.time() if received_at is None else received_at
        self.counters["received"] += 1
        try:
            return self._process(topic, data, received_at)
        except errors.RejectedMessage as e:
            self.counters["rejected"] += 1
            self.counters["rejected_" + e.reason] += 1
            if self.quarantine.admit(len(data)):
                self._qrows.append((received_at, topic, e.reason, e.detail, e.device, e.seq, bytes(data)))
            else:
                self.counters["quarantine_dropped"] += 1
            raise

    def _process(self, topic, data, received_at):
        if len(data) > self.max_message_bytes:
            raise errors.Oversized("%d bytes, maximum %d" % (len(data), self.max_message_bytes))
        try:
            t_site, t_device, _kind = topics.parse(topic)
        except ValueError as e:
            raise errors.TopicMismatch(str(e))
        try:
            item = _decode(data)
        except cbor2.CBORDecodeEOF as e:
            raise errors.TruncatedCose("input ends before the COSE_Sign1 is complete (%s)" % e, t_device)
        except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as e:
            raise errors.MalformedCbor(str(e), t_device)
        try:
            msg = cose.sign1_from_item(item, _decode)
        except CoseError as e:
            raise errors.NotCoseSign1(str(e), t_device)
        except (cbor2.CBORDecodeError, ValueError, TypeError) as e:
            raise errors.NotCoseSign1("protected header: %s" % e, t_device)
        try:
            body = reading.decode_payload(msg.payload, _decode)
            if body.pack is not None:
                t_first, t_last = reading.time_range(body.pack)
            else:
                t_first = t_last = received_at
        except (PayloadError, cbor2.CBORDecodeError, ValueError, TypeError) as e:
            raise errors.BadPayload(str(e), t_device)
        device, seq = body.device, body.seq
        digest = _sha256(data)
        lookup = self._lookup_fn(device)
        stored = lookup(seq)
        if stored is not None and stored[0] == digest:
            self.counters["duplicates"] += 1
            self._touched.add(device)
            return Accepted(device, seq, chain.DUPLICATE)
        if self.rate_limiter is not None and not self.rate_limiter.allow(t_device):
            raise errors.RateLimited("device %r is over %g messages/s (burst %d)"
                                     % (t_device, self.rate_limiter.rate, self.rate_limiter.burst), device, seq)
        key = self.registry.key(msg.kid)
        if key is None:
            raise errors.UnknownDevice("no registered key with kid %s" % msg.kid.hex(), device, seq)
        if not (key.device == device == t_device):
            raise errors.TopicMismatch("topic names %r, payload %r, key %s belongs to %r"
                                       % (t_device, device, msg.kid.hex(), key.device), device, seq)
        site = self.registry.site_of(device)
        if site != t_site:
            raise errors.TopicMismatch("device %r is registered on site %r, topic says %r"
                                       % (device, site, t_site), device, seq)
        if key.alg != msg.alg:
            raise errors.BadSignature("key %s is %d, message says alg %d" % (msg.kid.hex(), key.alg, msg.alg),
                                      device, seq)
        # The key window (protocols/keywindow.py): an encrypted reading shows no times, only
        # that it was signed before it arrived.
        refusal = (key.refusal(seq, t_first, t_last) if body.pack is not None
                   else key.refusal(seq, None, None, signed_before=received_at))
        if refusal is not None:
            raise errors.RevokedDevice(str(refusal), device, seq)
        if not self.verify(msg.alg, key.public_key, msg.to_be_signed(), msg.signature):
            raise errors.BadSignature("%s signature does not verify with key %s"
                                      % (cose.ALGORITHMS[msg.alg]["name"], msg.kid.hex()), device, seq)
        if t_last > received_at + self.future_skew_s or t_first < received_at - self.clock_skew_s:
            raise errors.ClockSkew("records timed %.0f..%.0f, gateway clock %.0f" % (t_first, t_last, received_at),
                                   device, seq)
        rule, verdict = chain.classify(seq, body.prev, digest, lookup)
        store_it, reason = chain.OUTCOMES[verdict]
        if reason is not None:
            cls = {"fork": errors.Fork, "replay": errors.Replay, "chain_break": errors.ChainBreak}[reason]
            raise cls("rule %s: seq %d" % (rule, seq), device, seq)
        if not store_it:  # DUPLICATE found by classify (cannot happen after step 5, kept for safety)
            self.counters["duplicates"] += 1
            return Accepted(device, seq, verdict)
        self._rows.append((device, seq, body.prev, digest, body.epoch, msg.kid, t_first, t_last,
                           received_at, bytes(data)))
        self._remember(device, seq, digest, body.prev)
        self.registry.successor_seen(msg.kid, seq)  # seals a rotated-out key's last seq
        mark = self.marks.setdefault(device, [0, 0])
        if seq > mark[1]:
            mark[1] = seq
        if seq == mark[0] + 1:
            mark[0] = chain.contiguous_after(mark[0], lambda s: lookup(s) is not None)
        self._touched.add(device)
        self.counters["stored"] += 1
        return Accepted(device, seq, verdict)

    # -- commit -----------------------------------------------------------------------------

    def pending(self):
        return len(self._rows) + len(self._qrows) + len(self._touched)

    def save_counters(self):
        """Write the counters on their own (at shutdown, when nothing else is staged)."""
        with self.store.lock:
            self.store.begin()
            self.store.save_counters(self.counters)
            self.store.commit()

    def commit(self, save_counters=True):
        """Write everything staged in one transaction. Returns {device: contig} to ack."""
        touched = self._touched
        if not (self._rows or self._qrows or touched):
            return {}
        store = self.store
        with store.lock:
            store.begin()
            try:
                if self._rows:
                    store.insert_messages(self._rows)
                if self._qrows:
                    store.insert_quarantine(self._qrows)
                store.update_marks([(self.marks[d][0], self.marks[d][1], d) for d in touched if d in self.marks])
                if save_counters:
                    store.save_counters(self.counters)
                store.commit()
            except Exception:
                store.rollback()
                raise
        self._rows, self._qrows, self._touched = [], [], set()
        return dict((d, self.marks[d][0]) for d in touched if d in self.marks)


def _sha256(data):
    return hashlib.sha256(data).digest()

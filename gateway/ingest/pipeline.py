"""The ingest pipeline: one message in, a verdict out; commits in groups.

``process(topic, data, received_at)`` checks a message in this order and
stages the result in memory:

  1. size              -> Oversized
  2. topic             -> TopicMismatch (not el/v1/<site>/<device>/r)
  3. rate limit        -> RateLimited (per topic device, before any decoding:
                          a flood costs a token-bucket lookup; ratelimit.py). Under the
                          MQTT service the check runs in front of the queue instead
                          (``shed``): a message over its device's rate is counted there
                          and never queued, so a flood cannot fill the queue ahead of
                          other devices' messages
  4. CBOR              -> TruncatedCose (input ends early) / MalformedCbor
  5. COSE_Sign1 shape  -> NotCoseSign1
  6. payload fields    -> BadPayload; numbers out of bounds -> OutOfRange; an encrypted
                          pack (enc) that is no COSE_Encrypt0 -> BadPayload
  6b. canonical form   -> NonCanonical: any other encoding than the one the device
                          signed (cose_verify.check_canonical; an encrypted pack's too),
                          before anything compares digests
  7. payload device    -> TopicMismatch unless it is the topic's device: a device
                          touches no other device's chain state, not even with a
                          copy of that device's stored message
  8. duplicate?        same (device, seq, digest) as stored: acked again, not
                       re-verified (the bytes were verified when first stored)
  9. key by kid        -> UnknownDevice; key/topic/payload disagree -> TopicMismatch
 10. key window        -> RevokedDevice (protocols/keywindow.py: registration, revocation,
                         rotation, by seq and record time)
 11. signature         -> BadSignature
 12. record times      -> ClockSkew
 13. chain rules       -> Fork / Replay / ChainBreak (protocols/chain.py); a RESTART
                         (seq > 1, prev all zeros: the device lost its chain head) is
                         stored and its gap recorded (``chain_gaps``), and so is every
                         range an ``agent/outbox_lost`` record declares; accepted at once
                         unless ``accept_restarts`` is off. A break whose ``prev`` links under
                         another hash of protocols/hashes.py than the deployment's
                         (``chain_alg``) is WrongChainHash instead: the device's
                         ``chain_hash`` and the gateway's ``deployment_hash`` disagree

Fast path (issue 17: the gateway's CPU goes to verifying). A message whose bytes are laid
out exactly as ``sign1`` writes them (``cose_verify.split_sign1``: tag, array, shortest heads,
empty unprotected map, nothing after) and whose protected header this pipeline has already
checked in full for a registered key is not decoded as a whole: its parts are slices of it
and its (alg, kid) are known, which settles steps 4 and 5 and the envelope and header half
of 6b. Its payload is decoded once, and its deterministic encoding is checked with cbor2's C
encoder where that provably gives RFC 8949 §4.2.1 bytes (``_check_payload_encoding``), else
with the pure encoder. Every other message, a device's first included, takes the full parse,
so each refusal keeps its reason and its words (tests/gateway/test_pipeline.py).
``edgeledger bench pipeline`` measures the CPU per message (docs/benchmarks.md).

Containment (issue 12): whatever exception checking one message raises ends as a
typed reject. The expected ones map to the reasons above; anything else becomes
``internal`` (logged once per kind, with its traceback) and ingest goes on. Nothing
is staged for a message until every check has passed, so a failure half-way leaves
no trace but its quarantine row.

A rejected message is quarantined with its raw bytes while the quarantine, and the
share of it the topic's device may fill, are under their bounds
(``quarantine.QuarantineBound``); beyond them it is only counted (``quarantine_dropped``,
and per device in the store's ``device_rejects``).

``commit()`` writes the staged messages, quarantine rows, chain marks and
counters in one transaction and returns the end-to-end acks to send: only
after it returns may the caller PUBACK the messages and publish acks. Every value
it writes was range-checked when the message was decoded, so no message can make
the commit fail.

Gaps (protocols/chain.py G1-G3): the contiguous mark steps over accepted gaps and
stops before the seq of a gap that waits for an operator. ``reload_gaps`` picks up a
gap an operator accepted from another process (``edgeledger device accept-gap``) and
moves the marks it frees, so the next commit acknowledges them.
"""
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import cbor2

from edgeledger.gateway import errors
from edgeledger.gateway.config.schema import DEFAULT_CLOCK_SKEW_S, DEFAULT_MAX_MESSAGE_BYTES
from edgeledger.gateway.ingest import ratelimit
from edgeledger.gateway.ingest.quarantine import QuarantineBound, quarantine_bound
from edgeledger.gateway.registry import signatures
from edgeledger.gateway.registry.registry import Key, Registry
from edgeledger.gateway.store import ChainGap, DeviceMarks, DeviceRejects, MessageRow, QuarantineRow, Store
from edgeledger.protocols import chain, hashes, reading, topics
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import CborDecodeError
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.cose.verify import NonCanonicalMessage
from edgeledger.protocols.errors import CoseError, PayloadError
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.reading.validate import PayloadRangeError

log = logging.getLogger("edgeledger.gateway")

DEFAULT_FUTURE_SKEW_S = 300.0  # record times ahead of the gateway clock
# Chain links kept in memory per device; older ones are looked up in the store.
RECENT_LINKS = 4096
MAX_CBOR_DEPTH = 16  # our deepest structure (tag > array > map > array > map) is 5
# A quarantine row's detail is one sentence; the raw bytes are kept beside it.
MAX_DETAIL = 1000
# Kinds of unexpected error (type and where it was raised) logged with a traceback; past
# this many kinds they are still counted and quarantined, no longer logged.
MAX_INTERNAL_KINDS = 100
# An unknown kid makes the pipeline look at the registry again at most this often (a
# flood of unknown kids costs at most ten registry reads a second).
UNKNOWN_KID_RECHECK_S = 0.1
# Records by which a device declares a gap in its chain (protocols/chain.py G1).
_DECLARATIONS = frozenset((chain.RESTART_RECORD, chain.LOST_RECORD))
# The reject of each quarantine reason of the chain rules (protocols/chain.py OUTCOMES).
_CHAIN_REJECTS: dict[str, type[errors.RejectedMessage]] = {
    "fork": errors.Fork, "replay": errors.Replay, "chain_break": errors.ChainBreak}
# Protected headers kept after a full check (one per registered key: a site has at most a
# few thousand device keys, signatures.MAX_CACHED_KEYS allows for 100,000); forgotten all at
# once when full, which costs one full parse per key afterwards.
MAX_KNOWN_HEADERS = signatures.MAX_CACHED_KEYS


# cbor2 turns some tags into Python objects (bignums into int, 28/29 into shared and even
# cyclic references, 35 into a compiled regex, 36 into a parsed MIME message, ...). Nothing
# in a message of ours is tagged except the COSE_Sign1 itself, and the device codec keeps
# tags as tags: so every tag cbor2 knows is kept as a plain CBORTag, as an unknown one is.
# (cbor2 6.3's semantic tags; a tag added later would only be decoded, not trusted: every
# field is type-checked after decoding.)
_CBOR2_SEMANTIC_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261,
                        1004, 55799)


def _keep_tag(tag: int) -> Callable[[object, bool], cbor2.CBORTag]:
    return lambda value, immutable: cbor2.CBORTag(tag, value)


_AS_TAGS = dict((tag, _keep_tag(tag)) for tag in _CBOR2_SEMANTIC_TAGS)


def decode_strict(data: bytes) -> object:
    """cbor2, strict: no duplicate keys, no trailing bytes, no semantic tag decoding.
    Raises ``cbor.TruncatedError`` when the input ends inside the item and
    ``cbor.MalformedError`` for anything else (both CborDecodeError): cbor2's own errors,
    and whatever else it raises on hostile input, are translated here.

    (``cbor2.loads`` alone ignores bytes after the first item; a message with a
    tail would be stored with bytes nobody signed.) Indefinite lengths decode, so
    that step 6b names them as what they are: valid CBOR, not the canonical form.
    """
    fp = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(fp, max_depth=MAX_CBOR_DEPTH, allow_indefinite=True,
                                 allow_duplicate_keys=False, semantic_decoders=_AS_TAGS).decode()
    except cbor2.CBORDecodeEOF as e:
        raise cbor_decoder.TruncatedError("CBOR ends early: %s" % e) from e
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as e:
        raise cbor_decoder.MalformedError("not well-formed CBOR: %s" % e) from e
    if fp.tell() != len(data):
        raise cbor_decoder.MalformedError("%d bytes after the CBOR item" % (len(data) - fp.tell()))
    return item


_decode = decode_strict


class Accepted:
    __slots__ = ("device", "seq", "verdict")

    def __init__(self, device: str, seq: int, verdict: str) -> None:
        self.device, self.seq, self.verdict = device, seq, verdict


class Pipeline:
    def __init__(self, store: Store, registry: Registry, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 clock_skew_s: float = DEFAULT_CLOCK_SKEW_S, future_skew_s: float = DEFAULT_FUTURE_SKEW_S,
                 verify: Callable[[int, bytes, bytes, bytes], bool] = signatures.verify,
                 rate_limiter: ratelimit.RateLimiter | None = None, quarantine: QuarantineBound | None = None,
                 accept_restarts: bool = True, chain_alg: int = hashes.DEFAULT) -> None:
        self.store = store
        # The deployment's chain hash: a message's digest, which the next one names as prev.
        self.chain_alg = hashes.alg_for("chain", chain_alg)
        self._digest = hashes.function(self.chain_alg)
        self.accept_restarts = accept_restarts
        self.rate_limiter = rate_limiter  # ratelimit.RateLimiter or None (no limit)
        self.quarantine = quarantine if quarantine is not None else quarantine_bound(store)
        self.registry = registry
        self.max_message_bytes = max_message_bytes
        self.clock_skew_s = clock_skew_s
        self.future_skew_s = future_skew_s
        self.verify = verify
        self.counters = dict((name, 0) for name in (
            "received", "stored", "duplicates", "rejected", "quarantine_dropped", "commits"))
        for reason in errors.REASONS:
            self.counters["rejected_" + reason] = 0
        # its own counters only: names with "@" belong to other writers (workers, upkeep.py)
        self.counters.update((k, v) for k, v in store.load_counters().items() if "@" not in k)
        self.counters.setdefault("chain_restarts", 0)
        self.counters.setdefault("declared_losses", 0)
        self.marks = dict((d, list(m)) for d, m in store.device_marks().items())
        self.gaps = self._load_gaps()
        self._recent: dict[str, dict[int, Any]] = {}
        self._rows: list[MessageRow] = []
        self._qrows: list[QuarantineRow] = []
        self._gap_rows: list[ChainGap] = []
        self._seals: list[tuple[bytes, int]] = []  # (kid, last seq) of rotated-out keys, written with the next commit
        self._touched: set[str] = set()
        self._internal_kinds: set[tuple[str, str]] = set()
        # rejects since the last commit, by quarantine account (the topic's device):
        # [rejected, quarantined, dropped, last time]
        self._device_rejects: dict[str, list[Any]] = {}
        # rate limit in front of the queue (limit_in_front/shed, on the receive thread)
        self._front = False
        self._shed_lock = threading.Lock()
        self._shed: dict[str, int] = {}  # device -> messages shed since the last commit
        self._registry_checked = 0.0
        self._headers: dict[bytes, tuple[int, bytes]] = {}  # protected header -> (alg, kid)

    # -- chain lookups ----------------------------------------------------------------------

    def _lookup_fn(self, device: str) -> Callable[[int], Any]:
        recent = self._recent.setdefault(device, {})
        mark = self.marks.get(device)

        def lookup(seq: int) -> Any:
            hit = recent.get(seq)
            if hit is not None:
                return hit
            if mark is None or seq > mark[1]:
                return None
            return self.store.message_link(device, seq)

        return lookup

    def _load_gaps(self) -> dict[str, list[Any]]:
        gaps: dict[str, list[Any]] = {}
        for g in self.store.chain_gaps():
            gaps.setdefault(g.device, []).append(g)
        for g in getattr(self, "_gap_rows", ()):  # staged, not committed yet
            if (g.device, g.resume_seq) not in set((x.device, x.resume_seq) for x in gaps.get(g.device, ())):
                gaps.setdefault(g.device, []).append(g)
        return gaps

    def _advance(self, device: str, contig: int, stored: Callable[[int], bool], extra: Iterable[ChainGap] = ()) -> int:
        """The contiguous mark from ``contig`` on, over stored seqs (``stored(seq) -> bool``)
        and accepted gaps (G2), stopping before the ``resume`` of a gap that waits (G3).
        ``extra``: gaps declared by the message at hand, not staged yet."""
        gaps = list(self.gaps.get(device, ())) + list(extra)
        waiting = set(g.resume_seq for g in gaps if g.accepted_at is None)
        accepted = [(g.after_seq, g.resume_seq) for g in gaps if g.accepted_at is not None]
        return chain.contiguous_after(contig, lambda s: s not in waiting and stored(s), accepted)

    def reload_gaps(self, owns: Callable[[str], bool] | None = None) -> list[str]:
        """Read the recorded gaps again (an operator accepted one from another process) and
        move the contiguous marks they free; those devices are acked at the next commit.
        ``owns(device)``: only those devices (a worker's share). Returns the devices moved."""
        self.gaps = self._load_gaps()
        moved = []
        for device in self.gaps:
            mark = self.marks.get(device)
            if mark is None or (owns is not None and not owns(device)):
                continue
            lookup = self._lookup_fn(device)
            def stored(s: int, lookup: Callable[[int], Any] = lookup) -> bool:
                return lookup(s) is not None

            contig = self._advance(device, mark[0], stored)
            if contig != mark[0]:
                mark[0] = contig
                self._touched.add(device)
                moved.append(device)
        return moved

    def _check_chain_hash(self, device: str, seq: int, prev: bytes) -> None:
        """On a broken back link (C5): raise WrongChainHash if ``prev`` is another hash of the
        table (protocols/hashes.py) over the stored (or staged) seq - 1: the device hashes its
        chain with another hash than the deployment's."""
        before = self.store.message(device, seq - 1)
        data = before.bytes if before is not None else next(
            (r.bytes for r in self._rows if r.device == device and r.seq == seq - 1), None)
        if data is None:
            return
        for alg in hashes.NAMES:
            if alg != self.chain_alg and hashes.available(alg) and hashes.function(alg)(data) == prev:
                raise errors.WrongChainHash(
                    "seq %d names as prev the %s of seq %d; this deployment hashes chains with %s (device "
                    "config chain_hash must equal gateway deployment_hash)"
                    % (seq, hashes.NAMES[alg], seq - 1, hashes.NAMES[self.chain_alg]), device, seq)

    def _remember(self, device: str, seq: int, digest: bytes, prev: bytes) -> None:
        self._recent.setdefault(device, {})[seq] = (digest, prev)

    def _trim_recent(self, devices: Iterable[str]) -> None:
        """Forget old links of ``devices``, only after a commit: a staged message must stay
        findable until the store has it, or its seq could be staged twice."""
        for device in devices:
            recent = self._recent.get(device)
            if recent is not None and len(recent) > 2 * RECENT_LINKS:
                floor = max(recent) - RECENT_LINKS
                for old in [s for s in recent if s < floor]:
                    del recent[old]

    # -- protected headers seen before ------------------------------------------------------

    def _known_sign1(self, data: object) -> cose_verify.Sign1 | None:
        """The Sign1 of ``data`` without decoding it, when its envelope is canonical
        (``cose_verify.split_sign1``) and its protected header is one this pipeline has already
        checked for a registered key; else None (the caller then parses it in full)."""
        if type(data) is not bytes:
            return None
        parts = cose_verify.split_sign1(data)
        if parts is None:
            return None
        protected, payload, signature = parts
        header = self._headers.get(protected)
        if header is None or len(signature) != cose_verify.ALGORITHMS[header[0]]["sig_len"]:
            return None
        return cose_verify.Sign1(protected, header[0], header[1], payload, signature)

    def _remember_header(self, msg: cose_verify.Sign1) -> None:
        """Keep the (alg, kid) of a protected header that passed the full parse and the
        canonical check and names a registered key: the next message under it skips both."""
        if len(self._headers) >= MAX_KNOWN_HEADERS:
            self._headers.clear()
        self._headers[bytes(msg.protected)] = (msg.alg, msg.kid)

    # -- one message ------------------------------------------------------------------------

    def process(self, topic: object, data: bytes, received_at: float | None = None) -> Accepted:
        """Check and stage one message. Returns Accepted or raises RejectedMessage
        (already staged for quarantine and counted), whatever the bytes: an unexpected
        error while checking becomes ``errors.Internal``."""
        received_at = time.time() if received_at is None else received_at
        self.counters["received"] += 1
        t_site, t_device, topic_problem = _parse_topic(topic)
        try:
            return self._process(topic, data, received_at, t_site, t_device, topic_problem)
        except errors.RejectedMessage as e:
            self._reject(topic, data, received_at, t_device, e)
            raise
        except Exception as e:  # containment: no message may stop ingest (DESIGN.md §5)
            self._log_internal(topic, e)
            rejected = errors.Internal("%s: %s" % (type(e).__name__, e), t_device)
            self._reject(topic, data, received_at, t_device, rejected)
            raise rejected from e

    def limit_in_front(self) -> None:
        """Apply the rate limit in ``shed``, called by the receive thread before a message
        is queued (service.py), instead of in ``process``."""
        self._front = True

    def shed(self, topic: object, now: float | None = None) -> bool:
        """True if the message on ``topic`` is over its device's rate limit: it is then
        counted (``rejected_rate_limited``, and in the device's tally as only counted) and
        must not be queued; the caller acknowledges it. Thread-safe, never raises."""
        if self.rate_limiter is None or not self._front:
            return False
        device = ratelimit.readings_device(topic)
        if device is None:
            return False
        with self._shed_lock:
            if self.rate_limiter.allow(device, now):
                return False
            self._shed[device] = self._shed.get(device, 0) + 1
        return True

    def _fold_shed(self, now: float) -> None:
        """Move the shed counts into the counters and the device tallies (worker thread)."""
        with self._shed_lock:
            shed, self._shed = self._shed, {}
        for device, n in shed.items():
            for name in ("received", "rejected", "rejected_rate_limited", "quarantine_dropped"):
                self.counters[name] += n
            tally = self._device_rejects.setdefault(self.quarantine.key(device), [0, 0, 0, now])
            tally[0] += n
            tally[2] += n
            tally[3] = now

    def _reject(self, topic: object, data: bytes, received_at: float, t_device: str | None,
                e: errors.RejectedMessage) -> None:
        """Count a reject and stage its quarantine row, charged to the topic's device."""
        self.counters["rejected"] += 1
        self.counters["rejected_" + e.reason] += 1
        account = self.quarantine.key(t_device)  # bounded: invented device ids share one
        tally = self._device_rejects.get(account)
        if tally is None:
            tally = self._device_rejects[account] = [0, 0, 0, received_at]
        tally[0] += 1
        tally[3] = received_at
        if self.quarantine.admit(len(data), t_device):
            tally[1] += 1
            device = e.device if isinstance(e.device, str) else t_device
            seq = e.seq if isinstance(e.seq, int) and 0 <= e.seq <= reading.MAX_SEQ else None
            self._qrows.append(QuarantineRow(received_at, _text(topic), e.reason, _text(e.detail)[:MAX_DETAIL], device,
                                             seq, bytes(data)))
        else:
            tally[2] += 1
            self.counters["quarantine_dropped"] += 1

    def _log_internal(self, topic: object, e: BaseException) -> None:
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = "%s:%d" % (tb.tb_frame.f_code.co_filename, tb.tb_lineno) if tb is not None else "?"
        kind = (type(e).__name__, where)
        if kind in self._internal_kinds or len(self._internal_kinds) >= MAX_INTERNAL_KINDS:
            return
        self._internal_kinds.add(kind)
        log.error("unexpected %s at %s while handling a message on %s; ingest goes on (a reading is "
                  "quarantined as 'internal'; logged once per kind)", kind[0], where, _text(topic), exc_info=e)

    def _process(self, topic: object, data: bytes, received_at: float, t_site: str | None, t_device: str | None,
                 topic_problem: str | None) -> Accepted:
        """The checks of the module docstring, in its order, then the staging."""
        t_device = self._screen(data, t_device, topic_problem)  # 1-3
        msg, known_header = self._sign1(data, t_device)  # 4-5, or the fast path
        value, body, t_first, t_last = _payload(msg, t_device, received_at)  # 6
        device, seq = body.device, body.seq
        _check_canonical(data, msg, value, known_header, device, seq)  # 6b
        if device != t_device:  # 7
            raise errors.TopicMismatch("topic names device %r, the payload %r" % (t_device, device), t_device, seq)
        digest = self._digest(data)
        lookup = self._lookup_fn(device)
        stored = lookup(seq)
        if stored is not None and stored[0] == digest:  # 8
            self.counters["duplicates"] += 1
            self._touched.add(device)
            return Accepted(device, seq, chain.DUPLICATE)
        key = self._key(msg, device, seq, t_site, known_header)  # 9
        self._check_signed(key, msg, body, t_first, t_last, received_at)  # 10-12
        rule, verdict = chain.classify(seq, body.prev, digest, lookup)  # 13
        store_it, reason = chain.OUTCOMES[verdict]
        if reason is not None:
            if rule == "C5":
                self._check_chain_hash(device, seq, body.prev)
            raise _CHAIN_REJECTS[reason]("rule %s: seq %d" % (rule, seq), device, seq)
        if not store_it:  # DUPLICATE found by classify (cannot happen after step 8, kept for safety)
            self.counters["duplicates"] += 1
            return Accepted(device, seq, verdict)
        self._stage(MessageRow(device, seq, body.prev, digest, body.epoch, msg.kid, t_first, t_last, received_at,
                               bytes(data)), verdict, body, lookup)
        return Accepted(device, seq, verdict)

    def _screen(self, data: bytes, t_device: str | None, topic_problem: str | None) -> str:
        """Steps 1-3, before any decoding: size, topic, rate limit. Returns the topic's device."""
        if len(data) > self.max_message_bytes:
            raise errors.Oversized("%d bytes, maximum %d" % (len(data), self.max_message_bytes), t_device)
        if topic_problem is not None:
            raise errors.TopicMismatch(topic_problem)
        assert t_device is not None  # _parse_topic gives a device or a problem
        if self.rate_limiter is not None and not self._front and not self.rate_limiter.allow(t_device):
            raise errors.RateLimited("device %r is over %g messages/s (burst %d)"
                                     % (t_device, self.rate_limiter.rate, self.rate_limiter.burst), t_device)
        return t_device

    def _sign1(self, data: bytes, t_device: str) -> tuple[cose_verify.Sign1, bool]:
        """Steps 4-5: the COSE_Sign1 of ``data`` and whether its protected header is one
        checked before (the fast path, ``_known_sign1``). Every other message takes the full
        parse: what is wrong with a message is named here."""
        msg = self._known_sign1(data)
        if msg is not None:
            return msg, True
        try:
            item = _decode(data)
        except cbor_decoder.TruncatedError as e:
            raise errors.TruncatedCose("input ends before the COSE_Sign1 is complete (%s)" % e, t_device) from e
        except CborDecodeError as e:
            raise errors.MalformedCbor(str(e), t_device) from e
        try:
            return cose_verify.sign1_from_item(item, _decode), False
        except CoseError as e:
            raise errors.NotCoseSign1(str(e), t_device) from e
        except CborDecodeError as e:
            raise errors.NotCoseSign1("protected header: %s" % e, t_device) from e

    def _key(self, msg: cose_verify.Sign1, device: str, seq: int, t_site: str | None, known_header: bool) -> Key:
        """Step 9: the registered key of ``msg.kid``, which must belong to the payload's (and
        the topic's) device, on the topic's site, for the message's alg."""
        key = self.registry.key(msg.kid)
        if key is None and time.monotonic() - self._registry_checked >= UNKNOWN_KID_RECHECK_S:
            # a key registered a moment ago (a rotation: the device may load its new key
            # before the service's next registry poll): look again before refusing
            self._registry_checked = time.monotonic()
            if self.registry.reload_if_changed():
                key = self.registry.key(msg.kid)
        if key is None:
            raise errors.UnknownDevice("no registered key with kid %s" % msg.kid.hex(), device, seq)
        if key.device != device:  # the payload's device is the topic's (step 7)
            raise errors.TopicMismatch("topic names %r, payload %r, key %s belongs to %r"
                                       % (device, device, msg.kid.hex(), key.device), device, seq)
        if not known_header:
            self._remember_header(msg)
        site = self.registry.site_of(device)
        if site != t_site:
            raise errors.TopicMismatch("device %r is registered on site %r, topic says %r"
                                       % (device, site, t_site), device, seq)
        if key.alg != msg.alg:
            raise errors.BadSignature("key %s is %d, message says alg %d" % (msg.kid.hex(), key.alg, msg.alg),
                                      device, seq)
        return key

    def _check_signed(self, key: Key, msg: cose_verify.Sign1, body: Any, t_first: float, t_last: float,
                      received_at: float) -> None:
        """Steps 10-12: the key window, the signature, the record times."""
        device, seq = body.device, body.seq
        # The key window (protocols/keywindow.py): an encrypted reading shows no times, only
        # that it was signed before it arrived.
        refusal = (key.refusal(seq, t_first, t_last) if body.pack is not None
                   else key.refusal(seq, None, None, signed_before=received_at))
        if refusal is not None:
            raise errors.RevokedDevice(str(refusal), device, seq)
        if not self.verify(msg.alg, key.public_key, msg.to_be_signed(), msg.signature):
            raise errors.BadSignature("%s signature does not verify with key %s%s"
                                      % (cose_verify.ALGORITHMS[msg.alg]["name"], msg.kid.hex(),
                                         _key_note(msg.alg, key.public_key)), device, seq)
        if t_last > received_at + self.future_skew_s or t_first < received_at - self.clock_skew_s:
            raise errors.ClockSkew("records timed %.0f..%.0f, gateway clock %.0f" % (t_first, t_last, received_at),
                                   device, seq)

    def _stage(self, row: MessageRow, verdict: str, body: Any, lookup: Callable[[int], Any]) -> None:
        """Every check has passed: compute the new marks and gaps, then stage ``row``
        (nothing here raises)."""
        device, seq = row.device, row.seq
        mark: list[int] = self.marks.get(device) or [0, 0]
        new_gaps = self._declared_gaps(device, seq, verdict, mark[0], body, row.received_at)
        seals = self.registry.seals_due(row.kid, seq)  # a rotated-out key's last seq, sealed at commit
        contig = mark[0]
        if seq == contig + 1 and seq > mark[1] and not new_gaps and device not in self.gaps:
            contig = seq  # the common case, what _advance finds: no gap, nothing stored past seq
        elif seq == contig + 1 or new_gaps or device in self.gaps:
            contig = self._advance(device, contig, lambda s: s == seq or lookup(s) is not None, new_gaps)
        self._rows.append(row)
        self._remember(device, seq, row.digest, row.prev)
        if new_gaps:
            self._gap_rows.extend(new_gaps)
            self.gaps.setdefault(device, []).extend(new_gaps)
        mark = self.marks.setdefault(device, mark)
        mark[0], mark[1] = contig, max(mark[1], seq)
        self._seals.extend(seals)
        self._touched.add(device)
        self.counters["stored"] += 1

    # -- birth and death --------------------------------------------------------------------

    def note_session(self, topic: object, payload: bytes) -> None:
        """Record a device's birth (its payload, kept as received) or death. Never raises:
        a topic that is not a birth/death topic, a payload over ``max_message_bytes`` or a
        store error is counted (``session_refused``) and logged once per kind."""
        try:
            _site, device, kind = topics.parse(topic)
            if kind not in ("birth", "death"):
                raise ValueError("expected a birth or death topic, found %r" % (topic,))
            if len(payload) > self.max_message_bytes:
                raise ValueError("%s of %d bytes, maximum %d" % (kind, len(payload), self.max_message_bytes))
            with self.store.lock:
                self.store.set_birth(device, bytes(payload) if kind == "birth" else None, kind == "birth")
            self.counters[kind + "s"] = self.counters.get(kind + "s", 0) + 1
        except Exception as e:
            self.counters["session_refused"] = self.counters.get("session_refused", 0) + 1
            if not isinstance(e, ValueError):
                self._log_internal(topic, e)

    def _declared_gaps(self, device: str, seq: int, verdict: str, contig: int, body: Any,
                       received_at: float) -> list[ChainGap]:
        """G1: the gaps this message declares, not recorded yet: each range of an
        ``agent/outbox_lost`` record, and a RESTART's gap from the contiguous mark to ``seq``
        (unless a declared range already ends there). Accepted at once if the gateway
        accepts restarts. Never raises: a declaration that does not parse is counted and
        logged, the reading itself is stored (refusing it would wedge the device)."""
        declares = body.pack is not None and _DECLARATIONS.intersection(reading_validate.names(body.pack))
        if not declares and verdict != chain.RESTART:
            return []  # the common case: nothing declared, no restart
        accepted = received_at if self.accept_restarts else None
        by = "gateway (accept_restarts)" if accepted is not None else None
        known = set(g.resume_seq for g in self.gaps.get(device, ()))
        out, restart_reason = [], "declared by the device (encrypted pack: no reason readable)"
        # the resolved records only of a pack that declares something
        records: Any = reading_validate.resolve(body.pack) if declares else ()
        if body.pack is not None:
            restart_reason = "declared by the device, no reason given"
        for rec in records:
            name = rec.get("n")
            if name == chain.RESTART_RECORD:
                restart_reason = "declared by the device: %s" % (rec.get("vs") or rec.get("v"),)
            elif name == chain.LOST_RECORD:
                try:
                    ranges = chain.parse_lost(rec.get("vs"))
                except ValueError as e:
                    self.counters["declared_losses_unreadable"] = self.counters.get("declared_losses_unreadable", 0) + 1
                    log.warning("%s seq %d: %s (stored; the declaration is ignored)", device, seq, e)
                    continue
                for first, last, why in ranges:
                    if last + 1 in known:
                        continue  # G1: a repeated declaration is one gap
                    known.add(last + 1)
                    out.append(ChainGap(device, first - 1, last + 1, "lost",
                                        "declared by the device: seqs %d..%d %s" % (first, last, why),
                                        received_at, accepted, by))
                    self.counters["declared_losses"] += 1
        if verdict == chain.RESTART and seq not in known:
            out.append(ChainGap(device, contig, seq, "restart", restart_reason, received_at, accepted, by))
            self.counters["chain_restarts"] += 1
        return out

    # -- commit -----------------------------------------------------------------------------

    def pending(self) -> int:
        return (len(self._rows) + len(self._qrows) + len(self._touched) + len(self._device_rejects)
                + len(self._shed) + len(self._gap_rows) + len(self._seals))

    def save_counters(self) -> None:
        """Write the counters on their own (at shutdown, when nothing else is staged).
        Raises StoreFull/StoreBusy/StoreError."""
        with self.store.transaction("saving counters"):
            self.store.save_counters(self.counters)

    def commit(self, save_counters: bool = True) -> dict[str, int]:
        """Write everything staged in one transaction. Returns {device: contig} to ack.

        Raises StoreFull, StoreBusy or StoreError when the transaction fails; it is rolled
        back and everything stays staged, so the caller acknowledges nothing and calls
        ``commit`` again later (nothing is lost, nothing is acknowledged early)."""
        touched = self._touched
        if self._shed:
            self._fold_shed(time.time())
        if not (self._rows or self._qrows or touched or self._device_rejects or self._gap_rows or self._seals):
            return {}
        store = self.store
        self.counters["commits"] += 1  # saved in the transaction it counts
        try:
            with store.transaction("storing %d messages and %d quarantine rows" % (len(self._rows), len(self._qrows))):
                if self._rows:
                    store.insert_messages(self._rows)
                if self._qrows:
                    store.insert_quarantine(self._qrows)
                if self._device_rejects:
                    store.add_device_rejects(DeviceRejects(d, n, q, dropped, at)
                                             for d, (n, q, dropped, at) in self._device_rejects.items())
                for gap in self._gap_rows:
                    store.insert_gap(gap)
                if self._seals:
                    store.seal_keys(self._seals)
                store.update_marks([DeviceMarks(d, self.marks[d][0], self.marks[d][1])
                                    for d in touched if d in self.marks])
                if save_counters:
                    store.save_counters(self.counters)
        except Exception:
            self.counters["commits"] -= 1
            raise
        self._rows, self._qrows, self._touched, self._gap_rows = [], [], set(), []
        if self._seals:
            seals, self._seals = self._seals, []
            self.registry.seals_written(seals)
        self._device_rejects = {}
        self._trim_recent(touched)
        return dict((d, self.marks[d][0]) for d in touched if d in self.marks)


def _payload(msg: cose_verify.Sign1, t_device: str, received_at: float) -> tuple[object, Any, float, float]:
    """Step 6: the payload decoded and checked (its value, its fields) and the time range of
    its records (an encrypted reading's is its receive time)."""
    try:
        value = _decode(msg.payload)
        body = reading_validate.check_payload_map(value)
        if body.pack is not None:
            t_first, t_last = reading_validate.time_range(body.pack)
        else:
            t_first = t_last = received_at
    except PayloadRangeError as e:
        raise errors.OutOfRange(str(e), t_device) from e
    except (PayloadError, CborDecodeError) as e:
        raise errors.BadPayload(str(e), t_device) from e
    return value, body, t_first, t_last


def _check_canonical(data: bytes, msg: cose_verify.Sign1, value: object, known_header: bool, device: str,
                     seq: int) -> None:
    """Step 6b: ``data`` is the one encoding the device signed; on the fast path the envelope
    and protected header are known canonical, so only the signature and payload are left."""
    try:
        if known_header:
            cose_verify.check_low_s(msg)
            _check_payload_encoding(msg.payload, value)
            cose_verify.check_encrypted_encoding(value)
        else:
            cose_verify.check_canonical(data, msg, _decode)
    except NonCanonicalMessage as e:
        raise errors.NonCanonical(str(e), device, seq) from e


def _check_payload_encoding(payload: bytes, value: object) -> None:
    """Raise NonCanonicalMessage unless ``payload`` is the deterministic encoding of ``value``
    (decoded from it by cbor2), as ``cose_verify.check_payload_encoding`` decides it.

    First with cbor2's C encoder, where its ``canonical=True`` output is provably the same as
    RFC 8949 §4.2.1 deterministic CBOR: ``check_payload_map`` has passed, so the values are
    text, bytes, integers in -2**64..2**64-1, finite floats and booleans (shortest forms in
    both encoders, tests/protocols/cbor/test_cbor2_parity.py), and when every map key is an int in
    -24..23 every key encodes in one byte, so cbor2's length-first key order is the bytewise
    order. Equal bytes accept; anything else goes to the exact check, whose verdict stands.
    """
    if _one_byte_keys(value) and cbor2.dumps(value, canonical=True) == payload:
        return
    cose_verify.check_payload_encoding(payload, value)


def _one_byte_keys(value: object) -> bool:
    """True for a payload map whose keys, and the keys of every SenML record in its pack,
    are ints in -24..23 (one-byte CBOR heads)."""
    if type(value) is not dict:
        return False
    for k in value:
        if type(k) is not int or not -24 <= k <= 23:
            return False
    pack = value.get(reading.K_PACK)
    if pack is not None:
        for rec in pack:
            if type(rec) is not dict:
                return False
            for k in rec:
                if type(k) is not int or not -24 <= k <= 23:
                    return False
    return True




def _parse_topic(topic: object) -> tuple[str | None, str | None, str | None]:
    """(site, device, None) of a readings topic, else (None, None, why not)."""
    try:
        site, device, kind = topics.parse(topic)
    except ValueError as e:  # TopicError
        return None, None, str(e)
    except Exception:  # not even a str
        return None, None, "topic must be text, found %s" % type(topic).__name__
    if kind != "r":
        return None, None, "expected a readings topic (.../r), found %r" % (topic,)
    return site, device, None


def _text(value: object) -> str:
    """A str SQLite can store (a topic or detail that is not valid text is escaped)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return repr(value)


def _key_note(alg: int, public_key: bytes) -> str:
    """'' for a valid registered key, else why it is not one (registered before keys were checked)."""
    problem = signatures.key_problem(alg, public_key)
    return "" if problem is None else " (the registered key is unusable: %s)" % problem

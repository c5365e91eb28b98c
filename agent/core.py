"""The agent core: sample, pack, sign, persist, and decide what to send.

Runs unchanged on MicroPython boards and on Linux. It does no network I/O: the
caller owns the MQTT link and the clocks. ``step(now, wall, link)`` is one turn of the
agent loop, the same for the board (``firmware/main.py``), the Linux agent
(``agent/linux.py``) and the demo's devices (``gateway/demo_fleet.py``); it calls

* ``tick(now, wall)``        sample the sources that are due and seal full packs,
* ``on_ack(seq)``            for every end-to-end ack the link received,
* ``on_connect(now)``        after every (re)connect: resend from the last ack,
* ``to_send(now, limit)``    records to publish next (from the outbox),
* ``sent(seq)``              after handing a record to the link.

``birth(version)`` is the birth message a link publishes (retained) on every connect.

Sampling never waits for a meter. A source with ``begin(now, wall)`` / ``step(now)`` /
``wake_at()`` (the field-bus sources) is a state machine: ``tick`` starts its reading
cycle when it is due and then steps it on every call, each step taking only the bytes
that have arrived, until it returns its records; ``next_due`` includes the time its
next step is needed. So a meter that answers slowly or not at all (its timeouts and
retries) never delays another source. A source with only ``poll(wall)`` (simulated) is
polled when due.

Packs of several records are signed with SenML base fields
(``reading.with_base_fields``). With a ``content_key`` (``agent/content_key.py``) each pack
is encrypted for the data owner and the payload carries its COSE_Encrypt0 (``enc``)
instead; the signature covers the ciphertext as it covers a plain pack. With
``epoch_dir`` the core commits the next boot counter there (``outbox.next_epoch``) just
before it signs its first pack, so a boot that never signs (one that fails at start, again
and again) writes nothing.

Flow control is end to end: at most ``window`` records are in flight beyond the
last ack. If the ack does not move for ``resend_after_s`` while records are in
flight (a broker restart lost them, the gateway was down), the core rewinds and
sends again from the last ack; the gateway stores duplicates once. Sending is also
paced: at most ``send_rate`` messages per second (bursts of ``window``), so an outbox
catching up after an outage stays under the gateway's per-device rate limit
(docs/operators.md, "Rate limits") and is never refused for speed.

A source that fails does not go silent: its error becomes a status record
(``<source>/status``, a string value) in the next pack and a counter, and the last one
stays in ``source_error`` for the console (the Linux agent logs it). When the
outbox is full a pack is refused before it takes a seq, so the signed chain has
no gap; the number of refused packs rides along in the next pack that fits as
``agent/outbox_refused``. Records the outbox lost to flash damage (found when it
recovered) are reported once in the next pack as ``agent/outbox_lost`` (format in
``docs/wire-format.md``).

The outbox makes records durable in groups (``flush_interval_s``); only durable
records are sent. ``tick`` lets it flush when due (``outbox.flush(now)``), and flushes
everything once sealing is done.
"""
from edgeledger.agent import errors
from edgeledger.protocols import session
from edgeledger.protocols.cose import sign1
from edgeledger.protocols.cbor import encode
from edgeledger.protocols.reading import check_pack_shape, encode_payload, with_base_fields

# In-flight records beyond the last ack. The gateway acks every commit (tens of ms),
# so 256 keeps a fast link busy while bounding what one rewind sends again.
DEFAULT_WINDOW = 256
# A resend when the ack has not moved for this long while records are in flight.
DEFAULT_RESEND_AFTER_S = 5.0
# Messages per second at most, catching up included: half the gateway's default per-device
# limit (gateway/ratelimit.py DEFAULT_RATE), 50x what a 1 kHz sensor (one pack/s) or a fast
# meter sends live. A week's backlog of one message per second replays in 20 minutes.
DEFAULT_SEND_RATE = 500.0
# Records collected for the next pack; above this the pack is sealed at once.
MAX_PENDING_RECORDS = 4096


class AgentCore:
    def __init__(self, device_id, signer, outbox, sources, sha256, epoch=0, pack_size=1000,
                 pack_age_s=0.0, window=DEFAULT_WINDOW, resend_after_s=DEFAULT_RESEND_AFTER_S,
                 max_seq=None, send_rate=DEFAULT_SEND_RATE, epoch_dir=None, content_key=None):
        self.device_id = device_id
        self.signer = signer
        self.content_key = content_key  # None: packs travel in the clear (payload key 6)
        self.outbox = outbox
        self.sources = list(sources)
        self.sha256 = sha256
        self.epoch = epoch
        self.epoch_dir = epoch_dir
        self.pack_size = max(1, pack_size)
        self.pack_age_s = pack_age_s
        self.window = window
        self.resend_after_s = resend_after_s
        self.max_seq = max_seq  # stop sealing after this seq (tests, bounded runs)
        self._pending = []
        self._pending_since = None
        self._due = [-1e9] * len(self.sources)
        self._busy = [False] * len(self.sources)  # a stepped source in its reading cycle
        self._send_next = outbox.acked + 1
        self._progress_at = None
        self._refused = 0
        self.send_rate = send_rate  # 0: unpaced
        self._tokens = float(window)  # token bucket: burst of one window
        self._tokens_at = None
        self.counters = {"sealed": 0, "records": 0, "source_errors": 0, "outbox_refused": 0,
                         "resends": 0, "published": 0}
        self._link_connects = 0  # the link's connect count when step last saw it
        self.source_error = None  # (source name, error text) of the last failed reading

    # -- the loop ---------------------------------------------------------------------------

    def step(self, now, wall, link, sample=True):
        """One turn of the agent loop: sample and seal (``tick``; not while ``sample`` is
        false, e.g. before a board's clock is set), let the link do this turn's I/O, apply
        the end-to-end acks it received, send again from the last ack after it
        (re)connected, and hand it the records that are due, as many as it has room for.
        Returns (packs sealed, records handed over).

        ``link`` has ``service(now, sealed)`` (its own I/O for the turn: a board's client
        connects or reads here, paho's thread needs nothing), ``connected`` (truthy while
        connected), ``connects`` (how often it has connected), ``take_acks()`` (the seqs
        acked since the last call), ``room()`` and ``publish(data) -> bool`` (False: it takes
        no more now). Raises what ``tick`` and the link raise.
        """
        sealed = self.tick(now, wall) if sample else 0
        link.service(now, sealed)
        for seq in link.take_acks():
            self.on_ack(seq, now)
        handed = 0
        if link.connected:
            if link.connects != self._link_connects:
                self._link_connects = link.connects
                self.on_connect(now)
            room = link.room()
            if room > 0:
                for seq, data in self.to_send(now, room):
                    if not link.publish(data):
                        break
                    self.sent(seq)
                    handed += 1
        return sealed, handed

    def birth(self, version, counters=None):
        """The birth message (``protocols/session.py``) of this agent: its version, key id,
        last seq and epoch, and the counters of the core, the outbox and ``counters`` (the
        link's own, on a board)."""
        out = dict(self.counters)
        out.update(self.outbox.counters)
        if counters:
            out.update(counters)
        return session.encode_birth(version, self.signer.kid, self.outbox.head_seq, self.epoch, out)

    # -- sampling and sealing -------------------------------------------------------------

    def done_sealing(self):
        return self.max_seq is not None and self.outbox.head_seq >= self.max_seq

    def next_due(self):
        """Monotonic time of the next source poll or step (the caller may sleep until then)."""
        if self.done_sealing():
            return None
        due = None
        for i, src in enumerate(self.sources):
            t = src.wake_at() if self._busy[i] else self._due[i]
            if t is not None and (due is None or t < due):
                due = t
        return due

    def tick(self, now, wall):
        """Poll due sources and seal packs; returns the number of packs sealed.

        A pack is sealed when it holds ``pack_size`` records or when its oldest
        record is ``pack_age_s`` old (0: one pack per tick).
        """
        sealed = 0
        for i, src in enumerate(self.sources):
            if self.done_sealing() or not (self._busy[i] or now >= self._due[i]):
                continue
            try:
                if not self._busy[i]:
                    # keep the source's cadence; after a stall, restart from now, no burst
                    nxt = self._due[i] + src.interval_s
                    self._due[i] = nxt if nxt > now else now + src.interval_s
                    if not hasattr(src, "step"):
                        records = src.poll(wall)
                    else:
                        src.begin(now, wall)
                        self._busy[i] = True
                if self._busy[i]:
                    records = src.step(now)
                    if records is None:
                        continue  # still reading: wake_at() says when to step again
                    self._busy[i] = False
            except Exception as e:  # a source error must never stop sampling
                self._busy[i] = False
                self.counters["source_errors"] += 1
                self.source_error = (src.name, "%s" % (e,))  # the caller may say it (linux.py)
                records = [{0: src.name + "/status", 3: "error: %s" % (e,), 6: wall}]
            if records and self._pending_since is None:
                self._pending_since = now
            self._pending.extend(records)
            while len(self._pending) >= self.pack_size:
                sealed += self._seal(self.pack_size, wall)
            if len(self._pending) > MAX_PENDING_RECORDS:  # bound: seal what there is
                sealed += self._seal(len(self._pending), wall)
        if self._pending and now - self._pending_since >= self.pack_age_s:
            sealed += self._seal(len(self._pending), wall)
        self.outbox.flush(None if self.done_sealing() else now)
        return sealed

    def _seal(self, n, wall):
        pack, self._pending = self._pending[:n], self._pending[n:]
        if not self._pending:
            self._pending_since = None
        if self.done_sealing():
            return 0
        if self._refused:
            pack = pack + [{0: "agent/outbox_refused", 2: self._refused, 6: wall}]
        lost = self.outbox.lost
        if lost:  # docs/wire-format.md, "Declared gaps"
            lost[6] = wall
            pack = pack + [lost]
        try:
            ok = self.seal_pack(pack)
        except MemoryError as e:  # not signed: the records wait for the next tick
            self._pending = pack[:n] + self._pending
            if self._pending_since is None:
                self._pending_since = 0.0
            raise e  # (a bare raise: the unix image's native code cannot compile it)
        if ok:
            self._refused = 0
            if lost:
                self.outbox.lost = None
        else:
            self._refused += 1
        return 1

    def seal_pack(self, pack):
        """Sign ``pack`` as the next message and persist it. False if the outbox refused it."""
        seq = self.outbox.head_seq + 1
        if self.epoch_dir is not None:  # the boot counter is written by a boot that signs
            from edgeledger.agent.outbox import next_epoch

            self.epoch = next_epoch(self.epoch_dir)
            self.epoch_dir = None
        pack = with_base_fields(pack)
        if self.content_key is None:
            payload = encode_payload(self.device_id, seq, self.outbox.head_hash, self.epoch, pack)
        else:
            check_pack_shape(pack)
            enc = self.content_key.seal(self.device_id, seq, encode(pack))
            payload = encode_payload(self.device_id, seq, self.outbox.head_hash, self.epoch, enc=enc)
        message = sign1(payload, self.signer)
        try:
            self.outbox.append(seq, message, self.sha256(message))
        except errors.OutboxFull:
            self.counters["outbox_refused"] += 1
            return False
        self.counters["sealed"] += 1
        self.counters["records"] += len(pack)
        return True

    # -- sending ----------------------------------------------------------------------------

    def on_connect(self, now):
        self._send_next = self.outbox.acked + 1
        self._progress_at = now

    def on_ack(self, seq, now=None):
        before = self.outbox.acked
        self.outbox.ack(seq)
        if self.outbox.acked > before:
            self._progress_at = now
        if self._send_next <= self.outbox.acked:
            self._send_next = self.outbox.acked + 1

    def to_send(self, now, limit=64):
        """Up to ``limit`` (seq, bytes) to publish now, within the in-flight window."""
        acked = self.outbox.acked
        if self._send_next > acked + 1:
            if self._progress_at is None:
                self._progress_at = now
            elif now - self._progress_at >= self.resend_after_s:
                self._send_next = acked + 1  # nothing moved: send again from the last ack
                self._progress_at = now
                self.counters["resends"] += 1
        room = self.window - (self._send_next - 1 - acked)
        if self.send_rate:
            if self._tokens_at is not None:
                self._tokens = min(float(self.window), self._tokens + (now - self._tokens_at) * self.send_rate)
            self._tokens_at = now
            room = min(room, int(self._tokens))
        if room <= 0 or self._send_next > self.outbox.head_seq:
            return []
        return self.outbox.read(self._send_next, min(limit, room))

    def sent(self, seq):
        if seq + 1 > self._send_next:
            self._send_next = seq + 1
        self._tokens -= 1
        self.counters["published"] += 1

    def drained(self):
        return self.outbox.pending_count() == 0 and not self._pending


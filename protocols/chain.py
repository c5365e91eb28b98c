"""Per-device chain rules: where does an incoming message fit?

Each signed message carries ``seq`` (a per-device counter that is never reused)
and ``prev`` (SHA-256 of the device's previous message bytes; 32 zero bytes for
seq 1). The gateway holds, for every stored seq, the message digest and its
prev. Given an incoming ``(seq, prev, digest)`` and a ``lookup(seq) -> (digest,
prev) | None`` over what is stored, ``classify`` returns one verdict.

The rules, checked in this order (tests name them):

  C1 BELOW     seq < first seq (1)                          -> REPLAY
  C2 SAME      seq stored with the same digest              -> DUPLICATE   ack, store nothing
  C3 FORK      seq stored, other digest, same prev          -> FORK        quarantine
  C4 REUSED    seq stored, other digest, other prev         -> REPLAY      quarantine
  C5 BACKLINK  stored seq-1 exists and its digest != prev   -> CHAIN_BREAK quarantine
               (seq 1: prev must be 32 zero bytes)
  C6 FWDLINK   stored seq+1 exists and its prev != digest   -> CHAIN_BREAK quarantine
  C7 LINKED    seq-1 stored (or seq is 1)                   -> NEXT        store
  C8 AHEAD     otherwise: predecessor not seen yet (a gap)  -> AHEAD       store; the gap
                                                                           stays open until filled

A FORK is two different signed messages for one chain position: the device
key signed both, so either the device misbehaved or the key leaked. A REPLAY is a
seq number used again from somewhere else in the chain (a counter that went
backwards, e.g. restored flash). Both are kept as evidence, never stored as
readings. DUPLICATE is the normal QoS 1 redelivery and is acknowledged again.

Declared gaps. A device whose outbox found flash damage says so in a signed status
record (``agent/outbox_lost``, vs ``"first-last:reason ..."``; docs/wire-format.md):

  G1 DECLARED  a seq inside a range its own device declared lost counts as settled for
               the contiguous mark (``contiguous_after(..., lost)``): the gap is explained,
               recorded, and never waited for
  G2 STORED    a seq that is stored is stored, whatever a declaration says
  G3 HEAD      after a "head" range, the next message's prev is the digest of the record
               just before the range (32 zero bytes if the device kept none): C5 never
               applies across it, C8 stores it

``parse_lost`` reads a declaration; the gateway keeps the ranges with the message
that carried them.
"""

FIRST_SEQ = 1
GENESIS = b"\x00" * 32

NEXT = "next"
AHEAD = "ahead"
DUPLICATE = "duplicate"
FORK = "fork"
REPLAY = "replay"
CHAIN_BREAK = "chain_break"

# verdict -> (store the message?, quarantine reason or None)
OUTCOMES = {
    NEXT: (True, None),
    AHEAD: (True, None),
    DUPLICATE: (False, None),
    FORK: (False, "fork"),
    REPLAY: (False, "replay"),
    CHAIN_BREAK: (False, "chain_break"),
}


def _below(seq, prev, digest, lookup, here):
    return seq < FIRST_SEQ


def _same(seq, prev, digest, lookup, here):
    return here is not None and here[0] == digest


def _fork(seq, prev, digest, lookup, here):
    return here is not None and here[1] == prev


def _reused(seq, prev, digest, lookup, here):
    return here is not None


def _backlink(seq, prev, digest, lookup, here):
    if seq == FIRST_SEQ:
        return prev != GENESIS
    before = lookup(seq - 1)
    return before is not None and before[0] != prev


def _fwdlink(seq, prev, digest, lookup, here):
    after = lookup(seq + 1)
    return after is not None and after[1] != digest


def _linked(seq, prev, digest, lookup, here):
    return seq == FIRST_SEQ or lookup(seq - 1) is not None


def _always(seq, prev, digest, lookup, here):
    return True


# The one table: (rule id, condition, verdict), first match wins.
RULES = (
    ("C1", _below, REPLAY),
    ("C2", _same, DUPLICATE),
    ("C3", _fork, FORK),
    ("C4", _reused, REPLAY),
    ("C5", _backlink, CHAIN_BREAK),
    ("C6", _fwdlink, CHAIN_BREAK),
    ("C7", _linked, NEXT),
    ("C8", _always, AHEAD),
)


def classify(seq, prev, digest, lookup):
    """Return ``(rule_id, verdict)`` for an incoming message.

    ``lookup(seq)`` returns ``(digest, prev)`` of the stored message with that
    seq, or None. ``classify`` itself stores nothing.
    """
    here = lookup(seq) if seq >= FIRST_SEQ else None
    for rule, condition, verdict in RULES:
        if condition(seq, prev, digest, lookup, here):
            return rule, verdict
    raise AssertionError("rule table has no catch-all")  # programmer error


# The SenML record name of a declaration, and its reasons: "damaged" (every seq in the
# range was used and its record is gone), "head" (the newest records were damaged: the
# range covers every seq they could have held, some perhaps never used).
LOST_RECORD = "agent/outbox_lost"
LOST_REASONS = ("damaged", "head")
# A declaration lists at most this many ranges (the outbox merges beyond its own 16).
MAX_LOST_RANGES = 64


def parse_lost(text):
    """``"5-5:damaged 9-12:head"`` -> [(5, 5, "damaged"), (9, 12, "head")].

    Raises PayloadError (a ValueError) for anything else."""
    from edgeledger.protocols.errors import PayloadError

    if not isinstance(text, str):
        raise PayloadError("%s: expected a text value, found %s" % (LOST_RECORD, type(text).__name__))
    out = []
    for item in text.split():
        rng, _, reason = item.partition(":")
        first, _, last = rng.partition("-")
        if reason not in LOST_REASONS or not first.isdigit() or not last.isdigit():
            raise PayloadError("%s: expected first-last:reason with reason in %s, found %r"
                               % (LOST_RECORD, LOST_REASONS, item))
        first, last = int(first), int(last)
        if not FIRST_SEQ <= first <= last:
            raise PayloadError("%s: expected %d <= first <= last, found %r" % (LOST_RECORD, FIRST_SEQ, item))
        out.append((first, last, reason))
    if not out or len(out) > MAX_LOST_RANGES:
        raise PayloadError("%s: expected 1..%d ranges, found %d" % (LOST_RECORD, MAX_LOST_RANGES, len(out)))
    return out


def contiguous_after(contig, has, lost=()):
    """Advance a highest-contiguous-seq mark over stored seqs (``has(seq) -> bool``) and,
    rule G1, over the ``(first, last, reason)`` ranges the device declared lost."""
    while True:
        if has(contig + 1):
            contig += 1
            continue
        for first, last, _ in lost:
            if first <= contig + 1 <= last:
                contig = last
                break
        else:
            return contig

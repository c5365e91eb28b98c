"""Per-device chain rules: where does an incoming message fit?

Each signed message carries ``seq`` (a per-device counter that is never reused)
and ``prev`` (the deployment's chain hash of the device's previous message bytes:
SHA-256, or SM3 on an SM3 deployment, protocols/hashes.py; 32 zero bytes for seq 1).
The gateway holds, for every stored seq, the message digest (same hash) and its
prev. The rules below compare digests only, whatever the hash; a C5 break whose prev
is the other hash of the stored predecessor is the gateway's to name (a device
configured with another chain hash than the gateway, gateway/ingest/pipeline.py).
Given an incoming ``(seq, prev, digest)`` and a ``lookup(seq) -> (digest, prev) |
None`` over what is stored, ``classify`` returns one verdict.

The rules, checked in this order (tests name them):

  C1 BELOW     seq < first seq (1)                          -> REPLAY
  C2 SAME      seq stored with the same digest              -> DUPLICATE   ack, store nothing
  C3 FORK      seq stored, other digest, same prev          -> FORK        quarantine
  C4 REUSED    seq stored, other digest, other prev         -> REPLAY      quarantine
  R1 RESTART   seq > 1, prev is 32 zero bytes, and no       -> RESTART     store; a new chain
               stored seq+1 names another prev                             segment (gaps below)
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

Gaps. A chain can break for good: a device lost records to flash damage, or its chain
head (it no longer knows the hash it must name), or messages it signed can never be
stored (signed with a key revoked meanwhile). The device then goes on and the break is
recorded, explained, and shown to everyone, never papered over. A gap is (after,
resume): seqs after+1 .. resume-1 are not part of the chain, and the chain goes on at
``resume``.

  G1 DECLARED  the device declares a gap in a message it signs, in one of two ways:
               a RESTART message (R1) declares the gap from the gateway's contiguous
               mark to its seq, and may say why in its pack (a record named
               ``agent/chain_restart`` with a text value); an ``agent/outbox_lost``
               record (text ``"first-last:reason ..."``, reasons ``damaged`` and
               ``head``: ``parse_lost``) declares each range it lists as the gap
               (first-1, last+1) (``lost_gaps``). A repeated declaration is one gap.
  G2 ACCEPTED  a gap counts as filled for the contiguous mark once accepted: a
               declared one at once if the gateway accepts restarts (the default),
               any other by an operator (``edgeledger device accept-gap``)
  G3 BARRIER   until then the contiguous mark (and so the end-to-end ack) stops
               before ``resume``; everything after it is stored all the same

A seq inside a gap that is stored stays stored (the gap only lets the mark step over
what is missing), and the message after a lost head names the last record the device
kept (or 32 zero bytes: R1), so C5 never applies across the gap: C8 or R1 stores it.

``contiguous_after(contig, has, gaps)`` applies G2 (it steps over accepted gaps); the
caller's ``has`` applies G3 (it says False for the ``resume`` of a gap that waits).
"""

FIRST_SEQ = 1
GENESIS = b"\x00" * 32

NEXT = "next"
AHEAD = "ahead"
DUPLICATE = "duplicate"
FORK = "fork"
REPLAY = "replay"
CHAIN_BREAK = "chain_break"
RESTART = "restart"

# The record name a device uses to say why it restarts its chain (G1).
RESTART_RECORD = "agent/chain_restart"
# The record name of a declaration of lost records (G1), and its reasons: "damaged" (every
# seq in the range was used and its record is gone), "head" (the newest records were
# damaged: the range covers every seq they could have held, some perhaps never used).
LOST_RECORD = "agent/outbox_lost"
LOST_REASONS = ("damaged", "head")
# A declaration lists at most this many ranges (the outbox merges beyond its own 16).
MAX_LOST_RANGES = 64

# verdict -> (store the message?, quarantine reason or None)
OUTCOMES = {
    NEXT: (True, None),
    AHEAD: (True, None),
    DUPLICATE: (False, None),
    FORK: (False, "fork"),
    REPLAY: (False, "replay"),
    CHAIN_BREAK: (False, "chain_break"),
    RESTART: (True, None),
}


def _below(seq, prev, digest, lookup, here):
    return seq < FIRST_SEQ


def _same(seq, prev, digest, lookup, here):
    return here is not None and here[0] == digest


def _fork(seq, prev, digest, lookup, here):
    return here is not None and here[1] == prev


def _reused(seq, prev, digest, lookup, here):
    return here is not None


def _restart(seq, prev, digest, lookup, here):
    return seq > FIRST_SEQ and prev == GENESIS and not _fwdlink(seq, prev, digest, lookup, here)


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
    ("R1", _restart, RESTART),
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


def contiguous_after(contig, has, gaps=()):
    """Advance a highest-contiguous-seq mark over stored seqs: ``has(seq) -> bool``.

    ``gaps``: accepted gaps as (after, resume) pairs (G2): a mark that reaches ``after``
    (or stands inside the gap) jumps to ``resume - 1``; ``has(resume)`` decides the rest.
    """
    while True:
        for after, resume in gaps:
            if after <= contig < resume - 1:
                contig = resume - 1
        if not has(contig + 1):
            return contig
        contig += 1


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


def lost_gaps(ranges):
    """G1: the gaps ``(after, resume)`` that declared ``(first, last, reason)`` ranges make."""
    return [(first - 1, last + 1) for first, last, _reason in ranges]

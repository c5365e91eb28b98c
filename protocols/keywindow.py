"""The key window: may this key have signed this reading? One rule, one function.

The gateway applies it to every message before storing it (``gateway/registry.py``
``Key.refusal``), and every verifier applies it to the key entry it proved on chain
(``gateway/verifier.py``), so a reading the gateway stores is judged the same way years later.

A key's window opens at its registration: ``valid_from``, the chain's own block time of the
registering transaction (no caller chooses it), and ``first_seq``, the first sequence number the
key may sign. It may be closed: ``end_at`` (revocation time, or the end of a rotation overlap:
readings timed at or after it are outside) and ``last_seq`` (the last sequence number the key
may sign: the device's mark at revocation, or the seq just before the device's first message
under its new key after a rotation). A window never reopens and its ends only move earlier.

A reading is judged by its seq and its record times ``t_first <= t_last`` (Unix seconds, after
SenML base-time resolution). An encrypted reading (payload key 7) shows no times: the caller
passes ``None`` for both and ``signed_before``, an upper bound on when it was signed that the
caller knows itself (the gateway's receive time; the anchoring block's time for a verifier).

The rules, first match wins (tests are named after them):

  W1 NOT_FINITE    a time given is not a finite number (NaN, +-inf, not a number)  -> refused
  W2 BEFORE_SEQ    seq < first_seq                                             -> refused
  W3 BEFORE_START  t_first < valid_from - CLOCK_SLACK_S                        -> refused
  W4 AFTER_END     end_at set and t_last >= end_at                             -> refused
  W5 AFTER_SEQ     last_seq set and seq > last_seq                             -> refused
  W6 UNTIMED_END   no record times, end_at set, last_seq open, and not
                   signed_before < end_at                                      -> refused
  W7 INSIDE        otherwise                                                   -> valid

W2/W3 stop a key from speaking for history before it existed (a second key registered later
cannot sign "older" readings, beyond the clock slack); W4/W5 stop a revoked or rotated-out key from speaking for the
future, and from back-dating new readings into its old window with sequence numbers the device
never gave it. Record times are signed by the device but chosen by whoever holds the key, so
after a key leaks only the sequence guard (W5) separates its old readings from new ones: a new
reading under a leaked key either has a seq above ``last_seq`` (refused) or re-uses a seq the
device already used (a fork, which the gateway quarantines and any two bundles expose).

The key registry entry's commitment (``key_commitment``) is the layout the anchor contract
hashes when a key is registered; a verifier recomputes it from a proof bundle's claims and
compares it with the proven storage slot. Sans-IO; runs on MicroPython too.
"""
import hashlib

# Layout version of the key commitment (first byte of the committed bytes; the contract's
# KEY_COMMITMENT_VERSION).
COMMITMENT_VERSION = 2
# Bounds the contract enforces on what it commits to (EdgeLedgerAnchor.sol).
MAX_ID_BYTES = 64
MAX_PUBLIC_KEY_BYTES = 133
U64 = 1 << 64
# The contract's int32 alg: every COSE algorithm id IANA assigns, and the private-use ids below
# -65536 (SM2 is -65537, protocols/cose), which an int16 could not hold.
ALG_MIN = -(1 << 31)
ALG_MAX = (1 << 31) - 1
# W3 compares a device's clock (record times) with the chain's (the registration's block time).
# They differ: Ethereum clients accept blocks up to 15 s ahead of their clock (geth's
# allowedFutureBlockTime), a chain that makes more than one block a second runs its timestamps
# ahead (py-evm and anvil stamp max(parent + 1, now)), and device clocks drift. So a reading may
# be timed up to this long before its key's registration; a key can back-date no further. The
# same bound as the gateway's tolerance for records ahead of its clock (pipeline.py).
CLOCK_SLACK_S = 300

NOT_FINITE = "not_finite"
BEFORE_SEQ = "before_first_seq"
BEFORE_START = "before_registration"
AFTER_END = "after_end"
AFTER_SEQ = "after_last_seq"
UNTIMED_END = "untimed_after_end"


class KeyWindow:
    """A key's window. ``end_at``/``last_seq`` are None while open."""

    __slots__ = ("valid_from", "first_seq", "end_at", "last_seq")

    def __init__(self, valid_from, first_seq=1, end_at=None, last_seq=None):
        self.valid_from = valid_from
        self.first_seq = first_seq
        self.end_at = end_at
        self.last_seq = last_seq

    def __repr__(self):
        return "KeyWindow(valid_from=%r, first_seq=%r, end_at=%r, last_seq=%r)" % (
            self.valid_from, self.first_seq, self.end_at, self.last_seq)


class Refusal:
    """Why a key may not have signed a reading: the rule id, a stable code and a sentence."""

    __slots__ = ("rule", "code", "text")

    def __init__(self, rule, code, text):
        self.rule = rule
        self.code = code
        self.text = text

    def __str__(self):
        return "rule %s (%s): %s" % (self.rule, self.code, self.text)

    def __repr__(self):
        return "Refusal(%r, %r, %r)" % (self.rule, self.code, self.text)


def is_finite(t):
    """True for an int or a float that is neither NaN nor infinite (no ``math.isfinite`` needed:
    ``t - t`` is 0 only for finite numbers)."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        return False
    return t - t == 0


def _not_finite(w, seq, t_first, t_last, signed_before):
    for name, t in (("t_first", t_first), ("t_last", t_last), ("signed_before", signed_before)):
        if t is not None and not is_finite(t):
            return "%s must be a finite number of seconds, found %r" % (name, t)
    return None


def _before_seq(w, seq, t_first, t_last, signed_before):
    if seq < w.first_seq:
        return "the key may sign seq %d and later, the reading has seq %d" % (w.first_seq, seq)
    return None


def _before_start(w, seq, t_first, t_last, signed_before):
    if t_first is not None and t_first < w.valid_from - CLOCK_SLACK_S:
        return "the key was registered at %s, the reading is timed %s (more than %d s before)" % (
            _t(w.valid_from), _t(t_first), CLOCK_SLACK_S)
    return None


def _after_end(w, seq, t_first, t_last, signed_before):
    if w.end_at is not None and t_last is not None and t_last >= w.end_at:
        return "the key's window ended at %s, the reading is timed %s" % (_t(w.end_at), _t(t_last))
    return None


def _after_seq(w, seq, t_first, t_last, signed_before):
    if w.last_seq is not None and seq > w.last_seq:
        return "the key's last seq is %d, the reading has seq %d" % (w.last_seq, seq)
    return None


def _untimed_end(w, seq, t_first, t_last, signed_before):
    if t_last is not None or w.end_at is None or w.last_seq is not None:
        return None
    if signed_before is not None and signed_before < w.end_at:
        return None
    return ("the key's window ended at %s and its last seq is not sealed yet; the reading shows no "
            "time and is only known to be signed before %s" % (_t(w.end_at), _t(signed_before)))


# The one table: (rule id, code, check). A check returns None or the refusal's sentence.
RULES = (
    ("W1", NOT_FINITE, _not_finite),
    ("W2", BEFORE_SEQ, _before_seq),
    ("W3", BEFORE_START, _before_start),
    ("W4", AFTER_END, _after_end),
    ("W5", AFTER_SEQ, _after_seq),
    ("W6", UNTIMED_END, _untimed_end),
)


def refusal(window, seq, t_first, t_last, signed_before=None):
    """None if ``window`` admits the reading (W7), else the first rule's ``Refusal``.

    ``t_first``/``t_last`` are the reading's record times, both None for an encrypted reading;
    ``signed_before`` is an upper bound on the signing time the caller knows (or None).
    """
    for rule, code, check in RULES:
        text = check(window, seq, t_first, t_last, signed_before)
        if text is not None:
            return Refusal(rule, code, text)
    return None


def _t(t):
    if t is None:
        return "unknown"
    if isinstance(t, float) and is_finite(t) and t != int(t):
        return "%.3f" % t
    return "%s" % (int(t) if is_finite(t) else t,)


# --------------------------------------------------------------------------- registry layout

def site_hash(site):
    """The contract's key for a site id: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(site.encode("utf-8")).digest()


def _u8_prefixed(b, what, limit):
    if not 0 < len(b) <= limit:
        raise ValueError("%s must be 1..%d bytes, found %d" % (what, limit, len(b)))
    return bytes([len(b)]) + b


def commitment_layout(site, device, alg, public_key, block_number, timestamp, first_seq):
    """The bytes the contract hashes at registration (EdgeLedgerAnchor.sol header comment)."""
    for name, v in (("block_number", block_number), ("timestamp", timestamp), ("first_seq", first_seq)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < U64:
            raise ValueError("%s must be an unsigned 64-bit integer, found %r" % (name, v))
    if isinstance(alg, bool) or not isinstance(alg, int) or not ALG_MIN <= alg <= ALG_MAX:
        raise ValueError("alg must be a 32-bit signed integer (a COSE algorithm id), found %r" % (alg,))
    return (bytes([COMMITMENT_VERSION]) + _u8_prefixed(site.encode("utf-8"), "site", MAX_ID_BYTES)
            + _u8_prefixed(device.encode("utf-8"), "device id", MAX_ID_BYTES)
            + (alg & 0xFFFFFFFF).to_bytes(4, "big")
            + _u8_prefixed(bytes(public_key), "public key", MAX_PUBLIC_KEY_BYTES)
            + block_number.to_bytes(8, "big") + timestamp.to_bytes(8, "big") + first_seq.to_bytes(8, "big"))


def key_commitment(site, device, alg, public_key, block_number, timestamp, first_seq):
    """SHA-256 of ``commitment_layout``: the value of the key entry's first storage slot."""
    return hashlib.sha256(commitment_layout(site, device, alg, public_key, block_number, timestamp,
                                            first_seq)).digest()

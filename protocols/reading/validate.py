"""Decoding and checking a reading payload (format in ``edgeledger.protocols.reading``):
the gateway's and the verifier's side, and ``encode_payload`` for whoever builds a payload
that must pass these checks (tests, tools).

Numbers are range-checked here, where they are decoded, so that nothing downstream
(time arithmetic, the SQLite store, batch headers) can overflow or store a NaN:

* ``v`` and ``s``: a finite float, or an integer in CBOR's own range
  (-2**64 .. 2**64-1: major types 0 and 1; larger values would need a bignum tag,
  which the device codec does not produce and the gateway does not accept);
* ``bt`` and ``t``: finite, at most ``MAX_TIME`` in magnitude, and every resolved
  record time (``bt + t``, RFC 8428 §4.6) within ``MIN_TIME .. MAX_TIME``.

A number outside these bounds raises ``PayloadRangeError`` (a PayloadError).
"""
from edgeledger.protocols import reading
from edgeledger.protocols.cbor.decoder import decode as cbor_decode
from edgeledger.protocols.cose.verify import lenient_decode, parse_encrypt0
from edgeledger.protocols.errors import CoseError, PayloadError
from edgeledger.protocols.keywindow import is_finite
from edgeledger.protocols.reading import (
    K_DEVICE,
    K_ENC,
    K_EPOCH,
    K_PACK,
    K_PREV,
    K_SEQ,
    K_VERSION,
    VERSION,
)


class PayloadRangeError(PayloadError):
    """A number in a reading payload is not finite or outside its named bounds (reading.py)."""


KNOWN_KEYS = (K_VERSION, K_DEVICE, K_SEQ, K_PREV, K_EPOCH, K_PACK, K_ENC)

BN, BT, BU, N, U, V, VS, VB, S, T = -2, -3, -4, 0, 1, 2, 3, 4, 5, 6
SENML_LABELS = {BN: "bn", BT: "bt", BU: "bu", N: "n", U: "u", V: "v", VS: "vs", VB: "vb", S: "s", T: "t"}

MAX_NAME_LEN = 128

# What each SenML label holds: text, a number, or a boolean (vb). Labels are looked up, so 1,
# 1.0 and True are the same label, as in the map itself.
_TEXT, _NUMBER, _BOOL = "text", "number", "bool"
_LABEL_KINDS = {BN: _TEXT, N: _TEXT, BU: _TEXT, U: _TEXT, VS: _TEXT, BT: _NUMBER, T: _NUMBER, V: _NUMBER,
                S: _NUMBER, VB: _BOOL}
_VALUES = (V, S)  # numbers with CBOR's integer range; the others (bt, t) are times

# Record times are Unix seconds. MAX_TIME = 2**32 is 2106-02-07, the end of unsigned
# 32-bit Unix time: far beyond the life of any device in the field, and small enough
# that every time up to it is exact to below a microsecond in a binary64 float (the
# store's REAL) and fits the batch header's 64-bit fields with room to spare. Times
# before 1970 (MIN_TIME) are no device's clock. How far a time may be from the
# gateway's clock is a separate, configurable check (the gateway's clock_skew_s).
MIN_TIME = 0
MAX_TIME = 2 ** 32
# SenML integer values: CBOR's own integer range (major types 0 and 1).
MIN_INT = -(2 ** 64)
MAX_INT = 2 ** 64 - 1


class Payload:
    """A decoded payload. ``pack`` is None when the values are encrypted (``enc``)."""

    __slots__ = ("device", "seq", "prev", "epoch", "pack", "enc")

    def __init__(self, device, seq, prev, epoch, pack=None, enc=None):
        self.device = device
        self.seq = seq
        self.prev = prev
        self.epoch = epoch
        self.pack = pack
        self.enc = enc


def encode_payload(device, seq, prev, epoch, pack=None, enc=None):
    """Deterministic CBOR bytes of a version 1 payload (pack or enc, not both).

    Raises PayloadError for any field that ``decode_payload`` would refuse,
    SenML records included (a board uses ``reading.encode_payload``, which checks the
    envelope only).
    """
    if pack is not None:
        check_pack(pack)
    return reading.encode_payload(device, seq, prev, epoch, pack, enc)


def decode_payload(data, decode=cbor_decode):
    """Decode and check payload bytes.

    Raises CborDecodeError (or what ``decode`` raises for bytes that are not CBOR),
    PayloadError for a missing or mistyped field, PayloadRangeError (a PayloadError)
    for a number out of its bounds.
    """
    return check_payload_map(decode(data))


def check_payload_map(body):
    """A Payload from a decoded payload map; raises PayloadError / PayloadRangeError."""
    if not isinstance(body, dict):
        raise PayloadError("payload must be a CBOR map, found %s" % type(body).__name__)
    for key in body:
        if key not in KNOWN_KEYS:
            raise PayloadError("unknown payload key %r" % (key,))
    if body.get(K_VERSION) != VERSION:
        raise PayloadError("payload version must be %d, found %r" % (VERSION, body.get(K_VERSION)))
    device, seq, prev, epoch = body.get(K_DEVICE), body.get(K_SEQ), body.get(K_PREV), body.get(K_EPOCH)
    pack, enc = body.get(K_PACK), body.get(K_ENC)
    reading.check_envelope(device, seq, prev, epoch, pack, enc)
    if pack is not None:
        check_pack(pack)
    else:
        check_enc(enc)
    return Payload(device, seq, prev, epoch, pack, enc)


def check_enc(enc):
    """The ``cose.encrypt.Encrypt0`` of an encrypted pack (payload key 7). Raises PayloadError
    unless it is a COSE_Encrypt0 of a known content alg (``cose/encrypt.py``). Its encoding is
    ``cose_verify.check_canonical``'s to check (rule encrypted_encoding), as the payload's is."""
    try:
        return parse_encrypt0(enc, lenient_decode)
    except (CoseError, ValueError) as e:
        raise PayloadError("enc (7): %s" % e)  # noqa: B904


def check_pack(pack):
    """Raise PayloadError unless ``pack`` is 1..MAX_RECORDS SenML records with known
    labels and values of the right types, PayloadRangeError unless every number is
    within its bounds (module docstring); returns ``pack``."""
    reading.check_pack_shape(pack)
    bt = 0
    for i, rec in enumerate(pack):
        if not isinstance(rec, dict):
            raise PayloadError("SenML record must be a map, found %s" % type(rec).__name__)
        for label, value in rec.items():
            kind = _LABEL_KINDS.get(label)
            if kind is None:
                raise PayloadError("unknown SenML label %r" % (label,))
            if kind is _TEXT:
                if not isinstance(value, str):
                    raise PayloadError("SenML %s must be text" % SENML_LABELS[label])
            elif kind is _NUMBER:
                # the common case inline: a finite float, or an int, within the label's range
                t = type(value)
                if t is float and value - value == 0.0 and (label in _VALUES or -MAX_TIME <= value <= MAX_TIME):
                    continue
                if t is int and (MIN_INT <= value <= MAX_INT if label in _VALUES else -MAX_TIME <= value <= MAX_TIME):
                    continue
                _check_number(value, label, i)  # says what is wrong (or passes a subclass of int/float)
            elif not isinstance(value, bool):
                raise PayloadError("SenML vb must be a boolean")
        if len(rec.get(N, "")) + len(rec.get(BN, "")) > MAX_NAME_LEN:
            raise PayloadError("SenML name longer than %d characters" % MAX_NAME_LEN)
        bt = rec.get(BT, bt)
        t = bt + rec.get(T, 0)
        if not MIN_TIME <= t <= MAX_TIME:
            raise PayloadRangeError("SenML record %d: time (bt + t) must be %d..%d (Unix seconds), found %r"
                                    % (i, MIN_TIME, MAX_TIME, t))
    return pack


def _check_number(value, label, i):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError("SenML %s must be a number, found %s" % (SENML_LABELS[label], type(value).__name__))
    if isinstance(value, float) and value - value != 0.0:  # NaN or infinite (math.isfinite is optional on MicroPython)
        raise PayloadRangeError("SenML record %d: %s must be a finite number, found %r"
                                % (i, SENML_LABELS[label], value))
    if label in (V, S):
        if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
            raise PayloadRangeError("SenML record %d: %s must be an integer in %d..%d, found %d"
                                    % (i, SENML_LABELS[label], MIN_INT, MAX_INT, value))
    elif not -MAX_TIME <= value <= MAX_TIME:
        raise PayloadRangeError("SenML record %d: %s must be -%d..%d seconds, found %r"
                                % (i, SENML_LABELS[label], MAX_TIME, MAX_TIME, value))


def resolve(pack):
    """Apply base fields (RFC 8428 §4.6): list of dicts with n, u, v/vs/vb, t."""
    out = []
    bn, bt, bu = "", 0, None
    for rec in pack:
        bn = rec.get(BN, bn)
        bt = rec.get(BT, bt)
        bu = rec.get(BU, bu)
        item = {"n": bn + rec.get(N, ""), "t": bt + rec.get(T, 0)}
        unit = rec.get(U, bu)
        if unit is not None:
            item["u"] = unit
        for label, key in ((V, "v"), (VS, "vs"), (VB, "vb"), (S, "s")):
            if label in rec:
                item[key] = rec[label]
        out.append(item)
    return out


def time_range(pack):
    """(first, last) record time of a pack, after base-time resolution.

    Raises PayloadError for a time that is not a finite number: NaN compares false with
    everything, so one NaN among the times would slip past every window and skew check.
    """
    bt = 0
    first = last = None
    for rec in pack:  # the times ``resolve`` gives, without building its records
        bt = rec.get(BT, bt)
        t = bt + rec.get(T, 0)
        kind = type(t)
        if not ((kind is float or kind is int) and t - t == 0) and not is_finite(t):  # inline: the common case
            raise PayloadError("SenML record time must be a finite number, found %r" % (t,))
        if first is None:
            first = last = t
        elif t < first:
            first = t
        elif t > last:
            last = t
    if first is None:
        raise ValueError("time_range of an empty pack")  # as min() of no times; check_pack refuses it
    return first, last


def names(pack):
    """The resolved name (``bn`` + ``n``, RFC 8428 §4.6) of each record of ``pack``, in order."""
    out = []
    bn = ""
    for rec in pack:
        bn = rec.get(BN, bn)
        out.append(bn + rec.get(N, ""))
    return out

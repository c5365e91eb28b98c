"""The signed reading payload, format version 1.

The COSE_Sign1 payload is a deterministic CBOR map with small integer keys::

    {
      1: 1,              ; format version
      2: "dev-01",       ; device id (same as in the topic)
      3: 42,             ; seq: per-device counter, never reused, persisted before use
      4: h'..32 bytes..',; prev: SHA-256 of this device's previous message (zeros for seq 1)
      5: 7,              ; epoch: boot counter of the device
      6: [ {...}, ... ]  ; SenML pack (RFC 8428 CBOR labels), one or many records
    }

Encoding lives in ``reading_encode.py`` (a board imports only that module);
this module re-exports its constants and adds decoding and full validation.

Instead of key 6 a device may send key 7, a byte string holding the pack
encrypted for the data owner (COSE_Encrypt0); the gateway then verifies,
chains and anchors the message without seeing the values.

SenML CBOR labels (RFC 8428 §6, Table 6) used here:
bn -2, bt -3, bu -4, n 0, u 1, v 2, vs 3, vb 4, s 5, t 6.
"""
from edgeledger.protocols import cbor
from edgeledger.protocols import reading_encode
from edgeledger.protocols.errors import PayloadError
from edgeledger.protocols.keywindow import is_finite
from edgeledger.protocols.reading_encode import (  # noqa: F401  (re-exported)
    HASH_LEN,
    K_DEVICE,
    K_ENC,
    K_EPOCH,
    K_PACK,
    K_PREV,
    K_SEQ,
    K_VERSION,
    MAX_RECORDS,
    MAX_SEQ,
    VERSION,
)

KNOWN_KEYS = (K_VERSION, K_DEVICE, K_SEQ, K_PREV, K_EPOCH, K_PACK, K_ENC)

BN, BT, BU, N, U, V, VS, VB, S, T = -2, -3, -4, 0, 1, 2, 3, 4, 5, 6
SENML_LABELS = {BN: "bn", BT: "bt", BU: "bu", N: "n", U: "u", V: "v", VS: "vs", VB: "vb", S: "s", T: "t"}

MAX_NAME_LEN = 128


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
    SenML records included (a board uses ``reading_encode.encode_payload``,
    which checks the envelope only).
    """
    if pack is not None:
        check_pack(pack)
    return reading_encode.encode_payload(device, seq, prev, epoch, pack, enc)


def decode_payload(data, decode=cbor.decode):
    """Decode and check payload bytes; raises CborDecodeError or PayloadError."""
    return check_payload_map(decode(data))


def check_payload_map(body):
    if not isinstance(body, dict):
        raise PayloadError("payload must be a CBOR map, found %s" % type(body).__name__)
    for key in body:
        if key not in KNOWN_KEYS:
            raise PayloadError("unknown payload key %r" % (key,))
    if body.get(K_VERSION) != VERSION:
        raise PayloadError("payload version must be %d, found %r" % (VERSION, body.get(K_VERSION)))
    device, seq, prev, epoch = body.get(K_DEVICE), body.get(K_SEQ), body.get(K_PREV), body.get(K_EPOCH)
    pack, enc = body.get(K_PACK), body.get(K_ENC)
    reading_encode.check_envelope(device, seq, prev, epoch, pack, enc)
    if pack is not None:
        check_pack(pack)
    return Payload(device, seq, prev, epoch, pack, enc)


def check_pack(pack):
    """Raise PayloadError unless ``pack`` is 1..MAX_RECORDS SenML records with known
    labels and values of the right types; returns ``pack``."""
    reading_encode.check_pack_shape(pack)
    for rec in pack:
        if not isinstance(rec, dict):
            raise PayloadError("SenML record must be a map, found %s" % type(rec).__name__)
        for label, value in rec.items():
            if label not in SENML_LABELS:
                raise PayloadError("unknown SenML label %r" % (label,))
            if label in (BN, N, BU, U, VS) and not isinstance(value, str):
                raise PayloadError("SenML %s must be text" % SENML_LABELS[label])
            if label in (BT, T, V, S) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise PayloadError("SenML %s must be a number" % SENML_LABELS[label])
            if label == VB and not isinstance(value, bool):
                raise PayloadError("SenML vb must be a boolean")
        if len(rec.get(N, "")) + len(rec.get(BN, "")) > MAX_NAME_LEN:
            raise PayloadError("SenML name longer than %d characters" % MAX_NAME_LEN)
    return pack


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
    times = [r["t"] for r in resolve(pack)]
    for t in times:
        if not is_finite(t):
            raise PayloadError("SenML record time must be a finite number, found %r" % (t,))
    return min(times), max(times)

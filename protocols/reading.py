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

Instead of key 6 a device may send key 7, a byte string holding the pack
encrypted for the data owner (COSE_Encrypt0); the gateway then verifies,
chains and anchors the message without seeing the values.

SenML CBOR labels (RFC 8428 §6, Table 6) used here:
bn -2, bt -3, bu -4, n 0, u 1, v 2, vs 3, vb 4, s 5, t 6.
"""
from edgeledger.protocols import cbor
from edgeledger.protocols.errors import PayloadError

VERSION = 1
K_VERSION, K_DEVICE, K_SEQ, K_PREV, K_EPOCH, K_PACK, K_ENC = 1, 2, 3, 4, 5, 6, 7
KNOWN_KEYS = (K_VERSION, K_DEVICE, K_SEQ, K_PREV, K_EPOCH, K_PACK, K_ENC)

BN, BT, BU, N, U, V, VS, VB, S, T = -2, -3, -4, 0, 1, 2, 3, 4, 5, 6
SENML_LABELS = {BN: "bn", BT: "bt", BU: "bu", N: "n", U: "u", V: "v", VS: "vs", VB: "vb", S: "s", T: "t"}

MAX_RECORDS = 4096  # a 1 kHz sensor packs 1000 samples per second; 4x headroom
MAX_SEQ = 2 ** 63 - 1  # fits SQLite's signed 64-bit integer
MAX_NAME_LEN = 128
HASH_LEN = 32


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
    """Deterministic CBOR bytes of a version 1 payload (pack or enc, not both)."""
    if (pack is None) == (enc is None):
        raise PayloadError("a payload carries exactly one of pack (6) or enc (7)")
    body = {K_VERSION: VERSION, K_DEVICE: device, K_SEQ: seq, K_PREV: prev, K_EPOCH: epoch}
    if pack is not None:
        body[K_PACK] = pack
    else:
        body[K_ENC] = enc
    check_payload_map(body)
    return cbor.encode(body)


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
    device = body.get(K_DEVICE)
    if not isinstance(device, str) or not 0 < len(device) <= 64:
        raise PayloadError("device id must be a text string of 1..64 characters, found %r" % (device,))
    seq = body.get(K_SEQ)
    if not _is_int(seq) or not 1 <= seq <= MAX_SEQ:
        raise PayloadError("seq must be an integer 1..2**63-1, found %r" % (seq,))
    prev = body.get(K_PREV)
    if not isinstance(prev, bytes) or len(prev) != HASH_LEN:
        raise PayloadError("prev must be %d bytes, found %r" % (HASH_LEN, _short(prev)))
    epoch = body.get(K_EPOCH)
    if not _is_int(epoch) or epoch < 0 or epoch > MAX_SEQ:
        raise PayloadError("epoch must be a non-negative integer, found %r" % (epoch,))
    pack = body.get(K_PACK)
    enc = body.get(K_ENC)
    if (pack is None) == (enc is None):
        raise PayloadError("payload must carry exactly one of pack (6) or enc (7)")
    if pack is not None:
        check_pack(pack)
    elif not isinstance(enc, bytes) or not enc:
        raise PayloadError("enc must be a non-empty byte string")
    return Payload(device, seq, prev, epoch, pack, enc)


def check_pack(pack):
    if not isinstance(pack, list) or not 0 < len(pack) <= MAX_RECORDS:
        raise PayloadError("pack must be an array of 1..%d SenML records" % MAX_RECORDS)
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
    """(first, last) record time of a pack, after base-time resolution."""
    times = [r["t"] for r in resolve(pack)]
    return min(times), max(times)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _short(x):
    if isinstance(x, bytes):
        return "%d bytes" % len(x)
    return x

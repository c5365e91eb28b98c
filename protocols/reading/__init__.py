"""The signed reading payload, format version 1.

The COSE_Sign1 payload is a deterministic CBOR map with small integer keys::

    {
      1: 1,              ; format version
      2: "dev-01",       ; device id (same as in the topic)
      3: 42,             ; seq: per-device counter, never reused, persisted before use
      4: h'..32 bytes..',; prev: the deployment's chain hash (SHA-256 or SM3, protocols/hashes.py)
                        ;   of this device's previous message (zeros for seq 1)
      5: 7,              ; epoch: boot counter of the device
      6: [ {...}, ... ]  ; SenML pack (RFC 8428 CBOR labels), one or many records
    }

Instead of key 6 a device may send key 7, a byte string holding the pack
encrypted for the data owner (COSE_Encrypt0, ``protocols/cose/encrypt.py``; made by
``agent/content_key.py``); the gateway then verifies, chains and anchors the message
without seeing the values.

SenML CBOR labels (RFC 8428 §6, Table 6) used here:
bn -2, bt -3, bu -4, n 0, u 1, v 2, vs 3, vb 4, s 5, t 6.

This module encodes, as a device does it: the device builds its packs itself, so its
encoder checks the envelope fields (the cheap checks that keep the wire format right).
``validate.py`` adds what the gateway and a verifier apply: decoding, and the per-record
rules of every SenML record (labels, value types, number ranges).
"""
from edgeledger.protocols import errors
from edgeledger.protocols.cbor import encode

VERSION = 1
K_VERSION, K_DEVICE, K_SEQ, K_PREV, K_EPOCH, K_PACK, K_ENC = 1, 2, 3, 4, 5, 6, 7

MAX_RECORDS = 4096  # a 1 kHz sensor packs 1000 samples per second; 4x headroom
MAX_SEQ = 2 ** 63 - 1  # fits SQLite's signed 64-bit integer
MAX_DEVICE_LEN = 64
HASH_LEN = 32


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def check_envelope(device, seq, prev, epoch, pack, enc):
    """Raise PayloadError unless the fields outside the pack are well-formed."""
    if (pack is None) == (enc is None):
        raise errors.PayloadError("payload must carry exactly one of pack (6) or enc (7)")
    if not isinstance(device, str) or not 0 < len(device) <= MAX_DEVICE_LEN:
        raise errors.PayloadError("device id must be a text string of 1..%d characters, found %r"
                           % (MAX_DEVICE_LEN, device))
    if not _is_int(seq) or not 1 <= seq <= MAX_SEQ:
        raise errors.PayloadError("seq must be an integer 1..2**63-1, found %r" % (seq,))
    if not isinstance(prev, bytes) or len(prev) != HASH_LEN:
        raise errors.PayloadError("prev must be %d bytes, found %r"
                           % (HASH_LEN, "%d bytes" % len(prev) if isinstance(prev, bytes) else prev))
    if not _is_int(epoch) or not 0 <= epoch <= MAX_SEQ:
        raise errors.PayloadError("epoch must be a non-negative integer, found %r" % (epoch,))
    if pack is not None:
        check_pack_shape(pack)
    elif not isinstance(enc, bytes) or not enc:
        raise errors.PayloadError("enc must be a non-empty byte string")


def check_pack_shape(pack):
    """Raise PayloadError unless ``pack`` is a list of 1..MAX_RECORDS items."""
    if not isinstance(pack, list) or not 0 < len(pack) <= MAX_RECORDS:
        raise errors.PayloadError("pack must be an array of 1..%d SenML records" % MAX_RECORDS)


def with_base_fields(pack):
    """The records of ``pack`` with SenML base fields (RFC 8428 §4.1, §4.6), for a smaller
    message that resolves (``validate.resolve``) to the same names, units, values and times.

    The first record gets ``bn`` (the longest common name prefix, cut after a "/" unless
    every name is the same), ``bt`` (the first record's time) when every record has a time
    that the base time plus an offset gives back exactly (value and type), and ``bu`` (the
    first record's unit) when every record has a unit; each record then keeps only its
    name suffix, its time offset (left out when 0) and a unit that differs from ``bu``. A
    single record and a pack that already has base fields are returned as they are.
    """
    if len(pack) < 2 or any(-4 in r or -3 in r or -2 in r or 0 not in r for r in pack):
        return pack
    first = pack[0]
    bn = first[0]
    for rec in pack:
        while bn and not rec[0].startswith(bn):
            bn = bn[:bn.rfind("/", 0, len(bn) - 1) + 1]
    bt = first.get(6)
    for rec in pack:
        t = rec.get(6)
        if t is None or bt is None or bt + (t - bt) != t or type(bt + (t - bt)) is not type(t):
            bt = None  # no exact offset for some record: each keeps its own time
            break
    bu = first.get(1) if all(1 in r for r in pack) else None
    out = []
    for rec in pack:
        r = dict(rec)
        if bn:
            r[0] = rec[0][len(bn):]
            if not r[0]:
                del r[0]
        if bt is not None:
            if rec[6] == bt and type(rec[6]) is type(bt):
                del r[6]
            else:
                r[6] = rec[6] - bt
        if bu is not None and rec[1] == bu:
            del r[1]
        out.append(r)
    if bn:
        out[0][-2] = bn
    if bt is not None:
        out[0][-3] = bt
    if bu is not None:
        out[0][-4] = bu
    return out


def encode_payload(device, seq, prev, epoch, pack=None, enc=None):
    """Deterministic CBOR bytes of a version 1 payload (pack or enc, not both).

    Raises PayloadError when a field outside the pack is malformed (records are
    not checked here; ``reading.encode_payload`` checks them too).
    """
    check_envelope(device, seq, prev, epoch, pack, enc)
    return encode({K_VERSION: VERSION, K_DEVICE: device, K_SEQ: seq, K_PREV: prev,
                   K_EPOCH: epoch, K_ENC if pack is None else K_PACK: enc if pack is None else pack})

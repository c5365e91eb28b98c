"""Every other encoding of one genuine signed reading, built the way an attacker or a foreign
encoder would write it: the cases the canonical-form rules (protocols/cose/verify.py) must refuse.

``CASES`` is the table: case name -> (the deviation it must be refused as, the builder).
A builder takes the genuine message bytes and the device signer and returns the other
encoding. Envelope cases change only unsigned bytes (anyone on the path can do them);
``high_s_*`` flip the signature to its twin; the ``protected_*``, ``crit`` and ``payload_*``
cases are validly signed by the device key over a non-deterministic protected header or
payload (a foreign or buggy encoder on the device), ``encrypted_*`` over a payload whose
encrypted pack (a COSE_Encrypt0) is not in its one encoding. ``trailing_bytes`` is not one CBOR item
at all and is refused as malformed (``MALFORMED``).
"""
import struct

from edgeledger.protocols import cbor, cose
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cose import verify as cose_verify

MALFORMED = "malformed"  # not a deviation: refused by the decoder (malformed_cbor at the gateway)


def parts(message):
    """(protected, payload, signature) of a canonical message."""
    m = cose_verify.parse_canonical(message)
    return m.protected, m.payload, m.signature


def _bstr(b):
    return cbor.encode(bytes(b))


def envelope(protected, payload, signature, tag=b"\xd2", array=b"\x84", unprotected=b"\xa0",
             protected_bstr=None, payload_bstr=None):
    return (tag + array + (protected_bstr or _bstr(protected)) + unprotected
            + (payload_bstr or _bstr(payload)) + _bstr(signature))


def resign(signer, protected, payload):
    """The message the device key signs over these exact protected and payload bytes."""
    return envelope(protected, payload, signer.sign(cose.sig_structure(protected, payload)))


def _entries(m, override=()):
    """[(encoded key, encoded value)] of a map, values in ``override`` written as given."""
    override = dict(override)
    return [(cbor.encode(k), override[k] if k in override else cbor.encode(v)) for k, v in m.items()]


def _map(entries, order=sorted, head=None, tail=b""):
    head = bytes([0xA0 + len(entries)]) if head is None else head  # maps of < 24 entries
    return head + b"".join(k + v for k, v in order(entries)) + tail


def _payload_variant(message, signer, **kw):
    protected, payload, _ = parts(message)
    body = cbor_decoder.decode(payload)
    override = kw.pop("override", ())
    return resign(signer, protected, _map(_entries(body, override), **kw))


def _protected_variant(message, signer, header, order=sorted, head=None, override=()):
    _, payload, _ = parts(message)
    return resign(signer, _map(_entries(header, override), order, head), payload)


def _header(message, **extra):
    """The protected header map of ``message``, with ``extra`` labels (``l33=...`` is 33)."""
    m = cose_verify.parse_canonical(message)
    header = {cose.HDR_ALG: m.alg, cose.HDR_KID: m.kid}
    for label, value in extra.items():
        header[int(label[1:])] = value
    return header


def _first_record_value_as_double(message):
    body = cbor_decoder.decode(parts(message)[1])
    rec = body[6][0]
    rec_entries = _entries(rec, {2: b"\xfb" + struct.pack(">d", float(rec[2]))})
    return bytes([0x80 + len(body[6])]) + _map(rec_entries) + b"".join(cbor.encode(r) for r in body[6][1:])


def _flip_s(message, order, group):
    protected, payload, sig = parts(message)
    s = int.from_bytes(sig[32:], order)
    return envelope(protected, payload, sig[:32] + (s + group if order == "little" else group - s).to_bytes(32, order))


def _encrypted_variant(message, signer, tag_head=b"\xd8\x10"):
    """``message`` with its pack encrypted for the test data owner (tests/support/devices.py),
    the COSE_Encrypt0's tag 16 written ``tag_head``, signed by the device key."""
    from edgeledger.agent.content_key import ContentKey
    from tests.support.devices import OWNER_KEY

    protected, payload, _ = parts(message)
    body = cbor_decoder.decode(payload)
    enc = ContentKey("AES-CCM-16-64-128", OWNER_KEY).seal(body[2], body[3], cbor.encode(body.pop(6)))
    body[7] = tag_head + enc[1:]
    return resign(signer, protected, cbor.encode(body))


# case -> (deviation, algorithms it applies to, builder(message, signer))
CASES = {
    # unsigned bytes: anyone who can publish on the topic can write these
    "untagged": ("untagged", None, lambda m, s: m[1:]),
    "tag_head_d8_12": ("envelope_encoding", None, lambda m, s: b"\xd8\x12" + m[1:]),
    "array_head_98_04": ("envelope_encoding", None, lambda m, s: m[:1] + b"\x98\x04" + m[2:]),
    "bstr_head_non_minimal": ("envelope_encoding", None, lambda m, s: envelope(
        *parts(m), payload_bstr=b"\x59" + struct.pack(">H", len(parts(m)[1])) + parts(m)[1])),
    "indefinite_array": ("envelope_encoding", None, lambda m, s: m[:1] + b"\x9f" + m[2:] + b"\xff"),
    "indefinite_payload_bstr": ("envelope_encoding", None, lambda m, s: envelope(
        *parts(m), payload_bstr=b"\x5f" + _bstr(parts(m)[1]) + b"\xff")),
    "unprotected_kid": ("unprotected_header", None, lambda m, s: envelope(
        *parts(m), unprotected=cbor.encode({cose.HDR_KID: _header(m)[cose.HDR_KID]}))),
    "unprotected_unknown_label": ("unprotected_header", None, lambda m, s: envelope(
        *parts(m), unprotected=cbor.encode({99: "x"}))),
    "high_s_es256": ("high_s", cose.ES256, lambda m, s: _flip_s(m, "big", cose_verify.P256_N)),
    "high_s_eddsa_s_plus_l": ("high_s", cose.EDDSA, lambda m, s: _flip_s(m, "little", cose_verify.ED25519_L)),
    # signed by the device key, but not deterministic CBOR / not exactly {1: alg, 4: kid}
    "crit": ("crit", None, lambda m, s: resign(s, cbor.encode(_header(m, l2=[4])), parts(m)[1])),
    "protected_label": ("protected_label", None, lambda m, s: resign(
        s, cbor.encode(_header(m, l33=b"x")), parts(m)[1])),
    "protected_unsorted": ("protected_encoding", None, lambda m, s: _protected_variant(
        m, s, _header(m), order=lambda e: sorted(e, reverse=True))),
    "protected_non_minimal_alg": ("protected_encoding", None, lambda m, s: _protected_variant(
        m, s, _header(m), override={cose.HDR_ALG: b"\x38" + bytes([-1 - _header(m)[cose.HDR_ALG]])})),
    "payload_non_minimal_int": ("payload_encoding", None, lambda m, s: _payload_variant(
        m, s, override={3: b"\x1b" + struct.pack(">Q", cbor_decoder.decode(parts(m)[1])[3])})),
    "payload_unsorted_keys": ("payload_encoding", None, lambda m, s: _payload_variant(
        m, s, order=lambda e: sorted(e, reverse=True))),
    "payload_indefinite_map": ("payload_encoding", None, lambda m, s: _payload_variant(
        m, s, head=b"\xbf", tail=b"\xff")),
    "payload_float_not_shortest": ("payload_encoding", None, lambda m, s: _payload_variant(
        m, s, override={6: _first_record_value_as_double(m)})),
    # signed by the device key, the payload deterministic, the COSE_Encrypt0 inside it not
    "encrypted_tag_head_d8_10": ("encrypted_encoding", None, _encrypted_variant),
    # not one CBOR item: bytes after the message
    "trailing_bytes": (MALFORMED, None, lambda m, s: m + b"\x00"),
}


def cases_for(alg):
    """[(case name, deviation, builder)] that apply to messages signed with ``alg``."""
    return [(name, dev, build) for name, (dev, only, build) in sorted(CASES.items()) if only in (None, alg)]

"""Small session messages beside the readings: birth, death and end-to-end ack.

All are deterministic CBOR maps with integer keys.

* ack (gateway -> device, retained, QoS 1): ``{1: seq}`` — the highest seq such
  that every seq from 1 up to it is durably stored by the gateway. The device
  deletes records up to it from its outbox; nothing else deletes them.
* birth (device -> anyone, retained): ``{1: agent version, 2: kid, 3: last seq,
  4: epoch, 5: {counter name: count}}``.
* death (the broker publishes it as the device's last will): ``{1: epoch, 2: "offline"}``.

A board imports this module with the encoder only: its one decode, the ack,
reads the ack's single deterministic encoding byte by byte (``decode_ack``);
the full decoder (``cbor/decoder.py``) is imported on first use by ``decode_birth``
or when a caller passes ``decode``.
"""
from edgeledger.protocols.cbor import encode
from edgeledger.protocols.errors import DecodeError


class SessionMessageError(DecodeError):
    """A birth, death or ack message does not have the expected fields (session.py)."""


def encode_ack(seq):
    return encode({1: seq})


def _ack_seq(data):
    """seq of ``a1 01 <unsigned int head>`` in its shortest form (RFC 8949 §4.2.1), or -1."""
    n = len(data)
    if n < 3 or data[0] != 0xA1 or data[1] != 0x01 or data[2] > 27:
        return -1
    ai = data[2]
    if ai < 24:
        return ai if n == 3 else -1
    k = 1 << (ai - 24)  # 1, 2, 4 or 8 argument bytes
    if n != 3 + k:
        return -1
    seq = int.from_bytes(bytes(data[3:]), "big")
    return seq if seq >= (24 if k == 1 else 1 << (4 * k)) else -1


def decode_ack(data, decode=None):
    """The seq of an ack message. Raises SessionMessageError (a ValueError).

    Without ``decode`` the bytes must be the ack's deterministic encoding
    (``encode_ack`` output: what the gateway sends); with ``decode`` (e.g.
    ``cbor2.loads``) any map with key 1 is read, and ``decode``'s own errors
    propagate.
    """
    if decode is None:
        seq = _ack_seq(data)
        if seq < 0:
            raise SessionMessageError(
                "ack must be the CBOR map {1: seq >= 0}, found %d bytes %s"
                % (len(data), bytes(data[:12]).hex()))
        return seq
    body = decode(data)
    seq = body.get(1) if isinstance(body, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SessionMessageError("ack must be {1: seq >= 0}, found %r" % (body,))
    return seq


def encode_birth(version, kid, last_seq, epoch, counters):
    return encode({1: version, 2: kid, 3: last_seq, 4: epoch, 5: counters})


def decode_birth(data, decode=None):
    """Fields of a birth message as a dict. Raises CborDecodeError, SessionMessageError."""
    if decode is None:
        from edgeledger.protocols.cbor.decoder import decode
    body = decode(data)
    if not isinstance(body, dict) or not isinstance(body.get(3), int):
        raise SessionMessageError("birth must be a map with 3: last seq, found %r" % (body,))
    return {"version": body.get(1), "kid": body.get(2), "last_seq": body.get(3),
            "epoch": body.get(4), "counters": body.get(5) or {}}


def encode_death(epoch):
    return encode({1: epoch, 2: "offline"})

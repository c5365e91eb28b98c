"""Small session messages beside the readings: birth, death and end-to-end ack.

All are deterministic CBOR maps with integer keys.

* ack (gateway -> device, retained, QoS 1): ``{1: seq}`` — the highest seq such
  that every seq from 1 up to it is durably stored by the gateway. The device
  deletes records up to it from its outbox; nothing else deletes them.
* birth (device -> anyone, retained): ``{1: agent version, 2: kid, 3: last seq,
  4: epoch, 5: {counter name: count}}``.
* death (the broker publishes it as the device's last will): ``{1: epoch, 2: "offline"}``.
"""
from edgeledger.protocols import cbor
from edgeledger.protocols.errors import DecodeError


class SessionMessageError(DecodeError):
    """A birth, death or ack message does not have the expected fields."""


def encode_ack(seq):
    return cbor.encode({1: seq})


def decode_ack(data, decode=cbor.decode):
    body = decode(data)
    seq = body.get(1) if isinstance(body, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SessionMessageError("ack must be {1: seq >= 0}, found %r" % (body,))
    return seq


def encode_birth(version, kid, last_seq, epoch, counters):
    return cbor.encode({1: version, 2: kid, 3: last_seq, 4: epoch, 5: counters})


def decode_birth(data, decode=cbor.decode):
    body = decode(data)
    if not isinstance(body, dict) or not isinstance(body.get(3), int):
        raise SessionMessageError("birth must be a map with 3: last seq, found %r" % (body,))
    return {"version": body.get(1), "kid": body.get(2), "last_seq": body.get(3),
            "epoch": body.get(4), "counters": body.get(5) or {}}


def encode_death(epoch):
    return cbor.encode({1: epoch, 2: "offline"})

"""MQTT topic names, version 1.

Every device has its own subtree so that broker ACLs can confine a device to it::

    el/v1/<site>/<device>/r       readings: COSE_Sign1 messages, QoS 1   (device -> gateway)
    el/v1/<site>/<device>/birth   retained session info on connect      (device -> anyone)
    el/v1/<site>/<device>/death   last will: the device went away       (broker -> anyone)
    el/v1/<site>/<device>/ack     retained end-to-end ack               (gateway -> device)
    el/v1/<site>/<device>/cmd     commands                              (gateway -> device)

Site and device ids are 1..64 characters of ``A-Z a-z 0-9 _ - .``; MQTT wildcards
and the level separator can therefore never appear inside an id.
"""
from edgeledger.protocols.errors import DecodeError


class TopicError(DecodeError):
    """A topic or an id in it is not in the v1 namespace (topics.py)."""


PREFIX = "el/v1"
KINDS = ("r", "birth", "death", "ack", "cmd")
MAX_ID_LEN = 64  # keeps a whole topic far below MQTT's 65535-byte limit

_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."


def check_id(value, what="id"):
    """Return ``value`` if it is a valid site/device id, else raise TopicError."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LEN:
        raise TopicError("%s must be 1..%d characters, got %r" % (what, MAX_ID_LEN, value))
    for ch in value:
        if ch not in _ID_CHARS:
            raise TopicError("%s %r contains %r; allowed: letters, digits, _ - ."
                                    % (what, value, ch))
    return value


def topic(site, device, kind):
    if kind not in KINDS:
        raise TopicError("topic kind must be one of %s, got %r" % (KINDS, kind))
    return "%s/%s/%s/%s" % (PREFIX, check_id(site, "site"), check_id(device, "device id"), kind)


def readings(site, device):
    return topic(site, device, "r")


def birth(site, device):
    return topic(site, device, "birth")


def death(site, device):
    return topic(site, device, "death")


def ack(site, device):
    return topic(site, device, "ack")


def cmd(site, device):
    return topic(site, device, "cmd")


def subscription(kind, site="+"):
    """Filter for one kind of topic on one site (default: every site)."""
    if kind not in KINDS:
        raise TopicError("topic kind must be one of %s, got %r" % (KINDS, kind))
    if site != "+":
        check_id(site, "site")
    return "%s/%s/+/%s" % (PREFIX, site, kind)


def parse(name):
    """Split a topic into ``(site, device, kind)``; raise TopicError if it is not ours."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] + "/" + parts[1] != PREFIX:
        raise TopicError("expected %s/<site>/<device>/<kind>, got %r" % (PREFIX, name))
    if parts[4] not in KINDS:
        raise TopicError("unknown topic kind %r in %r" % (parts[4], name))
    return check_id(parts[2], "site"), check_id(parts[3], "device id"), parts[4]


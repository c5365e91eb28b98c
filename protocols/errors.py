"""The exception root of ``edgeledger.protocols``.

Every error raised by the codecs and rules in this package derives from
``ProtocolError``, which is itself a ``ValueError``: everything this package
can complain about is a bad value (bytes from a peer, a file or a field bus, or a
value that cannot be encoded). MicroPython cannot derive one class from two
built-in exception types ("multiple bases have instance lay-out conflict"), so
the root takes ``ValueError`` directly instead of mixing it in lower down.
Messages say what was expected and what was found.

The classes are listed in ``CLASSES`` (name: base) rather than written as class
statements: on a board each class costs ~250 B of heap, and the agent's happy
path raises none of them, so under MicroPython a class is built on first use
through this module's ``__getattr__`` (``errors.CoseError`` and ``from
edgeledger.protocols.errors import CoseError`` both work). CPython builds them
all at import (the gateway is multi-threaded; a class must be built once).
"""
import sys

CLASSES = {
    # Root of every error raised in edgeledger.protocols.
    "ProtocolError": ValueError,
    # Input bytes are not a well-formed instance of the expected format.
    "DecodeError": "ProtocolError",
    # A value cannot be encoded in the requested format.
    "EncodeError": "ProtocolError",
    # Malformed, truncated, non-deterministic, over-deep or over-long CBOR.
    "CborDecodeError": "DecodeError",
    # A COSE structure is malformed or uses an unsupported algorithm.
    "CoseError": "DecodeError",
    # A COSE_Sign1 that is not in the one accepted encoding of its content (cose.py,
    # "canonical form" in docs/wire-format.md); its ``deviation`` names the rule it breaks.
    "NonCanonicalMessage": "CoseError",
    # A broker URL that is not mqtt://host[:port] or mqtts://host[:port] (broker_url.py).
    "BrokerUrlError": "DecodeError",
    # A COSE algorithm id or name this device code does not support (agent/signer.py).
    "UnknownAlgorithmError": "CoseError",
    # A signature does not verify against the given key.
    "SignatureError": "ProtocolError",
    # A reading payload is missing a field or has a field of the wrong type.
    "PayloadError": "DecodeError",
    # A number in a reading payload is not finite or outside its named bounds (reading.py).
    "PayloadRangeError": "PayloadError",
    # A birth, death or ack message does not have the expected fields (session.py).
    "SessionMessageError": "DecodeError",
    # A topic or an id in it is not in the v1 namespace (topics.py).
    "TopicError": "DecodeError",
    # A device key file is malformed or its fields disagree (agent/key_file.py).
    "KeyFileError": "DecodeError",
    # A field-bus frame failed its CRC/BCC or has an impossible layout.
    "FrameError": "DecodeError",
    # A DNS answer is malformed, not ours, an error, or has no IPv4 address (dns.py).
    "DnsError": "DecodeError",
}


def class_from_table(table, namespace, name, module):
    """Class ``name`` of ``table`` (name: base name or built-in), built once into ``namespace``.

    Also used by ``agent/errors.py``. Raises AttributeError for a name not in the table.
    """
    base = table.get(name)
    if base is None:
        raise AttributeError("module %s has no attribute %r" % (module, name))
    if isinstance(base, str):
        base = namespace.get(base) or class_from_table(table, namespace, base, module)
    cls = namespace[name] = type(name, (base,), {"__module__": module})
    return cls


def build_all(table, namespace, module):
    """On CPython, every class of ``table`` now (threads must all see one class per name)."""
    if sys.implementation.name != "micropython":
        for name in table:
            if name not in namespace:
                class_from_table(table, namespace, name, module)


def __getattr__(name):
    return class_from_table(CLASSES, globals(), name, __name__)


build_all(CLASSES, globals(), __name__)

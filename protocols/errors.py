"""The exception root of ``edgeledger.protocols``.

Every error raised by the codecs and rules in this package derives from
``ProtocolError``, which is itself a ``ValueError``: everything this package
can complain about is a bad value (bytes from a peer, a file or a field bus, or a
value that cannot be encoded). MicroPython cannot derive one class from two
built-in exception types ("multiple bases have instance lay-out conflict"), so
the root takes ``ValueError`` directly instead of mixing it in lower down.
Messages say what was expected and what was found.
"""


class ProtocolError(ValueError):
    """Root of every error raised in edgeledger.protocols."""


class DecodeError(ProtocolError):
    """Input bytes are not a well-formed instance of the expected format."""


class EncodeError(ProtocolError):
    """A value cannot be encoded in the requested format."""


class CborDecodeError(DecodeError):
    """Malformed, truncated, non-deterministic, over-deep or over-long CBOR."""


class CoseError(DecodeError):
    """A COSE structure is malformed or uses an unsupported algorithm."""


class NonCanonicalMessage(CoseError):
    """A COSE_Sign1 that is not in the one accepted encoding of its content (cose.py,
    "canonical form" in docs/wire-format.md); its ``deviation`` names the rule it breaks."""


class BrokerUrlError(DecodeError):
    """A broker URL that is not mqtt://host[:port] or mqtts://host[:port] (broker_url.py)."""


class UnknownAlgorithmError(CoseError):
    """A COSE algorithm id or name this device code does not support (agent/signer.py)."""


class SignatureError(ProtocolError):
    """A signature does not verify against the given key."""


class PayloadError(DecodeError):
    """A reading payload is missing a field or has a field of the wrong type."""


class PayloadRangeError(PayloadError):
    """A number in a reading payload is not finite or outside its named bounds (reading.py)."""


class SessionMessageError(DecodeError):
    """A birth, death or ack message does not have the expected fields (session.py)."""


class TopicError(DecodeError):
    """A topic or an id in it is not in the v1 namespace (topics.py)."""


class KeyFileError(DecodeError):
    """A device key file is malformed or its fields disagree (agent/key_file.py)."""


class FrameError(DecodeError):
    """A field-bus frame failed its CRC/BCC or has an impossible layout."""


class DnsError(DecodeError):
    """A DNS answer is malformed, not ours, an error, or has no IPv4 address (dns.py)."""


class MqttPacketError(DecodeError):
    """Bytes that are not an MQTT 3.1.1 packet as protocols/mqtt.py speaks it (a length over
    four bytes or over the bound, a topic that overruns its packet or is not UTF-8)."""

"""The exception root of ``edgeledger.protocols``.

Every error raised by the codecs and rules in this package derives from
``ProtocolError``, which is itself a ``ValueError``: everything this package
can complain about is a bad value (bytes from a peer, a file or a field bus, or a
value that cannot be encoded). MicroPython cannot derive one class from two
built-in exception types ("multiple bases have instance lay-out conflict"), so
the root takes ``ValueError`` directly instead of mixing it in lower down.
Messages say what was expected and what was found.

This module holds the root and the bases several modules share; an error that one module
raises is defined in that module, beside the code that raises it (``cbor.decoder``'s
CborDecodeError, ``session``'s SessionMessageError, ``mqtt``'s MqttPacketError, ...), so a
board builds only the classes of the modules it imports.
"""


class ProtocolError(ValueError):
    """Root of every error raised in edgeledger.protocols."""


class DecodeError(ProtocolError):
    """Input bytes are not a well-formed instance of the expected format."""


class EncodeError(ProtocolError):
    """A value cannot be encoded in the requested format."""


class CoseError(DecodeError):
    """A COSE structure is malformed or uses an unsupported algorithm."""


class UnknownAlgorithmError(CoseError):
    """A COSE algorithm id or name this device code does not support (agent/signer.py)."""


class SignatureError(ProtocolError):
    """A signature does not verify against the given key."""


class PayloadError(DecodeError):
    """A reading payload is missing a field or has a field of the wrong type."""


class FrameError(DecodeError):
    """A field-bus frame failed its CRC/BCC or has an impossible layout."""

# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Device key files: the text format (JSON, so a board reads it with ``json``)::

  {"device": "...", "alg": "EdDSA"|"ES256"|"SM2", "private": hex, "public": hex, "kid": hex}

This module is the format only: writing the text and reading its fields back, checked for
shape. Whether ``public`` and ``kid`` belong to ``private`` needs the signer's curve code:
``agent/key_file.py`` checks that on devices, the gateway's key code on the host. Setting
the file mode is the caller's job.
"""
import json

from edgeledger.protocols.errors import DecodeError


class KeyFileError(DecodeError):
    """A device key file is malformed or its fields disagree (agent/key_file.py)."""


# A key file is five short fields; anything much larger is not a key file.
KEY_FILE_MAX = 4096


def encode(device_id, alg_name, private, public, kid):
    """The JSON text of a key file (fixed field order, trailing newline)."""
    return ('{"device": %s, "alg": "%s", "private": "%s", "public": "%s", "kid": "%s"}\n'
            % (json.dumps(device_id), alg_name, bytes(private).hex(), bytes(public).hex(), bytes(kid).hex()))


def _hex_field(doc, name):
    v = doc.get(name)
    if not isinstance(v, str):
        raise KeyFileError("key file field %r: expected a hex string, found %r" % (name, type(v).__name__))
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise KeyFileError("key file field %r: expected hex digits, found %r" % (name, v[:20]))


def decode(text):
    """(device, alg name, private, public or None, kid or None) from key file text.
    Raises KeyFileError for anything that is not a key file's shape."""
    if len(text) > KEY_FILE_MAX:
        raise KeyFileError("key file: expected at most %d bytes, found %d" % (KEY_FILE_MAX, len(text)))
    try:
        doc = json.loads(text)
    except ValueError:
        raise KeyFileError("key file: expected a JSON object, found unparsable text")
    if not isinstance(doc, dict):
        raise KeyFileError("key file: expected a JSON object, found %s" % type(doc).__name__)
    device = doc.get("device")
    if not isinstance(device, str):
        raise KeyFileError("key file field 'device': expected a string, found %r" % (device,))
    alg = doc.get("alg")
    if not isinstance(alg, str):
        raise KeyFileError("key file field 'alg': expected a string, found %r" % (alg,))
    private = _hex_field(doc, "private")
    public = _hex_field(doc, "public") if "public" in doc else None
    kid = _hex_field(doc, "kid") if "kid" in doc else None
    return device, alg, private, public, kid

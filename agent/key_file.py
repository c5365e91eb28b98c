"""Device key files: the JSON a board reads its signing key from.

One object (JSON, so a board reads it with ``json``)::

  {"device": "...", "alg": "EdDSA"|"ES256"|"SM2", "private": hex, "public": hex, "kid": hex}

Setting the file mode is the CLI's job, not this module's. Everything here is
also reachable as ``signer.<name>``.
"""
import json

from edgeledger.agent.signer import KeySigner
from edgeledger.protocols import errors

# A key file is five short fields; anything much larger is not a key file.
KEY_FILE_MAX = 4096


def key_file_content(device_id, alg, private):
    """The JSON text of a key file (fixed field order, trailing newline)."""
    s = KeySigner(alg, private, device_id)
    return ('{"device": %s, "alg": "%s", "private": "%s", "public": "%s", "kid": "%s"}\n'
            % (json.dumps(device_id), s.alg_name, bytes(private).hex(), s.public_key.hex(),
               s.kid.hex()))


def _hex_field(doc, name):
    v = doc.get(name)
    if not isinstance(v, str):
        raise errors.KeyFileError("key file field %r: expected a hex string, found %r"
                           % (name, type(v).__name__))
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise errors.KeyFileError("key file field %r: expected hex digits, found %r"
                                  % (name, v[:20]))


def parse_key_file(text):
    """KeySigner from key file text.

    Raises KeyFileError if the text is not a key file or if ``public``/``kid``
    do not belong to ``private``; UnknownAlgorithmError for an unknown ``alg``.
    """
    if len(text) > KEY_FILE_MAX:
        raise errors.KeyFileError("key file: expected at most %d bytes, found %d"
                           % (KEY_FILE_MAX, len(text)))
    try:
        doc = json.loads(text)
    except ValueError:
        raise errors.KeyFileError("key file: expected a JSON object, found unparsable text")
    if not isinstance(doc, dict):
        raise errors.KeyFileError("key file: expected a JSON object, found %s"
                                  % type(doc).__name__)
    device = doc.get("device")
    if not isinstance(device, str):
        raise errors.KeyFileError("key file field 'device': expected a string, found %r"
                                  % (device,))
    alg = doc.get("alg")
    if not isinstance(alg, str):
        raise errors.KeyFileError("key file field 'alg': expected a string, found %r" % (alg,))
    private = _hex_field(doc, "private")
    try:
        signer = KeySigner(alg, private, device)
    except errors.UnknownAlgorithmError as e:
        raise e
    except ValueError as e:
        raise errors.KeyFileError("key file field 'private': %s" % e)
    if "public" in doc and _hex_field(doc, "public") != signer.public_key:
        raise errors.KeyFileError("key file field 'public': expected %s (derived from 'private'), "
                           "found another key" % signer.public_key.hex())
    if "kid" in doc and _hex_field(doc, "kid") != signer.kid:
        raise errors.KeyFileError("key file field 'kid': expected %s, found %s"
                           % (signer.kid.hex(), doc["kid"]))
    return signer


def load_key_file(path):
    """KeySigner from a key file. Raises OSError, KeyFileError, UnknownAlgorithmError."""
    with open(path) as f:
        text = f.read(KEY_FILE_MAX + 1)
    return parse_key_file(text)


def __getattr__(name):
    # ``KeyFileError`` is ``protocols.errors.KeyFileError``, built on first use (errors.py)
    if name == "KeyFileError":
        return errors.KeyFileError
    raise AttributeError("module edgeledger.agent.key_file has no attribute %r" % (name,))

# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Device key files: the JSON a board reads its signing key from.

The format is ``protocols/key_file.py``; this module adds the signer: it derives the
public key and kid from the private key and checks the file's copies. Setting the file
mode is the CLI's job, not this module's. Errors: ``KeyFileError`` (protocols/key_file.py)
and ``UnknownAlgorithmError`` (protocols/errors.py).
"""
from edgeledger.agent.signer import KeySigner
from edgeledger.protocols import errors
from edgeledger.protocols import key_file as fmt
from edgeledger.protocols.key_file import KEY_FILE_MAX


def key_file_content(device_id, alg, private):
    """The JSON text of a key file (protocols/key_file.py) for ``private``."""
    s = KeySigner(alg, private, device_id)
    return fmt.encode(device_id, s.alg_name, private, s.public_key, s.kid)


def parse_key_file(text):
    """KeySigner from key file text.

    Raises KeyFileError if the text is not a key file or if ``public``/``kid``
    do not belong to ``private``; UnknownAlgorithmError for an unknown ``alg``.
    """
    device, alg, private, public, kid = fmt.decode(text)
    try:
        signer = KeySigner(alg, private, device)
    except errors.UnknownAlgorithmError as e:
        raise e
    except ValueError as e:
        raise fmt.KeyFileError("key file field 'private': %s" % e)
    if public is not None and public != signer.public_key:
        raise fmt.KeyFileError("key file field 'public': expected %s (derived from 'private'), "
                                  "found another key" % signer.public_key.hex())
    if kid is not None and kid != signer.kid:
        raise fmt.KeyFileError("key file field 'kid': expected %s, found %s" % (signer.kid.hex(), kid.hex()))
    return signer


def load_key_file(path):
    """KeySigner from a key file. Raises OSError, KeyFileError, UnknownAlgorithmError."""
    try:
        with open(path) as f:
            text = f.read(KEY_FILE_MAX + 1)
    except UnicodeError:  # not text at all
        raise fmt.KeyFileError("%s: not a key file (expected the text `edgeledger device keygen` writes)" % path)
    return parse_key_file(text)


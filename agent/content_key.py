# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Encrypted readings: the data owner's content key, and the COSE_Encrypt0 a device seals a
pack into (``protocols/cose/encrypt.py``; the payload's ``enc``, key 7).

A content key file is JSON (a board reads it with ``json``)::

  {"alg": "AES-CCM-16-64-128" | "SM4-CCM-16-64-128", "key": hex (16 bytes), "kid": hex}

``kid`` is optional on reading; it must be ``key_id(key)`` when present. The same file is
what the data owner decrypts with (``edgeledger decrypt``).

**The nonce.** CCM breaks if one key encrypts two different plaintexts under one nonce.
A device's seq is not enough to name a nonce: a board makes its outbox durable in groups
(``outbox.py``), so after a power cut it seals the lost seqs again, with other readings.
So the nonce is a keyed function of what is encrypted (a synthetic IV)::

  nonce_key = MAC(key, "edgeledger/v1 CCM nonce key")
  nonce     = MAC(nonce_key, CBOR [device, seq] ‖ plaintext)[:13]

with MAC = HMAC-SHA-256 for AES and HMAC-SM3 for SM4 (an SM4 deployment uses only the
national algorithms). Sealing the same seq again with the same plaintext gives the same
nonce and the same bytes (harmless); with any other plaintext, another nonce. No counter to
persist, nothing a restart, an outbox replay, a lost epoch file or a restored backup can
roll back. Two nonces collide only by chance: 2**-104 per pair, ~2**-40 after 2**32
messages under one key. The nonce is keyed, so it tells an observer nothing about the
readings (a plain hash of them would let anyone test a guess at a low-entropy value); the
IV travels in the message (COSE header 5), so the data owner does not derive it.

Errors: ``KeyFileError`` (protocols/key_file.py) for a malformed file, ValueError (crypto)
for a key of the wrong length, ``CcmAuthError`` (crypto/errors.py) when decryption fails
its tag check, ``ContentKeyError`` when a message names another key.
"""
import json

from edgeledger.agent.crypto import sha256
from edgeledger.protocols.cbor import encode
from edgeledger.protocols.cose import encrypt as cose_encrypt
from edgeledger.protocols.errors import CoseError
from edgeledger.protocols.key_file import KEY_FILE_MAX, KeyFileError

KID_LEN = 16  # as a device key's kid
NONCE_KEY_LABEL = b"edgeledger/v1 CCM nonce key"
KID_LABEL = b"edgeledger/v1 content key id"


class ContentKeyError(CoseError):
    """An encrypted pack names another content key (kid) or content alg than the one given."""


def key_id(key):
    """The kid of a content key: SHA-256(label ‖ key)[:16] (names the key; reveals nothing of
    a 128-bit key)."""
    return sha256(KID_LABEL + bytes(key))[:KID_LEN]


class ContentKey:
    """A data owner's CCM key: seals packs on a device, opens them for the owner.

    Raises CoseError (protocols/errors.py) for an unknown alg, ValueError for a key of the
    wrong length.
    """

    def __init__(self, alg, key):
        if isinstance(alg, str):
            alg = cose_encrypt.ENC_ALG_BY_NAME.get(alg, alg)
        cose_encrypt.enc_protected(alg)  # raises CoseError for an unknown alg
        info = cose_encrypt.ENC_ALGORITHMS[alg]
        key = bytes(key)
        if len(key) != info["key_len"]:
            raise ValueError("%s key: expected %d bytes, found %d" % (info["name"], info["key_len"], len(key)))
        self.alg = alg
        self.alg_name = info["name"]
        self.tag_len = info["tag_len"]
        self.key = key
        self.kid = key_id(key)
        self._sm4 = alg == cose_encrypt.SM4_CCM_16_64_128
        self._nonce_key = self._mac(key, NONCE_KEY_LABEL)

    def _mac(self, key, data):
        from edgeledger.agent.crypto import mac

        return (mac.hmac_sm3 if self._sm4 else mac.hmac_sha256)(key, data)

    def nonce(self, device, seq, plaintext):
        """The 13-byte CCM nonce of ``plaintext`` sealed as ``device``'s ``seq`` (module docstring)."""
        return self._mac(self._nonce_key, encode([device, seq]) + bytes(plaintext))[:13]

    def _ccm(self, encrypt):
        from edgeledger.agent.crypto import cipher

        if self._sm4:
            return cipher.sm4_ccm_encrypt if encrypt else cipher.sm4_ccm_decrypt
        return cipher.aes_ccm_encrypt if encrypt else cipher.aes_ccm_decrypt

    def seal(self, device, seq, plaintext):
        """The COSE_Encrypt0 bytes of ``plaintext`` (a CBOR pack) for ``device``'s ``seq``.
        Raises ValueError for a plaintext CCM with a 13-byte nonce cannot take (>= 64 KiB)."""
        ccm = self._ccm(True)
        return cose_encrypt.encrypt0(self.alg, self.kid, self.nonce(device, seq, plaintext), plaintext,
                                     lambda iv, pt, aad: ccm(self.key, iv, pt, aad, self.tag_len))

    def open(self, enc):
        """The plaintext of ``enc``, a COSE_Encrypt0 parsed by ``cose.verify.parse_encrypt0`` (the
        data owner's side: a board never opens). Raises ContentKeyError when it names another
        kid or alg, CcmAuthError when the tag does not verify (a wrong key, an altered byte)."""
        if enc.kid != self.kid or enc.alg != self.alg:
            raise ContentKeyError("encrypted for key %s (%s), this key is %s (%s)" % (
                enc.kid.hex(), cose_encrypt.ENC_ALGORITHMS[enc.alg]["name"], self.kid.hex(), self.alg_name))
        return self._ccm(False)(self.key, enc.iv, enc.ciphertext, enc.aad(), self.tag_len)


def content_key_file(alg, key):
    """The JSON text of a content key file (fixed field order, trailing newline)."""
    ck = ContentKey(alg, key)
    return '{"alg": "%s", "key": "%s", "kid": "%s"}\n' % (ck.alg_name, ck.key.hex(), ck.kid.hex())


def parse_content_key(text):
    """ContentKey from content key file text. Raises KeyFileError for anything else."""
    if len(text) > KEY_FILE_MAX:
        raise KeyFileError("content key file: expected at most %d bytes, found %d" % (KEY_FILE_MAX, len(text)))
    try:
        doc = json.loads(text)
    except ValueError:
        raise KeyFileError("content key file: expected a JSON object, found unparsable text")
    if not isinstance(doc, dict) or not isinstance(doc.get("alg"), str) or not isinstance(doc.get("key"), str):
        raise KeyFileError("content key file: expected {\"alg\": name, \"key\": hex, \"kid\": hex}")
    try:
        ck = ContentKey(doc["alg"], bytes.fromhex(doc["key"]))
    except (ValueError, CoseError) as e:
        raise KeyFileError("content key file: %s; algs: %s" % (e, ", ".join(sorted(cose_encrypt.ENC_ALG_BY_NAME))))
    kid = doc.get("kid")
    if kid is not None and kid != ck.kid.hex():
        raise KeyFileError("content key file field 'kid': expected %s, found %r" % (ck.kid.hex(), kid))
    return ck


def load_content_key(path):
    """ContentKey from a content key file. Raises OSError, KeyFileError."""
    try:
        with open(path) as f:
            text = f.read(KEY_FILE_MAX + 1)
    except UnicodeError:
        raise KeyFileError("%s: not a content key file (not UTF-8 text)" % path)
    try:
        return parse_content_key(text)
    except KeyFileError as e:
        raise KeyFileError("%s: %s" % (path, e))

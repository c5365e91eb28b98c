"""Device signers: who turns COSE Sig_structure bytes into a signature.

A signer is any object with

  alg         COSE algorithm id (int): -8 EdDSA (Ed25519), -7 ES256 (P-256),
              -65537 SM2 (GB/T 32918.2 with SM3; a private-use id, docs/wire-format.md)
  kid         bytes: first 16 bytes of SHA-256 of the raw public key
  public_key  bytes: raw public key (32 bytes Ed25519, 65 bytes SEC1 P-256 or SM2)
  sign(to_be_signed) -> bytes

``KeySigner`` holds the private key in memory; a secure-element signer
(ATECC608: ES256 in hardware, key never leaves the chip) plugs in with the
same four members. An ES256 ``sign`` returns the low-S form
(``crypto.es256_low_s``): the gateway accepts no other.

``algorithm`` raises ``UnknownAlgorithmError`` (a ``CoseError``, protocols/errors.py).
Key files are ``key_file.py``: a board reads its key file once at start, and then drops
that module.
"""
from collections import namedtuple

from edgeledger.agent import crypto
from edgeledger.protocols import errors

KID_LEN = 16  # bytes of SHA-256(public key) that name the key


# One row of the algorithm table (RFC 9053 §2): a named tuple, not a class with an
# __init__ (on a board, rows without instance dicts and no class: ~160 B less heap).
#   public_key   private bytes -> public bytes
#   sign         (private, msg) -> signature
#   verify_name  the function of ``crypto/verify.py`` (public, msg, signature) -> bool,
#                looked up by name when first called: a board never imports that module.
Algorithm = namedtuple("Algorithm",
                       "name cose_id private_len public_len sig_len public_key sign verify_name")

# RFC 9053 §2.1 (ES256, -7) and §2.2 (EdDSA, -8; Ed25519 keys per RFC 8032); SM2 (-65537,
# private use): GB/T 32918.2 signatures with SM3 over sm2p256v1, r ‖ s.
ALGORITHMS = {
    -8: Algorithm("EdDSA", -8, 32, 32, 64,
                  crypto.ed25519_public_key, crypto.ed25519_sign, "ed25519_verify"),
    -7: Algorithm("ES256", -7, 32, 65, 64,
                  crypto.p256_public_key, crypto.es256_sign, "es256_verify"),
    -65537: Algorithm("SM2", -65537, 32, 65, 64,
                      crypto.sm2_public_key, crypto.sm2_sign, "sm2_verify"),
}


def algorithm(alg):
    """The table row for a COSE id (int) or name (str). Raises UnknownAlgorithmError."""
    for row in ALGORITHMS.values():
        if alg == (row.name if isinstance(alg, str) else row.cose_id):
            return row
    raise errors.UnknownAlgorithmError("algorithm: expected one of %s, found %r"
                                       % (", ".join(row.name for row in ALGORITHMS.values()), alg))


def key_id(public_key):
    """kid = SHA-256(raw public key)[:16]."""
    return crypto.sha256(public_key)[:KID_LEN]


def verify(alg, public_key, to_be_signed, signature):
    """True if ``signature`` verifies. Raises UnknownAlgorithmError, ValueError (bad key)."""
    from edgeledger.agent.crypto import verify as verifiers

    return getattr(verifiers, algorithm(alg).verify_name)(public_key, to_be_signed, signature)


class KeySigner:
    """Signs with a private key held in memory.

    Raises UnknownAlgorithmError for an unknown ``alg`` and ValueError for a
    private key of the wrong length or out of range.
    """

    def __init__(self, alg, private_key, device=None):
        row = algorithm(alg)
        private_key = bytes(private_key)
        if len(private_key) != row.private_len:
            raise ValueError("%s private key: expected %d bytes, found %d"
                             % (row.name, row.private_len, len(private_key)))
        self._sign = row.sign
        self._private = private_key
        self.alg = row.cose_id
        self.alg_name = row.name
        self.device = device
        self.public_key = row.public_key(private_key)
        self.kid = key_id(self.public_key)

    def sign(self, to_be_signed):
        return self._sign(self._private, to_be_signed)

    def private_bytes(self):
        """The raw private key (for writing a key file)."""
        return self._private


def generate(alg, device=None):
    """A new KeySigner with a fresh key from ``crypto.random_bytes``."""
    row = algorithm(alg)
    while True:
        try:
            return KeySigner(row.cose_id, crypto.random_bytes(row.private_len), device)
        except ValueError:
            # P-256, SM2: a 256-bit draw out of range (>= n, SM2: > n-2; probability ~2**-32)
            # is redrawn (FIPS 186-4 B.4.2; GB/T 32918.1 §6.1).
            continue


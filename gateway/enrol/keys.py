"""Device keys made and read on the host: ``device keygen``, ``device provision``,
``device rotate`` and ``device register --key-file``.

The host makes a device key with the libraries the gateway verifies with (PyNaCl for
Ed25519, ``cryptography`` for P-256, ``tongsuopy`` for SM2) and writes it in the key file
format of protocols/key_file.py, which the agent reads on a board or a Linux device. A key
file read here is checked the way the agent checks it: the public key and the kid it holds
must be the ones its private key gives.

Raises DeviceKeyError (a GatewayError and a ValueError) for an unknown algorithm, a public
key of the wrong length, and a key file that is not one or does not add up.
"""
import os
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.signing import SigningKey

from edgeledger.gateway.errors import GatewayError
from edgeledger.gateway.registry.signatures import key_id
from edgeledger.protocols import key_file
from edgeledger.protocols.cose import EDDSA, ES256, SM2
from edgeledger.protocols.cose.verify import ALGORITHMS
from edgeledger.protocols.key_file import KeyFileError

PRIVATE_LEN = 32  # bytes of every private key here: an Ed25519 seed, a P-256 or SM2 scalar
# The algorithms ``device keygen --alg`` offers, cheapest on a 32-bit board first (bench device).
NAMES = ("ES256", "EdDSA", "SM2")


class DeviceKeyError(GatewayError, ValueError):
    """A device key or key file that cannot be used (unknown algorithm, wrong length, a key
    file whose public key or kid do not belong to its private key)."""


@dataclass(frozen=True)
class KeyAlg:
    """One signature algorithm a device key may have (protocols/cose.py ALGORITHMS)."""

    name: str
    cose_id: int
    public_len: int


# protocols/cose.py's table, with the value types it holds (that module is untyped: it also runs on boards).
_ALGORITHMS = cast(dict[int, dict[str, Any]], ALGORITHMS)


def algorithm(alg: int | str) -> KeyAlg:
    """The KeyAlg of a COSE id or name. Raises DeviceKeyError."""
    for cose_id, row in _ALGORITHMS.items():
        if alg == (row["name"] if isinstance(alg, str) else cose_id):
            return KeyAlg(row["name"], cose_id, row["pub_len"])
    raise DeviceKeyError("algorithm: expected one of %s, found %r"
                         % (", ".join(row["name"] for row in _ALGORITHMS.values()), alg))


@dataclass(frozen=True)
class DeviceKey:
    """A device's key pair (``private`` None for a key that never leaves its secure element)."""

    device: str
    alg: KeyAlg
    public_key: bytes
    private: bytes | None = None

    @property
    def kid(self) -> bytes:
        return key_id(self.public_key)

    def key_file_text(self) -> str:
        """The key file (protocols/key_file.py) of this key. Raises DeviceKeyError without a
        private key."""
        if self.private is None:
            raise DeviceKeyError("key %s of %s has no private key to write" % (self.kid.hex(), self.device))
        return key_file.encode(self.device, self.alg.name, self.private, self.public_key, self.kid)


def _sm2() -> Any:
    try:
        from tongsuopy.crypto.asymciphers import ec as sm_ec
    except ImportError as e:
        raise DeviceKeyError("SM2 keys need tongsuopy, which does not install on this platform (wheels: x86-64 "
                             "Linux, macOS, Windows)") from e
    return sm_ec


def _public_of(alg: KeyAlg, private: bytes) -> bytes:
    """The public key of ``private``. Raises DeviceKeyError for a scalar out of range."""
    if len(private) != PRIVATE_LEN:
        raise DeviceKeyError("%s private key: expected %d bytes, found %d" % (alg.name, PRIVATE_LEN, len(private)))
    if alg.cose_id == EDDSA:
        return bytes(SigningKey(private).verify_key)
    try:
        if alg.cose_id == ES256:
            key: Any = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
            encoding = serialization
        else:
            sm_ec = _sm2()
            key = sm_ec.derive_private_key(int.from_bytes(private, "big"), sm_ec.SM2())
            from tongsuopy.crypto import serialization as encoding  # type: ignore[no-redef]
    except ValueError as e:  # a scalar of 0 or not below the group order
        raise DeviceKeyError("%s private key: expected a scalar in the curve's range: %s" % (alg.name, e)) from e
    return bytes(key.public_key().public_bytes(encoding.Encoding.X962, encoding.PublicFormat.UncompressedPoint))


def generate(alg: int | str, device: str) -> DeviceKey:
    """A new key for ``device`` from the operating system's random source. Raises
    DeviceKeyError (an unknown algorithm; SM2 without tongsuopy)."""
    row = algorithm(alg)
    if row.cose_id == EDDSA:
        private = bytes(SigningKey.generate())
    elif row.cose_id == ES256:
        private = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    else:
        assert row.cose_id == SM2
        sm_ec = _sm2()
        private = sm_ec.generate_private_key(sm_ec.SM2()).private_numbers().private_value.to_bytes(32, "big")
    return DeviceKey(device, row, _public_of(row, private), private)


def public_only(alg: int | str, device: str, public_key: bytes) -> DeviceKey:
    """The key of ``device`` whose private half stays on it (a secure element, a board that made
    its own). Raises DeviceKeyError for a public key of the wrong length."""
    row = algorithm(alg)
    public_key = bytes(public_key)
    if len(public_key) != row.public_len:
        raise DeviceKeyError("%s public key: expected %d bytes, found %d" % (row.name, row.public_len,
                                                                              len(public_key)))
    return DeviceKey(device, row, public_key)


def parse_key_file(text: str) -> DeviceKey:
    """The DeviceKey in key file ``text``. Raises DeviceKeyError if it is not a key file, or if
    its ``public`` or ``kid`` do not belong to its ``private``."""
    try:
        device, alg_name, private, public, kid = key_file.decode(text)
    except KeyFileError as e:
        raise DeviceKeyError(str(e)) from e
    row = algorithm(alg_name)
    key = DeviceKey(device, row, _public_of(row, private), private)
    if public is not None and public != key.public_key:
        raise DeviceKeyError("key file field 'public': expected %s (derived from 'private'), found another key"
                             % key.public_key.hex())
    if kid is not None and kid != key.kid:
        raise DeviceKeyError("key file field 'kid': expected %s, found %s" % (key.kid.hex(), kid.hex()))
    return key


def load_key_file(path: str) -> DeviceKey:
    """The DeviceKey in the key file at ``path``. Raises OSError, DeviceKeyError."""
    try:
        with open(path) as f:
            text = f.read(key_file.KEY_FILE_MAX + 1)
    except UnicodeDecodeError as e:
        raise DeviceKeyError("%s: not a key file (expected text from `edgeledger device keygen`): %s"
                             % (path, e)) from e
    return parse_key_file(text)


def create_key_file(path: str, key: DeviceKey) -> None:
    """Write ``key``'s key file at ``path``, created with mode 0600 (only its owner may read a
    private key). Raises FileExistsError rather than replace a key, OSError, DeviceKeyError."""
    create_secret_file(path, key.key_file_text())


def create_secret_file(path: str, text: str) -> None:
    """Write ``text`` to a new file ``path`` with mode 0600 (a private or content key).
    Raises FileExistsError rather than replace a key, OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)

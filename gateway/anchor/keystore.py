"""The gateway's ledger account key, stored encrypted.

The file is an Ethereum keystore (Web3 Secret Storage Definition, version 3: scrypt KDF,
AES-128-CTR, keccak MAC), written and read by ``eth_account.Account.encrypt/decrypt``, so
geth, Besu's tooling and web3 libraries in any language can read it too.

The passphrase comes from a file (``passphrase_file``) or an environment variable
(``passphrase_env``), never from a command-line argument (``ps`` shows arguments to every
user of the host). Both the keystore and the passphrase file must be private to their owner:
``check_private_file`` refuses a file that group or others may read or write
(``InsecureFileError``), as ssh refuses a world-readable identity file.

The decrypted key lives in a ``GatewayKey`` whose ``repr``/``str`` show only the address;
``secret()`` is the one way to get the bytes, for handing to the ledger backend.

gateway.toml::

    [ledger]
    keystore_file = "gateway.keystore.json"
    passphrase_file = "gateway.passphrase"      # or: passphrase_env = "EDGELEDGER_PASSPHRASE"
"""
import json
import os
import stat
from collections.abc import Mapping
from typing import NoReturn

from eth_account import Account

from edgeledger.gateway.config import GatewayConfig, LedgerConfig, secret_files
from edgeledger.gateway.errors import ConfigError

# scrypt n of the Web3 Secret Storage default (2**18, ~1 s here): decrypting happens once
# per gateway start, and a stolen file costs an attacker that much per guess.
SCRYPT_N = 2**18
# A keystore JSON is ~500 bytes; a passphrase is a line.
MAX_KEYSTORE_BYTES = 16384
MAX_PASSPHRASE_BYTES = 4096
KEY_MODE = 0o600


class KeystoreError(ConfigError):
    """The keystore cannot be created, read or decrypted."""


class InsecureFileError(KeystoreError):
    """A secret file may be read or written by users other than its owner."""


class GatewayKey:
    """A decrypted account key. Its text forms never contain the key."""

    __slots__ = ("_secret", "address")

    def __init__(self, secret: bytes) -> None:
        self._secret = bytes(secret)
        self.address = Account.from_key(self._secret).address

    def secret(self) -> bytes:
        """The 32-byte private key, for the ledger backend only."""
        return self._secret

    def __repr__(self) -> str:
        return "<GatewayKey %s (secret not shown)>" % self.address

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a GatewayKey is not serializable; use the keystore file")


def check_private_file(path: str, what: str = "secret file") -> str:
    """Raise InsecureFileError if group/others have any access to ``path``, KeystoreError if
    it cannot be read."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise KeystoreError("cannot read %s %s: %s" % (what, path, e)) from e
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InsecureFileError("%s %s: expected mode 0600 (owner only), found %04o; run chmod 600 %s"
                                % (what, path, mode, path))
    return path


def check_secret_files(cfg: GatewayConfig) -> None:
    """Check every secret file a resolved gateway config names (the schema's ``secret``
    keys). Raises InsecureFileError, KeystoreError."""
    for key, path in secret_files(cfg):
        check_private_file(path, key)


def read_passphrase(passphrase_file: str | None = None, passphrase_env: str | None = None,
                    environ: Mapping[str, str] | None = None) -> str:
    """The passphrase from a private file or an environment variable. Raises KeystoreError."""
    environ = os.environ if environ is None else environ
    if passphrase_file:
        check_private_file(passphrase_file, "passphrase file")
        with open(passphrase_file, "rb") as f:
            data = f.read(MAX_PASSPHRASE_BYTES + 1)
        if len(data) > MAX_PASSPHRASE_BYTES:
            raise KeystoreError("passphrase file %s: expected at most %d bytes"
                                % (passphrase_file, MAX_PASSPHRASE_BYTES))
        text = data.decode("utf-8").rstrip("\r\n")
    elif passphrase_env:
        if passphrase_env not in environ:
            raise KeystoreError("passphrase: environment variable %s is not set" % passphrase_env)
        text = environ[passphrase_env]
    else:
        raise KeystoreError("passphrase: expected passphrase_file or passphrase_env, found neither")
    if not text:
        raise KeystoreError("passphrase: expected a non-empty passphrase")
    return text


def generate(out: str, passphrase: str, secret: bytes | None = None, scrypt_n: int = SCRYPT_N) -> GatewayKey:
    """Write a new (or the given) key encrypted to ``out`` (mode 0600, never overwrites).
    Returns the GatewayKey. Raises KeystoreError if ``out`` exists."""
    if secret is None:
        secret = os.urandom(32)
    key = GatewayKey(secret)
    doc = Account.encrypt(key.secret(), passphrase, kdf="scrypt", iterations=scrypt_n)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    except FileExistsError:
        raise KeystoreError("keystore %s exists already: refusing to overwrite a key" % out) from None
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    return key


def load(path: str, passphrase: str) -> GatewayKey:
    """Decrypt the keystore at ``path``. Raises InsecureFileError, KeystoreError."""
    check_private_file(path, "keystore")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEYSTORE_BYTES + 1)
        if len(data) > MAX_KEYSTORE_BYTES:
            raise KeystoreError("keystore %s: expected at most %d bytes" % (path, MAX_KEYSTORE_BYTES))
        doc = json.loads(data)
    except (OSError, ValueError) as e:
        raise KeystoreError("keystore %s: expected keystore JSON: %s" % (path, e)) from e
    try:
        secret = Account.decrypt(doc, passphrase)
    except ValueError as e:  # eth_keyfile raises ValueError subclasses (MAC mismatch, bad kdf)
        raise KeystoreError("keystore %s: the passphrase does not decrypt it (%s)" % (path, e)) from e
    except (KeyError, TypeError) as e:
        raise KeystoreError("keystore %s: malformed (missing %s)" % (path, e)) from e
    return GatewayKey(secret)


def account_key(ledger_cfg: LedgerConfig, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The ledger signing key (32 bytes) named by a resolved ``[ledger]`` section, or None.

    ``keystore_file`` (encrypted, this module) is preferred; ``key_file`` (plain hex, mode
    0600) is accepted for test chains. Raises InsecureFileError, KeystoreError.
    """
    key = load_from_config(ledger_cfg, environ)
    if key is not None:
        return key.secret()
    path = ledger_cfg.key_file
    if not path:
        return None
    check_private_file(path, "ledger key file")
    with open(path) as f:
        text = f.read(200).strip()
    try:
        secret = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise KeystoreError("ledger key file %s: expected 32 bytes of hex, found something else" % path)
    return secret


def load_from_config(ledger_cfg: LedgerConfig, environ: Mapping[str, str] | None = None) -> GatewayKey | None:
    """The GatewayKey named by a resolved ``[ledger]`` section, or None if it names none."""
    path = ledger_cfg.keystore_file
    if not path:
        return None
    passphrase = read_passphrase(ledger_cfg.passphrase_file, ledger_cfg.passphrase_env, environ)
    return load(path, passphrase)

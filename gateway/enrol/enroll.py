"""``edgeledger device enroll``: the device key is born on the board; only its public half leaves.

Over the board's serial REPL (raw mode, driven with mpremote's transport):

1. the board runs ``edgeledger.firmware.enroll.run``: it makes the key from its own random
   source, writes the key file on its flash and prints the public key and kid;
2. the board signs a fresh challenge from the host with that key (proof that it holds the
   private half; the challenge starts with ``CHALLENGE_PREFIX``, so it can never be a COSE
   Sig_structure, which is a CBOR array);
3. the host checks the kid and the signature, then registers the public key on chain and in
   the gateway registry exactly as ``device provision --public-key`` does
   (``provision.provision``), and writes the bundle, whose config.json names the key file
   on the board;
4. the bundle's board files (config.json, the broker CA and TLS client files in DER) are
   copied onto the board (``--no-upload`` skips this).

Raises EnrollError (a GatewayError) for a board that does not answer or answers wrongly;
ProvisionError, RegistryError, LedgerError from provisioning.
"""
import os
from typing import Any, Optional

from edgeledger.gateway.enrol import keys, provision
from edgeledger.gateway.errors import GatewayError
from edgeledger.gateway.registry import Registry, signatures

CHALLENGE_PREFIX = b"edgeledger-enroll\x00"
CHALLENGE_LEN = 32  # random bytes after the prefix
LINE_PREFIX = "ENROLL|"
# Bundle files a board reads (DER: MicroPython's mbedTLS may lack PEM parsing).
BOARD_FILES = ("config_json", "ca_der", "tls_cert_der", "tls_key_der")
# A board answers the key generation in well under this; P-256 on a slow board takes seconds.
EXEC_TIMEOUT_S = 60


class EnrollError(GatewayError):
    """The board did not enroll: no REPL, an error on the board, or an answer that does not check."""


class BoardLink:
    """The board's raw REPL over a serial port (mpremote's SerialTransport)."""

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self._error = TransportError
        try:
            self.t = SerialTransport(port, baudrate=baudrate)
            self.t.enter_raw_repl(soft_reset=False)
        except (TransportError, OSError) as e:
            raise EnrollError("no raw REPL on %s: %s" % (port, e)) from e

    def run(self, code: str) -> str:
        """Run ``code`` on the board; its printed output. Raises EnrollError."""
        try:
            out, err = self.t.exec_raw(code, timeout=EXEC_TIMEOUT_S)
        except (self._error, OSError) as e:
            raise EnrollError("board did not run the enroll code: %s" % (e,)) from e
        if err:
            raise EnrollError("board raised: %s" % err.decode(errors="replace").strip().splitlines()[-1])
        return out.decode(errors="replace")

    def put(self, local: str, remote: str) -> None:
        with open(local, "rb") as f:
            data = f.read()
        try:
            self.t.fs_writefile(remote, data)
        except (self._error, OSError) as e:
            raise EnrollError("cannot write %s on the board: %s" % (remote, e)) from e

    def close(self) -> None:
        try:
            self.t.exit_raw_repl()
        finally:
            self.t.close()


def board_key(link: BoardLink, device: str, alg: str, key_file: str) -> tuple[str, bytes, bytes]:
    """(alg name, public key, kid) of the key the board made (or already had) for ``device``,
    after it proved possession by signing a fresh challenge. Raises EnrollError."""
    challenge = CHALLENGE_PREFIX + os.urandom(CHALLENGE_LEN)
    out = link.run("from edgeledger.firmware import enroll\n"
                   "enroll.run(%r, %r, %r)\n"
                   "from edgeledger.agent.key_file import load_key_file\n"
                   "print('SIG|' + load_key_file(%r).sign(bytes.fromhex(%r)).hex())\n"
                   % (device, alg, key_file, key_file, challenge.hex()))
    lines = dict(line.strip().split("|", 1) for line in out.splitlines() if "|" in line)
    if "ENROLL" not in lines or "SIG" not in lines:
        raise EnrollError("board answered without an %s line: %r" % (LINE_PREFIX, out[-200:]))
    fields = lines["ENROLL"].split("|")
    if len(fields) != 4 or fields[0] != device:
        raise EnrollError("board answered for another device: %r" % lines["ENROLL"])
    _, alg_name, public_hex, kid_hex = fields
    try:  # DeviceKeyError is a ValueError too
        row = keys.algorithm(alg_name)
        public, kid, sig = bytes.fromhex(public_hex), bytes.fromhex(kid_hex), bytes.fromhex(lines["SIG"])
    except ValueError as e:
        raise EnrollError("board answered a malformed key: %s" % e) from e
    if len(public) != row.public_len or kid != signatures.key_id(public):
        raise EnrollError("board's public key and kid do not belong together (kid %s)" % kid_hex)
    problem = signatures.key_problem(row.cose_id, public)
    if problem is not None:
        raise EnrollError("board's public key is not a %s key: %s" % (row.name, problem))
    if not signatures.verify(row.cose_id, public, challenge, sig):
        raise EnrollError("board's signature over the challenge does not verify with key %s" % kid_hex)
    return row.name, public, kid


def enroll(registry: Registry, device: str, site: str, out_dir: str, port: str, alg: str = "ES256",
           key_file: Optional[str] = None, baudrate: int = 115200, upload: bool = True,
           **provision_args: Any) -> provision.Bundle:
    """Enroll the board on ``port`` as ``device``: key on the board, public key registered
    (``provision_args`` go to ``provision.provision``: broker, auth, broker_host, broker_url,
    ledger), bundle written to ``out_dir`` and, with ``upload``, copied to the board.
    Returns the Bundle. Raises EnrollError, ProvisionError, RegistryError, LedgerError."""
    key_file = key_file or device + ".key"
    link = BoardLink(port, baudrate)
    try:
        alg_name, public, kid = board_key(link, device, alg, key_file)
        if registry.key(kid) is not None:  # a re-run after a failed upload: registered already
            d = os.path.abspath(out_dir)
            names = {"config_json": "config.json", "ca_der": "ca.der", "tls_cert_der": device + "-tls.der",
                     "tls_key_der": device + "-tls-key.der"}
            files = dict((k, os.path.join(d, n)) for k, n in names.items() if os.path.exists(os.path.join(d, n)))
            bundle = provision.Bundle(d, device, site, alg_name, kid, public, files)
        else:
            bundle = provision.provision(registry, device, site, out_dir, alg=alg_name, public_key=public,
                                         device_key_file=key_file, **provision_args)
        if upload:
            for name in BOARD_FILES:
                if name in bundle.files:
                    link.put(bundle.files[name], os.path.basename(bundle.files[name]))
    finally:
        link.close()
    return bundle

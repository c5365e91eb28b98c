"""The site PKI: one certificate authority per site, for MQTT over TLS.

Layout of a site PKI directory (every ``*.key`` file is written mode 0600)::

    ca.pem  ca.key               site CA, EC P-256, self-signed, path length 0
    server.pem  server.key       broker certificate: SAN 127.0.0.1, ::1, localhost + names
    clients/<name>.pem  .key     client certificates: CN = device id or gateway user
    crl.pem                      certificate revocation list (RFC 5280 §5), always present

The broker authenticates a client by its certificate and, with Mosquitto's
``use_identity_as_username``, takes the certificate's CN as the MQTT user name, which
the ACL patterns (``%u``) turn into the one topic subtree that client may use.

Key type: EC P-256 (NIST SP 800-186; the curve every MQTT stack and the mbedTLS in
MicroPython's ``ssl`` support). Signatures ECDSA with SHA-256 (RFC 5758 §3.2).
Raises ``PkiError`` for anything that cannot be issued or read.
"""
import datetime
import ipaddress
import os
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeledger.gateway.errors import GatewayError
from edgeledger.protocols import topics

# Validity periods. A site CA outlives its devices (meters stay in the field 10+ years);
# leaf certificates are renewed by re-provisioning.
CA_DAYS = 20 * 365
SERVER_DAYS = 5 * 365
CLIENT_DAYS = 10 * 365
CRL_DAYS = 365  # nextUpdate of the CRL; re-issued on every revocation and by `broker renew-crl`
# When the CRL expires, OpenSSL refuses every client certificate of the site. Renew it
# monthly (a timer runs `edgeledger broker renew-crl`, docs/operators.md): eleven months
# of slack. `gateway status` warns when fewer than CRL_WARN_DAYS remain.
CRL_RENEW_DAYS = 30
CRL_WARN_DAYS = 60
# Clock skew tolerated for a fresh certificate (notBefore is set this far in the past).
BACKDATE = datetime.timedelta(minutes=5)
# Names the broker certificate always carries, so local clients can verify it.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
# A name in a SAN is at most one DNS name (RFC 1035 §2.3.4: 253 characters).
MAX_NAME_LEN = 253
KEY_MODE = 0o600
CERT_MODE = 0o644


class PkiError(GatewayError):
    """A certificate or key cannot be created, issued or read."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` created with mode 0600 (replacing an existing file)."""
    tmp = path + ".new"
    if os.path.exists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_public(path: str, data: bytes) -> None:
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, CERT_MODE)
    os.replace(tmp, path)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8 (RFC 5208): read by OpenSSL, paho/ssl and mbedTLS alike.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_to_der(path: str, private: bool = False) -> bytes:
    """DER bytes of a PEM certificate (or PKCS#8 private key with ``private``)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        if private:
            key = serialization.load_pem_private_key(data, password=None)
            return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    except (ValueError, TypeError) as e:
        raise PkiError("cannot convert %s to DER: %s" % (path, e)) from e


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LEN:
            raise PkiError("certificate name: expected 1..%d characters, found %r" % (MAX_NAME_LEN, name))
        if name in seen:
            continue
        seen.add(name)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _builder(subject_cn: str, issuer_name: x509.Name, public_key: ec.EllipticCurvePublicKey,
             days: int) -> x509.CertificateBuilder:
    now = _now()
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _load_cert(path: str) -> x509.Certificate:
    try:
        with open(path, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError) as e:
        raise PkiError("cannot read certificate %s: %s" % (path, e)) from e


def _load_key(path: str) -> ec.EllipticCurvePrivateKey:
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise PkiError("cannot read private key %s: %s" % (path, e)) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("private key %s: expected an EC key, found %s" % (path, type(key).__name__))
    return key


class SitePKI:
    """A site CA in a directory; ``init()`` creates it, the issue methods use it."""

    def __init__(self, directory: str) -> None:
        self.dir = os.path.abspath(directory)
        self.ca_path = os.path.join(self.dir, "ca.pem")
        self.ca_key_path = os.path.join(self.dir, "ca.key")
        self.server_path = os.path.join(self.dir, "server.pem")
        self.server_key_path = os.path.join(self.dir, "server.key")
        self.crl_path = os.path.join(self.dir, "crl.pem")
        self.clients_dir = os.path.join(self.dir, "clients")
        self.revoked_path = os.path.join(self.dir, "revoked.txt")  # serials, one hex per line

    # -- CA ----------------------------------------------------------------------------------

    def exists(self) -> bool:
        return os.path.exists(self.ca_path) and os.path.exists(self.ca_key_path)

    def init(self, site: str) -> "SitePKI":
        """Create the CA (if missing) and an empty CRL. Returns self."""
        topics.check_id(site, "site")
        os.makedirs(self.clients_dir, exist_ok=True)
        if not self.exists():
            key = new_key()
            cn = "edgeledger site CA %s" % site
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
            cert = (_builder(cn, name, key.public_key(), CA_DAYS)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                 key_encipherment=False, data_encipherment=False,
                                                 key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .sign(key, hashes.SHA256()))
            write_private(self.ca_key_path, key_pem(key))
            write_public(self.ca_path, cert_pem(cert))
        if not os.path.exists(self.crl_path):
            self._write_crl(())
        return self

    def ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """(certificate, private key) of the site CA. Raises PkiError if absent."""
        if not self.exists():
            raise PkiError("no site CA in %s: run `edgeledger broker config --dir %s` first"
                           % (self.dir, self.dir))
        return _load_cert(self.ca_path), _load_key(self.ca_key_path)

    # -- leaf certificates ------------------------------------------------------------------

    def _issue(self, cn: str, public_key: ec.EllipticCurvePublicKey, days: int, eku: x509.ObjectIdentifier,
               san: list[x509.GeneralName] | None) -> x509.Certificate:
        ca_cert, ca_key = self.ca()
        b = (_builder(cn, ca_cert.subject, public_key, days)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=False, crl_sign=False,
                                          encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                            critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(ca_key, hashes.SHA256())

    def issue_server(self, names: Sequence[str] = ()) -> tuple[str, str]:
        """Broker certificate with SAN = LOCAL_NAMES + ``names``. Returns (cert path, key path)."""
        key = new_key()
        all_names = list(LOCAL_NAMES) + list(names)
        cert = self._issue(all_names[0] if not names else names[0], key.public_key(), SERVER_DAYS,
                           ExtendedKeyUsageOID.SERVER_AUTH, _san(all_names))
        write_private(self.server_key_path, key_pem(key))
        write_public(self.server_path, cert_pem(cert))
        return self.server_path, self.server_key_path

    def client_paths(self, name: str) -> tuple[str, str]:
        topics.check_id(name, "client name")
        return (os.path.join(self.clients_dir, name + ".pem"),
                os.path.join(self.clients_dir, name + ".key"))

    def issue_client(self, name: str, key_path: str | None = None, days: int = CLIENT_DAYS) -> tuple[str, str]:
        """Client certificate with CN = ``name`` (a device id or the gateway user).

        The certificate stays in ``clients/`` (revocation needs its serial). The private key
        goes to ``key_path`` when given (a device bundle: the CA directory then never holds
        the device's key), else next to the certificate. An existing certificate for
        ``name`` is revoked first (re-provisioning replaces it).
        Returns (cert path, key path). Raises PkiError, TopicError (bad name).
        """
        cert_path, default_key_path = self.client_paths(name)
        key_path = key_path or default_key_path
        if os.path.exists(cert_path):
            self.revoke_client(name)
        key = new_key()
        cert = self._issue(name, key.public_key(), days, ExtendedKeyUsageOID.CLIENT_AUTH, None)
        write_private(key_path, key_pem(key))
        write_public(cert_path, cert_pem(cert))
        return cert_path, key_path

    def expiries(self) -> list[tuple[str, datetime.datetime]]:
        """(what, notAfter as aware UTC) of the CA, the broker certificate and every client
        certificate issued here that is not revoked. Raises PkiError for one that cannot be read."""
        revoked = set(self.revoked_serials())
        found = [("CA %s" % self.ca_path, self.ca_path), ("broker certificate %s" % self.server_path, self.server_path)]
        if os.path.isdir(self.clients_dir):
            found += [("client certificate %s" % name[:-4], os.path.join(self.clients_dir, name))
                      for name in sorted(os.listdir(self.clients_dir)) if name.endswith(".pem")]
        out = []
        for what, path in found:
            cert = _load_cert(path)
            if cert.serial_number not in revoked:
                out.append((what, cert.not_valid_after_utc))
        return out

    # -- revocation -------------------------------------------------------------------------

    def revoked_serials(self) -> list[int]:
        try:
            with open(self.revoked_path) as f:
                return [int(line.strip(), 16) for line in f if line.strip()]
        except OSError:
            return []

    def revoke_client(self, name: str) -> int | None:
        """Put the client's current certificate on the CRL. Returns its serial, or None if
        ``name`` has no certificate."""
        cert_path, _key_path = self.client_paths(name)
        if not os.path.exists(cert_path):
            return None
        serial = _load_cert(cert_path).serial_number
        serials = self.revoked_serials()
        if serial not in serials:
            serials.append(serial)
            with open(self.revoked_path, "a") as f:
                f.write("%x\n" % serial)
        self._write_crl(serials)
        return serial

    def _write_crl(self, serials: Iterable[int], now: datetime.datetime | None = None) -> None:
        ca_cert, ca_key = self.ca()
        now = _now() if now is None else now
        # a renewal keeps each certificate's revocation date (RFC 5280 §5.1.2.6)
        dates: dict[int, datetime.datetime] = {}
        if os.path.exists(self.crl_path):
            for entry in self.crl():
                dates[entry.serial_number] = entry.revocation_date_utc
        b = (x509.CertificateRevocationListBuilder()
             .issuer_name(ca_cert.subject)
             .last_update(now - BACKDATE)
             .next_update(now + datetime.timedelta(days=CRL_DAYS)))
        for serial in serials:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(dates.get(serial, now)).build())
        crl = b.sign(ca_key, hashes.SHA256())
        write_public(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))

    def renew_crl(self, now: datetime.datetime | None = None) -> datetime.datetime:
        """Sign the CRL again, same revoked certificates, valid CRL_DAYS from ``now``. The
        broker reads it on its next reload. Returns its nextUpdate (aware UTC datetime)."""
        self._write_crl(self.revoked_serials(), now)
        return self.crl_next_update()

    def crl_next_update(self) -> datetime.datetime:
        """When the CRL expires (aware UTC datetime). Raises PkiError if there is none."""
        try:
            next_update = self.crl().next_update_utc
        except (OSError, ValueError) as e:
            raise PkiError("cannot read the CRL %s: %s" % (self.crl_path, e)) from e
        if next_update is None:
            raise PkiError("the CRL %s: expected a nextUpdate, found none" % self.crl_path)
        return next_update

    def crl(self) -> x509.CertificateRevocationList:
        with open(self.crl_path, "rb") as f:
            return x509.load_pem_x509_crl(f.read())

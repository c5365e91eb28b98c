"""The site PKI (RFC 5280 profiles) and the Mosquitto password format."""
import ipaddress
import os
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeledger.gateway import broker_config
from edgeledger.gateway.pki import SitePKI

pytestmark = pytest.mark.security


def _cert(path):
    return x509.load_pem_x509_certificate(open(path, "rb").read())


@pytest.fixture
def pki(tmp_path):
    return SitePKI(str(tmp_path / "pki")).init("plant-a")


def test_ca_server_and_client_certificates(pki):
    ca = _cert(pki.ca_path)
    assert isinstance(ca.public_key().curve, ec.SECP256R1)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    server, server_key = pki.issue_server(["broker.plant-a.example", "10.0.0.5"])
    s = _cert(server)
    s.verify_directly_issued_by(ca)
    san = s.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "broker.plant-a.example"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address(a) for a in
                                                           ("127.0.0.1", "::1", "10.0.0.5")}
    assert s.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    cert, key = pki.issue_client("meter-07")
    c = _cert(cert)
    c.verify_directly_issued_by(ca)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "meter-07"
    assert not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for path in (pki.ca_key_path, server_key, key):
        assert os.stat(path).st_mode & 0o777 == 0o600, path
    # OpenSSL agrees the chain is good for its purpose
    out = subprocess.run(["openssl", "verify", "-CAfile", pki.ca_path, "-purpose", "sslclient", cert],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_client_names_must_be_topic_ids(pki):
    from edgeledger.protocols.topics import TopicError

    for bad in ("a/b", "+", "#", "dev a", ""):
        with pytest.raises(TopicError):
            pki.issue_client(bad)


def test_revocation_lists_the_serial_and_reissue_revokes_the_old_cert(pki):
    cert1, _ = pki.issue_client("dev-a")
    serial1 = _cert(cert1).serial_number
    cert2, _ = pki.issue_client("dev-a")  # re-provisioning
    serial2 = _cert(cert2).serial_number
    crl = pki.crl()
    assert crl.is_signature_valid(_cert(pki.ca_path).public_key())
    assert crl.get_revoked_certificate_by_serial_number(serial1) is not None
    assert crl.get_revoked_certificate_by_serial_number(serial2) is None
    pki.revoke_client("dev-a")
    assert pki.crl().get_revoked_certificate_by_serial_number(serial2) is not None


def test_password_hash_matches_mosquitto_passwd(tmp_path):
    path = str(tmp_path / "pw")
    subprocess.run(["mosquitto_passwd", "-c", "-b", path, "dev-a", "s3cret-pass"], check=True)
    line = open(path).read().strip()
    user, hashed = line.split(":", 1)
    m = re.match(r"^\$7\$(\d+)\$([^$]+)\$([^$]+)$", hashed)
    assert m, hashed
    import base64

    salt = base64.b64decode(m.group(2))
    # same password, salt and count -> the very same line as the reference tool
    assert broker_config.hash_password("s3cret-pass", salt=salt, iterations=int(m.group(1))) == hashed
    assert broker_config.check_password(hashed, "s3cret-pass")
    assert not broker_config.check_password(hashed, "s3cret-pasS")
    assert broker_config.read_passwd(path) == {"dev-a": hashed}


def test_acl_confines_devices_to_their_own_subtree():
    acl = broker_config.render_acl("plant-a", "gateway")
    rules = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert rules == [  # the devices' listener: nothing but each client's own subtree
        "pattern write el/v1/plant-a/%u/r", "pattern write el/v1/plant-a/%u/birth",
        "pattern write el/v1/plant-a/%u/death", "pattern read el/v1/plant-a/%u/ack",
        "pattern read el/v1/plant-a/%u/cmd",
    ]
    acl = broker_config.render_gateway_acl("plant-a", "gateway")
    rules = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert rules == [  # the gateway's listener
        "user gateway",
        "topic read el/v1/plant-a/+/r", "topic read el/v1/plant-a/+/birth", "topic read el/v1/plant-a/+/death",
        "topic write el/v1/plant-a/+/ack", "topic write el/v1/plant-a/+/cmd", "topic write el/v1/plant-a/+/r",
    ]

"""The site PKI reads back only what it can sign with (gateway/enrol/pki.py)."""
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from edgeledger.gateway.enrol.pki import PkiError, SitePKI


def test_a_ca_key_file_that_is_not_an_ec_key_is_refused(tmp_path):
    pki = SitePKI(str(tmp_path / "pki")).init("plant-a")
    other = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with open(pki.ca_key_path, "wb") as f:
        f.write(other)
    with pytest.raises(PkiError, match="expected an EC key, found Ed25519PrivateKey"):
        pki.ca()
    with pytest.raises(PkiError, match="expected an EC key"):
        pki.issue_client("meter-01")

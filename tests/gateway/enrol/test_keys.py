"""Device keys made and read on the host (gateway/enrol/keys.py), held against the agent's own
key code: a key file written here is the one a device loads, and the reverse."""
import json
import os
import stat

import pytest

from edgeledger.agent import key_file, signer
from edgeledger.gateway.enrol import keys
from edgeledger.gateway.registry import signatures
from edgeledger.protocols import cose

# Group orders: a private scalar must lie below them.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


@pytest.mark.parametrize("alg", keys.NAMES)
def test_a_key_made_here_is_the_key_the_agent_loads(alg):
    key = keys.generate(alg, "meter-01")
    s = key_file.parse_key_file(key.key_file_text())
    assert (s.alg, s.device, s.public_key, s.kid) == (key.alg.cose_id, "meter-01", key.public_key, key.kid)
    assert signatures.key_problem(key.alg.cose_id, key.public_key) is None
    message = b"to be signed"
    assert signatures.verify(key.alg.cose_id, key.public_key, message, s.sign(message))


@pytest.mark.parametrize("alg", keys.NAMES)
def test_a_key_file_the_agent_wrote_reads_back_the_same(alg):
    s = signer.generate(alg, "dev-7")
    key = keys.parse_key_file(key_file.key_file_content("dev-7", alg, s.private_bytes()))
    assert (key.alg.name, key.public_key, key.kid, key.private) == (alg, s.public_key, s.kid, s.private_bytes())


def _doc(alg="ES256"):
    return json.loads(keys.generate(alg, "d").key_file_text())


@pytest.mark.parametrize("field, value, message", [
    ("public", "04" + "11" * 64, "field 'public': expected"),
    ("kid", "00" * 16, "field 'kid': expected"),
    ("alg", "RSA", "algorithm: expected one of EdDSA, ES256, SM2, found 'RSA'"),
    ("private", "zz", "field 'private': expected hex digits"),
    ("private", "00" * 31, "ES256 private key: expected 32 bytes, found 31"),
    ("private", "%064x" % P256_N, "ES256 private key: expected a scalar in the curve's range"),
    ("private", "00" * 32, "ES256 private key: expected a scalar in the curve's range"),
])
def test_a_key_file_that_does_not_add_up_is_refused(field, value, message):
    doc = _doc()
    doc[field] = value
    with pytest.raises(keys.DeviceKeyError, match=message):
        keys.parse_key_file(json.dumps(doc))


def test_an_sm2_scalar_out_of_range_and_text_that_is_no_key_file():
    doc = _doc("SM2")
    doc["private"] = "%064x" % SM2_N
    with pytest.raises(keys.DeviceKeyError, match="SM2 private key"):
        keys.parse_key_file(json.dumps(doc))
    with pytest.raises(keys.DeviceKeyError, match="expected a JSON object"):
        keys.parse_key_file("not json")
    assert issubclass(keys.DeviceKeyError, ValueError)


def test_a_public_key_of_the_wrong_length_is_refused():
    with pytest.raises(keys.DeviceKeyError, match="EdDSA public key: expected 32 bytes, found 65"):
        keys.public_only(cose.EDDSA, "d", bytes(65))
    key = keys.public_only("ES256", "d", keys.generate("ES256", "d").public_key)
    with pytest.raises(keys.DeviceKeyError, match="has no private key"):
        key.key_file_text()


def test_key_files_are_created_private_and_never_replaced(tmp_path):
    path = str(tmp_path / "d.key")
    key = keys.generate("EdDSA", "d")
    keys.create_key_file(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keys.load_key_file(path) == key
    with pytest.raises(FileExistsError):
        keys.create_key_file(path, keys.generate("EdDSA", "d"))
    assert keys.load_key_file(path) == key

"""The signer interface (agent/signer.py): kid derivation, key files, algorithm table."""
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeledger.agent import crypto, key_file, signer
from edgeledger.protocols.errors import CoseError, DecodeError, UnknownAlgorithmError
from edgeledger.protocols.key_file import KeyFileError
from tests.agent.crypto import vectors
from tests.agent.crypto.helpers import run_lines

ED_SEED = bytes.fromhex(vectors.ED25519[0][1])
ED_PUB = bytes.fromhex(vectors.ED25519[0][2])
P256_D = bytes.fromhex(vectors.P256_PRIVATE)
P256_PUB = bytes.fromhex(vectors.P256_PUBLIC)
SM2_D = bytes.fromhex(vectors.SM2_GMT["d"])
SM2_PUB = bytes.fromhex(vectors.SM2_GMT["pub"])


def test_algorithm_table():
    assert signer.algorithm("EdDSA").cose_id == -8
    assert signer.algorithm(-7).name == "ES256"
    assert signer.algorithm(-8) is signer.algorithm("EdDSA")
    assert signer.algorithm("SM2").cose_id == -65537 == signer.algorithm(-65537).cose_id
    with pytest.raises(UnknownAlgorithmError, match="found -35") as info:
        signer.algorithm(-35)
    assert isinstance(info.value, CoseError)


@pytest.mark.parametrize("alg,priv,pub", [("EdDSA", ED_SEED, ED_PUB), ("ES256", P256_D, P256_PUB),
                                          ("SM2", SM2_D, SM2_PUB)])
def test_key_signer_attributes_and_kid(alg, priv, pub):
    s = signer.KeySigner(alg, priv)
    assert s.alg == signer.algorithm(alg).cose_id
    assert s.public_key == pub
    assert s.kid == crypto.sha256(pub)[:16] and len(s.kid) == signer.KID_LEN
    sig = s.sign(b"to be signed")
    assert len(sig) == 64
    assert signer.verify(s.alg, pub, b"to be signed", sig) is True
    assert signer.verify(s.alg, pub, b"to be signed!", sig) is False


def test_eddsa_signer_reproduces_rfc8032_test1():
    s = signer.KeySigner(-8, ED_SEED)
    assert s.sign(b"").hex() == vectors.ED25519[0][4]


def test_key_signer_rejects_bad_keys():
    with pytest.raises(ValueError, match="EdDSA private key: expected 32 bytes, found 16"):
        signer.KeySigner(-8, bytes(16))
    with pytest.raises(ValueError, match=r"\[1, n-1\]"):
        signer.KeySigner("ES256", bytes(32))
    with pytest.raises(ValueError, match=r"\[1, n-2\]"):
        signer.KeySigner("SM2", b"\xff" * 32)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "SM2"])
def test_generate_and_key_file_round_trip(tmp_path, alg):
    s = signer.generate(alg, "meter-7")
    text = key_file.key_file_content("meter-7", alg, s.private_bytes())
    doc = json.loads(text)
    assert list(doc) == ["device", "alg", "private", "public", "kid"]
    assert doc == {"device": "meter-7", "alg": alg, "private": s.private_bytes().hex(),
                   "public": s.public_key.hex(), "kid": s.kid.hex()}
    path = tmp_path / "key.json"
    path.write_text(text)
    loaded = key_file.load_key_file(str(path))
    assert (loaded.alg, loaded.kid, loaded.public_key, loaded.device) == (
        s.alg, s.kid, s.public_key, "meter-7")
    assert signer.verify(alg, s.public_key, b"x", loaded.sign(b"x"))


def test_generated_keys_differ():
    assert signer.generate("EdDSA").public_key != signer.generate("EdDSA").public_key


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.update(public="00" * 32), "field 'public'"),
    (lambda d: d.update(kid="00" * 16), "field 'kid'"),
    (lambda d: d.update(private="zz"), "hex digits"),
    (lambda d: d.update(private="00" * 31), "expected 32 bytes, found 31"),
    (lambda d: d.pop("device"), "field 'device'"),
    (lambda d: d.update(alg=-8), "field 'alg'"),
])
def test_bad_key_files_raise_key_file_error(mutate, match):
    doc = json.loads(key_file.key_file_content("d", "EdDSA", ED_SEED))
    mutate(doc)
    with pytest.raises(KeyFileError, match=match) as info:
        key_file.parse_key_file(json.dumps(doc))
    assert isinstance(info.value, DecodeError)


def test_key_file_edge_cases():
    with pytest.raises(KeyFileError, match="JSON object"):
        key_file.parse_key_file("not json")
    with pytest.raises(KeyFileError, match="JSON object, found list"):
        key_file.parse_key_file("[]")
    with pytest.raises(KeyFileError, match="at most 4096"):
        key_file.parse_key_file(" " * 5000)
    doc = json.loads(key_file.key_file_content("d", "EdDSA", ED_SEED))
    doc["alg"] = "RS256"
    with pytest.raises(UnknownAlgorithmError):
        key_file.parse_key_file(json.dumps(doc))


def test_agent_signer_module_is_micropython_clean():
    import inspect
    src = inspect.getsource(signer)
    for banned in ("chmod", "typing", "dataclass", "itertools", "bit_length", "try:\n    import"):
        assert banned not in src, banned


@pytest.mark.micropython
def test_signer_and_key_file_under_micropython(tmp_path):
    key_text = key_file.key_file_content("dev-1", "EdDSA", ED_SEED)
    p256_text = key_file.key_file_content("dev-2", "ES256", P256_D)
    sm2_text = key_file.key_file_content("dev-3", "SM2", SM2_D)
    out = run_lines("""
from edgeledger.agent import key_file, signer
from edgeledger.protocols.key_file import KeyFileError
for name, text in (("ed", ED_TEXT), ("p256", P256_TEXT), ("sm2", SM2_TEXT)):
    with open(name + ".json", "w") as f:
        f.write(text)
    s = key_file.load_key_file(name + ".json")
    print(name + ".alg|%d" % s.alg)
    print(name + ".kid|" + s.kid.hex())
    print(name + ".device|" + s.device)
    print(name + ".sig|" + s.sign(b"tbs").hex())
    print(name + ".content|" + key_file.key_file_content(s.device, s.alg, s.private_bytes()).strip())
g = signer.generate("EdDSA", "x")
print("gen.verify|%r" % signer.verify(g.alg, g.public_key, b"m", g.sign(b"m")))
try:
    key_file.parse_key_file(ED_TEXT.replace('"kid": "', '"kid": "00'))
    print("badkid|accepted")
except KeyFileError:
    print("badkid|KeyFileError")
""", extra="ED_TEXT = %r\nP256_TEXT = %r\nSM2_TEXT = %r\n" % (key_text, p256_text, sm2_text))
    ed = signer.KeySigner("EdDSA", ED_SEED)
    assert out["ed.alg"] == "-8" and out["ed.kid"] == ed.kid.hex()
    assert out["ed.device"] == "dev-1"
    Ed25519PublicKey.from_public_bytes(ED_PUB).verify(bytes.fromhex(out["ed.sig"]), b"tbs")
    assert out["ed.content"] == key_text.strip()  # same file bytes on both runtimes
    p = signer.KeySigner("ES256", P256_D)
    assert out["p256.alg"] == "-7" and out["p256.kid"] == p.kid.hex()
    assert out["p256.sig"] == p.sign(b"tbs").hex()  # RFC 6979 on both sides
    assert out["p256.content"] == p256_text.strip()
    assert out["sm2.alg"] == "-65537" and out["sm2.kid"] == signer.KeySigner("SM2", SM2_D).kid.hex()
    assert out["sm2.content"] == sm2_text.strip()
    assert signer.verify("SM2", SM2_PUB, b"tbs", bytes.fromhex(out["sm2.sig"]))  # tongsuopy here
    assert out["gen.verify"] == "True"
    assert out["badkid"] == "KeyFileError"

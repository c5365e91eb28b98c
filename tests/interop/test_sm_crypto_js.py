"""An independent SM2/SM3/SM4 (npm's sm-crypto, under Node) and ours agree: its hashes and
ciphertexts are ours, it verifies our SM2 readings, and the gateway verifies its signatures.

sm-crypto is pinned in package.json (`npm ci` installs it into node_modules/).
"""
import json
import os
import shutil
import subprocess

import pytest

from edgeledger.agent import crypto
from edgeledger.agent.crypto.cipher import sm4_ecb_encrypt_block
from edgeledger.agent.crypto.pure.sm2 import sign as pure
from edgeledger.agent.crypto.pure.sm2 import verify as pure_verify
from edgeledger.agent.signer import generate
from edgeledger.gateway.registry import signatures
from edgeledger.protocols import chain, cose
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.agent.crypto import vectors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "interop", "sm_crypto_check.js")
pytestmark = pytest.mark.interop


def run_sm_crypto(job):
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is missing: the sm-crypto cross-check needs Node (20+)")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "sm-crypto")):
        raise AssertionError("node_modules/sm-crypto is missing: run `make setup` (npm ci)")
    out = subprocess.run([node, SCRIPT], input=json.dumps(job), capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _reading(signer, seq=1):
    payload = reading_validate.encode_payload(signer.device, seq, chain.GENESIS, 2,
                                     [{0: "dev/energy", 1: "kWh", 2: 1234.5, 6: 1764093000}])
    return payload, cose.sign1(payload, signer)


def test_sm3_and_sm4_agree():
    msgs = [b"", b"abc", os.urandom(64), os.urandom(200)]
    blocks = [(bytes.fromhex(vectors.SM4[0]), bytes.fromhex(vectors.SM4[0]))]
    blocks += [(os.urandom(16), os.urandom(16)) for _ in range(3)]
    result = run_sm_crypto({"sm3": [m.hex() for m in msgs],
                            "sm4": [{"key": k.hex(), "block": b.hex()} for k, b in blocks]})
    assert result["sm3"] == [crypto.sm3(m).hex() for m in msgs]
    assert result["sm3"][1] == vectors.SM3[0][1]
    assert result["sm4"] == [sm4_ecb_encrypt_block(k, b).hex() for k, b in blocks]
    assert result["sm4"][0] == vectors.SM4[1]


def test_sm_crypto_verifies_our_sm2_readings_and_the_gateway_verifies_its_signatures():
    """Ours: the device signer on this runtime (tongsuopy) and the board's pure code.
    Theirs: sm-crypto signs the same Sig_structure; the gateway's verifier decides."""
    s = generate("SM2", "meter-sm2")
    payload, msg = _reading(s)
    tbs = cose_verify.parse_sign1(msg).to_be_signed()
    board_sig = pure.sign_message(int.from_bytes(s.private_bytes(), "big"), tbs)
    bad = bytearray(board_sig)
    bad[3] ^= 1
    gmt = vectors.SM2_GMT
    cases = [(s.public_key, tbs, cose_verify.parse_sign1(msg).signature, True),
             (s.public_key, tbs, board_sig, True),
             (s.public_key, tbs + b"x", board_sig, False),
             (s.public_key, tbs, bytes(bad), False),
             (bytes.fromhex(gmt["pub"]), gmt["msg"], bytes.fromhex(gmt["sig"]), True)]
    result = run_sm_crypto({
        "verify": [{"public": p.hex(), "message": m.hex(), "signature": g.hex()}
                   for p, m, g, _ in cases],
        "sign": [{"private": s.private_bytes().hex(), "public": s.public_key.hex(),
                  "message": tbs.hex()}] * 2})
    assert result["verified"] == [want for *_, want in cases]
    for theirs_hex in result["signed"]:
        theirs = bytes.fromhex(theirs_hex)
        assert len(theirs) == 64
        assert signatures.verify(cose.SM2, s.public_key, tbs, theirs) is True
        assert signatures.verify(cose.SM2, s.public_key, tbs + b"x", theirs) is False
        assert pure_verify.verify_message(s.public_key, tbs, theirs)
    assert result["signed"][0] != result["signed"][1]  # random k on their side

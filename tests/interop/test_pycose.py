"""An independent COSE implementation (pycose 1.1) verifies our messages, and we verify its.

pycose 1.1 only decodes with cbor2 < 6, so it runs in its own venv (.venv-interop,
made by `make test`).
"""
import json
import os
import subprocess

import pytest

from edgeledger.agent.signer import generate
from edgeledger.gateway.registry import signatures
from edgeledger.protocols import chain, cose
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTEROP_PY = os.path.join(ROOT, ".venv-interop", "bin", "python")
pytestmark = pytest.mark.interop


def run_pycose(job):
    if not os.path.exists(INTEROP_PY):
        raise AssertionError("pycose venv missing at %s: run `make test`" % INTEROP_PY)
    out = subprocess.run([INTEROP_PY, os.path.join(ROOT, "tests", "interop", "pycose_check.py")],
                         input=json.dumps(job), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_pycose_verifies_ours_and_we_verify_pycose():
    cases, sign = [], []
    signers = [generate(alg, "dev-%s" % alg) for alg in ("EdDSA", "ES256")]
    pack = [{0: "dev/power", 1: "W", 2: 2310.5, 6: 1764093000}]
    for s in signers:
        payload = reading_validate.encode_payload(s.device, 1, chain.GENESIS, 3, pack)
        good = cose.sign1(payload, s)
        bad = bytearray(good)
        bad[-5] ^= 0x40  # inside the signature
        for msg in (good, bytes(bad)):
            cases.append({"alg": s.alg_name, "public": s.public_key.hex(), "message": msg.hex()})
        sign.append({"alg": s.alg_name, "private": s.private_bytes().hex(), "kid": s.kid.hex(),
                     "payload": payload.hex()})
    result = run_pycose({"verify": cases, "sign": sign})
    assert result["verified"] == [True, False, True, False]
    for s, hex_msg in zip(signers, result["signed"]):
        theirs = cose_verify.parse_sign1(bytes.fromhex(hex_msg), decode=_lenient)
        assert theirs.kid == s.kid and theirs.alg == s.alg
        cose_verify.verify_sign1(theirs, s.public_key, signatures.verify)
        assert reading_validate.decode_payload(theirs.payload).device == s.device


def _lenient(data):
    # pycose may order or size its header maps differently from RFC 8949 §4.2.1; it is
    # not our deterministic encoder, so read its bytes without the canonical checks.
    from edgeledger.protocols.cbor import decoder as cbor_decoder

    return cbor_decoder.decode(data, canonical=False)

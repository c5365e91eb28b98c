"""Runs in .venv-interop (pycose 1.1 + cbor2 < 6), not in the project venv.

stdin: JSON {"verify": [{"alg": "EdDSA"|"ES256", "public": hex, "message": hex}],
             "sign": [{"alg": ..., "private": hex, "kid": hex, "payload": hex}]}
stdout: JSON {"verified": [bool...], "signed": [hex...]}
"""
import json
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from pycose.algorithms import EdDSA, Es256
from pycose.headers import KID, Algorithm
from pycose.keys import EC2Key, OKPKey
from pycose.keys.curves import P256, Ed25519
from pycose.messages import Sign1Message


def public_key(alg, raw):
    if alg == "EdDSA":
        return OKPKey(crv=Ed25519, x=raw)
    return EC2Key(crv=P256, x=raw[1:33], y=raw[33:65])


def private_key(alg, raw):
    if alg == "EdDSA":
        return OKPKey(crv=Ed25519, d=raw)
    priv = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    nums = priv.public_key().public_numbers()
    return EC2Key(crv=P256, d=raw, x=nums.x.to_bytes(32, "big"), y=nums.y.to_bytes(32, "big"))


def main():
    job = json.load(sys.stdin)
    verified = []
    for item in job.get("verify", []):
        msg = Sign1Message.decode(bytes.fromhex(item["message"]))
        msg.key = public_key(item["alg"], bytes.fromhex(item["public"]))
        try:
            verified.append(bool(msg.verify_signature()))
        except Exception:
            verified.append(False)
    signed = []
    for item in job.get("sign", []):
        alg = EdDSA if item["alg"] == "EdDSA" else Es256
        msg = Sign1Message(phdr={Algorithm: alg, KID: bytes.fromhex(item["kid"])},
                           payload=bytes.fromhex(item["payload"]))
        msg.key = private_key(item["alg"], bytes.fromhex(item["private"]))
        signed.append(msg.encode(tag=True).hex())
    json.dump({"verified": verified, "signed": signed}, sys.stdout)


if __name__ == "__main__":
    main()

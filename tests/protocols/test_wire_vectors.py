"""docs/wire-format.md vectors, byte for byte, on CPython and under MicroPython."""
import hashlib

import pytest

from edgeledger.agent.signer import KeySigner
from edgeledger.protocols import chain, cose, session
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.reading import with_base_fields
from tests.protocols import wire_vectors
from tests.support.mpy import run_micropython

SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PACK1 = [{0: "meter-01/energy_import", 1: "kWh", 2: 1234.5, 6: 1764093000}]
PACK2 = [{-2: "meter-01/", -3: 1764093060, 0: "power", 1: "W", 2: 2310}, {0: "voltage_l1", 1: "V", 2: 230.5}]

# Vector 8: one SDM630 poll of 10 values as the Modbus source reads it (names, units, one time)
POLL = [{0: "meter-01/m1/" + n, 1: u, 2: v, 6: 1764093120} for n, u, v in zip(
    ("voltage_l1", "voltage_l2", "voltage_l3", "current_l1", "current_l2", "current_l3",
     "power_l1", "power_l2", "power_l3", "power"),
    ("V", "V", "V", "A", "A", "A", "W", "W", "W", "W"),
    (230.5, 229.75, 231.25, 1.5, 1.25, 0.75, 345.5, 287.25, 173.5, 806.25))]

V = wire_vectors.load()


def test_doc_has_every_vector():
    assert set(V) >= {"public-key", "kid", "payload-1", "protected", "sig-structure-1", "message-1",
                      "digest-1", "message-2", "ack-2", "digest-2", "payload-6-plain", "payload-6",
                      "message-6"}


def test_vectors_byte_for_byte():
    s = KeySigner(-8, SEED, "meter-01")
    assert s.public_key == V["public-key"]
    assert s.kid == V["kid"]
    p1 = reading_validate.encode_payload("meter-01", 1, chain.GENESIS, 1, PACK1)
    assert p1 == V["payload-1"]
    assert cose.protected_header(cose.EDDSA, s.kid) == V["protected"]
    assert cose.sig_structure(V["protected"], p1) == V["sig-structure-1"]
    m1 = cose.sign1(p1, s)
    assert m1 == V["message-1"]
    assert hashlib.sha256(m1).digest() == V["digest-1"]
    p2 = reading_validate.encode_payload("meter-01", 2, V["digest-1"], 1, PACK2)
    assert cose.sign1(p2, s) == V["message-2"]
    assert session.encode_ack(2) == V["ack-2"]
    assert hashlib.sha256(V["message-2"]).digest() == V["digest-2"]
    assert reading_validate.encode_payload("meter-01", 3, V["digest-2"], 1, POLL) == V["payload-6-plain"]
    # the board's base fields: a fixed function of the records, and the bytes it signs
    based = with_base_fields(POLL)
    assert based[0] == {-2: "meter-01/m1/", -3: 1764093120, -4: "V", 0: "voltage_l1", 2: 230.5}
    p6 = reading_validate.encode_payload("meter-01", 3, V["digest-2"], 1, based)
    assert p6 == V["payload-6"]
    assert cose.sign1(p6, s) == V["message-6"]


def test_both_forms_of_vector_6_are_the_same_readings():
    import cbor2

    plain = reading_validate.decode_payload(V["payload-6-plain"], cbor2.loads)
    based = reading_validate.decode_payload(V["payload-6"], cbor2.loads)
    assert (plain.device, plain.seq, plain.prev) == (based.device, based.seq, based.prev)
    assert reading_validate.resolve(based.pack) == reading_validate.resolve(plain.pack)
    assert reading_validate.resolve(plain.pack)[9] == {"n": "meter-01/m1/power", "u": "W", "v": 806.25, "t": 1764093120}
    assert reading_validate.time_range(based.pack) == (1764093120, 1764093120)


def test_vectors_decode_and_verify_with_cbor2():
    import cbor2

    from edgeledger.gateway.registry import signatures

    for name, seq in (("message-1", 1), ("message-2", 2)):
        msg = cose_verify.parse_sign1(V[name], cbor2.loads)
        assert msg.kid == V["kid"] and msg.alg == cose.EDDSA
        cose_verify.verify_sign1(msg, V["public-key"], signatures.verify)
        body = reading_validate.decode_payload(msg.payload, cbor2.loads)
        assert (body.device, body.seq, body.epoch) == ("meter-01", seq, 1)
    resolved = reading_validate.resolve(PACK2)
    assert resolved[1] == {"n": "meter-01/voltage_l1", "t": 1764093060, "u": "V", "v": 230.5}


@pytest.mark.micropython
def test_vectors_under_micropython():
    script = """
import hashlib
from edgeledger.agent.signer import KeySigner
from edgeledger.protocols import cose, chain, session
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
V = %r
s = KeySigner(-8, V["seed"], "meter-01")
assert s.public_key == V["public-key"], "pub"
assert s.kid == V["kid"], "kid"
p1 = reading_validate.encode_payload("meter-01", 1, chain.GENESIS, 1, %r)
assert p1 == V["payload-1"], "payload"
m1 = cose.sign1(p1, s)
assert m1 == V["message-1"], "message-1"
assert hashlib.sha256(m1).digest() == V["digest-1"]
m2 = cose.sign1(reading_validate.encode_payload("meter-01", 2, V["digest-1"], 1, %r), s)
assert m2 == V["message-2"], "message-2"
msg = cose_verify.parse_sign1(V["message-2"])
body = reading_validate.decode_payload(msg.payload)
assert body.seq == 2 and body.prev == V["digest-1"]
from edgeledger.agent.signer import verify
assert verify(-8, V["public-key"], msg.to_be_signed(), msg.signature)
assert session.decode_ack(V["ack-2"]) == 2
from edgeledger.protocols.reading import with_base_fields, encode_payload
p6 = encode_payload("meter-01", 3, V["digest-2"], 1, with_base_fields(%r))
assert p6 == V["payload-6"], "payload-6"
assert cose.sign1(p6, s) == V["message-6"], "message-6"
print("vectors ok")
""" % (dict(V, seed=SEED), PACK1, PACK2, POLL)
    out = run_micropython(script, heapsize="256K", timeout=300)
    assert "vectors ok" in out.stdout


def test_batch_header_key_commitment_and_bundle_vectors():
    from edgeledger.gateway.registry import signatures
    from edgeledger.protocols import keywindow, merkle
    from edgeledger.protocols.batch import LAYOUT_LEN, BatchHeader
    from edgeledger.protocols.bundle import Bundle, check_offline

    leaves = [merkle.leaf_hash(V["message-1"]), merkle.leaf_hash(V["message-2"])]
    assert leaves[0] == V["leaf-1"]
    root = merkle.root(leaves)
    assert root == V["root-12"]
    gw = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
    h = BatchHeader(gw, 1, chain.GENESIS, root, 2, 1764093000, 1764093061)
    layout = h.layout()
    assert layout == V["header-v2-layout-1"] and h.hash() == V["header-v2-hash-1"]
    # the documented offsets: version, tree-hash algorithm, gateway, number, ..., last time
    assert len(layout) == LAYOUT_LEN == 118
    assert layout[0] == 2 and layout[1] == 1 and layout[2:22] == gw
    assert layout[22:30] == (1).to_bytes(8, "big") and layout[62:94] == root
    assert layout[94:102] == (2).to_bytes(8, "big") and layout[110:118] == (1764093061).to_bytes(8, "big")
    assert keywindow.commitment_layout("plant-a", "meter-01", -8, V["public-key"], 5, 1764092000, 1) \
        == V["key-commitment-layout-1"]
    assert keywindow.key_commitment("plant-a", "meter-01", -8, V["public-key"], 5, 1764092000, 1) \
        == V["key-commitment-1"]
    b = Bundle(V["message-2"], 1, merkle.inclusion_proof(leaves, 1), h, 31337,
               bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"), bytes(range(32)), 7,
               bytes(range(32, 64)), -8, V["public-key"], "plant-a", 5, 1764092000, 1)
    assert b.encode() == V["bundle-v2-2"]
    parsed = Bundle.decode(V["bundle-v2-2"])
    assert parsed.header == h and parsed.path == [V["leaf-1"]]
    assert (parsed.site, parsed.key_block, parsed.key_time, parsed.first_seq) == ("plant-a", 5, 1764092000, 1)
    assert check_offline(parsed, signatures.verify).seq == 2


SM2_D = bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")


def test_sm2_vectors_byte_for_byte():
    """Vector 6: a board's SM2 reading (deterministic k) is these bytes; the gateway verifies
    it, and a Linux device's (random k) differs only in the signature."""
    from edgeledger.gateway.registry import signatures
    from edgeledger.agent.crypto.pure import sm3
    from edgeledger.agent.crypto.pure.sm2 import sign as sm2
    from edgeledger.protocols import keywindow

    s = KeySigner("SM2", SM2_D, "meter-01")
    assert s.public_key == V["sm2-public-key"] and s.kid == V["sm2-kid"]
    assert cose.protected_header(cose.SM2, s.kid) == V["sm2-protected"]
    assert sm2.z_a(s.public_key) == V["sm2-za"]
    tbs = cose.sig_structure(V["sm2-protected"], V["payload-1"])
    assert sm3.sm3(V["sm2-za"] + tbs) == V["sm2-e-1"]

    class Board:
        alg, kid = cose.SM2, s.kid

        def sign(self, data):
            return sm2.sign_message(int.from_bytes(SM2_D, "big"), data)

    assert cose.sign1(V["payload-1"], Board()) == V["sm2-message-1"]
    assert keywindow.commitment_layout("plant-a", "meter-01", cose.SM2, s.public_key, 5, 1764092000, 1) \
        == V["sm2-key-commitment-layout-1"]
    assert keywindow.key_commitment("plant-a", "meter-01", cose.SM2, s.public_key, 5, 1764092000, 1) \
        == V["sm2-key-commitment-1"]
    for m in (V["sm2-message-1"], cose.sign1(V["payload-1"], s)):
        msg = cose_verify.parse_sign1(m)
        assert msg.alg == -65537 and msg.kid == V["sm2-kid"]
        cose_verify.verify_sign1(msg, V["sm2-public-key"], signatures.verify)
    linux = cose.sign1(V["payload-1"], s)
    assert linux[:-64] == V["sm2-message-1"][:-64]


@pytest.mark.micropython
def test_sm2_vectors_under_micropython():
    script = """
from edgeledger.agent.signer import KeySigner, verify
from edgeledger.protocols import cose
from edgeledger.protocols.cose import verify as cose_verify
V = %r
s = KeySigner("SM2", V["d"], "meter-01")
assert s.public_key == V["sm2-public-key"], "pub"
assert s.kid == V["sm2-kid"], "kid"
assert cose.sign1(V["payload-1"], s) == V["sm2-message-1"], "message"
msg = cose_verify.parse_sign1(V["sm2-message-1"])
assert verify(-65537, V["sm2-public-key"], msg.to_be_signed(), msg.signature)
assert not verify(-65537, V["sm2-public-key"], msg.to_be_signed() + b"x", msg.signature)
print("sm2 vectors ok")
""" % (dict(V, d=SM2_D),)
    out = run_micropython(script, heapsize="256K", timeout=300)
    assert "sm2 vectors ok" in out.stdout


@pytest.mark.micropython
def test_batch_header_and_key_commitment_vectors_under_micropython():
    script = """
from edgeledger.protocols import keywindow
from edgeledger.protocols.batch import BatchHeader
V = %r
h = BatchHeader(V["gw"], 1, bytes(32), V["root-12"], 2, 1764093000, 1764093061)
assert h.layout() == V["header-v2-layout-1"], "layout"
assert h.hash() == V["header-v2-hash-1"], "hash"
assert keywindow.key_commitment("plant-a", "meter-01", -8, V["public-key"], 5, 1764092000, 1) == V["key-commitment-1"]
sm2 = keywindow.key_commitment("plant-a", "meter-01", -65537, V["sm2-public-key"], 5, 1764092000, 1)
assert sm2 == V["sm2-key-commitment-1"], "sm2 key commitment"
print("batch vectors ok")
""" % (dict(V, gw=bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")),)
    out = run_micropython(script, heapsize="256K", timeout=300)
    assert "batch vectors ok" in out.stdout

"""The agent's building blocks under the real MicroPython interpreter: outbox
recovery from a torn write at every byte, the chain rules, COSE sign and parse."""
import binascii

import pytest

from edgeledger.agent import signer
from edgeledger.protocols import chain, cose
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.support.mpy import run_micropython


def lines(proc):
    return dict(line.split("|", 1) for line in proc.stdout.splitlines() if "|" in line)


# five records in one segment, its bytes in ``whole``
OUTBOX_SETUP = r"""
import os
import hashlib
from edgeledger.agent.outbox import Outbox, HEADER_LEN

def sha(b):
    return hashlib.sha256(b).digest()

def msg(seq, size=40):
    return (b"m%06d-" % seq) * (size // 8 + 1)

def rmtree(d):
    for n in os.listdir(d):
        os.remove(d + "/" + n)
    os.rmdir(d)

box = Outbox("src", hash_fn=sha)
for s in range(1, 6):
    box.append(s, msg(s))
box.close()
(seg,) = [n for n in os.listdir("src") if n.endswith(".seg")]
with open("src/" + seg, "rb") as f:
    whole = f.read()
"""

OUTBOX_CUTS = OUTBOX_SETUP + r"""
start = len(whole) - (HEADER_LEN + len(msg(5)))
checked = 0
for cut in range(start, len(whole)):
    d = "cut"
    os.mkdir(d)
    with open(d + "/" + seg, "wb") as f:
        f.write(whole[:cut])
    again = Outbox(d, hash_fn=sha)
    assert again.head_seq == 4, cut
    assert again.head_hash == sha(msg(4)), cut
    assert again.read(1, 10) == [(s, msg(s)) for s in range(1, 5)], cut
    assert again.counters["torn_records"] == (1 if cut > start else 0), cut
    again.append(5, b"fresh")  # written after the torn tail, never into it
    again.close()
    third = Outbox(d, hash_fn=sha)
    assert third.read(1, 10)[-1] == (5, b"fresh"), cut
    assert third.head_seq == 5
    third.close()
    rmtree(d)
    checked += 1
print("cuts|%d" % checked)
"""


@pytest.mark.micropython
def test_outbox_recovers_from_a_cut_at_every_byte_of_the_last_record():
    proc = run_micropython(OUTBOX_CUTS, heapsize="256K")
    # the last record is a 20-byte header plus a 48-byte message: 68 cut positions
    assert lines(proc)["cuts"] == "68"


OUTBOX_FLIPS = OUTBOX_SETUP + r"""
rec = HEADER_LEN + len(msg(1))
checked = 0
for offset in list(range(2 * rec, 3 * rec)) + list(range(4 * rec, 5 * rec)):
    hit = offset // rec + 1
    raw = bytearray(whole)
    raw[offset] ^= 1 << (offset % 8)
    os.mkdir("f")
    with open("f/" + seg, "wb") as f:
        f.write(raw)
    again = Outbox("f", hash_fn=sha)
    assert again.read(1, 10) == [(s, msg(s)) for s in range(1, 6) if s != hit], offset
    if hit == 5:
        assert again.lost[3].startswith("5-") and again.lost[3].endswith(":head"), again.lost
        assert again.head_hash == sha(msg(4))
    else:
        assert again.lost[3] == "%d-%d:damaged" % (hit, hit), again.lost
        assert again.head_seq == 5 and again.head_hash == sha(msg(5))
    again.close()
    rmtree("f")
    checked += 1
print("flips|%d" % checked)
"""


@pytest.mark.micropython
def test_outbox_keeps_every_intact_record_after_a_bit_flip():
    """Issue 13: a flipped bit in a middle record or in the newest one loses only that record."""
    proc = run_micropython(OUTBOX_FLIPS, heapsize="256K")
    assert lines(proc)["flips"] == "136"


# (name, seq, prev, digest) against a store holding seqs 1..3 of one chain and 5
H = [bytes([i]) * 32 for i in range(10)]
STORE = {1: (H[1], chain.GENESIS), 2: (H[2], H[1]), 3: (H[3], H[2]), 5: (H[5], H[4])}
SCENARIOS = [
    ("C1 below", 0, H[0], H[9]),
    ("C2 duplicate", 2, H[1], H[2]),
    ("C3 fork", 2, H[1], H[7]),
    ("C4 reused", 2, H[8], H[7]),
    ("C5 backlink", 4, H[8], H[4]),
    ("C5 backlink to 5", 6, H[9], H[6]),
    ("C6 fwdlink", 4, H[3], H[9]),
    ("C7 next", 4, H[3], H[4]),
    ("C8 ahead", 8, H[7], H[8]),
]
EXPECTED = {"C1 below": ("C1", "replay"), "C2 duplicate": ("C2", "duplicate"),
            "C3 fork": ("C3", "fork"), "C4 reused": ("C4", "replay"),
            "C5 backlink": ("C5", "chain_break"), "C5 backlink to 5": ("C5", "chain_break"),
            "C6 fwdlink": ("C6", "chain_break"), "C7 next": ("C7", "next"),
            "C8 ahead": ("C8", "ahead")}


@pytest.mark.micropython
def test_chain_rules_give_the_same_verdicts_under_micropython():
    script = "from edgeledger.protocols import chain\n"
    script += "H = [bytes([i]) * 32 for i in range(10)]\n"
    script += "STORE = {1: (H[1], chain.GENESIS), 2: (H[2], H[1]), 3: (H[3], H[2]), 5: (H[5], H[4])}\n"
    script += "SCENARIOS = [\n"
    for name, seq, prev, digest in SCENARIOS:
        script += "    (%r, %d, H[%d], H[%d]),\n" % (name, seq, prev[0], digest[0])
    script += "]\nfor name, seq, prev, digest in SCENARIOS:\n"
    script += "    print('%s|%s,%s' % ((name,) + chain.classify(seq, prev, digest, STORE.get)))\n"
    got = lines(run_micropython(script))
    for name, seq, prev, digest in SCENARIOS:
        here = chain.classify(seq, prev, digest, STORE.get)
        assert here == EXPECTED[name], name
        assert got[name] == "%s,%s" % here, name


COSE_SCRIPT = r"""
import binascii
from edgeledger.agent import signer
from edgeledger.protocols import cose
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
for alg in ("EdDSA", "ES256"):
    s = signer.KeySigner(alg, bytes(range(1, 33)), "meter-01")
    payload = reading_validate.encode_payload("meter-01", 7, b"\x11" * 32, 2,
                                     [{0: "meter-01/power", 1: "W", 2: 2301.5, 6: 1767225600.5}])
    msg = cose.sign1(payload, s)
    parsed = cose_verify.parse_sign1(msg)
    cose_verify.verify_sign1(parsed, s.public_key, signer.verify)
    assert parsed.kid == s.kid and parsed.alg == s.alg
    assert reading_validate.decode_payload(parsed.payload).seq == 7
    bad = bytearray(msg)
    bad[-1] ^= 1
    try:
        cose_verify.verify_sign1(cose_verify.parse_sign1(bytes(bad)), s.public_key, signer.verify)
        raise AssertionError("tampered signature verified")
    except Exception as e:
        assert type(e).__name__ == "SignatureError", repr(e)
    print(alg + "|" + binascii.hexlify(msg).decode())
"""


@pytest.mark.micropython
def test_cose_sign_and_parse_under_micropython_match_cpython_bytes():
    got = lines(run_micropython(COSE_SCRIPT, heapsize="256K"))
    for alg in ("EdDSA", "ES256"):
        s = signer.KeySigner(alg, bytes(range(1, 33)), "meter-01")
        payload = reading_validate.encode_payload("meter-01", 7, b"\x11" * 32, 2,
                                         [{0: "meter-01/power", 1: "W", 2: 2301.5, 6: 1767225600.5}])
        mpy_msg = binascii.unhexlify(got[alg])
        # Ed25519 and RFC 6979 ECDSA are deterministic: both runtimes sign the same bytes
        assert mpy_msg == cose.sign1(payload, s), alg
        parsed = cose_verify.parse_sign1(mpy_msg)
        cose_verify.verify_sign1(parsed, s.public_key, signer.verify)  # CPython backend verifies it


ERRORS = r"""
from edgeledger.agent import core, errors as agent_errors
from edgeledger.protocols import cbor, errors, session
try:
    cbor.encode(object())
except ValueError as e:
    print("encode|%s|%s" % (type(e).__name__, isinstance(e, errors.ProtocolError)))
try:
    session.decode_ack(b"\x00")
except errors.DecodeError as e:
    print("ack|%s" % type(e).__name__)
from edgeledger.agent.errors import OutboxFull
print("outbox|%s|%s" % (issubclass(OutboxFull, agent_errors.OutboxError),
                        agent_errors.OutboxFull is OutboxFull))
"""


@pytest.mark.micropython
def test_error_hierarchy_under_micropython():
    out = lines(run_micropython(ERRORS))
    assert out["encode"] == "EncodeError|True"
    assert out["ack"] == "SessionMessageError"
    assert out["outbox"] == "True|True"


@pytest.mark.micropython
def test_start_up_drops_the_config_tables_before_the_key_is_loaded(tmp_path):
    # agent/config.py's key tables are start-up's largest objects: load_config hands back
    # what start-up needs of that module (settings, chain digest, broker) and forgets it, so
    # the key, the outbox and the core are made without them on the heap (docs/firmware.md)
    (tmp_path / "config.json").write_text('{"device": "d1", "site": "s1", "key_file": "d1.key", '
                                          '"broker": "mqtts://broker.example:8883", "sources": []}')
    out = lines(run_micropython(r"""
import sys
from edgeledger.firmware import startup
cfg, digest, broker = startup.load_config("config.json")
print("loaded|%s" % ("edgeledger.agent.config" in sys.modules))
print("digest|%s" % digest(b"abc").hex())
print("broker|%r" % (broker,))
print("outbox|%d" % cfg["outbox"]["segment_bytes"])
""", cwd=str(tmp_path)))
    assert out["loaded"] == "False"
    assert out["digest"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256("abc")
    assert out["broker"] == "(True, 'broker.example', 8883)"
    assert out["outbox"] == "16384"  # the board's default (agent/config.py)

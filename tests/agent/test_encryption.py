"""Encrypted readings on the device: the agent core seals each pack into a COSE_Encrypt0 for
the data owner (AES-CCM or SM4-CCM), and no nonce ever encrypts two different plaintexts,
also when a power cut makes it seal the same seqs again."""
import hashlib
import shutil

import pytest

from edgeledger.agent.content_key import (
    ContentKey,
    ContentKeyError,
    content_key_file,
    key_id,
    parse_content_key,
)
from edgeledger.agent.core import AgentCore
from edgeledger.agent.crypto.errors import CcmAuthError
from edgeledger.agent.outbox import Outbox
from edgeledger.agent.signer import generate
from edgeledger.agent.simulated import SimulatedSource
from edgeledger.protocols.cbor.decoder import decode as cbor_decode
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.key_file import KeyFileError
from edgeledger.protocols.reading import validate as reading_validate

ALGS = ("AES-CCM-16-64-128", "SM4-CCM-16-64-128")
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def sha(b):
    return hashlib.sha256(b).digest()


class Sealed:
    """An outbox that also remembers every message handed to it: what left the signer,
    durable or not (a power cut loses the records since the last flush)."""

    def __init__(self, path, seen):
        self.box = Outbox(path, hash_fn=sha, max_bytes=1 << 20, segment_bytes=1 << 16, flush_interval_s=1e9)
        self.seen = seen

    def __getattr__(self, name):
        return getattr(self.box, name)

    def append(self, seq, data, digest=None):
        self.seen.append((seq, data))
        return self.box.append(seq, data, digest)


def core(path, seen, ck, signer, epoch):
    src = SimulatedSource("dev", "meter", interval_s=1.0)
    return AgentCore("dev", signer, Sealed(path, seen), [src], sha, epoch=epoch, content_key=ck)


def opened(ck, data):
    body = reading_validate.decode_payload(cose_verify.parse_canonical(data).payload)
    enc = cose_verify.parse_encrypt0(body.enc)
    return body, enc, ck.open(enc)


@pytest.mark.parametrize("alg", ALGS)
def test_core_seals_packs_the_gateway_accepts_and_the_owner_opens(tmp_path, alg):
    ck = ContentKey(alg, KEY)
    seen = []
    c = core(str(tmp_path / "a"), seen, ck, generate("EdDSA", "dev"), 1)
    for t in range(3):
        c.tick(float(t), 1764093000.0 + t)
    assert [s for s, _ in seen] == [1, 2, 3]
    for seq, data in seen:
        body, enc, plain = opened(ck, data)
        assert body.pack is None and body.seq == seq
        assert (enc.alg, enc.kid) == (ck.alg, ck.kid)
        pack = reading_validate.check_pack(cbor_decode(plain))
        assert reading_validate.time_range(pack) == (1764093000.0 + seq - 1,) * 2
        assert ck.nonce("dev", seq, plain) == enc.iv  # the synthetic IV of what it encrypts


def test_power_cut_reseals_with_fresh_nonces_and_never_reuses_one(tmp_path):
    """Kill between seal and publish: the records sealed since the last flush never reach
    flash, the next boot seals the same seqs with other readings. A nonce of (device, seq)
    alone would now encrypt two plaintexts; ours names each plaintext."""
    ck = ContentKey("SM4-CCM-16-64-128", KEY)
    signer = generate("SM2", "dev")
    seen = []
    first = core(str(tmp_path / "flash"), seen, ck, signer, 1)
    for t in range(3):
        first.tick(float(t), 1764093000.0 + t)
    first.outbox.flush()  # seqs 1..3 durable: what could have been published
    shutil.copytree(str(tmp_path / "flash"), str(tmp_path / "after-cut"))  # what flash holds after the cut
    for t in range(3, 6):
        first.tick(float(t), 1764093000.0 + t)  # seqs 4..6: sealed, never flushed, never sent
    assert first.outbox.head_seq == 6
    second = core(str(tmp_path / "after-cut"), seen, ck, signer, 2)
    assert second.outbox.head_seq == 3
    for t in range(10, 13):
        second.tick(float(t), 1764093000.0 + t)  # the same seqs 4..6, other readings
    by_seq, by_nonce = {}, {}
    for seq, data in seen:
        _body, enc, plain = opened(ck, data)
        by_seq.setdefault(seq, set()).add(plain)
        assert by_nonce.setdefault(enc.iv, (plain, enc.ciphertext)) == (plain, enc.ciphertext), \
            "nonce %s encrypts two different plaintexts (seq %d)" % (enc.iv.hex(), seq)
    assert [len(by_seq[s]) for s in range(1, 7)] == [1, 1, 1, 2, 2, 2]  # the cut really made seqs reused
    assert len(by_nonce) == 9


def test_resealing_the_same_plaintext_gives_the_same_bytes(tmp_path):
    ck = ContentKey("AES-CCM-16-64-128", KEY)
    signer = generate("EdDSA", "dev")
    runs = []
    for name in ("a", "b"):
        seen = []
        c = core(str(tmp_path / name), seen, ck, signer, 1)
        for t in range(2):
            c.tick(float(t), 1764093000.0 + t)
        runs.append([d for _, d in seen])
    assert runs[0] == runs[1]  # a nonce repeats only with its plaintext: nothing leaks


@pytest.mark.parametrize("alg", ALGS)
def test_wrong_key_and_altered_ciphertext_fail_the_tag(alg):
    ck = ContentKey(alg, KEY)
    enc = cose_verify.parse_encrypt0(ck.seal("dev", 1, b"\xa1\x00\x61x"))
    other = ContentKey(alg, bytes(16))
    with pytest.raises(ContentKeyError, match="encrypted for key"):
        other.open(enc)
    enc.kid = other.kid  # the right kid, the wrong key: the tag decides
    with pytest.raises(CcmAuthError):
        other.open(enc)
    enc.kid = ck.kid
    for i in range(len(enc.ciphertext)):
        bad = cose_verify.Encrypt0(enc.protected, enc.alg, enc.kid, enc.iv,
                                    enc.ciphertext[:i] + bytes([enc.ciphertext[i] ^ 1]) + enc.ciphertext[i + 1:])
        with pytest.raises(CcmAuthError):
            ck.open(bad)


def test_content_key_file_round_trip_and_refusals():
    for alg in ALGS:
        ck = parse_content_key(content_key_file(alg, KEY))
        assert (ck.alg_name, ck.key, ck.kid) == (alg, KEY, key_id(KEY))
    text = content_key_file(ALGS[0], KEY)
    for bad, match in ((text.replace(key_id(KEY).hex(), "00" * 16), "'kid'"),
                       (text.replace("AES-CCM-16-64-128", "AES-GCM"), "unsupported COSE content alg"),
                       (text.replace(KEY.hex(), KEY.hex()[:-2]), "expected 16 bytes"),
                       ("[1, 2]", "expected"), ("{", "JSON")):
        with pytest.raises(KeyFileError, match=match):
            parse_content_key(bad)


@pytest.mark.micropython
def test_board_seals_the_same_bytes_and_the_gateway_rules_hold_under_micropython():
    """The board's code (cryptolib/pure AES, pure SM4, pure HMAC) seals byte for byte what
    CPython seals, opens it, and the payload check refuses a re-encoded enc there too."""
    from edgeledger.protocols.cbor import encode
    from tests.support.mpy import run_micropython

    pt = encode([{0: "dev/energy", 1: "kWh", 2: 1234.5, 6: 1764093000}])
    want = dict((alg, ContentKey(alg, KEY).seal("dev", 7, pt).hex()) for alg in ALGS)
    out = run_micropython("""
import binascii
from edgeledger.agent.content_key import content_key_file, parse_content_key
from edgeledger.agent.crypto import implementation
from edgeledger.agent.signer import KeySigner
from edgeledger.protocols import chain, cose
from edgeledger.protocols.cose import verify
from edgeledger.protocols.reading import validate
signer = KeySigner("EdDSA", bytes(32), "dev")
pt = binascii.unhexlify(%r)
for alg in %r:
    ck = parse_content_key(content_key_file(alg, binascii.unhexlify(%r)))  # as a board loads its file
    enc = ck.seal("dev", 7, pt)
    assert ck.open(verify.parse_encrypt0(enc)) == pt
    print(alg, binascii.hexlify(enc).decode())
    msg = verify.parse_canonical(cose.sign1(validate.encode_payload("dev", 7, chain.GENESIS, 1, enc=enc), signer))
    assert validate.decode_payload(msg.payload).enc == enc
    bad = b"\\xd8\\x10" + enc[1:]
    try:
        verify.parse_canonical(cose.sign1(validate.encode_payload("dev", 7, chain.GENESIS, 1, enc=bad), signer))
        print("accepted a re-encoded enc")
    except verify.NonCanonicalMessage as e:
        print("refused", e.deviation)
print("aes", implementation()["aes"])
""" % (pt.hex(), ALGS, KEY.hex())).stdout.split("\n")
    got = dict(line.split(" ", 1) for line in out if line.startswith(("AES", "SM4")))
    assert got == want
    assert out.count("refused encrypted_encoding") == 2, out
    assert "aes cryptolib" in out, out  # the unix port has cryptolib's AES-ECB: a board's CCM runs on it

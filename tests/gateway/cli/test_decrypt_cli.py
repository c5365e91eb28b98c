"""`edgeledger decrypt`: the data owner's command verifies a bundle as `verify` does and only
then decrypts it; another key, a ciphertext that fails its tag, a bundle that fails
verification and a reading that is not encrypted are refused with their exit codes."""
import hashlib
import json
import os

import pytest

from edgeledger.agent.content_key import ContentKey, content_key_file
from edgeledger.gateway import cli, proofs
from edgeledger.protocols import cbor, cose
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.support.anchoring import anchor_stored, chain_site
from tests.support.devices import FakeDevice

KEY = bytes(range(16))
SM4 = "SM4-CCM-16-64-128"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Device m1 on an embedded chain: seq 1 encrypted (SM4-CCM), seq 2 in the clear, seq 3
    encrypted by the device with one ciphertext byte flipped before signing (a faulty device:
    the signature holds, the tag does not). Returns {seq: bundle path}, the folder."""
    root = tmp_path_factory.mktemp("decrypt")
    m1 = FakeDevice("m1")
    st, _reg, pipe, led, t0 = chain_site(str(root / "gw.db"), [m1])
    ck = ContentKey(SM4, KEY)
    pack = [{0: "m1/energy", 1: "kWh", 2: 1234.5, 6: t0}, {0: "m1/power", 1: "W", 2: 410, 6: t0 + 1}]

    def signed(pack=None, enc=None):
        msg = cose.sign1(reading_validate.encode_payload("m1", m1.seq + 1, m1.prev, 1, pack, enc), m1.signer)
        assert pipe.process(m1.topic, msg).verdict == "next"
        m1.seq, m1.prev = m1.seq + 1, hashlib.sha256(msg).digest()

    signed(enc=ck.seal("m1", 1, cbor.encode(pack)))
    signed(pack=pack)
    enc = bytearray(ck.seal("m1", 3, cbor.encode(pack)))
    enc[-3] ^= 0x01  # inside the ciphertext
    signed(enc=bytes(enc))
    pipe.commit()
    anchor_stored(st, led, 3)
    out = {}
    for seq in (1, 2, 3):
        b = proofs.bundle_for(st, "m1", seq, led.chain_id, led.address)
        out[seq] = str(root / ("b%d.cbor" % seq))
        with open(out[seq], "wb") as f:
            f.write(b.encode())
    for name, key in (("owner.ckey", KEY), ("other.ckey", bytes(16))):
        with open(str(root / name), "w") as f:
            f.write(content_key_file(SM4, key))
    st.close()
    return out, str(root)


def run(capsys, *argv):
    code = cli.main(["decrypt"] + list(argv))
    return code, capsys.readouterr().out


def test_decrypt_prints_the_verified_values_with_units(bundles, capsys):
    paths, root = bundles
    key = os.path.join(root, "owner.ckey")
    code, out = run(capsys, paths[1], "--key-file", key)
    assert code == 0 and out.startswith("OK "), out
    assert "m1/energy = 1234.5 kWh" in out and "m1/power = 410 W" in out, out
    assert "decrypted with content key %s (%s)" % (ContentKey(SM4, KEY).kid.hex(), SM4) in out
    code, out = run(capsys, paths[1], "--key-file", key, "--json")
    r = json.loads(out)
    assert code == 0 and r["encrypted"] is False and r["decrypted"]["alg"] == SM4
    assert [(v["n"], v["v"], v["u"]) for v in r["values"]] == [("m1/energy", 1234.5, "kWh"), ("m1/power", 410, "W")]


def test_decrypt_refuses_another_key_a_failed_tag_and_a_plain_reading(bundles, capsys):
    paths, root = bundles
    code, out = run(capsys, paths[1], "--key-file", os.path.join(root, "other.ckey"))
    assert code == 1 and out.startswith("FAIL") and "decrypt: not for this key" in out, out
    code, out = run(capsys, paths[3], "--key-file", os.path.join(root, "owner.ckey"))
    assert code == 1 and "the CCM tag does not verify" in out and "kWh" not in out, out
    code, out = run(capsys, paths[2], "--key-file", os.path.join(root, "owner.ckey"))
    assert code == 2 and "is not encrypted" in out, out
    code, out = run(capsys, paths[1], "--key-file", os.path.join(root, "missing.ckey"))
    assert code == 2 and "usage" in out, out


def test_decrypt_verifies_before_it_decrypts(bundles, capsys, tmp_path):
    """One altered byte of the signed message: refused by the verification, as `verify` does."""
    paths, root = bundles
    data = bytearray(open(paths[1], "rb").read())
    from edgeledger.protocols.bundle import Bundle

    msg = Bundle.decode(bytes(data)).message
    enc = reading_validate.decode_payload(cose_verify.parse_canonical(msg).payload).enc
    i = bytes(data).index(enc) + len(enc) - 3
    data[i] ^= 0x01
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(bytes(data))
    code, out = run(capsys, str(bad), "--key-file", os.path.join(root, "owner.ckey"))
    verify_code = cli.main(["verify", str(bad)])
    verify_out = capsys.readouterr().out
    assert code == verify_code == 1 and out == verify_out and "tampered message" in out, out

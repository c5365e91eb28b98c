"""SM2 readings through the gateway pipeline: readings signed on Linux (tongsuopy) and by the
board's pure code are stored and acknowledged; every forged or re-encoded SM2 signature gets
a typed reason and a quarantine row, and good traffic keeps flowing."""
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from edgeledger.agent.crypto.pure import sm3
from edgeledger.agent.crypto.pure.sm2 import sign as pure
from edgeledger.agent.signer import KeySigner, generate
from edgeledger.gateway import errors
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import cbor, cose
from edgeledger.protocols.cose import verify as cose_verify
from tests.support.devices import FakeDevice


class BoardSigner:
    """The signer a MicroPython board runs (agent/crypto/pure/sm2, RFC 6979 k), on this host;
    ``digest`` makes e from the Sig_structure, so tests can sign it the wrong way."""

    def __init__(self, private, device, digest=None):
        self._d = int.from_bytes(private, "big")
        ref = KeySigner("SM2", private, device)
        self.alg, self.kid, self.public_key, self.device = ref.alg, ref.kid, ref.public_key, device
        self._digest = digest or (lambda pub, tbs: sm3.sm3(pure.z_a(pub) + tbs))

    def sign(self, tbs):
        return pure.sign(self._d, self._digest(self.public_key, tbs))


@pytest.fixture
def gw(tmp_path):
    store = Store(str(tmp_path / "gw.db"))
    pipe = Pipeline(store, Registry(store), max_message_bytes=4096)
    yield pipe
    store.close()


def _resign(msg, signature):
    """``msg`` (COSE_Sign1 bytes) with its signature field replaced."""
    m = cose_verify.parse_sign1(msg)
    return cbor.encode(cbor.Tag(cose.TAG_SIGN1, [m.protected, {}, m.payload, signature]))


def test_sm2_readings_from_linux_and_board_signers_are_stored_and_acked(gw):
    linux = FakeDevice("meter-linux", alg="SM2")
    board = FakeDevice("meter-board", signer=BoardSigner(generate("SM2").private_bytes(),
                                                         "meter-board"))
    for d in (linux, board):
        d.register(gw.registry)
        for _ in range(3):
            assert gw.process(d.topic, d.next()).verdict == "next"
    assert gw.commit() == {"meter-linux": 3, "meter-board": 3}
    assert gw.store.seqs("meter-board") == [1, 2, 3]
    assert cose_verify.parse_sign1(linux.sent[1]).alg == cose.SM2 == -65537


def test_forged_and_re_encoded_sm2_signatures_are_refused(gw):
    d = FakeDevice("meter-sm2", alg="SM2")
    d.register(gw.registry)
    gw.process(d.topic, d.next())
    nxt = d.make(2, d.prev)
    sig = cose_verify.parse_sign1(nxt).signature
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    flipped = bytearray(sig)
    flipped[20] ^= 1
    private = d.signer.private_bytes()
    other_id = BoardSigner(private, d.name, lambda pub, tbs: sm3.sm3(
        pure.z_a(pub, b"ALICE123@YAHOO.COM") + tbs))
    no_za = BoardSigner(private, d.name, lambda pub, tbs: sm3.sm3(tbs))
    n = pure.N
    der = encode_dss_signature(r, s)  # the same (r, s) as ASN.1 DER, as OpenSSL emits it
    cases = [
        ("bad_signature", _resign(nxt, bytes(flipped))),
        ("bad_signature", FakeDevice(d.name, signer=other_id).make(2, d.prev)),  # Z_A of another id
        ("bad_signature", FakeDevice(d.name, signer=no_za).make(2, d.prev)),  # e = SM3(M), no Z_A
        ("bad_signature", _resign(nxt, bytes(32) + sig[32:])),  # r = 0
        ("non_canonical", _resign(nxt, sig[:32] + n.to_bytes(32, "big"))),  # s = n: unreduced
        ("bad_signature", _resign(nxt, sig[:32] + (n - r).to_bytes(32, "big"))),  # r + s = n
        ("not_cose_sign1", _resign(nxt, der)),  # DER, not the fixed r ‖ s
        ("not_cose_sign1", _resign(nxt, b"\x00" + sig)),  # 65 bytes
        ("not_cose_sign1", _resign(nxt, sig[:63])),
    ]
    for reason, data in cases:
        out = None
        try:
            gw.process(d.topic, data)
        except errors.RejectedMessage as e:
            out = e
        assert out is not None and out.reason == reason, (reason, out)
    assert gw.process(d.topic, nxt).verdict == "next"
    assert gw.commit() == {"meter-sm2": 2}
    assert sum(gw.store.quarantine_reasons().values()) == len(cases)


def test_an_sm2_key_does_not_verify_an_es256_claim(gw):
    """The message's alg must be the registered key's: an SM2 key with alg ES256 is refused."""
    d = FakeDevice("meter-sm2", alg="SM2")
    d.register(gw.registry)
    es = KeySigner("ES256", d.signer.private_bytes(), d.name)
    es.kid = d.signer.kid  # claim the SM2 key's kid
    forged = FakeDevice(d.name, signer=es).make(1, d.prev)
    with pytest.raises(errors.BadSignature, match="-65537, message says alg -7"):
        gw.process(d.topic, forged)


def test_cli_makes_and_registers_an_sm2_device_key(tmp_path, capsys):
    """`edgeledger device keygen --alg SM2` writes a key file the agent loads, and
    `device register --key-file` puts its public key in the gateway's registry as SM2."""
    from edgeledger.agent import key_file
    from edgeledger.gateway import cli

    (tmp_path / "gateway.toml").write_text(
        'gateway_id = "gw-t"\nstore = "gw.db"\nbroker = "mqtt://127.0.0.1:1"\nsites = ["plant-a"]\n'
        '[ledger]\nbackend = "none"\n')
    key = tmp_path / "m7.key"
    assert cli.main(["device", "keygen", "--device", "m7", "--alg", "SM2", "--out", str(key)]) == 0
    s = key_file.load_key_file(str(key))
    assert (s.alg, s.alg_name, len(s.public_key)) == (-65537, "SM2", 65)
    assert cli.main(["device", "register", "--config", str(tmp_path / "gateway.toml"),
                     "--device", "m7", "--site", "plant-a", "--key-file", str(key)]) == 0
    store = Store(str(tmp_path / "gw.db"))
    try:
        k = Registry(store).key(s.kid)
        assert (k.device, k.alg, k.public_key) == ("m7", cose.SM2, s.public_key)
    finally:
        store.close()
    assert "SM2" in capsys.readouterr().out


def test_an_sm2_bundle_passes_the_offline_checks_and_no_altered_byte_does():
    """A proof bundle of an SM2 reading (vector 6 of docs/wire-format.md, beside an Ed25519
    one in a 2-leaf batch) passes check_offline with the gateway's verifier; the same bundle
    with any one byte of the message altered does not."""
    from edgeledger.gateway.registry import signatures
    from edgeledger.protocols import chain, merkle
    from edgeledger.protocols.batch import BatchHeader
    from edgeledger.protocols.bundle import Bundle, BundleError, check_offline
    from tests.protocols import wire_vectors

    v = wire_vectors.load()
    leaves = [merkle.leaf_hash(v["sm2-message-1"]), merkle.leaf_hash(v["message-2"])]
    header = BatchHeader(bytes(20), 1, chain.GENESIS, merkle.root(leaves), 2, 1764093000, 1764093061)

    def bundle(message):
        return Bundle.decode(Bundle(message, 0, merkle.inclusion_proof(leaves, 0), header, 31337,
                                    bytes(20), bytes(32), 7, bytes(32), cose.SM2,
                                    v["sm2-public-key"], "plant-a", 5, 1764092000, 1).encode())

    assert check_offline(bundle(v["sm2-message-1"]), signatures.verify).seq == 1
    for i in range(len(v["sm2-message-1"])):
        bad = bytearray(v["sm2-message-1"])
        bad[i] ^= 0x01
        with pytest.raises(BundleError):
            check_offline(bundle(bytes(bad)), signatures.verify)


def test_a_key_the_gateway_cannot_verify_with_is_refused_at_enrolment(gw, monkeypatch):
    """An SM2 key off the curve, or any SM2 key on a gateway where tongsuopy is missing, is
    refused by the registry with a RegistryError, instead of making every later reading of
    the device raise in the verifier."""
    import sys

    from edgeledger.gateway.errors import RegistryError

    good = generate("SM2", "meter-sm2")
    off_curve = good.public_key[:-1] + bytes([good.public_key[-1] ^ 1])
    with pytest.raises(RegistryError, match="SM2 key for 'meter-sm2' refused: .*curve"):
        gw.registry.register("meter-sm2", "plant-a", cose.SM2, off_curve, good.kid)
    other = generate("SM2", "meter-2")
    monkeypatch.setitem(sys.modules, "tongsuopy.crypto.asymciphers", None)  # as where it has no wheel
    with pytest.raises(RegistryError, match="needs tongsuopy"):
        gw.registry.register("meter-2", "plant-a", cose.SM2, other.public_key, other.kid)
    monkeypatch.undo()
    gw.registry.register("meter-sm2", "plant-a", cose.SM2, good.public_key, good.kid)
    assert gw.registry.key(good.kid).device == "meter-sm2" and gw.registry.key(other.kid) is None

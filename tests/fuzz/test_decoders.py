"""Every decoder raises only its documented errors, whatever the bytes (issue 12).

Property-based (Hypothesis): random bytes, valid samples with random edits (flips,
insertions, deletions, truncation) and structurally plausible values with hostile
fields. Any exception outside a decoder's documented errors fails the test, with the
shrunk input. ``tests/fuzz/profiles.py`` sizes the runs (short in the suite, long with
``make fuzz``); ``hostile.py`` holds the regressions found so far, also run under
MicroPython.
"""
import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeledger.agent.content_key import ContentKey
from edgeledger.agent.crypto.errors import CcmAuthError
from edgeledger.gateway.ingest.pipeline import decode_strict
from edgeledger.gateway.proofs import verifier
from edgeledger.gateway.registry import signatures
from edgeledger.protocols import batch, bundle, cbor, chain, dsmr, iec62056, modbus, obis, session, topics
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import CborDecodeError
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.errors import CoseError, PayloadError
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.session import SessionMessageError
from edgeledger.protocols.topics import TopicError
from tests.fieldbus import vectors
from tests.fuzz import hostile
from tests.fuzz.profiles import fuzz
from tests.protocols.cbor.strategies import values
from tests.support.devices import OWNER_KEY, FakeDevice, encrypted_pack
from tests.support.mpy import run_micropython

pytestmark = pytest.mark.security

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- strategies

@st.composite
def mutated(draw, sample):
    """``sample`` with 1..4 random edits: flip a byte, insert bytes, delete a run, truncate."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "set")))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.sampled_from((0x00, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x3b, 0x5b, 0x7b, 0x9b,
                                            0xbb, 0xc2, 0xd8, 0xf9, 0xfa, 0xfb, 0xff, 0x80, 0x7f)))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=9))
        elif op == "delete" and data:
            del data[i:i + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[i:]
    return bytes(data)


def any_of(*samples):
    return st.one_of(st.binary(max_size=200), *(mutated(s) for s in samples))


# Numbers a hostile payload may carry: NaN, infinities, huge integers, bignum tags, booleans.
hostile_numbers = st.one_of(
    st.floats(), st.integers(-(2 ** 64), 2 ** 64 - 1), st.sampled_from([2 ** 63, 2 ** 64 - 1, -(2 ** 64), 2 ** 32]),
    st.booleans(),
    st.builds(cbor_decoder.Tag, st.sampled_from([2, 3]), st.binary(min_size=8, max_size=20).map(b"\x01".__add__)),
)
field_values = st.one_of(hostile_numbers, values(max_leaves=6), st.text(max_size=10))
DEV = FakeDevice("fz-1")
GOOD = DEV.make(1, chain.GENESIS, t=1764093000.0)
GOOD_PAYLOAD = cose_verify.parse_sign1(GOOD).payload


@st.composite
def payload_maps(draw):
    body = {1: 1, 2: "fz-1", 3: 1, 4: chain.GENESIS, 5: 0, 6: [{0: "x", 2: 1.0, 6: 1764093000}]}
    for _ in range(draw(st.integers(0, 3))):
        body[draw(st.integers(0, 8))] = draw(field_values)
    records = []
    for _ in range(draw(st.integers(0, 3))):
        rec = {}
        for _ in range(draw(st.integers(0, 4))):
            rec[draw(st.integers(-5, 7))] = draw(field_values)
        records.append(rec)
    if records:
        body[6] = records
    return body


@st.composite
def encrypt0_items(draw):
    """COSE_Encrypt0-shaped values with hostile headers and parts."""
    header = {}
    for _ in range(draw(st.integers(0, 2))):
        header[draw(st.sampled_from([1, 4, 5, -1]))] = draw(st.one_of(st.sampled_from([10, -65540, 11]), field_values))
    unprotected = {}
    for _ in range(draw(st.integers(0, 3))):
        unprotected[draw(st.sampled_from([4, 5, 33]))] = draw(st.one_of(st.binary(max_size=20), field_values))
    parts = [draw(st.one_of(st.just(cbor.encode(header)), st.binary(max_size=8))),
             draw(st.one_of(st.just(unprotected), field_values)), draw(st.one_of(st.binary(max_size=40), field_values))]
    return cbor_decoder.Tag(draw(st.sampled_from([16, 16, 18])), parts[:draw(st.integers(2, 3))])


@st.composite
def sign1_items(draw):
    header = {}
    for _ in range(draw(st.integers(0, 3))):
        header[draw(st.sampled_from([1, 4, 3, -1, "x"]))] = draw(field_values)
    protected = draw(st.one_of(st.just(cbor.encode(header)), st.binary(max_size=12)))
    parts = [protected, draw(st.one_of(st.just({}), field_values)), draw(st.one_of(st.binary(max_size=40),
                                                                                    field_values)),
             draw(st.one_of(st.binary(min_size=64, max_size=64), field_values))]
    return cbor_decoder.Tag(18, parts[:draw(st.integers(2, 4))] if draw(st.booleans()) else parts)


def only(expected, fn, *args):
    """Call ``fn``; an exception must be one of ``expected`` (documented), or the test fails."""
    try:
        return fn(*args)
    except expected:
        return None


# --------------------------------------------------------------------------- CBOR and COSE

GOOD_ENC = encrypted_pack("fz-1", 1)

@fuzz()
@given(any_of(GOOD, cbor.encode({1: [2.5, b"x", "y"], -3: {4: None}})))
def test_cbor_decoders_raise_only_cbor_errors(data):
    only(CborDecodeError, cbor_decoder.decode, data)
    # the gateway's cbor2 path, translated where it enters our code (pipeline.decode_strict)
    only(CborDecodeError, decode_strict, data)


@fuzz()
@given(st.one_of(any_of(GOOD), sign1_items().map(cbor.encode)))
def test_cose_sign1_raises_only_cbor_or_cose_errors(data):
    only((CborDecodeError, CoseError), cose_verify.parse_sign1, data)
    only((CborDecodeError, CoseError), cose_verify.parse_sign1, data, decode_strict)


@fuzz()
@given(st.one_of(any_of(GOOD_ENC), encrypt0_items().map(cbor.encode)))
def test_encrypted_pack_raises_only_payload_or_non_canonical_errors(enc):
    """An enc (payload key 7) of any bytes: the payload check raises PayloadError, the
    canonical check NonCanonicalMessage, nothing else; what passes both opens or fails its tag."""
    body = {1: 1, 2: "fz-1", 3: 1, 4: chain.GENESIS, 5: 0, 7: enc}
    accepted = only(PayloadError, reading_validate.check_payload_map, body)
    only(cose_verify.NonCanonicalMessage, cose_verify.check_encrypted_encoding, body)
    if accepted is not None and enc:
        parsed = cose_verify.parse_encrypt0(enc, cose_verify.lenient_decode)
        key = ContentKey(parsed.alg, OWNER_KEY)
        parsed.kid = key.kid
        only(CcmAuthError, key.open, parsed)


@fuzz()
@given(st.one_of(any_of(GOOD_PAYLOAD), payload_maps().map(cbor.encode)))
def test_reading_payload_raises_only_payload_errors(data):
    for decode in (cbor_decoder.decode, decode_strict):
        body = only((CborDecodeError, PayloadError), reading_validate.decode_payload, data, decode)
        if body is not None and body.pack is not None:
            t_first, t_last = reading_validate.time_range(body.pack)  # never overflows once accepted
            assert reading_validate.MIN_TIME <= t_first <= t_last <= reading_validate.MAX_TIME


# --------------------------------------------------------------------------- bundles and headers

def _good_bundle():
    from edgeledger.protocols import merkle

    msgs = [DEV.make(i + 1, chain.GENESIS) for i in range(3)]
    leaves = [merkle.leaf_hash(m) for m in msgs]
    header = batch.BatchHeader(b"\x01" * 20, 1, batch.ZERO_HASH, merkle.root(leaves), 3, 1, 2)
    return bundle.Bundle(msgs[1], 1, merkle.inclusion_proof(leaves, 1), header, 31337, b"\x02" * 20, b"\x03" * 32, 7,
                         b"\x04" * 32, DEV.signer.alg, DEV.signer.public_key, "plant-a", 5, 1, 1,
                         gaps=[(1, 2, "lost", "declared by the device", 3)]).encode()


GOOD_BUNDLE = _good_bundle()


@st.composite
def bundle_maps(draw):
    m = cbor_decoder.decode(GOOD_BUNDLE)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.integers(1, 13))
        if key == 5 and isinstance(m[5], dict) and draw(st.booleans()):  # (not if replaced already)
            hm = dict(m[5])
            hm[draw(st.integers(1, 9))] = draw(field_values)
            m[5] = hm
        else:
            m[key] = draw(field_values)
    return m


@fuzz(0.5)
@given(st.one_of(any_of(GOOD_BUNDLE), bundle_maps().map(cbor.encode)))
def test_bundle_decode_and_offline_check_raise_only_bundle_errors(data):
    b = only(bundle.BundleError, bundle.Bundle.decode, data)
    if b is not None:
        only(bundle.BundleError, bundle.check_offline, b, signatures.verify)
    # what `edgeledger verify` runs (offline): BundleError or BundleCheckFailed, nothing else
    only((bundle.BundleError, verifier.BundleCheckFailed), verifier.verify_bundle, data)


@fuzz()
@given(st.one_of(field_values, st.dictionaries(st.integers(0, 9), field_values, max_size=9)))
def test_batch_header_from_map_raises_only_header_error(m):
    only(batch.HeaderError, batch.BatchHeader.from_map, m)


def test_verify_command_prints_one_line_for_a_hostile_bundle(tmp_path, capsys):
    """`edgeledger verify` on hostile bundles: exit 1 and one FAIL line, never a traceback."""
    from edgeledger.gateway import cli

    for i, (what, _fn, arg, _expected) in enumerate(hostile.bundle_cases()):
        path = tmp_path / ("b%d.cbor" % i)
        path.write_bytes(arg)
        capsys.readouterr()
        assert cli.main(["verify", str(path)]) == 1, what
        out = capsys.readouterr()
        assert out.out.startswith("FAIL ") and out.out.count("\n") == 1 and not out.err, (what, out)


# --------------------------------------------------------------------------- field buses

TELEGRAM = vectors.TELEGRAM_V5.encode() if isinstance(vectors.TELEGRAM_V5, str) else vectors.TELEGRAM_V5


@fuzz()
@given(any_of(TELEGRAM, vectors.TELEGRAM_FLUVIUS.encode()), st.lists(st.integers(1, 64), max_size=6))
def test_dsmr_raises_only_frame_and_value_errors(data, cuts):
    only(dsmr.DsmrFrameError, dsmr.decode_telegram, data)
    framer = dsmr.TelegramFramer()
    pos = 0
    for n in cuts + [len(data)]:
        framer.receive_data(data[pos:pos + n])
        pos += n
        while True:
            try:
                if framer.next_telegram() is None:
                    break
            except dsmr.DsmrFrameError:
                continue
    tg = only((dsmr.DsmrFrameError, obis.ObisValueError), dsmr.parse_telegram, data)
    if tg is not None:
        only(obis.ObisValueError, dsmr.to_records, tg, "", 1764093000)


IEC_MESSAGE = iec62056.encode_data_message(vectors.IEC_BLOCK)


@fuzz()
@given(any_of(vectors.IEC_IDENT + IEC_MESSAGE), st.lists(st.integers(1, 40), max_size=6))
def test_iec62056_raises_only_frame_errors(data, cuts):
    only(iec62056.IecFrameError, iec62056.parse_identification, data)
    only(iec62056.IecFrameError, iec62056.decode_data_message, data)
    only(iec62056.IecFrameError, iec62056.parse_data_sets, data)
    # a BCC that matches whatever the block holds: the content checks alone must hold
    block = data.replace(b"\x02", b"").replace(b"\x03", b"")
    got = only(iec62056.IecFrameError, iec62056.decode_data_message, iec62056.encode_data_message(block))
    if got is not None and got[0] is not None:
        only(iec62056.IecFrameError, iec62056.parse_data_sets, got[0])
    # the session never raises: whatever arrives ends in events
    s = iec62056.ModeCSession()
    s.start(0.0)
    pos, now = 0, 0.0
    for n in cuts + [len(data)]:
        now += 0.01
        s.receive_data(data[pos:pos + n], now)
        pos += n
    s.handle_timer(now + 10)
    while s.next_event() is not None:
        pass


def _rtu(body):
    c = modbus.crc16_modbus(body)
    return bytes(body) + bytes((c & 0xFF, c >> 8))


MODBUS_REPLY = _rtu(b"\x01\x03\x04\x00\x01\x00\x02")


@fuzz()
@given(any_of(MODBUS_REPLY, _rtu(b"\x01\x83\x02"), _rtu(b"\x01\x10\x00\x00\x00\x02")),
       st.sampled_from([modbus.read_holding_registers(1, 0, 2), modbus.read_coils(1, 0, 9),
                        modbus.write_multiple_registers(1, 0, [1, 2]), modbus.write_single_register(1, 0, 5)]))
def test_modbus_raises_only_frame_errors(data, request):
    try:
        frame, _consumed = modbus.decode_response(data)
    except modbus.ModbusCrcError:
        frame = None
    if frame is not None:
        only((modbus.ModbusException, modbus.ModbusFrameError), modbus.parse_response, request, frame)
    m = modbus.RtuMaster(baud=19200, retries=1)
    m.send_request(0.0, request)
    m.receive_data(data, 0.001)  # never raises: a bad reply is a retry or a failed request
    m.handle_timer(10.0)
    while m.next_event() is not None:
        pass


# --------------------------------------------------------------------------- topics and session

@fuzz()
@given(st.one_of(st.text(max_size=80), st.builds("/".join, st.lists(st.sampled_from(
    ["el", "v1", "s", "d", "r", "birth", "+", "#", "", "\x00", "é", "a" * 70]), max_size=7))))
def test_topics_parse_raises_only_topic_error(name):
    only(TopicError, topics.parse, name)


@fuzz()
@given(any_of(session.encode_ack(7), session.encode_birth("1.0", b"k" * 16, 5, 1, {"x": 1})))
def test_session_messages_raise_only_their_errors(data):
    only(SessionMessageError, session.decode_ack, data)
    only((CborDecodeError, SessionMessageError), session.decode_birth, data)


# --------------------------------------------------------------------------- regressions, both runtimes

def test_hostile_inputs_end_in_documented_errors():
    hostile.check_all(out=lambda line: None)


@pytest.mark.micropython
def test_hostile_inputs_end_in_documented_errors_under_micropython():
    with open(os.path.join(HERE, "hostile.py")) as f:
        src = f.read()
    proc = run_micropython(src + "\ncheck_all(bundles=False)\nprint('HOSTILE OK')\n", heapsize="512K")
    assert "HOSTILE OK" in proc.stdout, proc.stdout
    assert proc.stdout.count("ok ") == len(hostile.CASES), proc.stdout


def test_decoded_time_never_overflows_a_batch_header():
    """The largest time a payload may carry still fits the batch header's fields."""
    h = batch.BatchHeader(b"\x01" * 20, 1, batch.ZERO_HASH, hashlib.sha256(b"x").digest(), 1,
                          int(reading_validate.MIN_TIME), int(reading_validate.MAX_TIME))
    assert len(h.layout()) == batch.LAYOUT_LEN

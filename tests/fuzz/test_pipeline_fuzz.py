"""The live pipeline under fuzzing: process + commit on a real SQLite store (issue 12).

Whatever arrives — random bytes, edited copies of good messages, messages *signed by a
registered device* whose payload carries hostile numbers, seqs and links — ``process``
answers Accepted or a typed RejectedMessage, ``commit`` never fails, and a good device
publishing in between has every reading stored and acked.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeledger.gateway import errors
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import cbor, chain, cose, reading
from edgeledger.protocols.errors import EncodeError
from tests.fuzz.profiles import fuzz
from tests.fuzz.test_decoders import hostile_numbers, mutated, values
from tests.support.devices import FakeDevice

pytestmark = pytest.mark.security

NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    store = Store(str(tmp_path_factory.mktemp("fuzz") / "gw.db"))
    reg = Registry(store)
    good, hostile = FakeDevice("good"), HOSTILE
    good.register(reg)
    hostile.register(reg)
    pipe = Pipeline(store, reg, max_message_bytes=8192)
    yield pipe, good, hostile
    store.close()


record_values = st.one_of(hostile_numbers, st.text(max_size=8), values(max_leaves=4))


@st.composite
def hostile_signed(draw, device):
    """A message signed by ``device`` (so it reaches the deep checks and the commit)."""
    records = []
    for _ in range(draw(st.integers(1, 3))):
        rec = {6: draw(st.one_of(st.just(NOW), hostile_numbers))}
        for _ in range(draw(st.integers(0, 3))):
            rec[draw(st.integers(-4, 6))] = draw(record_values)
        records.append(rec)
    seq = draw(st.one_of(st.integers(1, 40), st.sampled_from([2 ** 63 - 1, 2 ** 62])))
    prev = draw(st.one_of(st.just(chain.GENESIS), st.binary(min_size=32, max_size=32)))
    try:
        payload = reading.encode_payload(device.name, seq, prev, draw(st.integers(0, 3)), records)
    except (EncodeError, ValueError):  # not even encodable: the device could not have signed it
        payload = cbor.encode({1: 1, 2: device.name})
    return cose.sign1(payload, device.signer)


HOSTILE = FakeDevice("hostile")
SAMPLE = HOSTILE.make(1, chain.GENESIS, t=NOW)


@fuzz(0.5)
@given(st.data())
def test_process_and_commit_survive_anything(site, data):
    pipe, good, hostile = site
    topic = data.draw(st.sampled_from([hostile.topic, hostile.topic, good.topic, "el/v1/plant-a/ghost/r",
                                       "el/v1/x/y", "el/v1/plant-a/hostile/birth"]))
    payload = data.draw(st.one_of(st.binary(max_size=120), mutated(SAMPLE),
                                  hostile_signed(hostile)))
    try:
        out = pipe.process(topic, payload, received_at=NOW)
        # what the chain rules accept without a quarantine (protocols/chain.py OUTCOMES): a
        # random seq > 1 with a zero prev is a declared restart (R1), not an error
        assert out.verdict in ("next", "ahead", "duplicate", "restart")
    except errors.RejectedMessage as e:
        assert e.reason in errors.REASONS and e.reason != "internal", (e.reason, e.detail)
    # a good device keeps publishing in between, and every commit goes through
    msg = good.next(t=NOW)
    assert pipe.process(good.topic, msg, received_at=NOW).verdict == "next"
    acks = pipe.commit()
    assert acks["good"] == good.seq
    assert pipe.store.seqs("good")[-1] == good.seq

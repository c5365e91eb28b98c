"""No message can stop ingest (issue 12): each message that stopped it before is now one
typed quarantine row, and good traffic around it is stored and acked."""
import hashlib
import logging
import time

import pytest

from edgeledger.gateway import errors
from edgeledger.gateway.errors import RegistryError
from edgeledger.gateway.ingest import pipeline as pipeline_module
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.gateway.registry import Registry, signatures
from edgeledger.gateway.store import Store
from edgeledger.protocols import cbor, chain, cose, reading
from edgeledger.protocols.cbor import decoder as cbor_decoder
from tests.support.devices import FakeDevice

pytestmark = pytest.mark.security

NOW = 1_790_000_000.0


@pytest.fixture
def gw(tmp_path):
    store = Store(str(tmp_path / "gw.db"))
    pipe = Pipeline(store, Registry(store))
    yield pipe
    store.close()


def feed(pipe, topic, data, now=NOW):
    try:
        return pipe.process(topic, data, received_at=now)
    except errors.RejectedMessage as e:
        return e


def signed_raw(device, seq, prev, pack):
    """A message signed by ``device`` whose pack is NOT checked (the board's encoder):
    what a device with a firmware or RTC bug, or a hostile one, can sign."""
    return cose.sign1(reading.encode_payload(device.name, seq, prev, 1, pack), device.signer)


def unsigned(device_name, pack, kid=b"\x42" * 16):
    payload = reading.encode_payload(device_name, 1, chain.GENESIS, 0, pack)
    return cbor.encode(cbor_decoder.Tag(18, [cbor.encode({1: -8, 4: kid}), {}, payload, b"\x00" * 64]))


def test_unsigned_message_with_a_huge_time_is_one_quarantine_row(gw):
    good = FakeDevice("good")
    good.register(gw.registry)
    # ~300 bytes, any kid, zero signature: a base time that is a 1600-bit bignum made
    # `bt + t` raise OverflowError before any key or signature check
    huge = cbor_decoder.Tag(2, b"\x01" + b"\x00" * 200)
    attacks = [unsigned("good", [{-3: huge, 6: 0.5, 2: 1}]),
               unsigned("good", [{-3: 2 ** 64 - 1, 6: 0.5, 2: 1}]),
               unsigned("good", [{6: 1e300, 2: 1}])]
    for data in attacks:
        assert len(data) < 400
        out = feed(gw, good.topic, data)
        assert isinstance(out, errors.RejectedMessage) and out.reason in ("bad_payload", "out_of_range"), out
        assert feed(gw, good.topic, good.next(t=NOW)).verdict == "next"
    assert gw.commit() == {"good": 3}
    assert sum(gw.store.quarantine_reasons().values()) == 3 and gw.store.count_messages() == 3


@pytest.mark.parametrize("bad_time", [float("nan"), float("inf"), -1.0, 2.0 ** 40])
def test_validly_signed_reading_with_a_bad_time_is_refused_and_the_commit_goes_through(gw, bad_time):
    dev = FakeDevice("d1")
    dev.register(gw.registry)
    first = dev.next(t=NOW)
    broken = signed_raw(dev, 2, hashlib.sha256(first).digest(), [{0: "x", 2: 1.0, 6: bad_time}])
    assert gw.process(dev.topic, first, received_at=NOW).verdict == "next"
    out = feed(gw, dev.topic, broken)
    assert out.reason == "out_of_range", out
    assert gw.commit() == {"d1": 1}  # the NaN time never reaches the NOT NULL column
    assert gw.store.quarantine_reasons() == {"out_of_range": 1}


def test_a_non_finite_value_is_out_of_range(gw):
    dev = FakeDevice("d1")
    dev.register(gw.registry)
    out = feed(gw, dev.topic, signed_raw(dev, 1, chain.GENESIS, [{0: "x", 2: float("nan"), 6: NOW}]))
    assert out.reason == "out_of_range" and "finite" in out.detail
    gw.commit()


def test_registration_refuses_keys_that_are_not_points(gw):
    small_order = b"\x01" + bytes(31)  # y = 1: the neutral element, of order 1
    with pytest.raises(RegistryError, match="not a valid Ed25519"):
        gw.registry.register("d1", "plant-a", -8, small_order, b"k" * 16)
    off_curve = b"\x04" + b"\x01" * 64
    with pytest.raises(RegistryError, match="not a valid P-256"):
        gw.registry.register("d2", "plant-a", -7, off_curve, b"j" * 16)
    assert gw.registry.devices() == []


def test_an_unusable_registered_key_costs_its_messages_not_ingest(gw):
    """A P-256 key registered before keys were checked (written straight into the store)."""
    good, victim = FakeDevice("good"), FakeDevice("victim", alg="ES256")
    good.register(gw.registry)
    victim.register(gw.registry)
    with gw.store.lock:
        gw.store.db.execute("UPDATE device_keys SET public_key=? WHERE device='victim'", (b"\x04" + b"\x01" * 64,))
    gw.registry.reload()
    for _ in range(3):
        out = feed(gw, victim.topic, victim.next(t=NOW))
        assert out.reason == "bad_signature" and "unusable" in out.detail, out
        assert feed(gw, good.topic, good.next(t=NOW)).verdict == "next"
    assert gw.commit() == {"good": 3}
    assert signatures.verify(-7, b"\x04" + b"\x01" * 64, b"m", b"\x00" * 64) is False  # never raises


def test_an_unexpected_error_is_quarantined_as_internal_and_logged_once(tmp_path, caplog):
    store = Store(str(tmp_path / "gw.db"))

    def exploding_verify(alg, key, tbs, sig):
        raise ZeroDivisionError("a bug in a verifier")

    pipe = Pipeline(store, Registry(store), verify=exploding_verify)
    dev = FakeDevice("d1")
    dev.register(pipe.registry)
    with caplog.at_level(logging.ERROR, logger="edgeledger.gateway"):
        outs = [feed(pipe, dev.topic, dev.next(t=NOW)) for _ in range(3)]
    assert [o.reason for o in outs] == ["internal"] * 3
    assert "ZeroDivisionError" in outs[0].detail
    logged = [r for r in caplog.records if "internal" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None  # once per kind, with the traceback
    pipe.commit()
    assert store.quarantine_reasons() == {"internal": 3}
    assert pipe.counters["rejected_internal"] == 3
    store.close()


def test_a_copy_of_another_devices_message_touches_nothing_of_it(tmp_path):
    """The --workers UNIQUE failure, found: before issue 12 a copy of device Y's stored
    message, published by device X on X's own topic, was taken as Y's duplicate *before*
    the topic was checked. The worker owning X then wrote its stale marks for Y over the
    store's, and after a restart Y's owner staged seqs it had already stored: `UNIQUE
    constraint failed`, and its ingest thread died."""
    path = str(tmp_path / "gw.db")
    store = Store(path)
    reg = Registry(store)
    x, y = FakeDevice("dev-x"), FakeDevice("dev-y")
    x.register(reg)
    y.register(reg)
    owner_y = Pipeline(Store(path), Registry(Store(path)))
    for _ in range(10):
        owner_y.process(y.topic, y.next(t=NOW), received_at=NOW)
    owner_y.commit()
    owner_x = Pipeline(Store(path), Registry(Store(path)))  # starts now: its marks say y is at 10
    for _ in range(10):
        owner_y.process(y.topic, y.next(t=NOW), received_at=NOW)
    owner_y.commit()
    out = feed(owner_x, x.topic, y.sent[5])  # X republishes Y's stored seq 5 on its own topic
    assert out.reason == "topic_mismatch"
    owner_x.commit()
    assert store.device_marks()["dev-y"] == (20, 20)  # not the stale (10, 10)
    restarted = Pipeline(Store(path), Registry(Store(path)))
    for seq in range(11, 21):  # the broker redelivers what the old process had not PUBACKed
        assert restarted.process(y.topic, y.sent[seq], received_at=NOW).verdict == "duplicate"
    assert restarted.commit() == {"dev-y": 20}
    assert store.count_messages("dev-y") == 20


def test_a_staged_message_is_never_staged_twice(gw, monkeypatch):
    """The in-memory chain links were trimmed while messages of the group were still only
    staged: a redelivered copy in the same group was then staged again (UNIQUE failure)."""
    monkeypatch.setattr(pipeline_module, "RECENT_LINKS", 4)
    dev = FakeDevice("d1")
    dev.register(gw.registry)
    msgs = [dev.next(t=NOW) for _ in range(20)]
    for m in msgs:
        gw.process(dev.topic, m, received_at=NOW)
    assert gw.process(dev.topic, msgs[0], received_at=NOW).verdict == "duplicate"
    assert gw.commit() == {"d1": 20}
    assert gw.store.count_messages() == 20


def test_topics_that_are_not_text_or_not_readings_are_typed(gw):
    for topic in (b"el/v1/plant-a/d1/r", None, "el/v1/plant-a/d1/birth", "el/v1/plant-a/d\x00/r"):
        out = feed(gw, topic, b"\xa0")
        assert out.reason == "topic_mismatch", (topic, out)
    gw.commit()
    assert gw.store.quarantine_reasons() == {"topic_mismatch": 4}


def test_future_time_is_still_clock_skew_not_out_of_range(gw):
    dev = FakeDevice("d1")
    dev.register(gw.registry)
    out = feed(gw, dev.topic, dev.next(t=time.time() + 30 * 86400), now=time.time())
    assert out.reason == "clock_skew"


def test_birth_and_death_messages_never_raise(tmp_path, caplog):
    store = Store(str(tmp_path / "gw.db"))
    pipe = Pipeline(store, Registry(store), max_message_bytes=100)
    FakeDevice("d1").register(pipe.registry)
    pipe.note_session("el/v1/plant-a/d1/birth", b"\xa1\x03\x01")
    assert store.db.execute("SELECT online, last_birth FROM devices").fetchone() == (1, b"\xa1\x03\x01")
    for topic, payload in (("el/v1/plant-a/d1/birth", b"x" * 101), ("el/v1/plant-a/d\x00/birth", b""),
                           (None, b""), ("el/v1/plant-a/d1/r", b"")):
        pipe.note_session(topic, payload)
    assert pipe.counters["session_refused"] == 4 and pipe.counters["births"] == 1
    store.db.close()  # the store fails under it: counted and logged, not raised
    with caplog.at_level(logging.ERROR, logger="edgeledger.gateway"):
        pipe.note_session("el/v1/plant-a/d1/death", b"")
    assert pipe.counters["session_refused"] == 5 and "ProgrammingError" in caplog.text

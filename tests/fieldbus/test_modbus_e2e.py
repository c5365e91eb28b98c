"""End to end from the field bus to the chain: a real ``edgeledger agent run`` polls two
Modbus RTU devices (a pymodbus 3.x server answering as an Eastron SDM630 at unit 1 and an
XY-MD02 at unit 7) over a socat pty pair, signs every poll as one COSE_Sign1 pack, and
publishes through a real Mosquitto to the gateway, which stores, batches and anchors on anvil.

Then, for every stored message, the proof bundle verifies (offline; a sample also as a light
client against anvil) and the values inside the signed payload equal the registers the server
held, with the register map's scale and unit applied.

The bus is unkind on purpose, in four phases:

  A  both devices answer (values "before")
  B  the SDM630 goes silent: packs carry the XY-MD02 alone, the agent keeps sampling (the
     source counts the failed unit in ``last_errors`` but signs no status for it today)
  C  the whole bus goes silent: the agent signs a ``<source>/status`` record instead of values;
     meanwhile the server is replaced by one holding new values ("after")
  D  the bus answers again: packs carry the new values, up to ``--until-seq``
"""
import struct
import time

import pytest

from edgeledger.agent.registermaps import get_map
from edgeledger.gateway import proofs
from edgeledger.gateway.proofs import verifier
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.protocols.bundle import Bundle
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading.validate import decode_payload, resolve
from tests.fieldbus.conftest import ModbusServerThread, Relay
from tests.support.anvil import running_anvil
from tests.support.site import count_exactly_once

pytestmark = [pytest.mark.interop, pytest.mark.ledger]

DEVICE = "hall-a-gw-01"
SOURCE = "hall-a-bus"
SDM_UNIT, XY_UNIT = 1, 7
SDM_PREFIX, XY_PREFIX = "hall-a/mains/", "hall-a/climate/"
LAST_SEQ = 40  # messages the agent seals and gets acknowledged before it exits
PHASE_A_MESSAGES = 6  # stored before the SDM630 goes silent
PHASE_B_XY_ONLY = 2  # XY-MD02-only packs stored before the whole bus goes silent
PHASE_TIMEOUT_S = 120.0  # generous: the phases are paced by what is stored, not by a clock
# Response timeout and retries of the agent's master: a silent unit costs
# blocks x (retries + 1) x timeout_s per poll (SDM630: 2 blocks, XY-MD02: 1).
TIMEOUT_S, RETRIES = 0.25, 1

# Data-sheet values held by the simulated SDM630, by wire address (f32, exactly representable):
# V, A, W, VA, var, power factor, Hz, then kWh / kvarh counters.
SDM_BEFORE = {0x00: 230.5, 0x02: 231.25, 0x04: 229.75, 0x06: 5.5, 0x08: 4.25, 0x0A: 3.125,
              0x0C: 1265.5, 0x0E: 977.0, 0x10: 718.0, 0x34: 2960.5, 0x38: 3100.0,
              0x3C: -420.0, 0x3E: 0.953125, 0x46: 50.0, 0x48: 12345.5, 0x4A: 12.25,
              0x4C: 321.5, 0x4E: 0.5}
SDM_AFTER = {0x00: 238.0, 0x02: 237.5, 0x04: 239.25, 0x06: 7.75, 0x08: 6.5, 0x0A: 2.0,
             0x0C: 1844.5, 0x0E: 1543.75, 0x10: 478.5, 0x34: 3866.75, 0x38: 4096.0,
             0x3C: 512.25, 0x3E: 0.9375, 0x46: 49.875, 0x48: 12346.75, 0x4A: 12.5,
             0x4C: 322.0, 0x4E: 0.75}
# XY-MD02 input registers 0x0001 (i16, 0.1 degC) and 0x0002 (u16, 0.1 %RH): raw -> recorded
XY_BEFORE = {"temperature": (0xFF33, -20.5), "humidity": (546, 54.6)}  # 0xFF33 = -205: manual's example
XY_AFTER = {"temperature": (217, 21.7), "humidity": (385, 38.5)}

SOURCE_TOML = """[[sources]]
type = "modbus"
name = "%s"
port = "%s"
baud = 9600
parity = "N"
stopbits = 1
interval_s = 0.1
timeout_s = %r
retries = %d
inter_request_delay_s = 0.01

[[sources.devices]]
unit = %d
map = "sdm630"
prefix = "%s"

[[sources.devices]]
unit = %d
map = "xy_md02"
prefix = "%s"
"""


def server_devices(sdm, xy):
    regs = [0] * 0x50
    for addr, v in sdm.items():
        regs[addr], regs[addr + 1] = struct.unpack(">HH", struct.pack(">f", v))  # f32, big word order
    return {SDM_UNIT: {"ir": regs}, XY_UNIT: {"ir": [0, xy["temperature"][0], xy["humidity"][0]]}}


def expected_records(sdm, xy):
    """{record name: (value, unit)} as the agent must sign them: the map's scale and unit."""
    out = {}
    for addr, _kind, _order, scale, unit, name in get_map("sdm630")["entries"]:
        out[SDM_PREFIX + name] = (sdm[addr] * scale, unit)  # kWh x 3 600 000 = J: exact for these values
    for _addr, kind, _order, scale, unit, name in get_map("xy_md02")["entries"]:
        raw, value = xy[name]
        raw = raw - 0x10000 if kind == "i16" and raw >= 0x8000 else raw
        assert abs(raw * scale - value) < 1e-9, "test table disagrees with the map's scale"
        out[XY_PREFIX + name] = (value, unit)  # 0.1 applied as /10: 54.6, not 54.6000000001
    return out


BEFORE = expected_records(SDM_BEFORE, XY_BEFORE)
AFTER = expected_records(SDM_AFTER, XY_AFTER)
SDM_NAMES = set(n for n in BEFORE if n.startswith(SDM_PREFIX))
XY_NAMES = set(n for n in BEFORE if n.startswith(XY_PREFIX))


class ModbusBench:
    """agent's pty end <-> relay (can make a unit silent) <-> pymodbus RTU server; the server
    can be replaced by one holding other values on the same pty."""

    def __init__(self, pty_pair, devices):
        self.agent_end, relay_m = pty_pair("bus")
        relay_s, self._server_end = pty_pair("srv")
        self.server = ModbusServerThread(self._server_end, devices)
        self.relay = Relay(relay_m, relay_s)

    def replace_server(self, devices):
        server, self.server = self.server, None
        server.close()
        self.server = ModbusServerThread(self._server_end, devices)

    def close(self):
        self.relay.close()
        if self.server is not None:
            self.server.close()


@pytest.fixture
def bench(pty_pair):
    b = ModbusBench(pty_pair, server_devices(SDM_BEFORE, XY_BEFORE))
    yield b
    b.close()


@pytest.fixture
def chain():
    with running_anvil(block_time=1, hardfork="london") as node:
        owner = JsonRpcLedger(node.url, key=node.new_funded_key())
        owner.deploy(owner_key=owner.key)
        gw_key = node.new_funded_key()
        owner.authorize_gateway("plant-a", JsonRpcLedger(node.url, key=gw_key).account)
        yield node, owner, gw_key


def signed_records(message):
    """(seq, resolved SenML records) from COSE_Sign1 bytes, exactly as signed."""
    body = decode_payload(cose_verify.parse_sign1(message).payload)
    assert body.device == DEVICE and body.pack is not None
    return body.seq, resolve(body.pack)


STATUS = SOURCE + "/status"


def data_names(records):
    return set(r["n"] for r in records if r["n"] != STATUS)


def is_bus_down(records):
    """The pack of a poll in which no device answered: one status record, no values."""
    return len(records) == 1 and records[0]["n"] == STATUS and "no device answered" in records[0].get("vs", "")


class Watch:
    """Reads what the gateway has stored so far, while everything runs."""

    def __init__(self, site, st):
        self.site = site
        self.st = st

    def packs(self):
        rows = self.st.db.execute("SELECT seq, bytes FROM messages WHERE device=? ORDER BY seq",
                                  (DEVICE,)).fetchall()
        return dict((seq, signed_records(bytes(data))[1]) for seq, data in rows)

    def until(self, predicate, what, timeout=PHASE_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            agent = self.site.agents[DEVICE]
            if agent.poll() is not None:
                raise AssertionError("the agent exited (%s) while waiting for %s:\n%s"
                                     % (agent.returncode, what, self.site.log(DEVICE + ".log")))
            if predicate(self.packs()):
                return
            time.sleep(0.05)
        raise AssertionError("timed out after %.0f s waiting for %s; stored seqs %s\nagent log:\n%s\n"
                             "gateway log:\n%s" % (timeout, what, sorted(self.packs()),
                                                   self.site.log(DEVICE + ".log"), self.site.log("gateway.log")))


@pytest.mark.timeout(600)
def test_modbus_readings_signed_anchored_and_equal_to_the_registers(site, chain, bench):
    node, owner, gw_key = chain
    # the map's conversions, pinned independently: 12345.5 kWh = 44 443 800 000 J (RFC 8798 §2)
    assert BEFORE[SDM_PREFIX + "energy_import"] == (44443800000, "J")
    assert BEFORE[SDM_PREFIX + "reactive_energy_import"] == (1157400000, "vars")
    assert BEFORE[XY_PREFIX + "temperature"] == (-20.5, "Cel")
    t_start = time.time()
    site.add_device(DEVICE, pack_size=1000, source_toml=SOURCE_TOML % (
        SOURCE, bench.agent_end, TIMEOUT_S, RETRIES, SDM_UNIT, SDM_PREFIX, XY_UNIT, XY_PREFIX))
    site.register_on_chain(owner, DEVICE)
    site.use_ledger(node.url, owner.address, gw_key, confirmations=2, max_size=100, max_age_s=1.0)
    site.start_gateway()
    # the phases below are paced by what the gateway has stored: start sampling once it listens
    site.wait_gateway_ready()
    site.start_agent(DEVICE, LAST_SEQ)
    st = site.store()
    watch = Watch(site, st)

    # A: both devices answer
    watch.until(lambda p: len(p) >= PHASE_A_MESSAGES, "%d stored messages" % PHASE_A_MESSAGES)
    # B: the energy meter stops answering; the climate sensor keeps being read and signed
    bench.relay.silent_units.add(SDM_UNIT)
    watch.until(lambda p: sum(1 for r in p.values() if data_names(r) == XY_NAMES) >= PHASE_B_XY_ONLY,
                "%d packs with the XY-MD02 alone" % PHASE_B_XY_ONLY)
    # C: nobody answers: a signed status record takes the values' place
    bench.relay.silent_units.add(XY_UNIT)
    watch.until(lambda p: any(is_bus_down(r) for r in p.values()), "a %s record" % STATUS)
    bench.replace_server(server_devices(SDM_AFTER, XY_AFTER))  # the devices come back with new values
    # D: the bus answers again
    bench.relay.silent_units.clear()

    assert site.wait_agents(timeout=60) == {DEVICE: 0}, site.log(DEVICE + ".log")
    t_end = time.time()
    assert count_exactly_once(st, {DEVICE: LAST_SEQ}) == (0, 0, 0)  # lost, duplicated, broken links
    assert st.quarantine_reasons() == {}
    deadline = time.monotonic() + 60
    while site.anchored_count(st) < LAST_SEQ:
        assert time.monotonic() < deadline, "only %d of %d anchored after 60 s:\n%s" % (
            site.anchored_count(st), LAST_SEQ, site.log("gateway.log"))
        time.sleep(0.1)
    batches = st.db.execute("SELECT number, tree_size, state FROM batches ORDER BY number").fetchall()
    assert [b[0] for b in batches] == list(range(1, len(batches) + 1))
    assert sum(b[1] for b in batches) == LAST_SEQ and set(b[2] for b in batches) == {"anchored"}

    # every message: its bundle verifies, and its signed values are the registers' values
    meta = st.ledger_meta()
    stored = dict((seq, bytes(st.message(DEVICE, seq)[1])) for seq in range(1, LAST_SEQ + 1))
    first_status = min(seq for seq, m in stored.items() if is_bus_down(signed_records(m)[1]))
    shapes = {"full_before": [], "full_after": [], "xy_only": [], "partial": [], "status": [], "unit_status": []}
    light_checked = 0
    for seq in range(1, LAST_SEQ + 1):
        data = proofs.bundle_for(st, DEVICE, seq, int(meta["chain_id"]), meta["contract"]).encode()
        report = verifier.verify_bundle(data)  # offline: signature and Merkle path
        assert (report["device"], report["seq"], report["offline"]) == (DEVICE, seq, "ok")
        if seq % 10 == 1 or seq in (first_status, LAST_SEQ):  # light client: storage proof on anvil
            report = verifier.verify_bundle(data, rpc=node.url, min_confirmations=2, trust=site.trust(owner))
            assert report["storage_proof"] == "ok" and report["confirmations"] >= 2
            light_checked += 1
        message = Bundle.decode(data).message
        assert message == stored[seq]  # the bundle carries the bytes as stored, never re-encoded
        signed_seq, records = signed_records(message)
        assert signed_seq == seq
        times = set(r["t"] for r in records)
        assert len(times) == 1 and t_start - 1 <= times.pop() <= t_end + 1  # one poll, stamped at poll time
        if is_bus_down(records):
            assert "v" not in records[0], records
            text = records[0]["vs"]
            assert text.startswith("error: %s: no device answered" % SOURCE), text
            assert "unit %d" % SDM_UNIT in text and "unit %d" % XY_UNIT in text and "timeout" in text, text
            shapes["status"].append(seq)
            continue
        # values read before the whole bus went silent are the old registers, after it the new
        era = BEFORE if seq < first_status else AFTER
        values = [r for r in records if r["n"] != STATUS]
        for r in values:
            assert r["n"] in era, "seq %d: unexpected record %r" % (seq, r)
            assert (r["v"], r["u"]) == era[r["n"]], "seq %d: %s signed as %r %s, expected %r %s" % (
                seq, r["n"], r["v"], r["u"], era[r["n"]][0], era[r["n"]][1])
        names = [r["n"] for r in values]
        assert len(names) == len(set(names)), "seq %d: a record twice" % seq
        # when only some units fail, a status record naming the silent unit rides along
        for r in records:
            if r["n"] == STATUS:
                assert SDM_NAMES - set(names) and "unit %d" % SDM_UNIT in r["vs"], (seq, records)
                shapes["unit_status"].append(seq)
        if set(names) == set(era):
            shapes["full_before" if era is BEFORE else "full_after"].append(seq)
        elif set(names) == XY_NAMES:
            shapes["xy_only"].append(seq)
        else:  # a poll that straddled a silence switch
            shapes["partial"].append(seq)

    assert light_checked >= 5
    assert shapes["full_before"][:1] == [1] and len(shapes["full_before"]) >= PHASE_A_MESSAGES - 1, shapes
    assert len(shapes["xy_only"]) >= PHASE_B_XY_ONLY, shapes
    assert set(shapes["xy_only"]) <= set(shapes["unit_status"]), shapes  # a silent unit is never silence
    assert max(shapes["full_before"]) < min(shapes["xy_only"]) and max(shapes["xy_only"]) < first_status, shapes
    # the whole-bus failure is one unbroken run of status packs, and the agent carried on after it
    assert shapes["status"] == list(range(first_status, first_status + len(shapes["status"]))), shapes
    assert len(shapes["partial"]) <= 3, shapes  # only at the switches A->B, B->C and C->D
    assert len(shapes["full_after"]) >= 10 and shapes["full_after"][-1] == LAST_SEQ, shapes
    assert min(shapes["full_after"]) > max(shapes["status"]), shapes
    st.close()

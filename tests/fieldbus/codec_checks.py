# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Codec checks that run unchanged under CPython (pytest) and MicroPython.

Each ``check_*`` function raises AssertionError on a failure. STYLE.md item 2:
every frame is fed whole, split in two at every point, one byte at a time,
after junk, and with a broken CRC/BCC.
"""
try:
    from tests.fieldbus.vectors import (  # CPython
        CRC16_ARC_CHECK,
        CRC16_MODBUS_CHECK,
        CRC_CHECK_INPUT,
        IEC_BLOCK,
        IEC_IDENT,
        TELEGRAM_FLUVIUS,
        TELEGRAM_V2_2,
        TELEGRAM_V4_2,
        TELEGRAMS,
        XY_MD02_READ_TEMP,
    )
except ImportError:  # MicroPython: vectors.py is prepended to this source
    pass

from edgeledger.protocols import crc, dsmr, iec62056, modbus, obis
from edgeledger.protocols.errors import EncodeError

JUNK = b"\x00\xff\xfe\x13\x37"


def feeds(frame, step=1, tail=0):
    """Yield (label, chunks) for every feeding pattern of ``frame``: whole,
    split in two at every ``step``-th point (and at each of the last ``tail``
    points), one byte at a time, after junk. A generator: MicroPython heaps
    are small."""
    yield "whole", [frame]
    for i in range(1, len(frame)):
        if i % step == 0 or i >= len(frame) - tail:
            yield "split@%d" % i, [frame[:i], frame[i:]]
    yield "bytewise", [frame[i : i + 1] for i in range(len(frame))]
    yield "after junk", [JUNK, frame]
    yield "junk glued", [JUNK + frame]


def corrupt(frame, index):
    b = bytearray(frame)
    b[index] ^= 0x01
    return bytes(b)


def expect_raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised by %r" % (exc.__name__, fn))


# --------------------------------------------------------------------------- CRC


def check_crc():
    assert crc.crc16_modbus(CRC_CHECK_INPUT) == CRC16_MODBUS_CHECK
    assert crc.crc16_arc(CRC_CHECK_INPUT) == CRC16_ARC_CHECK
    assert crc.bcc_xor(b"\x01\x02\x04") == 0x07


# ------------------------------------------------------------------------ Modbus


def _rtu(body):
    c = crc.crc16_modbus(body)
    return bytes(body) + bytes((c & 0xFF, c >> 8))


def check_modbus_requests():
    # the XY-MD02 manual's frame, byte for byte
    assert modbus.read_input_registers(1, 1, 1).adu == XY_MD02_READ_TEMP
    r = modbus.read_holding_registers(17, 0x006B, 3)  # AP §6.3 example PDU 03 00 6B 00 03
    assert r.adu[:6] == bytes.fromhex("1103006B0003")
    assert r.expected_length == 5 + 6
    w = modbus.write_multiple_registers(17, 0x0001, [0x000A, 0x0102])  # AP §6.12 example
    assert w.adu[:-2] == bytes.fromhex("11100001000204000A0102")
    assert modbus.write_single_register(17, 0x0001, 0x0003).adu[:-2] == bytes.fromhex("110600010003")
    assert modbus.read_coils(17, 0x0013, 19).expected_length == 5 + 3
    expect_raises(modbus.ModbusEncodeError, modbus.read_holding_registers, 0, 0, 1)
    expect_raises(modbus.ModbusEncodeError, modbus.read_holding_registers, 248, 0, 1)
    expect_raises(modbus.ModbusEncodeError, modbus.read_holding_registers, 1, 0, 126)
    expect_raises(modbus.ModbusEncodeError, modbus.read_coils, 1, 0, 2001)
    expect_raises(modbus.ModbusEncodeError, modbus.read_input_registers, 1, 0xFFFF, 2)


def check_modbus_timing():
    t15, t35 = modbus.char_timing(9600)
    assert abs(t35 - 3.5 * 11 / 9600.0) < 1e-12 and abs(t15 - 1.5 * 11 / 9600.0) < 1e-12
    assert modbus.char_timing(19200) == (1.5 * 11 / 19200.0, 3.5 * 11 / 19200.0)
    assert modbus.char_timing(38400) == (0.00075, 0.00175)
    assert modbus.char_timing(115200) == (0.00075, 0.00175)


def check_modbus_framer():
    req = modbus.read_input_registers(1, 1, 2)
    reply = _rtu(bytes.fromhex("01040401310222"))  # temp 0x0131, hum 0x0222 (XY-MD02 manual)
    assert len(reply) == req.expected_length
    for label, chunks in feeds(reply):
        f = modbus.ResponseFramer()
        f.expect(1, 4, req.expected_length)
        got = None
        for c in chunks:
            f.receive_data(c)
            fr = f.next_frame()
            if fr is not None:
                assert got is None, label
                got = fr
        assert got is not None, label
        assert modbus.parse_response(req, got) == [0x0131, 0x0222], label
        assert f.buffered() == 0, label
        if "junk" in label:
            assert f.discarded == len(JUNK), (label, f.discarded)
    # values: signed temperature, x0.1 (the manual's -20.5 degC example is 0xFF33)
    assert modbus.decode_value([0xFF33], 0, "i16") == -205
    # a broken CRC is rejected, counted, and the framer resynchronises on the next frame
    for i in range(len(reply)):
        f = modbus.ResponseFramer()
        f.expect(1, 4, req.expected_length)
        f.receive_data(corrupt(reply, i))
        try:
            fr = f.next_frame()
        except modbus.ModbusCrcError:
            fr = "crc"
        assert fr is None or fr == "crc", i
        f.reset()
        f.receive_data(reply)
        assert modbus.parse_response(req, f.next_frame()) == [0x0131, 0x0222]
    # pure function reports what it consumed
    frame, used = modbus.decode_response(JUNK + reply + b"\x01", 1, 4, req.expected_length)
    assert used == len(JUNK) + len(reply) and frame.data == reply[2:-2]
    frame, used = modbus.decode_response(reply[:5])
    assert frame is None and used == 0
    # exception response: 01 84 02 (ILLEGAL DATA ADDRESS)
    exc = _rtu(b"\x01\x84\x02")
    f = modbus.ResponseFramer()
    f.expect(1, 4, req.expected_length)
    f.receive_data(exc)
    e = expect_raises(modbus.ModbusException, modbus.parse_response, req, f.next_frame())
    assert e.code == 2 and e.name == "ILLEGAL DATA ADDRESS" and e.unit == 1 and e.function == 4
    # write echo
    w = modbus.write_single_register(3, 0x10, 500)
    f = modbus.ResponseFramer()
    f.receive_data(w.adu)  # a correct echo is the request itself
    assert modbus.parse_response(w, f.next_frame()) == [0x10, 500]
    # coils: AP §6.1 example, 19 coils: CD 6B 05
    rc = modbus.read_coils(1, 0x13, 19)
    f = modbus.ResponseFramer()
    f.receive_data(_rtu(b"\x01\x01\x03\xcd\x6b\x05"))
    bits = modbus.parse_response(rc, f.next_frame())
    assert bits[:8] == [True, False, True, True, False, False, True, True] and len(bits) == 19
    # register types and word order
    for kind, value in (("u16", 65535), ("i16", -2), ("u32", 4000000000), ("i32", -70000),
                        ("f32", 230.5), ("u64", 2 ** 63 + 5)):
        for order in ("big", "little"):
            regs = modbus.encode_value(value, kind, order)
            assert modbus.decode_value(regs, 0, kind, order) == value, (kind, order)
    assert modbus.encode_value(230.0, "f32") == [0x4366, 0x0000]
    assert modbus.encode_value(230.0, "f32", "little") == [0x0000, 0x4366]


def check_modbus_master():
    m = modbus.RtuMaster(baud=9600, timeout_s=0.5, retries=1, inter_request_delay_s=0.1)
    req = modbus.read_input_registers(1, 1, 2)
    reply = _rtu(bytes.fromhex("01040401310222"))
    out = m.send_request(0.0, req)
    assert out == req.adu and m.state == modbus.WAITING
    assert abs(m.timer() - (len(out) * 11 / 9600.0 + 0.5)) < 1e-9
    expect_raises(modbus.ModbusStateError, m.send_request, 0.0, req)
    m.receive_data(reply[:3], 0.02)
    assert m.next_event() is None
    m.receive_data(reply[3:], 0.03)
    ev = m.next_event()
    assert isinstance(ev, modbus.Response) and ev.values == [0x0131, 0x0222] and ev.attempts == 1
    # per-device inter-request delay and bus turnaround
    assert abs(m.ready_at(1) - 0.13) < 1e-9
    assert abs(m.ready_at(2) - (0.03 + m.t3_5)) < 1e-9
    expect_raises(modbus.ModbusStateError, m.send_request, 0.05, req)
    # timeout then retry then success
    m.send_request(0.2, req)
    t = m.timer()
    assert m.handle_timer(t - 0.001) == b""
    assert m.handle_timer(t) == b"" and m.state == modbus.BACKOFF
    rt = m.timer()
    assert m.handle_timer(rt) == req.adu and m.state == modbus.WAITING
    m.receive_data(reply, rt + 0.05)
    ev = m.next_event()
    assert isinstance(ev, modbus.Response) and ev.attempts == 2
    assert m.counters["timeouts"] == 1 and m.counters["retries"] == 1
    # broken CRC on both attempts -> RequestFailed("crc")
    now = 5.0
    m.send_request(now, req)
    m.receive_data(corrupt(reply, 4), now + 0.05)
    assert m.state == modbus.BACKOFF and m.counters["crc_errors"] == 1
    assert m.handle_timer(m.timer()) == req.adu
    m.receive_data(corrupt(reply, 5), now + 0.2)
    ev = m.next_event()
    assert isinstance(ev, modbus.RequestFailed) and ev.reason == "crc" and ev.attempts == 2
    # exception response is final, not retried
    now = 10.0
    m.send_request(now, req)
    m.receive_data(_rtu(b"\x01\x84\x02"), now + 0.05)
    ev = m.next_event()
    assert isinstance(ev, modbus.DeviceException) and ev.error.name == "ILLEGAL DATA ADDRESS"
    # a reply from another unit on the bus is not taken for ours
    now = 20.0
    m.send_request(now, req)
    m.receive_data(_rtu(bytes.fromhex("02040401310222")), now + 0.05)
    assert m.next_event() is None
    m.receive_data(reply, now + 0.1)
    assert isinstance(m.next_event(), modbus.Response)


def _mbap(tid, unit, pdu, proto=0, length=None):
    n = len(pdu) + 1 if length is None else length
    return bytes([tid >> 8, tid & 0xFF, proto >> 8, proto & 0xFF, n >> 8, n & 0xFF, unit]) + pdu


def _tcp_event(m, now, *chunks):
    for c in chunks:
        m.receive_data(c, now)
    return m.next_event()


def check_modbus_tcp():
    from edgeledger.protocols import modbus_tcp as tcp

    # TCP guide §4.4 layout: read holding registers 0..9 of unit 1, transaction 1
    req = modbus.read_holding_registers(1, 0, 10)
    assert tcp.encode_request(1, req) == bytes.fromhex("00010000000601030000000A")
    expect_raises(modbus.ModbusEncodeError, tcp.encode_request, 0x10000, req)
    req = modbus.read_input_registers(1, 1, 2)
    pdu = bytes.fromhex("04040131 0222".replace(" ", ""))
    # whole, split anywhere, and one byte at a time: the same values (PDU code shared with RTU)
    for label, chunks in feeds(_mbap(1, 1, pdu)):
        if label.startswith("junk") or label == "after junk":
            continue  # TCP cannot resynchronise after junk: that is a lost stream (below)
        m = tcp.TcpMaster(timeout_s=1.0, retries=1)
        assert m.send_request(0.0, req) == _mbap(1, 1, bytes.fromhex("040001 0002".replace(" ", "")))
        ev = _tcp_event(m, 0.1, *chunks)
        assert isinstance(ev, modbus.Response) and ev.values == [0x0131, 0x0222], label
    m = tcp.TcpMaster(timeout_s=1.0, retries=1)
    # wrong protocol id, and a length that lies (0, over 254): the stream is lost, reconnect
    for bad in (_mbap(1, 1, pdu, proto=1), _mbap(1, 1, pdu, length=0), _mbap(1, 1, pdu, length=300)):
        expect_raises(tcp.ModbusTcpError, tcp.decode_response, bad)
        m.send_request(m.ready_at(1) or 0.0, req)
        assert _tcp_event(m, 0.1, bad) is None and m.stream_lost and m.state == modbus.BACKOFF
        m.connection_reset()
        resend = m.handle_timer(m.timer())
        assert resend[:2] == bytes([0, m.transaction_id]) and not m.stream_lost
        ev = _tcp_event(m, 0.2, _mbap(m.transaction_id, 1, pdu))
        assert isinstance(ev, modbus.Response) and ev.attempts == 2
    assert m.counters["stream_errors"] == 3
    # a length that claims more than the PDU the function gives: a mismatch, retried
    m.send_request(1.0, req)
    ev = _tcp_event(m, 1.1, _mbap(m.transaction_id, 1, pdu + b"\x00\x00"))
    assert ev is None and m.state == modbus.BACKOFF
    # wrong transaction id: the attempt fails; a late reply to an earlier attempt is skipped
    m = tcp.TcpMaster(timeout_s=1.0, retries=1)
    m.send_request(0.0, req)
    assert _tcp_event(m, 0.1, _mbap(77, 1, pdu)) is None and m.state == modbus.BACKOFF
    m.handle_timer(m.timer())
    ev = _tcp_event(m, 0.2, _mbap(m.transaction_id - 1, 1, pdu), _mbap(m.transaction_id, 1, pdu))
    assert isinstance(ev, modbus.Response) and m.counters["transaction_errors"] == 2
    m.send_request(m.ready_at(1), req)
    _tcp_event(m, 0.3, _mbap(500, 1, pdu))
    m.handle_timer(m.timer())
    ev = _tcp_event(m, 0.4, _mbap(500, 1, pdu))
    assert isinstance(ev, modbus.RequestFailed) and ev.reason == "transaction"
    # exception response: typed, final
    m.send_request(m.ready_at(1), req)
    ev = _tcp_event(m, 0.5, _mbap(m.transaction_id, 1, b"\x84\x02"))
    assert isinstance(ev, modbus.DeviceException) and ev.error.name == "ILLEGAL DATA ADDRESS"
    # truncated: part of a reply when the response timeout comes
    m.send_request(m.ready_at(1), req)
    _tcp_event(m, 0.6, _mbap(m.transaction_id, 1, pdu)[:9])
    assert m.handle_timer(m.timer())[:2] == bytes([0, m.transaction_id])  # failed, resent at once
    _tcp_event(m, 0.8, _mbap(m.transaction_id, 1, pdu)[:5])
    m.handle_timer(m.timer())
    ev = m.next_event()
    assert isinstance(ev, modbus.RequestFailed) and ev.reason == "truncated" and m.counters["truncated"] == 2
    # a reply from another unit id behind the same gateway is not ours
    m.send_request(m.ready_at(1), req)
    assert _tcp_event(m, 2.0, _mbap(m.transaction_id, 2, pdu)) is None and m.state == modbus.BACKOFF


def check_registermaps():
    from edgeledger.agent.registermaps import decode_block, get_map, plan_blocks

    m = get_map("xy_md02")
    (start, count, entries), = plan_blocks(m)
    recs = decode_block(start, [0xFF33, 546], entries, "hall/", 1700000000)
    assert recs == [{0: "hall/temperature", 1: "Cel", 2: -20.5, 6: 1700000000},
                    {0: "hall/humidity", 1: "%RH", 2: 54.6, 6: 1700000000}], recs
    sdm = get_map("sdm630")
    for start, count, entries in plan_blocks(sdm):
        assert count <= sdm["max_block"]
        regs = [0] * count
        for e in entries:
            v = modbus.encode_value(1.5, "f32")
            regs[e[0] - start : e[0] - start + 2] = v
        recs = decode_block(start, regs, entries, "m1/", 5)
        assert len(recs) == len(entries)
        for r, e in zip(recs, entries):
            assert r[2] == 1.5 * e[3] and r[1] == e[4]


# -------------------------------------------------------------------------- DSMR


def _records_by_name(recs):
    out = {}
    for r in recs:
        out[r[0]] = r
    return out


def _dsmr_feeds(raw):
    # every 7th split point plus the last 10 (where the CRC lives): all 1500
    # splits of every telegram take too long under MicroPython
    for p in feeds(raw, step=7, tail=10):
        yield p
    # a truncated telegram before the real one (the meter was mid-telegram)
    yield "after partial", [raw[len(raw) // 2 :], raw]


def check_dsmr_crc_vectors():
    for name in TELEGRAMS:
        text, version, _ = TELEGRAMS[name]
        raw = text.encode()
        if version in ("2.2", "3.0"):
            expect_raises(dsmr.DsmrFrameError, dsmr.decode_telegram, raw, True)
            tg, used = dsmr.decode_telegram(raw, False)
        else:
            tg, used = dsmr.decode_telegram(raw, True)
            printed = int(text[text.rindex("!") + 1 : text.rindex("!") + 5], 16)
            assert crc.crc16_arc(raw[: raw.rindex(b"!") + 1]) == printed, name
        assert tg == raw and used == len(raw), name


def check_dsmr_framer():
    for name in TELEGRAMS:
        text, version, _ = TELEGRAMS[name]
        raw = text.encode()
        need_crc = version not in ("2.2", "3.0")
        for label, chunks in _dsmr_feeds(raw):
            f = dsmr.TelegramFramer(need_crc)
            got = []
            for c in chunks:
                f.receive_data(c)
                while True:
                    tg = f.next_telegram()
                    if tg is None:
                        break
                    got.append(tg)
            assert got == [raw], (name, label)
        if need_crc:
            # broken CRC: a changed value byte, and a changed CRC digit
            body_pos = raw.index(b"1-0:1.8.1(") + 12
            other_crc = b"0000" if raw[-6:-2] != b"0000" else b"1111"
            for bad in (corrupt(raw, body_pos), raw[:-6] + other_crc + b"\r\n"):
                f = dsmr.TelegramFramer(True)
                f.receive_data(bad + raw)
                expect_raises(dsmr.DsmrCrcError, f.next_telegram)
                assert f.bad_frames == 1
                assert f.next_telegram() == raw, name


def _detect_all(chunks, framer=None):
    """Telegrams a detecting framer takes from ``chunks``; rejected ones as the exception class."""
    f = framer or dsmr.TelegramFramer(dsmr.DETECT)
    got = []
    for c in chunks:
        f.receive_data(c)
        while True:
            try:
                tg = f.next_telegram()
            except dsmr.DsmrFrameError as e:
                got.append(type(e))
                continue
            if tg is None:
                break
            got.append(tg)
    return got


def check_dsmr_detect():
    # The rules D1-D3 of protocols/dsmr.py, on the published telegrams of every version.
    for name in TELEGRAMS:
        text, version, _ = TELEGRAMS[name]
        raw = text.encode()
        assert _detect_all([raw]) == [raw], name
        tg = dsmr.parse_telegram(raw)
        assert tg.version == ("2.2" if version in ("2.2", "3.0") else version), (name, tg.version)
        if version in ("2.2", "3.0"):
            continue
        # D1 CRC_PRESENT: a bad CRC stays a bad CRC, whatever the version detection would say
        body_pos = raw.index(b"1-0:1.8.1(") + 12
        assert _detect_all([corrupt(raw, body_pos), raw]) == [dsmr.DsmrCrcError, raw], name
        # D2 LEGACY_CLEAN: the same telegram with its CRC cut off is not a 2.2 telegram
        stripped = raw[: raw.rindex(b"!") + 1] + b"\r\n"
        assert _detect_all([stripped]) == [dsmr.DsmrFrameError], name
        # ... also with the value changed: dropping the CRC never skips its check
        assert _detect_all([corrupt(stripped, body_pos)]) == [dsmr.DsmrFrameError], name
        # D3 CRC_STICKS: after one valid CRC, a clean 2.2-looking telegram is refused too
        legacy = TELEGRAM_V2_2.encode()
        f = dsmr.TelegramFramer(dsmr.DETECT)
        assert _detect_all([raw, legacy, raw], f) == [raw, dsmr.DsmrFrameError, raw], name
        assert f.require_crc is True and f.bad_frames == 1
    # a 2.2 meter before any CRC: its telegrams keep passing
    legacy = TELEGRAM_V2_2.encode()
    assert _detect_all([legacy, legacy]) == [legacy, legacy]


def check_dsmr_values():
    tg = dsmr.parse_telegram(TELEGRAM_V4_2.encode())
    recs = _records_by_name(dsmr.to_records(tg, "m/", now=1))
    # 1-0:1.8.1(001581.123*kWh) = exactly 5692042800 J; time 16-11-13 20:57:57 W = 19:57:57 UTC
    assert recs["m/energy_import_t1"] == {0: "m/energy_import_t1", 1: "J", 2: 5692042800, 6: 1479067077}
    assert recs["m/power_import"][2] == 2027 and recs["m/power_import"][1] == "W"
    # gas on M-Bus channel 1 with its own time: 16-11-29 20:00:00 W = 19:00:00 UTC
    assert recs["m/gas_1"] == {0: "m/gas_1", 1: "m3", 2: 981.443, 6: 1480446000}
    tg = dsmr.parse_telegram(TELEGRAM_FLUVIUS.encode())
    assert tg.version == "fluvius"
    recs = _records_by_name(dsmr.to_records(tg, "", now=1))
    # 20-05-12 13:54:09 S = 11:54:09 UTC (dsmr_parser's own test asserts the same instant)
    assert recs["energy_import_t2"][6] == 1589284449
    assert recs["gas_1"] == {0: "gas_1", 1: "m3", 2: 112.384, 6: 1589283958}  # 20-05-12 13:45:58 S
    assert recs["water_2"][2] == 872.234
    assert recs["demand_max_month"] == {0: "demand_max_month", 1: "W", 2: 2589, 6: 1589024758}
    assert recs["voltage_l1"][2] == 234.7 and recs["voltage_l1"][1] == "V"
    # no-flag timestamps (DSMR 2.2 gas) follow the EU summer-time rule
    assert obis.parse_timestamp("161107190000") == obis.parse_timestamp("161107190000W")
    assert obis.parse_timestamp("160707190000") == obis.parse_timestamp("160707190000S")
    assert obis.scaled_value("0001.01", "kW") == (1010, "W")
    assert obis.scaled_value("00.48", "A") == (0.48, "A")
    expect_raises(obis.ObisValueError, obis.parse_timestamp, "161107190000X")
    expect_raises(obis.ObisValueError, obis.scaled_value, "1.2.3", "kW")


# ------------------------------------------------------------------ IEC 62056-21


def check_iec():
    assert iec62056.sign_on_request() == b"/?!\r\n"
    assert iec62056.sign_on_request("12345678") == b"/?12345678!\r\n"
    assert iec62056.option_select("5") == b"\x06050\r\n"
    expect_raises(EncodeError, iec62056.option_select, "A")
    ident = iec62056.parse_identification(IEC_IDENT)
    assert (ident.manufacturer, ident.baud_char, ident.baud, ident.mode, ident.ident) == (
        "ISK", "5", 9600, "C", "ME382-1003")
    i2 = iec62056.parse_identification(b"/LGZ4\\2ZMD3104100.B32\r\n")
    assert i2.enhanced == "2" and i2.baud == 4800 and i2.ident == "ZMD3104100.B32"
    assert iec62056.parse_identification(b"/ABCE123\r\n").mode == "B"
    msg = iec62056.encode_data_message(IEC_BLOCK)
    assert msg[0] == 0x02 and msg[-2] == 0x03
    assert msg[-1] == crc.bcc_xor(msg[1:-1])
    for label, chunks in feeds(msg):
        buf = bytearray()
        got = None
        for c in chunks:
            buf.extend(c)
            block, used = iec62056.decode_data_message(buf)
            buf = buf[used:]
            if block is not None:
                got = block
        assert got == IEC_BLOCK, label
    for i in range(1, len(msg)):
        bad = corrupt(msg, i)
        try:
            block, used = iec62056.decode_data_message(bad)
        except iec62056.IecBccError as e:
            assert e.consumed == len(msg), i
            continue
        except iec62056.IecFrameError:
            continue
        # flipping ETX's bit makes it a non-ETX: the message is incomplete
        assert block is None, i
    sets = iec62056.parse_data_sets(IEC_BLOCK)
    assert [s.address for s in sets] == ["0.0.0", "1.8.0", "2.8.0", "1.7.0", "32.7.0", "31.7.0"]
    assert sets[1].values == [("001234.567", "kWh")]
    multi = iec62056.parse_data_sets(b"1.6.0(01.234*kW)(2301011200)1.8.0(5*kWh)\r\n!\r\n")
    assert multi[0].values == [("01.234", "kW"), ("2301011200", None)] and multi[1].address == "1.8.0"


def check_obis_codes():
    # short codes, letters for 96..99, and value group F (billing periods) in every form
    assert [obis.obis_key(c) for c in ("32.7", "F.F", "C.1.0", "1-0:1.8.0*96", "1.8.0.01")] == [
        "32.7.0", "97.97.0", "96.1.0", "1.8.0", "1.8.0"]
    assert [obis.billing_period(c) for c in ("1.8.0", "1.8.0*255", "1.8.0*96", "1.8.0&04")] == [
        None, None, 96, 4]
    from edgeledger.agent.sources.iec62056 import data_sets_to_records

    sets = iec62056.parse_data_sets(b"1.8.0(10*kWh)\r\n1.8.0*01(4)\r\n1.8.0*00(0)\r\n1.8.0*00(0)\r\n!\r\n")
    recs = data_sets_to_records(sets, "m/", 5)
    assert [(r[0], r[2], r[1]) for r in recs] == [
        ("m/energy_import", 36000000, "J"), ("m/energy_import/period_1", 14400000, "J"),
        ("m/energy_import/period_0", 0, "J")]


def check_iec_session():
    s = iec62056.ModeCSession("", max_baud=9600)
    assert s.start(0.0) == b"/?!\r\n"
    s.receive_data(b"\x00/?!\r\n/ISK", 0.3)  # noise and our own echo first
    s.receive_data(IEC_IDENT[4:], 0.4)
    ev = s.next_event()
    assert isinstance(ev, iec62056.Identified) and ev.ident.baud == 9600
    ev = s.next_event()
    assert isinstance(ev, iec62056.SwitchBaud) and ev.data == b"\x06050\r\n" and ev.baud == 9600
    msg = iec62056.encode_data_message(IEC_BLOCK)
    for i in range(len(msg)):
        s.receive_data(msg[i : i + 1], 1.0 + i * 0.001)
    ev = s.next_event()
    assert isinstance(ev, iec62056.Readout) and len(ev.data_sets) == 6 and s.state == iec62056.DONE
    # capped baud rate: meter offers 19200 ('6'), we allow 4800 ('4')
    s = iec62056.ModeCSession("", max_baud=4800)
    s.start(0.0)
    s.receive_data(b"/ISK6ME382\r\n", 0.2)
    s.next_event()
    ev = s.next_event()
    assert ev.data == b"\x06040\r\n" and ev.baud == 4800
    # bad BCC -> failed and counted
    s.receive_data(corrupt(msg, 10), 0.5)
    ev = s.next_event()
    assert isinstance(ev, iec62056.SessionFailed) and ev.reason == "bcc" and s.counters["bad_frames"] == 1
    # silence -> timeout
    s = iec62056.ModeCSession()
    s.start(0.0)
    s.handle_timer(s.timer())
    assert s.next_event().reason == "timeout"


def _expect_only(exc, fn, *args):
    """``fn(*args)`` must raise ``exc`` (its documented error) and nothing else."""
    try:
        fn(*args)
    except exc:
        return
    except Exception as e:
        raise AssertionError("expected %s, got %s: %s" % (exc.__name__, type(e).__name__, e))
    raise AssertionError("expected %s, nothing raised" % exc.__name__)


def _telegram(*lines):
    return ("/XMX5LGBBFFB231215493\r\n\r\n1-3:0.2.8(50)\r\n" + "".join(line + "\r\n" for line in lines)
            + "!\r\n").encode()


def check_hostile_frames():
    """Frames that pass their CRC/BCC but carry hostile content (issue 12): each ends in the
    decoder's documented error, never IndexError/ValueError/OverflowError/UnicodeDecodeError."""
    # DSMR: an M-Bus reading without its value group (was IndexError)
    _expect_only(dsmr.DsmrFrameError, dsmr.parse_telegram, _telegram("0-1:24.2.1(101209112500W)"))
    # a device type that is not a number (was ValueError from int())
    _expect_only(obis.ObisValueError, dsmr.parse_telegram, _telegram("0-1:24.1.0(zz)"))
    # digits that str.isdigit() accepts and int() refuses (was ValueError)
    _expect_only(obis.ObisValueError, dsmr.parse_telegram, _telegram("0-0:1.0.0(²01209112500W)"))
    tg = dsmr.parse_telegram(_telegram("1-0:1.8.1(²00.000*kWh)"))
    _expect_only(obis.ObisValueError, dsmr.to_records, tg)
    # a register of 400 digits with decimals (was OverflowError: the division overflowed a float)
    tg = dsmr.parse_telegram(_telegram("1-0:1.8.1(%s.5*kWh)" % ("9" * 400)))
    _expect_only(obis.ObisValueError, dsmr.to_records, tg)
    v, u = obis.scaled_value("9" * 32, "kWh")  # the longest accepted: exact, or a finite float
    assert v == v and v - v == 0 and u == "J"
    # IEC 62056-21: a block with a valid BCC that is not text (was UnicodeDecodeError)
    block = b"1.8.0(0\xff1.0*kWh)\r\n!\r\n"
    msg = iec62056.encode_data_message(block)
    assert iec62056.decode_data_message(msg)[0] == block
    _expect_only(iec62056.IecFrameError, iec62056.parse_data_sets, block)
    s = iec62056.ModeCSession()
    s.start(0.0)
    s.receive_data(b"/ISK5ME382-1000\r\n", 0.1)
    while s.next_event() is not None:
        pass
    s.receive_data(msg, 0.3)
    ev = s.next_event()
    assert isinstance(ev, iec62056.SessionFailed) and ev.reason == "frame", ev
    # many echoed requests in one read: a loop, not one nested call per line
    s = iec62056.ModeCSession()
    s.start(0.0)
    s.receive_data(b"/?!\r\n" * 500 + b"/ISK5ME382-1000\r\n", 0.1)
    assert isinstance(s.next_event(), iec62056.Identified)
    # Modbus: a reply frame of the right length and CRC but the wrong shape is a FrameError
    req = modbus.read_holding_registers(1, 0, 2)
    frame = modbus.Frame(1, 3, b"\x05\x00\x01\x00\x02\x00")
    _expect_only(modbus.ModbusFrameError, modbus.parse_response, req, frame)


ALL = (check_crc, check_modbus_requests, check_modbus_timing, check_modbus_framer, check_modbus_master,
       check_modbus_tcp, check_registermaps, check_dsmr_crc_vectors, check_dsmr_framer, check_dsmr_detect,
       check_dsmr_values, check_iec, check_obis_codes, check_iec_session, check_hostile_frames)


def run_all():
    for fn in ALL:
        fn()
        print("ok", fn.__name__)

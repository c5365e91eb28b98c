"""Modbus TCP client: MBAP header encode/decode and a sans-IO master over one connection.

Reference: MODBUS Messaging on TCP/IP Implementation Guide V1.0b (modbus.org, 2006),
cited as "TCP"; the PDU is the one of ``protocols/modbus.py`` (AP), built and parsed by
the same code as for RTU: a request's PDU is its RTU ADU without address and CRC.

ADU (TCP §3.1.2, §3.1.3)::

    +----------------+-------------+--------+---------+----------------------+
    | transaction id | protocol id | length | unit id | PDU: function, data  |
    +----------------+-------------+--------+---------+----------------------+
      2 bytes          2 bytes = 0   2 bytes  1 byte    1 + 0..252 bytes
                                     (bytes that follow: unit id + PDU)

TCP has no CRC and no silence between frames: the stream is cut by the length field. A
header that cannot be right (protocol id not 0, a length outside 2..254) means the
stream is lost, and every later byte with it: the caller reconnects. A late reply to an
earlier attempt of the same request (it timed out, the retry went out) is skipped; a
reply with any other transaction id fails the attempt, like a CRC error on RTU; a reply
still incomplete at the response timeout fails it as "truncated". Nothing here does I/O
or reads a clock.
"""
import struct

from edgeledger.protocols import modbus

MBAP_LENGTH = 7  # TCP §3.1.3: transaction id, protocol id, length, unit id
MODBUS_PROTOCOL_ID = 0  # TCP §3.1.3: "0 = MODBUS protocol"
# AP §4.1: a PDU is at most 253 bytes, so the length field (unit id + PDU) is 2..254 and a
# whole ADU at most 260 bytes.
MAX_PDU = 253
MIN_LENGTH_FIELD = 2
MAX_LENGTH_FIELD = 1 + MAX_PDU
MAX_TCP_ADU = MBAP_LENGTH - 1 + MAX_LENGTH_FIELD
# Receive buffer: one ADU plus a second one behind it (a late reply followed by the
# expected one). More unread bytes than that cannot belong to one request: dropped, counted.
MAX_TCP_RX_BUFFER = 2 * MAX_TCP_ADU


class ModbusTcpError(modbus.ModbusFrameError):
    """An MBAP header cannot be right: the connection's byte stream is lost."""


class ModbusTransactionError(modbus.ModbusFrameError):
    """A reply carries another transaction id than the request (``expected``, ``found``)."""

    def __init__(self, expected, found):
        super().__init__("reply transaction id expected %d, found %d" % (expected, found))
        self.expected = expected
        self.found = found


def encode_request(transaction_id, request):
    """The TCP ADU of ``request`` (a ``modbus.Request``): MBAP header + PDU.

    Raises ModbusEncodeError for a transaction id outside 0..65535.
    """
    if not 0 <= transaction_id <= 0xFFFF:
        raise modbus.ModbusEncodeError("transaction id must be 0..65535, found %r" % (transaction_id,))
    pdu = request.adu[1:-2]
    return struct.pack(">HHHB", transaction_id, MODBUS_PROTOCOL_ID, len(pdu) + 1, request.unit) + pdu


def decode_response(buf):
    """One ADU from the start of ``buf``.

    Returns ``(transaction_id, frame, consumed)`` with ``frame`` a ``modbus.Frame``, or
    ``(None, None, 0)`` while the ADU is incomplete. Raises ModbusTcpError for a header
    that cannot be right (protocol id, length field).
    """
    if len(buf) < MBAP_LENGTH:
        return None, None, 0
    tid, proto, length, unit = struct.unpack(">HHHB", bytes(buf[:MBAP_LENGTH]))
    if proto != MODBUS_PROTOCOL_ID:
        raise ModbusTcpError("MBAP protocol id expected 0, found %d" % proto)
    if not MIN_LENGTH_FIELD <= length <= MAX_LENGTH_FIELD:
        raise ModbusTcpError("MBAP length expected %d..%d, found %d" % (MIN_LENGTH_FIELD, MAX_LENGTH_FIELD, length))
    end = MBAP_LENGTH - 1 + length
    if len(buf) < end:
        return None, None, 0
    pdu = bytes(buf[MBAP_LENGTH:end])
    return tid, modbus.Frame(unit, pdu[0], pdu[1:]), end


class TcpMaster(modbus.RtuMaster):
    """Sans-IO Modbus TCP master: the RTU master's state machine and events
    (``modbus.RtuMaster``), one request at a time on one connection, with a new
    transaction id per attempt and no bus timing (t3.5 is 0 on TCP).

    Attempts fail as "transaction" (a reply to another request), "truncated" (the
    response timeout came with part of a reply buffered), "timeout", "mismatch" (the
    reply does not answer the request) or "stream" (a header that cannot be right;
    ``stream_lost`` is then True: the caller must reconnect before the retry).
    """

    def __init__(self, timeout_s=1.0, retries=2, inter_request_delay_s=0.0):
        super().__init__(baud=19200, timeout_s=timeout_s, retries=retries,
                         inter_request_delay_s=inter_request_delay_s)
        self.t1_5 = self.t3_5 = 0.0
        self.transaction_id = 0
        self.stream_lost = False
        self._rx = bytearray()
        for k in ("transaction_errors", "truncated", "stream_errors"):
            self.counters[k] = 0

    def _transmit(self, now):
        req = self._request
        self._attempts += 1
        self.transaction_id = (self.transaction_id + 1) & 0xFFFF
        self.counters["discarded_bytes"] += len(self._rx)
        self._rx = bytearray()
        self.state = modbus.WAITING
        self._deadline = now + self.timeout_s
        self._retry_at = None
        return encode_request(self.transaction_id, req)

    def connection_reset(self):
        """The caller opened a new connection: the byte stream starts afresh."""
        self.stream_lost = False
        self.counters["discarded_bytes"] += len(self._rx)
        self._rx = bytearray()

    def receive_data(self, data, now):
        """Feed bytes read from the connection."""
        if self.state != modbus.WAITING:
            self.counters["unexpected_bytes"] += len(data)
            return
        self._rx.extend(data)
        over = len(self._rx) - MAX_TCP_RX_BUFFER
        if over > 0:
            self._rx = self._rx[over:]
            self.counters["discarded_bytes"] += over
        while self.state == modbus.WAITING:
            try:
                tid, frame, used = decode_response(self._rx)
            except ModbusTcpError:
                self.counters["stream_errors"] += 1
                self.counters["discarded_bytes"] += len(self._rx)
                self._rx = bytearray()
                self.stream_lost = True
                self._attempt_failed(now, "stream")
                return
            if frame is None:
                return
            self._rx = self._rx[used:]
            if tid != self.transaction_id:
                self.counters["transaction_errors"] += 1
                if 0 < (self.transaction_id - tid) & 0xFFFF < self._attempts:
                    continue  # a late reply to an earlier attempt of this request: skip it, keep waiting
                self._attempt_failed(now, "transaction")
                return
            self._answer(now, frame)

    def _answer(self, now, frame):
        req = self._request
        try:
            values = modbus.parse_response(req, frame)
        except modbus.ModbusException as e:
            self.counters["exceptions"] += 1
            self._finish(now, modbus.DeviceException(req, e, self._attempts))
            return
        except modbus.ModbusFrameError:
            self._attempt_failed(now, "mismatch")
            return
        self.counters["responses"] += 1
        self._finish(now, modbus.Response(req, values, self._attempts))

    def handle_timer(self, now):
        """Advance timers; returns bytes to send (a retry) or b""."""
        if self.state == modbus.WAITING and now >= self._deadline:
            if self._rx:
                self.counters["truncated"] += 1
                self.counters["discarded_bytes"] += len(self._rx)
                self._rx = bytearray()
                self._attempt_failed(now, "truncated")
            else:
                self.counters["timeouts"] += 1
                self._attempt_failed(now, "timeout")
        if self.state == modbus.BACKOFF and now >= self._retry_at:
            return self._transmit(now)
        return b""

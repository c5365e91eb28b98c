"""Modbus RTU master: request builders, response framer, bus timing, sans-IO master.

References
    * MODBUS over Serial Line Specification and Implementation Guide V1.02
      (modbus.org, 2006), cited as "SL".
    * MODBUS Application Protocol Specification V1.1b3 (modbus.org, 2012),
      cited as "AP".

RTU frame (SL §2.5.1)::

    +---------+----------+---------------------+-----------------+
    | address | function | data (0..252 bytes) | CRC lo | CRC hi |
    +---------+----------+---------------------+-----------------+
      1 byte    1 byte                           CRC-16/MODBUS of all before

Frames are delimited on the wire only by silence (t3.5). A master on a serial
port cannot see that silence reliably (OS buffering), so this framer instead
knows how long each response must be from the function code (AP §6) and
checks the CRC; it resynchronises after junk by dropping one byte at a time,
as pymodbus's RTU framer does. Nothing here does I/O or reads a clock: the
caller passes ``now`` (seconds, any monotonic origin).
"""
import struct

from edgeledger.protocols.crc import crc16_modbus
from edgeledger.protocols.errors import EncodeError, FrameError, ProtocolError

# SL §2.5.1: "The maximum size of a MODBUS RTU frame is 256 bytes."
MAX_ADU = 256
# The receive buffer holds at most two ADUs: one frame plus as much junk before
# it again. Bytes beyond that are junk by construction; they are dropped and
# counted in ``discarded`` (never silently).
MAX_RX_BUFFER = 2 * MAX_ADU

# AP §4.3 / SL §2.2: unicast addresses are 1..247; 0 is broadcast, 248..255
# are reserved. A response always carries the unicast address of its sender.
MIN_UNIT = 1
MAX_UNIT = 247

EXCEPTION_FLAG = 0x80


class ModbusFrameError(FrameError):
    """An RTU frame is malformed (impossible length, unexpected function)."""


class ModbusCrcError(ModbusFrameError):
    """A complete RTU frame candidate failed its CRC-16/MODBUS check.

    ``consumed`` says how many bytes the framer dropped to get past it.
    """

    def __init__(self, msg, consumed=1):
        super().__init__(msg)
        self.consumed = consumed


class ModbusEncodeError(EncodeError):
    """A request cannot be built (unit, address or quantity out of range)."""


class ModbusStateError(ProtocolError):
    """The master was asked to do something its state does not allow."""


class ModbusException(ProtocolError):
    """A device answered with an exception response (AP §7).

    Attributes: ``unit``, ``function`` (the request's function code),
    ``code`` (the exception code) and ``name`` (its name from AP §7).
    """

    def __init__(self, unit, function, code):
        self.unit = unit
        self.function = function
        self.code = code
        self.name = EXCEPTION_CODES.get(code, "UNKNOWN EXCEPTION 0x%02X" % code)
        super().__init__(
            "unit %d answered function 0x%02X with exception 0x%02X (%s)"
            % (unit, function, code, self.name)
        )


# AP §7 "MODBUS Exception Responses", table of exception codes.
EXCEPTION_CODES = {
    0x01: "ILLEGAL FUNCTION",
    0x02: "ILLEGAL DATA ADDRESS",
    0x03: "ILLEGAL DATA VALUE",
    0x04: "SERVER DEVICE FAILURE",
    0x05: "ACKNOWLEDGE",
    0x06: "SERVER DEVICE BUSY",
    0x08: "MEMORY PARITY ERROR",
    0x0A: "GATEWAY PATH UNAVAILABLE",
    0x0B: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}

# Response layouts.
READ_BITS = "read_bits"  # addr fc bytecount bits... crc     (AP §6.1, §6.2)
READ_REGISTERS = "read_registers"  # addr fc bytecount regs... crc (AP §6.3, §6.4)
ECHO = "echo"  # addr fc addr_hi addr_lo val_hi val_lo crc  (AP §6.6, §6.12)


class Function:
    """One row of the function table."""

    def __init__(self, code, name, layout, max_quantity):
        self.code = code
        self.name = name
        self.layout = layout
        self.max_quantity = max_quantity


# AP §6: the function codes this master speaks, with the quantity limits the
# spec gives for each request (coils 1..2000 = 0x7D0, registers 1..125 = 0x7D,
# write multiple 1..123 = 0x7B).
FUNCTIONS = {
    0x01: Function(0x01, "read_coils", READ_BITS, 2000),
    0x02: Function(0x02, "read_discrete_inputs", READ_BITS, 2000),
    0x03: Function(0x03, "read_holding_registers", READ_REGISTERS, 125),
    0x04: Function(0x04, "read_input_registers", READ_REGISTERS, 125),
    0x06: Function(0x06, "write_single_register", ECHO, 1),
    0x10: Function(0x10, "write_multiple_registers", ECHO, 123),
}

# Fixed frame lengths, in bytes including address and CRC.
ECHO_LENGTH = 8  # AP §6.6 / §6.12: the response echoes 4 bytes of the request
EXCEPTION_LENGTH = 5  # AP §7: addr, fc|0x80, exception code, CRC


def char_timing(baud, bits_per_char=11):
    """Return ``(t1_5, t3_5)`` in seconds for a serial line at ``baud``.

    SL §2.5.1.1: an RTU character is 11 bits (start, 8 data, parity or a
    second stop bit, stop). Inter-character time-out t1.5 and inter-frame
    delay t3.5 are 1.5 and 3.5 character times; above 19200 baud the spec
    fixes them at 750 µs and 1.750 ms. Raises ValueError for baud <= 0.
    """
    if baud <= 0:
        raise ValueError("baud rate must be positive, found %r" % (baud,))
    if baud > 19200:
        return 0.00075, 0.00175
    char = float(bits_per_char) / baud
    return 1.5 * char, 3.5 * char


def transmit_time(nbytes, baud, bits_per_char=11):
    """Seconds the line needs to carry ``nbytes`` characters."""
    return float(nbytes * bits_per_char) / baud


class Request:
    """A built request: ``adu`` is what goes on the wire.

    ``expected_length`` is the length of a normal response ADU, which lets the
    framer delimit it without timing.
    """

    def __init__(self, unit, function, address, quantity, adu, expected_length, values=None):
        self.unit = unit
        self.function = function
        self.address = address
        self.quantity = quantity
        self.adu = adu
        self.expected_length = expected_length
        self.values = values

    def __repr__(self):
        return "Request(unit=%d, function=0x%02X, address=%d, quantity=%d)" % (
            self.unit,
            self.function,
            self.address,
            self.quantity,
        )


def _check_unit(unit):
    if not (MIN_UNIT <= unit <= MAX_UNIT):
        raise ModbusEncodeError(
            "unit id must be %d..%d for a request that expects a reply, found %r"
            % (MIN_UNIT, MAX_UNIT, unit)
        )


def _check_address(address, quantity):
    if not (0 <= address <= 0xFFFF):
        raise ModbusEncodeError("address must be 0..65535, found %r" % (address,))
    if address + quantity > 0x10000:
        raise ModbusEncodeError(
            "address %d + quantity %d runs past register 65535" % (address, quantity)
        )


def _adu(pdu_head):
    crc = crc16_modbus(pdu_head)
    return bytes(pdu_head) + bytes((crc & 0xFF, crc >> 8))


def _read_request(unit, function, address, quantity):
    fn = FUNCTIONS[function]
    _check_unit(unit)
    if not (1 <= quantity <= fn.max_quantity):
        raise ModbusEncodeError(
            "%s quantity must be 1..%d (AP §6), found %r" % (fn.name, fn.max_quantity, quantity)
        )
    _check_address(address, quantity)
    if fn.layout == READ_BITS:
        nbytes = (quantity + 7) // 8
    else:
        nbytes = 2 * quantity
    adu = _adu(struct.pack(">BBHH", unit, function, address, quantity))
    return Request(unit, function, address, quantity, adu, 5 + nbytes)


def read_coils(unit, address, count):
    """FC 0x01 (AP §6.1). Raises ModbusEncodeError for out-of-range arguments."""
    return _read_request(unit, 0x01, address, count)


def read_discrete_inputs(unit, address, count):
    """FC 0x02 (AP §6.2). Raises ModbusEncodeError for out-of-range arguments."""
    return _read_request(unit, 0x02, address, count)


def read_holding_registers(unit, address, count):
    """FC 0x03 (AP §6.3). Raises ModbusEncodeError for out-of-range arguments."""
    return _read_request(unit, 0x03, address, count)


def read_input_registers(unit, address, count):
    """FC 0x04 (AP §6.4). Raises ModbusEncodeError for out-of-range arguments."""
    return _read_request(unit, 0x04, address, count)


def write_single_register(unit, address, value):
    """FC 0x06 (AP §6.6). Raises ModbusEncodeError for out-of-range arguments."""
    _check_unit(unit)
    _check_address(address, 1)
    if not (0 <= value <= 0xFFFF):
        raise ModbusEncodeError("register value must be 0..65535, found %r" % (value,))
    adu = _adu(struct.pack(">BBHH", unit, 0x06, address, value))
    return Request(unit, 0x06, address, 1, adu, ECHO_LENGTH, [value])


def write_multiple_registers(unit, address, values):
    """FC 0x10 (AP §6.12). Raises ModbusEncodeError for out-of-range arguments."""
    _check_unit(unit)
    n = len(values)
    if not (1 <= n <= 123):
        raise ModbusEncodeError("write_multiple_registers needs 1..123 values, found %d" % n)
    _check_address(address, n)
    head = bytearray(struct.pack(">BBHHB", unit, 0x10, address, n, 2 * n))
    for v in values:
        if not (0 <= v <= 0xFFFF):
            raise ModbusEncodeError("register value must be 0..65535, found %r" % (v,))
        head.extend(struct.pack(">H", v))
    return Request(unit, 0x10, address, n, _adu(head), ECHO_LENGTH, list(values))


BUILDERS = {
    0x01: read_coils,
    0x02: read_discrete_inputs,
    0x03: read_holding_registers,
    0x04: read_input_registers,
}


class Frame:
    """A response frame that passed its CRC: ``unit``, ``function`` (as sent,
    with 0x80 set for exceptions) and ``data`` (bytes between function code and
    CRC)."""

    def __init__(self, unit, function, data):
        self.unit = unit
        self.function = function
        self.data = data

    def __repr__(self):
        return "Frame(unit=%d, function=0x%02X, data=%r)" % (self.unit, self.function, self.data)


def _frame_length(buf, expect_unit, expect_function, expect_length):
    """Length of the response frame that starts at buf[0], 0 if buf[0] cannot
    start one, or None if more bytes are needed to tell."""
    n = len(buf)
    if n < 1:
        return None
    unit = buf[0]
    if not (MIN_UNIT <= unit <= MAX_UNIT):
        return 0
    if expect_unit is not None and unit != expect_unit:
        return 0
    if n < 2:
        return None
    fc = buf[1]
    base = fc & 0x7F
    if base not in FUNCTIONS:
        return 0
    if expect_function is not None and base != expect_function:
        return 0
    if fc & EXCEPTION_FLAG:
        return EXCEPTION_LENGTH
    layout = FUNCTIONS[base].layout
    if layout == ECHO:
        return ECHO_LENGTH
    if n < 3:
        return None
    length = 5 + buf[2]
    if expect_length is not None and length != expect_length:
        return 0
    if layout == READ_REGISTERS and buf[2] % 2:
        return 0
    if length > MAX_ADU or buf[2] == 0:
        return 0
    return length


def decode_response(buf, expect_unit=None, expect_function=None, expect_length=None):
    """Find one response frame at the start of ``buf``.

    Returns ``(frame, consumed)``: ``frame`` is a Frame or None, ``consumed``
    the number of bytes the caller must drop from the front of ``buf`` (junk
    skipped while resynchronising, plus the frame). ``(None, k)`` means "drop
    k junk bytes and wait for more data". When an expectation is given, only a
    frame from that unit/function (and, for reads, of that length) is taken.

    Raises ModbusCrcError (with ``.consumed``) for a complete candidate whose
    CRC does not match; the caller drops ``.consumed`` bytes and calls again.
    """
    skip = 0
    n = len(buf)
    while skip < n:
        view = buf[skip:]
        length = _frame_length(view, expect_unit, expect_function, expect_length)
        if length is None:
            return None, skip
        if length == 0:
            skip += 1
            continue
        if len(view) < length:
            return None, skip
        body = view[: length - 2]
        crc = crc16_modbus(body)
        found = view[length - 2] | (view[length - 1] << 8)
        if crc != found:
            raise ModbusCrcError(
                "RTU frame unit %d function 0x%02X: CRC expected 0x%04X, found 0x%04X"
                % (view[0], view[1], crc, found),
                skip + 1,
            )
        return Frame(view[0], view[1], bytes(body[2:])), skip + length
    return None, skip


class ResponseFramer:
    """Buffering wrapper around :func:`decode_response`.

    ``discarded`` counts junk bytes dropped (including overflow past
    MAX_RX_BUFFER); ``crc_errors`` counts candidates rejected by CRC.
    """

    def __init__(self):
        self._buf = bytearray()
        self.discarded = 0
        self.crc_errors = 0
        self.expect_unit = None
        self.expect_function = None
        self.expect_length = None

    def expect(self, unit=None, function=None, length=None):
        self.expect_unit = unit
        self.expect_function = function
        self.expect_length = length

    def reset(self):
        self.discarded += len(self._buf)
        self._buf = bytearray()

    def receive_data(self, data):
        self._buf.extend(data)
        over = len(self._buf) - MAX_RX_BUFFER
        if over > 0:
            # Overflow policy: keep the newest bytes; the oldest cannot be the
            # start of a frame that still fits. Counted, not silent.
            self._buf = self._buf[over:]
            self.discarded += over

    def next_frame(self):
        """Return the next Frame or None. Raises ModbusCrcError (counted)."""
        try:
            frame, consumed = decode_response(
                self._buf, self.expect_unit, self.expect_function, self.expect_length
            )
        except ModbusCrcError as e:
            self._buf = self._buf[e.consumed :]
            self.discarded += e.consumed
            self.crc_errors += 1
            raise
        if consumed:
            self._buf = self._buf[consumed:]
        if frame is None:
            self.discarded += consumed
        else:
            # junk before the frame
            self.discarded += consumed - (len(frame.data) + 4)
        return frame

    def buffered(self):
        return len(self._buf)


def parse_response(request, frame):
    """Interpret ``frame`` as the reply to ``request``.

    Returns a list: register values (ints) for FC 3/4, booleans for FC 1/2
    (``request.quantity`` of them), ``[address, value_or_quantity]`` for
    writes. Raises ModbusException for an exception response and
    ModbusFrameError when the reply does not match the request.
    """
    if frame.unit != request.unit:
        raise ModbusFrameError(
            "reply from unit %d, expected unit %d" % (frame.unit, request.unit)
        )
    if frame.function == request.function | EXCEPTION_FLAG:
        if len(frame.data) != 1:
            raise ModbusFrameError("exception response must carry 1 byte, found %d" % len(frame.data))
        raise ModbusException(request.unit, request.function, frame.data[0])
    if frame.function != request.function:
        raise ModbusFrameError(
            "reply function 0x%02X, expected 0x%02X" % (frame.function, request.function)
        )
    layout = FUNCTIONS[request.function].layout
    data = frame.data
    if layout == ECHO:
        address, value = struct.unpack(">HH", data)
        expected = request.quantity if request.function == 0x10 else request.values[0]
        if address != request.address or value != expected:
            raise ModbusFrameError(
                "write echo (%d, %d) does not match request (%d, %d)"
                % (address, value, request.address, expected)
            )
        return [address, value]
    count = data[0]
    if count != len(data) - 1:
        raise ModbusFrameError("byte count %d but %d data bytes" % (count, len(data) - 1))
    if layout == READ_REGISTERS:
        if count != 2 * request.quantity:
            raise ModbusFrameError(
                "expected %d register bytes, found %d" % (2 * request.quantity, count)
            )
        return [(data[1 + 2 * i] << 8) | data[2 + 2 * i] for i in range(request.quantity)]
    # AP §6.1: coil 0 of the request is the LSB of the first data byte.
    if count != (request.quantity + 7) // 8:
        raise ModbusFrameError(
            "expected %d bit bytes, found %d" % ((request.quantity + 7) // 8, count)
        )
    return [bool((data[1 + i // 8] >> (i % 8)) & 1) for i in range(request.quantity)]


# ---------------------------------------------------------------------------
# Register values. A 32- or 64-bit value spans several 16-bit registers; each
# register is big-endian on the wire (AP §4.2), but the order of the registers
# ("word order") is the device's choice: "big" = most significant word first.

TYPE_WORDS = {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "f32": 2, "u64": 4}
_STRUCT = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "f32": ">f", "u64": ">Q"}


def decode_value(registers, offset, kind, word_order="big"):
    """Decode one value of ``kind`` from ``registers[offset:]``.

    Raises ModbusFrameError if too few registers, ValueError for an unknown
    kind or word order.
    """
    words = TYPE_WORDS.get(kind)
    if words is None:
        raise ValueError("register type must be one of %s, found %r" % (sorted(TYPE_WORDS), kind))
    if word_order not in ("big", "little"):
        raise ValueError("word order must be 'big' or 'little', found %r" % (word_order,))
    chunk = registers[offset : offset + words]
    if len(chunk) != words:
        raise ModbusFrameError(
            "%s at offset %d needs %d registers, found %d" % (kind, offset, words, len(chunk))
        )
    if word_order == "little":
        chunk = list(chunk)
        chunk.reverse()
    raw = bytearray()
    for w in chunk:
        raw.extend(struct.pack(">H", w))
    return struct.unpack(_STRUCT[kind], raw)[0]


def encode_value(value, kind, word_order="big"):
    """Inverse of :func:`decode_value`: a list of 16-bit register values."""
    words = TYPE_WORDS.get(kind)
    if words is None:
        raise ValueError("register type must be one of %s, found %r" % (sorted(TYPE_WORDS), kind))
    raw = struct.pack(_STRUCT[kind], value)
    regs = [(raw[2 * i] << 8) | raw[2 * i + 1] for i in range(words)]
    if word_order == "little":
        regs.reverse()
    return regs


# ---------------------------------------------------------------------------
# Master state machine (one per bus).


class Response:
    """Event: ``request`` was answered; ``values`` as from parse_response."""

    def __init__(self, request, values, attempts):
        self.request = request
        self.values = values
        self.attempts = attempts

    def __repr__(self):
        return "Response(%r, %r)" % (self.request, self.values)


class DeviceException:
    """Event: the device answered ``request`` with ``error`` (a ModbusException)."""

    def __init__(self, request, error, attempts):
        self.request = request
        self.error = error
        self.attempts = attempts

    def __repr__(self):
        return "DeviceException(%r, %s)" % (self.request, self.error.name)


class RequestFailed:
    """Event: no valid reply after all attempts; ``reason`` of the last one is
    "timeout" or "crc"."""

    def __init__(self, request, reason, attempts):
        self.request = request
        self.reason = reason
        self.attempts = attempts

    def __repr__(self):
        return "RequestFailed(%r, %s after %d attempts)" % (self.request, self.reason, self.attempts)


IDLE = "IDLE"
WAITING = "WAITING"  # request sent, waiting for the reply or the response timeout
BACKOFF = "BACKOFF"  # an attempt failed; the retry goes out at ``_retry_at``

# Bound on queued events: one transaction yields exactly one final event, and
# the caller drains events after each call; more than this means the caller
# never drains, which is a programmer error.
MAX_EVENTS = 16


class RtuMaster:
    """Sans-IO Modbus RTU master for one half-duplex bus (several unit ids).

    State machine (SL §2.4.1, "master states")::

        IDLE --send_request--> WAITING --valid reply--> IDLE (Response/DeviceException)
        WAITING --CRC error or response timeout--> BACKOFF   (attempts left)
        WAITING --CRC error or response timeout--> IDLE      (RequestFailed)
        BACKOFF --handle_timer at retry time--> WAITING      (same ADU resent)

    Rules: one transaction on the bus at a time; the bus is free t3.5 after a
    transaction ends; a device is addressed again only after its own
    inter-request delay (``set_device_delay``) has also passed. ``timer()``
    returns the next deadline; call ``handle_timer(now)`` then and send the
    bytes it returns. The response timeout counts from the end of the request
    on the wire.
    """

    # True when the link's byte stream can no longer be trusted and must be opened anew
    # (never on a serial bus; see modbus_tcp.TcpMaster)
    stream_lost = False

    def __init__(self, baud=9600, timeout_s=0.5, retries=2, inter_request_delay_s=0.0, bits_per_char=11):
        self.baud = baud
        self.bits_per_char = bits_per_char
        self.t1_5, self.t3_5 = char_timing(baud, bits_per_char)
        self.timeout_s = timeout_s
        self.retries = retries
        self.default_delay_s = inter_request_delay_s
        self._delays = {}
        self._unit_free_at = {}
        self._bus_free_at = None
        self.state = IDLE
        self._request = None
        self._attempts = 0
        self._deadline = None
        self._retry_at = None
        self._last_reason = None
        self._events = []
        self.framer = ResponseFramer()
        self.counters = {
            "requests": 0,
            "responses": 0,
            "exceptions": 0,
            "timeouts": 0,
            "crc_errors": 0,
            "retries": 0,
            "failed": 0,
            "discarded_bytes": 0,
            "unexpected_bytes": 0,
        }

    def set_device_delay(self, unit, delay_s):
        """Minimum gap between the end of one transaction with ``unit`` and
        the next request to it."""
        self._delays[unit] = delay_s

    def ready_at(self, unit):
        """Earliest ``now`` at which a request to ``unit`` may be sent (None: any time)."""
        t = self._bus_free_at
        u = self._unit_free_at.get(unit)
        if t is None:
            return u
        if u is None:
            return t
        return max(t, u)

    def send_request(self, now, request):
        """Start a transaction; returns the bytes to write to the bus.

        Raises ModbusStateError if a transaction is in progress or the bus /
        device is not ready yet (see ``ready_at``).
        """
        if self.state != IDLE:
            raise ModbusStateError("a transaction is in progress (state %s)" % self.state)
        ready = self.ready_at(request.unit)
        if ready is not None and now < ready:
            raise ModbusStateError(
                "unit %d not ready until t=%.6f, now t=%.6f" % (request.unit, ready, now)
            )
        self._request = request
        self._attempts = 0
        self.counters["requests"] += 1
        return self._transmit(now)

    def _transmit(self, now):
        req = self._request
        self._attempts += 1
        self.framer.reset()
        self.framer.expect(req.unit, req.function, None)
        self.state = WAITING
        self._deadline = now + transmit_time(len(req.adu), self.baud, self.bits_per_char) + self.timeout_s
        self._retry_at = None
        return req.adu

    def receive_data(self, data, now):
        """Feed bytes read from the bus. Bytes outside a transaction are counted
        in ``counters['unexpected_bytes']`` and dropped."""
        if self.state != WAITING:
            self.counters["unexpected_bytes"] += len(data)
            return
        self.framer.receive_data(data)
        before = self.framer.discarded
        try:
            frame = self.framer.next_frame()
        except ModbusCrcError:
            self.counters["crc_errors"] += 1
            self.counters["discarded_bytes"] += self.framer.discarded - before
            self._attempt_failed(now, "crc")
            return
        self.counters["discarded_bytes"] += self.framer.discarded - before
        if frame is None:
            return
        req = self._request
        try:
            values = parse_response(req, frame)
        except ModbusException as e:
            self.counters["exceptions"] += 1
            self._finish(now, DeviceException(req, e, self._attempts))
            return
        except ModbusFrameError:
            self._attempt_failed(now, "mismatch")
            return
        self.counters["responses"] += 1
        self._finish(now, Response(req, values, self._attempts))

    def _finish(self, now, event):
        unit = self._request.unit
        self._bus_free_at = now + self.t3_5
        self._unit_free_at[unit] = now + self._delays.get(unit, self.default_delay_s)
        self._push(event)
        self.state = IDLE
        self._request = None
        self._deadline = None
        self._retry_at = None

    def _attempt_failed(self, now, reason):
        self._last_reason = reason
        if self._attempts <= self.retries:
            self.counters["retries"] += 1
            self.state = BACKOFF
            self._deadline = None
            unit = self._request.unit
            # Let the rest of a broken reply pass (t3.5) and respect the
            # device's own delay before the retry.
            self._retry_at = now + max(self.t3_5, self._delays.get(unit, self.default_delay_s))
        else:
            self.counters["failed"] += 1
            self._finish(now, RequestFailed(self._request, reason, self._attempts))

    def abort(self, now, reason):
        """End the transaction in progress at once (the link itself failed, e.g. a TCP
        connect): a RequestFailed event with ``reason``, no retry."""
        if self._request is not None:
            self.counters["failed"] += 1
            self._finish(now, RequestFailed(self._request, reason, self._attempts))

    def timer(self):
        """Next deadline (``now`` units) at which ``handle_timer`` must be called, or None."""
        if self.state == WAITING:
            return self._deadline
        if self.state == BACKOFF:
            return self._retry_at
        return None

    def handle_timer(self, now):
        """Advance timers; returns bytes to send (a retry) or b""."""
        if self.state == WAITING and now >= self._deadline:
            self.counters["timeouts"] += 1
            self._attempt_failed(now, "timeout")
        if self.state == BACKOFF and now >= self._retry_at:
            return self._transmit(now)
        return b""

    def _push(self, event):
        if len(self._events) >= MAX_EVENTS:
            raise ModbusStateError("event queue full (%d): drain next_event()" % MAX_EVENTS)
        self._events.append(event)

    def next_event(self):
        """Pop the oldest event (Response, DeviceException, RequestFailed) or None."""
        if self._events:
            return self._events.pop(0)
        return None

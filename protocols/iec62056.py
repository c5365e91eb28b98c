# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""IEC 62056-21 (formerly IEC 61107) local meter readout, protocol mode C.

Exchange (IEC 62056-21:2002 §6.3.3, figure "Protocol mode C")::

    HHU  -> meter  (300 baud, 7E1)   /?<address>!CR LF           request
    meter -> HHU                     /XXXZ<ident>CR LF           identification
    HHU  -> meter                    ACK 0 Z 0 CR LF             option select: data readout
    (both switch to the baud rate of Z)
    meter -> HHU                     STX <data block> ! CR LF ETX BCC

* XXX: manufacturer's three-letter id (FLAG); a lower-case third letter means
  the meter answers within 20 ms (§6.3.14 note).
* Z: baud-rate character (§6.3.14 tables): mode C '0'..'6' = 300..19200 baud;
  mode B 'A'..'F' = 600..19200 (the meter switches without an ACK).
* ``\\W`` after Z: enhanced capability (e.g. ``\\2`` = mode E / HDLC capable).
* BCC: XOR of every character after STX up to and including ETX (§6.3.3 item 11).
* Data set (§6.5): ``address(value*unit)`` — several per line are allowed and
  a data set may carry several ``(...)`` value groups.

Everything here is sans-IO: bytes in, events out; the caller owns the serial
port, the clock and the baud-rate switch.
"""
from edgeledger.protocols.crc import bcc_xor
from edgeledger.protocols.errors import EncodeError, FrameError

SOH = 0x01
STX = 0x02
ETX = 0x03
ACK = 0x06
NAK = 0x15
CRLF = b"\r\n"

# §6.3.14, "Baud rate identification" for protocol mode C (and E).
MODE_C_BAUD = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
# ... and for protocol mode B.
MODE_B_BAUD = {"A": 600, "B": 1200, "C": 2400, "D": 4800, "E": 9600, "F": 19200}
INITIAL_BAUD = 300  # §6.3.1: every mode starts at 300 baud, 7E1
# Option-select mode characters (Y in ACK V Z Y CR LF, §6.3.3 item 14).
MODE_DATA_READOUT = "0"
MODE_PROGRAMMING = "1"

# Bounds. §6.3.14: identification is "/" + 3 + 1 + at most 16 characters +
# CR LF, optionally with a 2-character "\W": 25 bytes. A readout's length is
# meter-specific; 8 KiB holds a full billing readout with history and bounds
# the RAM a board spends on it.
MAX_IDENT_LINE = 25
MAX_ADDRESS = 32  # §6.3.4: device address up to 32 characters
MAX_DATA_MESSAGE = 8192

# §6.3.14 timing: reaction time tr 200 ms .. 1500 ms; inter-character
# time ta at most 1500 ms.
REACTION_TIMEOUT_S = 1.5
INTER_CHAR_TIMEOUT_S = 1.5


class IecFrameError(FrameError):
    """An IEC 62056-21 message is malformed."""


class IecBccError(IecFrameError):
    """A data message failed its BCC check; ``consumed`` bytes were dropped."""

    def __init__(self, msg, consumed):
        super().__init__(msg)
        self.consumed = consumed


def sign_on_request(address=""):
    """``/?<address>!CR LF``. Raises EncodeError for an address that is too
    long or contains ``/ ? !`` or non-printable characters."""
    if len(address) > MAX_ADDRESS:
        raise EncodeError("device address is at most %d characters, found %d" % (MAX_ADDRESS, len(address)))
    for ch in address:
        if ch in "/?!" or not (0x20 <= ord(ch) < 0x7F):
            raise EncodeError("device address character %r is not allowed" % (ch,))
    return b"/?" + address.encode() + b"!" + CRLF


def option_select(baud_char, mode=MODE_DATA_READOUT, protocol="0"):
    """``ACK V Z Y CR LF`` (§6.3.3 item 14). Raises EncodeError for a baud
    character that mode C does not define."""
    if baud_char not in MODE_C_BAUD:
        raise EncodeError("mode C baud character must be one of 0..6, found %r" % (baud_char,))
    return bytes((ACK,)) + (protocol + baud_char + mode).encode() + CRLF


class Identification:
    def __init__(self, manufacturer, baud_char, ident, enhanced=None):
        self.manufacturer = manufacturer
        self.baud_char = baud_char
        self.ident = ident
        self.enhanced = enhanced
        self.fast_reaction = manufacturer[2:3].islower()
        if baud_char in MODE_C_BAUD:
            self.mode = "C"
            self.baud = MODE_C_BAUD[baud_char]
        elif baud_char in MODE_B_BAUD:
            self.mode = "B"
            self.baud = MODE_B_BAUD[baud_char]
        else:
            self.mode = "A"
            self.baud = INITIAL_BAUD

    def __repr__(self):
        return "Identification(%r, %r, %r, mode %s, %d baud)" % (
            self.manufacturer, self.baud_char, self.ident, self.mode, self.baud)


def parse_identification(line):
    """Parse ``/XXXZ[\\W]ident`` (with or without the CR LF).

    Raises IecFrameError if the line is not an identification message.
    """
    if isinstance(line, (bytes, bytearray)):
        try:
            line = bytes(line).decode()
        except UnicodeError:
            raise IecFrameError("identification must be ASCII, found %r" % (line,))
    if line.endswith("\r\n"):
        line = line[:-2]
    if len(line) < 6 or line[0] != "/":
        raise IecFrameError("identification must be /XXXZident, found %r" % (line,))
    man = line[1:4]
    if not man.isalpha():
        raise IecFrameError("manufacturer id must be 3 letters, found %r" % (man,))
    z = line[4]
    rest = line[5:]
    enhanced = None
    if rest.startswith("\\") and len(rest) >= 2:
        enhanced = rest[1]
        rest = rest[2:]
    if not rest or len(rest) > 16:
        raise IecFrameError("identification must be 1..16 characters, found %r" % (rest,))
    return Identification(man, z, rest, enhanced)


def decode_data_message(buf):
    """Find one ``STX ... ETX BCC`` data message at the start of ``buf``.

    Returns ``(block, consumed)`` where ``block`` is the text between STX and
    ETX (bytes, ending with ``!`` CR LF) or None when more bytes are needed;
    ``consumed`` bytes (junk before STX, plus the message) are to be dropped.
    Raises IecBccError (with ``.consumed``) when the BCC does not match and
    IecFrameError when the block does not end in ``! CR LF``.
    """
    start = buf.find(bytes((STX,)))
    if start < 0:
        return None, len(buf)
    end = buf.find(bytes((ETX,)), start + 1)
    if end < 0 or end + 1 >= len(buf):
        return None, start
    body = bytes(buf[start + 1 : end + 1])  # includes ETX
    bcc = bcc_xor(body)
    found = buf[end + 1]
    consumed = end + 2
    if bcc != found:
        raise IecBccError("data message BCC expected 0x%02X, found 0x%02X" % (bcc, found), consumed)
    block = body[:-1]
    if not block.endswith(b"!\r\n"):
        raise IecFrameError("data block must end with '!' CR LF, found %r" % (block[-8:],))
    return block, consumed


def encode_data_message(block):
    """STX + block + ETX + BCC (for simulators and tests)."""
    body = bytes(block) + bytes((ETX,))
    return bytes((STX,)) + body + bytes((bcc_xor(body),))


class DataSet:
    """One ``address(value*unit)(...)`` data set; ``values`` is a list of
    ``(value, unit_or_None)`` strings."""

    def __init__(self, address, values):
        self.address = address
        self.values = values

    def __repr__(self):
        return "DataSet(%r, %r)" % (self.address, self.values)


def parse_data_sets(block):
    """Parse a data block into a list of DataSet.

    Raises IecFrameError for an unbalanced parenthesis or a block that is not text
    (a BCC is a parity check: it passes bytes that are not characters); nothing else.
    """
    if isinstance(block, (bytes, bytearray)):
        try:
            block = bytes(block).decode()
        except UnicodeError:  # MicroPython has no UnicodeDecodeError
            raise IecFrameError("data block is not text: %r" % (bytes(block[:16]),))
    out = []
    current = None
    i = 0
    n = len(block)
    addr_start = 0
    while i < n:
        ch = block[i]
        if ch == "(":
            close = block.find(")", i + 1)
            if close < 0:
                raise IecFrameError("data set value starting at %d has no ')'" % i)
            address = block[addr_start:i].strip()
            inner = block[i + 1 : close]
            value, _, unit = inner.partition("*")
            if address:
                current = DataSet(address, [])
                out.append(current)
            elif current is None:
                raise IecFrameError("value group %r has no address" % (inner,))
            current.values.append((value, unit or None))
            i = close + 1
            addr_start = i
            continue
        if ch in "\r\n!":
            if block[addr_start:i].strip() and ch != "!":
                raise IecFrameError("text %r is not a data set" % (block[addr_start:i],))
            addr_start = i + 1
        i += 1
    return out


# ---------------------------------------------------------------------------
# Session state machine.

IDLE = "IDLE"
WAIT_IDENT = "WAIT_IDENT"
WAIT_DATA = "WAIT_DATA"
DONE = "DONE"
FAILED = "FAILED"


class Identified:
    """Event: the meter identified itself (``ident`` is an Identification)."""

    def __init__(self, ident):
        self.ident = ident


class SwitchBaud:
    """Event: write ``data`` at the current baud rate, wait until it has left
    the port, then switch the port to ``baud``."""

    def __init__(self, data, baud):
        self.data = data
        self.baud = baud


class Readout:
    """Event: a complete data message; ``data_sets`` list of DataSet, ``raw``
    the block text."""

    def __init__(self, data_sets, raw):
        self.data_sets = data_sets
        self.raw = raw


class SessionFailed:
    """Event: the session ended without a readout; ``reason`` is one of
    "timeout", "bcc", "frame", "overflow"."""

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail


class ModeCSession:
    """One readout: sign-on -> identification -> option select -> data.

    ``start(now)`` returns the sign-on bytes (send them at 300 baud, 7E1).
    Feed received bytes to ``receive_data(data, now)``; call ``handle_timer``
    at ``timer()``; drain ``next_event()``. States:
    IDLE -> WAIT_IDENT -> WAIT_DATA -> DONE, any -> FAILED.
    ``counters['bad_frames']`` counts BCC and framing failures.
    """

    def __init__(self, address="", max_baud=19200):
        self.request = sign_on_request(address)
        self.max_baud = max_baud
        self.state = IDLE
        self._buf = bytearray()
        self._deadline = None
        self._events = []
        self.ident = None
        self.counters = {"bad_frames": 0, "discarded_bytes": 0}

    def start(self, now):
        self.state = WAIT_IDENT
        self._buf = bytearray()
        self._deadline = now + REACTION_TIMEOUT_S + len(self.request) * 10.0 / INITIAL_BAUD
        return self.request

    def timer(self):
        return self._deadline if self.state in (WAIT_IDENT, WAIT_DATA) else None

    def handle_timer(self, now):
        if self._deadline is not None and now >= self._deadline and self.state in (WAIT_IDENT, WAIT_DATA):
            self._fail("timeout", "no answer in state %s" % self.state)

    def _fail(self, reason, detail):
        self.state = FAILED
        self._deadline = None
        self._events.append(SessionFailed(reason, detail))

    def next_event(self):
        return self._events.pop(0) if self._events else None

    def receive_data(self, data, now):
        if self.state not in (WAIT_IDENT, WAIT_DATA):
            self.counters["discarded_bytes"] += len(data)
            return
        self._buf.extend(data)
        self._deadline = now + INTER_CHAR_TIMEOUT_S
        if self.state == WAIT_IDENT:
            self._on_ident_bytes(now)
        if self.state == WAIT_DATA:
            self._on_data_bytes()

    def _on_ident_bytes(self, now):
        # A loop, not recursion: a line full of echoed requests must not nest calls.
        while True:
            # Resynchronise: anything before "/" is line noise or our own echo.
            slash = self._buf.find(b"/")
            if slash < 0:
                self.counters["discarded_bytes"] += len(self._buf)
                self._buf = bytearray()
                return
            if slash:
                self.counters["discarded_bytes"] += slash
                self._buf = self._buf[slash:]
            eol = self._buf.find(CRLF)
            if eol < 0:
                if len(self._buf) > MAX_IDENT_LINE:
                    self.counters["bad_frames"] += 1
                    self._fail("overflow", "identification longer than %d bytes" % MAX_IDENT_LINE)
                return
            line = bytes(self._buf[: eol + 2])
            self._buf = self._buf[eol + 2 :]
            if not line.startswith(b"/?"):  # else: echo of our own request on a shared line
                break
        try:
            ident = parse_identification(line)
        except IecFrameError as e:
            self.counters["bad_frames"] += 1
            self._fail("frame", str(e))
            return
        self.ident = ident
        self._events.append(Identified(ident))
        self.state = WAIT_DATA
        if ident.mode == "C":
            baud = ident.baud
            char = ident.baud_char
            if baud > self.max_baud:
                for c in sorted(MODE_C_BAUD):
                    if MODE_C_BAUD[c] <= self.max_baud:
                        char = c
                baud = MODE_C_BAUD[char]
            ack = option_select(char)
            self._events.append(SwitchBaud(ack, baud))
            # the meter answers after tr (<= 1.5 s) at the new rate
            self._deadline = now + REACTION_TIMEOUT_S + len(ack) * 10.0 / INITIAL_BAUD
        elif ident.mode == "B":
            self._events.append(SwitchBaud(b"", ident.baud))

    def _on_data_bytes(self):
        try:
            block, consumed = decode_data_message(self._buf)
        except IecBccError as e:
            self._buf = self._buf[e.consumed :]
            self.counters["bad_frames"] += 1
            self._fail("bcc", str(e))
            return
        except IecFrameError as e:
            self.counters["bad_frames"] += 1
            self._fail("frame", str(e))
            return
        if block is None:
            if consumed:
                self.counters["discarded_bytes"] += consumed
                self._buf = self._buf[consumed:]
            if len(self._buf) > MAX_DATA_MESSAGE:
                self.counters["bad_frames"] += 1
                self._fail("overflow", "data message longer than %d bytes" % MAX_DATA_MESSAGE)
            return
        self._buf = self._buf[consumed:]
        try:
            sets = parse_data_sets(block)
        except IecFrameError as e:
            self.counters["bad_frames"] += 1
            self._fail("frame", str(e))
            return
        self.state = DONE
        self._deadline = None
        self._events.append(Readout(sets, block))

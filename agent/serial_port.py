# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""One serial transport for the field-bus sources: pyserial on CPython,
``machine.UART`` on MicroPython boards. This is the only module that imports
either.

API (both runtimes)::

    port = open_port(port, baud, bytesize=8, parity="N", stopbits=1, **options)
    port.write(data)              # returns when the bytes are handed to the driver
    port.read(n, timeout)         # up to n bytes; waits at most `timeout` s for
                                  # the first byte, then takes what is buffered
    port.set_baud(baud)           # IEC 62056-21 mode C switches mid-session
    port.reset_input()            # drop stale bytes before a new transaction
    port.close()

``port`` is a device path (``/dev/ttyUSB0``) for pyserial and a UART number
(``"1"`` or ``1``) on a board. Options on a board: ``tx``/``rx`` pin numbers,
``de`` (the RS-485 driver-enable/direction pin, driven high while
transmitting and low afterwards) and ``rxbuf`` (the UART receive buffer in bytes).
"""
import time

from edgeledger.agent.errors import SourceError

try:
    import select

    import serial as _pyserial  # CPython: pyserial (POSIX ports: select on the fd)
except ImportError:  # MicroPython
    _pyserial = None

try:
    import machine as _machine  # MicroPython boards
except ImportError:
    _machine = None

PARITIES = ("N", "E", "O")

# Bytes one read() may return. A Modbus ADU is at most 256 bytes and a DSMR
# telegram is read in pieces by the framer, so 512 bounds every call.
MAX_READ = 512


class PySerialPort:
    """pyserial-backed port (Linux, industrial PCs, Raspberry Pi)."""

    def __init__(self, port: str, baud: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1,
                 **options: object) -> None:
        try:
            self._s = _pyserial.serial_for_url(
                port,
                baudrate=baud,
                bytesize=bytesize,
                parity=parity,
                stopbits=stopbits,
                timeout=0,
                exclusive=options.get("exclusive", None),
            )
        except (OSError, ValueError, _pyserial.SerialException) as e:
            raise SourceError("cannot open serial port %s: %s" % (port, e))
        self.port = port
        self.baud = baud

    def write(self, data: bytes) -> None:
        try:
            self._s.write(data)
            self._s.flush()
        except (OSError, _pyserial.SerialException) as e:
            raise SourceError("serial write on %s failed: %s" % (self.port, e))

    def read(self, n: int, timeout: float) -> bytes:
        # Wait with select() instead of changing the port's timeout: every
        # timeout change is a tcsetattr(), which some USB adapters and ptys
        # refuse intermittently.
        n = min(n, MAX_READ)
        try:
            ready, _, _ = select.select([self._s.fileno()], [], [], max(0.0, timeout))
            if not ready:
                return b""
            return self._s.read(min(max(self._s.in_waiting, 1), n))
        except (OSError, _pyserial.SerialException) as e:
            raise SourceError("serial read on %s failed: %s" % (self.port, e))

    def set_baud(self, baud: int) -> None:
        if baud == self.baud:
            return  # re-applying the same termios settings fails on some ptys
        try:
            self._s.baudrate = baud
        except Exception as e:  # OSError, ValueError, SerialException, termios.error
            raise SourceError("cannot set %s to %d baud: %s" % (self.port, baud, e))
        self.baud = baud

    def reset_input(self) -> None:
        self._s.reset_input_buffer()

    def close(self) -> None:
        self._s.close()


class UartPort:
    """``machine.UART``-backed port with an optional RS-485 direction pin."""

    def __init__(self, port, baud, bytesize=8, parity="N", stopbits=1, **options):
        self._id = int(port)
        self._cfg = {"bits": bytesize, "parity": {"N": None, "E": 0, "O": 1}[parity], "stop": stopbits}
        for k in ("tx", "rx"):
            if options.get(k) is not None:
                self._cfg[k] = _machine.Pin(options[k])
        if options.get("rxbuf"):
            self._cfg["rxbuf"] = options["rxbuf"]
        self._de = None
        if options.get("de") is not None:
            self._de = _machine.Pin(options["de"], _machine.Pin.OUT, value=0)
        self.port = port
        self.set_baud(baud)

    def set_baud(self, baud):
        self._u = _machine.UART(self._id, baudrate=baud, timeout=0, **self._cfg)
        self.baud = baud

    def write(self, data):
        if self._de is not None:
            self._de.value(1)
        self._u.write(data)
        # wait until the last stop bit has left the shift register before
        # releasing the RS-485 driver (11 bits per character at most)
        if hasattr(self._u, "flush"):
            self._u.flush()
        else:
            time.sleep_us(len(data) * 11 * 1000000 // self.baud)
        if self._de is not None:
            self._de.value(0)

    def read(self, n, timeout):
        n = min(n, MAX_READ)
        deadline = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
        while not self._u.any():
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return b""
            time.sleep_ms(1)
        return self._u.read(min(n, self._u.any())) or b""

    def reset_input(self):
        while self._u.any():
            self._u.read()

    def close(self):
        if hasattr(self._u, "deinit"):
            self._u.deinit()


def open_port(port, baud, bytesize=8, parity="N", stopbits=1, **options):
    """Open a serial port on whatever this runtime offers.

    Raises SourceError if the parameters are invalid, no serial backend exists
    or the port cannot be opened.
    """
    if parity not in PARITIES:
        raise SourceError("parity must be one of %s, found %r" % (PARITIES, parity))
    if bytesize not in (7, 8) or stopbits not in (1, 2):
        raise SourceError("frame format %d%s%d not supported" % (bytesize, parity, stopbits))
    if _pyserial is not None:
        return PySerialPort(port, baud, bytesize, parity, stopbits, **options)
    if _machine is not None and hasattr(_machine, "UART"):
        return UartPort(port, baud, bytesize, parity, stopbits, **options)
    raise SourceError("no serial backend on this runtime (neither pyserial nor machine.UART)")

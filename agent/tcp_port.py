# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""A TCP connection with the interface of a serial port (``agent/serial_port.py``): the
Modbus source drives it the same way (write, read without waiting, reset_input, close).

It connects when first written to and again after the peer closed it (Modbus TCP
devices and gateways often close idle connections). Connecting waits at most
``connect_timeout_s``; reads never wait. Uses only ``socket`` calls that MicroPython
ports with networking also have (getaddrinfo, connect, settimeout, recv, send).
"""
import socket

from edgeledger.agent.errors import SourceError

# errno values of "no data yet" on a non-blocking socket: EAGAIN/EWOULDBLOCK (11 on
# Linux and on MicroPython's ports, 35 on BSD and macOS) and ETIMEDOUT (110), which
# MicroPython's socket reports after settimeout(0) on some ports.
WOULD_BLOCK = (11, 35, 110)


class TcpPort:
    def __init__(self, host, port, connect_timeout_s=3.0):
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self._sock = None
        self.connects = 0
        self.connect_failures = 0
        self.closed_by_peer = 0

    def _where(self):
        return "%s:%d" % (self.host, self.port)

    def _connect(self):
        try:
            addr = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0][-1]
            s = socket.socket(socket.AF_INET6 if ":" in str(addr[0]) else socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            raise SourceError("cannot resolve Modbus TCP device %s: %s" % (self._where(), e))
        try:
            s.settimeout(self.connect_timeout_s)
            s.connect(addr)
            s.settimeout(0)
        except OSError as e:
            s.close()
            self.connect_failures += 1
            raise SourceError("cannot connect to Modbus TCP device %s: %s" % (self._where(), e))
        self._sock = s
        self.connects += 1

    def write(self, data):
        """Send ``data`` whole, connecting first if needed. Raises SourceError."""
        if self._sock is None:
            self._connect()
        try:
            self._sock.settimeout(self.connect_timeout_s)
            self._sock.sendall(data)
            self._sock.settimeout(0)
        except OSError as e:
            self.reconnect()
            raise SourceError("Modbus TCP device %s: send failed: %s" % (self._where(), e))

    def read(self, n, timeout):
        """Up to ``n`` bytes that have arrived, b"" if none (or the connection is gone:
        the next write connects again). ``timeout`` is ignored: reads never wait."""
        if self._sock is None:
            return b""
        try:
            data = self._sock.recv(n)
        except OSError as e:
            if e.args and e.args[0] in WOULD_BLOCK:
                return b""
            self.reconnect()
            return b""
        if not data:
            self.closed_by_peer += 1
            self.reconnect()
        return data

    def reset_input(self):
        """Drop bytes that arrived outside a request (a late reply)."""
        while self.read(512, 0):
            pass

    def reconnect(self):
        """Close the connection; the next write opens a new one."""
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def close(self):
        self.reconnect()

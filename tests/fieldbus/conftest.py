"""Fixtures for the field-bus tests: socat pty pairs, a relay that drops or
corrupts replies, and a pymodbus RTU server in a background thread
(tests/support/modbus_server.py)."""
import os
import select
import shutil
import subprocess
import termios
import threading
import time
import tty

import pytest

from tests.support.modbus_server import ModbusServerThread  # noqa: F401 (re-exported)


def _wait_for(paths, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(os.path.exists(p) for p in paths):
            return
        time.sleep(0.01)
    raise AssertionError("socat did not create %s in %.1f s" % (paths, timeout))


@pytest.fixture
def pty_pair(tmp_path):
    """Factory: ``pty_pair(name)`` -> (end_a, end_b), two linked raw ptys."""
    socat = shutil.which("socat")
    assert socat, "socat is missing: `make system-deps` installs it"
    procs = []

    def make(name):
        a = str(tmp_path / (name + "-a"))
        b = str(tmp_path / (name + "-b"))
        p = subprocess.Popen(
            [socat, "pty,raw,echo=0,link=" + a, "pty,raw,echo=0,link=" + b],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(p)
        _wait_for([a, b])
        return a, b

    yield make
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()


def open_raw(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


class Relay:
    """Copies bytes between the master's pty and the server's pty.

    ``drop_replies`` / ``corrupt_replies``: how many of the next server
    replies to swallow or to corrupt (one bit flipped in the first chunk).
    A reply is everything the server sends between two master requests.
    """

    def __init__(self, master_side, server_side):
        self.m = open_raw(master_side)
        self.s = open_raw(server_side)
        self.drop_replies = 0
        self.corrupt_replies = 0
        self.silent_units = set()  # requests to these unit ids are not forwarded
        self.dropped = 0
        self.corrupted = 0
        self._mode = None  # what to do with the current reply
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            r, _, _ = select.select([self.m, self.s], [], [], 0.05)
            if self.m in r:
                data = os.read(self.m, 4096)
                # a new request: decide the fate of the reply to it
                self._mode = None
                if self.drop_replies:
                    self.drop_replies -= 1
                    self._mode = "drop"
                elif self.corrupt_replies:
                    self.corrupt_replies -= 1
                    self._mode = "corrupt"
                if data and data[0] in self.silent_units:
                    continue  # an absent device: nobody answers
                os.write(self.s, data)
            if self.s in r:
                data = os.read(self.s, 4096)
                if self._mode == "drop":
                    self.dropped += 1
                    continue
                if self._mode == "corrupt":
                    b = bytearray(data)
                    b[len(b) // 2] ^= 0x10
                    data = bytes(b)
                    self.corrupted += 1
                    self._mode = "sent"
                os.write(self.m, data)

    def close(self):
        self._stop = True
        self._t.join(2)
        os.close(self.m)
        os.close(self.s)


@pytest.fixture
def modbus_bus(pty_pair):
    """Factory: ``modbus_bus(devices)`` -> (master_port_path, relay, server)."""
    made = []

    def make(devices):
        master_end, relay_m = pty_pair("bus")
        relay_s, server_end = pty_pair("srv")
        server = ModbusServerThread(server_end, devices)
        relay = Relay(relay_m, relay_s)
        made.append((relay, server))
        return master_end, relay, server

    yield make
    for relay, server in made:
        relay.close()
        server.close()

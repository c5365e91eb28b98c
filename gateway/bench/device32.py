"""The device figures on a 32-bit MicroPython (``bench device``; host tool, CPython).

Per real configuration and signer, the board loop (``main.loop``: sources, agent core,
outbox, MQTT client) runs under the 32-bit WebAssembly port (``boards/micropython32.py``) for
``readings`` signed messages, each acked end to end, with the loop's modules loaded
from bytecode ``.mpy`` files (the ESP32 image's modules, as ``firmware build`` makes
them, compiled without native code). What stands in for the hardware, inside the same
interpreter and counted in its baseline, not in the figures:

* the serial line: a Modbus RTU meter answering from a register image (SDM630 map),
  a P1 port that sends a DSMR 5 telegram, an IEC 62056-21 meter answering the mode C
  sign-on with a readout; the simulated source needs none;
* the network: a socket over bytes buffers whose broker answers CONNACK, SUBACK and
  PUBACK and acks every reading end to end.

Figures per run (bytes of ``gc.mem_alloc()``, 16-byte blocks as on a board):

* ``heap_kb``: the largest live heap between two loop turns, above the baseline;
* ``startup_kb``: live heap once the loop's objects exist, before the first turn;
* ``code_kb``: live heap of the loop's modules alone, imported before any object is
  made; frozen or ROMFS code keeps (most of) it in flash, so a frozen image needs
  between ``heap_kb - code_kb`` and ``heap_kb``;
* ``turn_alloc_kb``: the most one turn allocates (garbage included): the live heap
  inside a turn lies between ``heap_kb`` and ``heap_kb + turn_alloc_kb``;
  ``seal_alloc_kb`` the same for the turns that signed;
* ``cpu_ms``: wall time per signed message under the WebAssembly port on this host:
  a ratio between signers and configurations, not a board's speed;
* ``romfs_estimate_kb``: an **estimate** of ``heap_kb`` with the code in ROMFS. This
  port has no ROMFS (no ``vfs.VfsRom``), so it is ``heap_kb`` minus what MicroPython's
  loader does not copy into the heap when the ``.mpy`` is in ROMFS, counted from the
  ``.mpy`` files of the modules the run loaded (``romfs_saving``: bytecode, string and
  bytes constants), in 16-byte blocks. On the 64-bit unix port, which runs ROMFS for
  real, the same count is below the measured saving (``bench device`` prints both), so
  the estimate errs high.

What this port cannot measure: TLS (it has no ``ssl``; mbedTLS on a board allocates
its buffers and handshake state outside these figures or, on ports built that way,
from the same heap), native code (none), the real UART and Wi-Fi drivers.
"""
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable

from edgeledger.gateway.boards import image, micropython32

SIGNERS = ("EdDSA", "ES256", "SM2")  # device.SIGNERS: every signer a board can use
CONFIGS = ("simulated", "modbus-sdm630", "dsmr5", "iec62056")
KB = 1024.0

# A DSMR 5.0.2 telegram as an electricity meter with a gas meter sends it (CRC added).
DSMR5_BODY = (
    "/ISk5\\2MT382-1000\r\n\r\n"
    "1-3:0.2.8(50)\r\n0-0:1.0.0(251126101500W)\r\n0-0:96.1.1(4B384547303034303436333935353037)\r\n"
    "1-0:1.8.1(001581.123*kWh)\r\n1-0:1.8.2(001435.706*kWh)\r\n1-0:2.8.1(000000.000*kWh)\r\n"
    "1-0:2.8.2(000000.000*kWh)\r\n0-0:96.14.0(0002)\r\n1-0:1.7.0(00.332*kW)\r\n"
    "1-0:2.7.0(00.000*kW)\r\n0-0:96.7.21(00004)\r\n0-0:96.7.9(00002)\r\n"
    "1-0:32.7.0(230.1*V)\r\n1-0:52.7.0(229.8*V)\r\n1-0:72.7.0(231.0*V)\r\n"
    "1-0:31.7.0(001*A)\r\n1-0:51.7.0(000*A)\r\n1-0:71.7.0(000*A)\r\n"
    "1-0:21.7.0(00.332*kW)\r\n1-0:41.7.0(00.000*kW)\r\n1-0:61.7.0(00.000*kW)\r\n"
    "0-1:24.1.0(003)\r\n0-1:96.1.0(3232323241424344313233343536373839)\r\n"
    "0-1:24.2.1(251126101000W)(00981.443*m3)\r\n!"
)
# An IEC 62056-21 mode C identification and data readout (BCC added).
IEC_IDENT = b"/ISK5ME382-1003\r\n"
IEC_DATA = (b"0.0.0(12345678)\r\n1.8.0(0012345.678*kWh)\r\n1.8.1(0008123.456*kWh)\r\n"
            b"1.8.2(0004222.222*kWh)\r\n2.8.0(0000000.000*kWh)\r\n32.7.0(230.1*V)\r\n"
            b"52.7.0(229.9*V)\r\n72.7.0(231.2*V)\r\n31.7.0(1.23*A)\r\n16.7.0(0.283*kW)\r\n!\r\n")

DRIVER = r"""
import gc, sys, struct, time
from edgeledger.protocols.crc import crc16_modbus

class Sock:
    # the broker: CONNACK, SUBACK, PUBACK, and an end-to-end ack for every reading
    def __init__(self, readings, ack):
        self.readings, self.ack = readings, ack
        self.out = bytearray()
        self.n = 0
    def setblocking(self, flag):
        pass
    def settimeout(self, t):
        pass
    def close(self):
        pass
    def write(self, data):
        data = bytes(data)
        kind = data[0] & 0xF0
        if kind == 0x10:
            self.out += b"\x20\x02\x00\x00"
        elif kind == 0x80:
            self.out += b"\x90\x03" + data[2:4] + b"\x01"
        elif kind == 0x30:
            i = 1
            while data[i] & 0x80:
                i += 1
            i += 1
            tl = data[i] << 8 | data[i + 1]
            topic = data[i + 2:i + 2 + tl]
            pid = data[i + 2 + tl:i + 4 + tl]
            if data[0] & 2:
                self.out += b"\x40\x02" + pid
            if topic == self.readings:
                self.n += 1
                body = b"\xa1\x01" + (bytes([self.n]) if self.n < 24 else b"\x18" + bytes([self.n]))
                t = self.ack
                self.out += bytes([0x30, 2 + len(t) + len(body), 0, len(t)]) + t + body
        return len(data)
    def readinto(self, buf):
        n = min(len(buf), len(self.out))
        if not n:
            return None
        buf[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

class Port:
    # a serial line with a meter behind it: answers() maps what was written to the reply
    def __init__(self, answer):
        self.answer = answer
        self.rx = b""
    def write(self, data):
        self.rx += self.answer(bytes(data))
    def read(self, n, timeout):
        out, self.rx = self.rx[:n], self.rx[n:]
        return out
    def reset_input(self):
        pass
    def set_baud(self, baud):
        pass
    def close(self):
        pass

def modbus_meter(req):
    unit, fn, start, count = struct.unpack(">BBHH", req[:6])
    data = bytearray()
    for a in range(start, start + count, 2):
        data += struct.pack(">f", 200.0 + a)
    data = data[:2 * count]
    adu = bytes([unit, fn, len(data)]) + data
    return adu + struct.pack("<H", crc16_modbus(adu))

def iec_meter(req):
    if req.startswith(b"/?"):
        return IEC_IDENT
    if req.startswith(b"\x06"):
        return IEC_READOUT
    return b""

class Board:
    name = "bench"
    def clock_valid(self, now):
        return True
    def wall_time(self):
        return 1767225600.0 + time.ticks_ms() / 1000
    def network_ready(self):
        return True

def load():
    global port, AgentCore, Outbox, KeySigner, main, mqtt, sha256, topics, simulated, sources
    from edgeledger.agent import port
    from edgeledger.agent.core import AgentCore
    from edgeledger.agent.outbox import Outbox
    from edgeledger.agent.signer import KeySigner
    from edgeledger.agent.crypto import sha256
    from edgeledger.firmware import main, mqtt
    from edgeledger.protocols import topics
    if CONFIG == "simulated":
        from edgeledger.agent import simulated
    else:
        from edgeledger.agent import sources
        __import__("edgeledger.agent.sources." + {"modbus-sdm630": "modbus", "dsmr5": "dsmr",
                                                   "iec62056": "iec62056"}[CONFIG])

def make_source():
    if CONFIG == "simulated":
        return simulated.SimulatedSource("meter-01", "meter", interval_s=0.001)
    if CONFIG == "modbus-sdm630":
        return sources.from_config({"type": "modbus", "name": "m1", "interval_s": 0.001,
                                    "devices": [{"unit": 1, "map": "sdm630", "prefix": "m1/"}]},
                                   port=Port(modbus_meter))
    if CONFIG == "dsmr5":
        p = Port(lambda d: b"")
        p.reset_input = lambda: setattr(p, "rx", DSMR_TELEGRAM)  # the next telegram arrives
        return sources.from_config({"type": "dsmr", "name": "p1", "version": "5",
                                    "interval_s": 0.001, "prefix": "home/"}, port=p)
    return sources.from_config({"type": "iec62056", "name": "opt", "max_baud": 9600,
                                "interval_s": 0.001, "prefix": "sub7/"}, port=Port(iec_meter))

def setup():
    global box, turns
    from edgeledger.agent import config  # the board's defaults; start-up drops it on a board
    pack_size, window = config.AGENT_KEYS["pack_size"][2], config.AGENT_KEYS["window"][2]
    config = None
    sys.modules.pop("edgeledger.agent.config", None)
    delattr(sys.modules["edgeledger.agent"], "config")
    signer = KeySigner(ALG, bytes(range(1, 33)), "meter-01")
    box = Outbox("state/outbox", max_bytes=1 << 20, segment_bytes=1 << 14, hash_fn=sha256)
    core = AgentCore("meter-01", signer, box, [make_source()], sha256, epoch=1,
                     pack_size=pack_size, window=window,
                     max_seq=READINGS)
    readings, ack = topics.readings("plant-a", "meter-01"), topics.ack("plant-a", "meter-01")
    client = mqtt.MQTTClient("el-dev-meter-01", "127.0.0.1", 1883)
    client.connect = lambda: mqtt.MQTTClient.connect(client, sock=Sock(readings.encode(), ack.encode()))
    turns = main.loop(Board(), core, client, (readings, ack, topics.birth("plant-a", "meter-01")),
                      log=lambda m: None)

phase = [0]
stats = [0, 0, 0, 0]  # cpu us of turns that sealed, messages they sealed, most one turn allocated, by a sealing turn

def step():
    # between two calls the harness collects and reads the live heap (see micropython32.py)
    p = phase[0]
    phase[0] = p + 1
    if p == 0:
        print("MODULES-BASE|" + ",".join(sorted(sys.modules)))
        return "base"
    if p == 1:
        load()
        return "code"
    if p == 2:
        setup()
        return "startup"
    head = box.head_seq
    a0 = gc.mem_alloc()  # no collection inside a call: the difference is what the turn allocated
    t0 = time.ticks_us()
    try:
        next(turns)
    except StopIteration:
        print("RESULT|%d|%d|%d|%d|%d" % (stats[0], stats[1], stats[2], stats[3], box.head_seq))
        print("MODULES|" + ",".join(sorted(sys.modules)))
        return "done"
    dt = time.ticks_diff(time.ticks_us(), t0)
    used = gc.mem_alloc() - a0
    if used > stats[2]:
        stats[2] = used
    if box.head_seq != head:
        stats[0] += dt
        stats[1] += box.head_seq - head
        if used > stats[3]:
            stats[3] = used
        return "seal"
    return "turn"
"""


_IDENTIFIER = re.compile(rb"^[A-Za-z_][A-Za-z0-9_]*$")


def _mpy_uint(b: bytes, i: int) -> tuple[int, int]:
    n = 0
    while True:
        x = b[i]
        i += 1
        n = (n << 7) | (x & 0x7F)
        if not x & 0x80:
            return n, i


def mpy_parts(data: bytes) -> tuple[list, list, list]:
    """(names, constants, bytecode lengths) of a bytecode ``.mpy`` v6 file: the names it
    interns (qstrs the runtime may not have yet), its str/bytes constants as (kind, data),
    and the length of each function's bytecode. Raises ValueError for another format
    or native code (py/persistentcode.c: header, qstr table, object table, raw code tree).
    """
    if len(data) < 4 or data[0] != ord("M") or data[1] != 6:
        raise ValueError("expected a .mpy v6 file, found %r" % (bytes(data[:4]),))
    if data[2]:
        raise ValueError("expected bytecode only, found native code (arch byte %d)" % data[2])
    n_qstr, i = _mpy_uint(data, 4)
    n_obj, i = _mpy_uint(data, i)
    names, constants, code = [], [], []
    for _ in range(n_qstr):
        n, i = _mpy_uint(data, i)
        if not n & 1:  # odd: a static qstr (an index into the interpreter's own table)
            names.append(data[i:i + (n >> 1)])
            i += (n >> 1) + 1

    def load_obj(i: int) -> int:
        kind = data[i]
        i += 1
        if kind in (5, 6):  # str, bytes: data and a NUL
            n, i = _mpy_uint(data, i)
            constants.append(("str" if kind == 5 else "bytes", data[i:i + n]))
            return i + n + 1
        if kind in (7, 8, 9):  # int, float, complex as text
            n, i = _mpy_uint(data, i)
            return i + n
        if kind == 10:  # tuple
            n, i = _mpy_uint(data, i)
            for _ in range(n):
                i = load_obj(i)
        return i  # None, False, True, Ellipsis: no data

    for _ in range(n_obj):
        i = load_obj(i)

    def load_code(i: int) -> int:
        kind_len, i = _mpy_uint(data, i)
        if kind_len & 3:
            raise ValueError("expected bytecode only, found native code")
        code.append(kind_len >> 3)
        i += kind_len >> 3
        if kind_len & 4:
            n, i = _mpy_uint(data, i)
            for _ in range(n):
                i = load_code(i)
        return i

    if load_code(i) != len(data):
        raise ValueError("trailing bytes after the raw code tree")
    return names, constants, code


def romfs_saving(lib: str, modules: Iterable[str], block: int = 16) -> dict:
    """Bytes MicroPython's loader copies into the heap for ``modules`` (``.mpy`` files
    under ``lib``) that it leaves in place when they are in ROMFS (py/persistentcode.c,
    ``mp_reader_try_read_rom``): each function's bytecode and the data of string and bytes
    constants (identifier-like strings left out: they may be names the interpreter has).
    Names (qstr text) are not counted either: many are in the interpreter's own tables
    already, so the count stays below what ROMFS saves (``bench device`` checks it against
    the 64-bit port). ``block`` is the GC block (16 B on 32-bit, 32 B on 64-bit).
    Raises ValueError for a file that is not bytecode .mpy v6."""
    up = lambda n: -(-n // block) * block  # noqa: E731
    out = {"bytecode": 0, "constants": 0}
    for name in modules:
        path = os.path.join(lib, *name.split(".")) + ".mpy"
        if not os.path.exists(path):
            path = os.path.join(lib, *name.split("."), "__init__.mpy")
        with open(path, "rb") as f:
            _names, constants, code = mpy_parts(f.read())
        out["bytecode"] += sum(up(n) for n in code)
        out["constants"] += sum(up(len(d) + 1) for kind, d in constants
                                if kind == "bytes" or not _IDENTIFIER.match(d))
    return out


def bytecode_lib(out: str) -> str:
    """The ESP32 image's modules compiled to bytecode (no -march: the 32-bit port runs no
    native code) into ``out/lib``; returns that folder. Raises BuildError."""
    lib = os.path.join(out, "lib")
    # the driver stands in for start-up and the hardware: what it calls stays in the modules
    image.compile_modules(image.board_modules("esp32"), lib, also=(DRIVER,))
    return lib


def dsmr5_telegram() -> bytes:
    """DSMR5_BODY framed as the P1 port sends it: with its CRC-16/ARC and CR LF."""
    from edgeledger.protocols.crc import crc16_arc

    telegram = DSMR5_BODY.encode()
    return telegram + b"%04X\r\n" % crc16_arc(telegram)


def _constants() -> str:
    from edgeledger.protocols.crc import bcc_xor

    block = IEC_DATA + b"\x03"
    readout = b"\x02" + block + bytes([bcc_xor(block)])
    return "DSMR_TELEGRAM = %r\nIEC_IDENT = %r\nIEC_READOUT = %r\n" % (dsmr5_telegram(), IEC_IDENT, readout)


def measure(lib: str, config: str, alg: str, readings: int = 5) -> dict:
    """One configuration and signer on the 32-bit port; see the module docstring.
    Raises Mpy32Error."""
    head = "CONFIG = %r\nALG = %r\nREADINGS = %d\n" % (config, alg, readings) + _constants()
    res = micropython32.run(head + DRIVER, micropython32.image_files(lib), max_steps=100000)
    lines = dict(x.split("|", 1) for x in res.stdout.splitlines() if "|" in x)
    line = "RESULT|" + lines["RESULT"]
    cpu_us, sealed_n, turn_alloc, seal_alloc, head_seq = (int(x) for x in line.split("|")[1:])
    if head_seq != readings:
        raise micropython32.Mpy32Error("%s %s: sealed %d of %d readings" % (config, alg, head_seq, readings))
    base = res.labels["base"]["live"]
    live = max(res.labels[k]["live"] for k in ("seal", "turn") if k in res.labels)
    out = {"heap_kb": round((live - base) / KB, 1),
            "startup_kb": round((res.labels["startup"]["live"] - base) / KB, 1),
            "code_kb": round((res.labels["code"]["live"] - base) / KB, 1),
            "turn_alloc_kb": round(turn_alloc / KB, 1),
            "seal_alloc_kb": round(seal_alloc / KB, 1),
            "cpu_ms": round(cpu_us / 1000.0 / max(1, sealed_n), 2),
            "messages": head_seq}
    loaded = sorted(set(lines["MODULES"].split(",")) - set(lines["MODULES-BASE"].split(",")))
    saving = romfs_saving(lib, [m for m in loaded if m.startswith("edgeledger")])
    out["romfs_saving_kb"] = round(sum(saving.values()) / KB, 1)
    out["romfs_estimate_kb"] = round(out["heap_kb"] - out["romfs_saving_kb"], 1)
    return out


def run(readings: int = 5, log: Callable[[str], object] | None = None) -> dict:
    """{config: {alg: figures}} for every configuration and signer. Raises Mpy32Error."""
    work = tempfile.mkdtemp(prefix="el-bench32-")
    try:
        lib = bytecode_lib(work)
        out: dict = {}
        for config in CONFIGS:
            out[config] = {}
            for alg in SIGNERS:
                out[config][alg] = m = measure(lib, config, alg, readings)
                if log:
                    log("32-bit %-14s %-5s heap %5.1f KB (code %4.1f, after start-up %4.1f, "
                        "one turn allocates up to %6.1f), %6.2f ms per message; code in ROMFS: "
                        "%4.1f KB (estimate)"
                        % (config, alg, m["heap_kb"], m["code_kb"], m["startup_kb"],
                           m["turn_alloc_kb"], m["cpu_ms"], m["romfs_estimate_kb"]))
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)

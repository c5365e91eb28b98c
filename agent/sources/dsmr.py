"""DSMR P1 source: reads telegrams pushed by a smart meter's P1 port.

Config::

    {"type": "dsmr", "name": "p1", "port": "/dev/ttyUSB0", "baud": 115200,
     "version": "5",          # "2.2", "3.0", "4", "5", "fluvius" or omitted (detect)
     "prefix": "home/", "interval_s": 10, "timeout_s": 12}

DSMR 2.2/3.0 meters talk 9600 baud 7E1 and send no CRC; DSMR 4+ and Fluvius
115200 8N1 with a CRC (a CRC is then required). Each poll drops what arrived
since the last one and waits at most ``timeout_s`` for the next complete,
CRC-valid telegram; rejected telegrams are counted in ``counters['bad_frames']``.
On a board the P1 UART gets a receive buffer of RXBUF bytes: a whole telegram.

Version omitted: the port is opened 8N1 and each telegram's version is detected by
the rules D1-D3 of ``protocols/dsmr.py`` (a telegram with a CRC must pass it; one
without a CRC is read as 2.2/3.0 only if it holds no DSMR 4+ object; after one valid
CRC every telegram needs one). Bit 7 of every byte is cleared: a 7E1 character read
as 8N1 carries its parity bit there, and a telegram is ASCII (P1 5.0.2 §6.2). With
no ``baud`` configured either, a poll that got no telegram switches the port between
DETECT_BAUDS (counted in ``counters['baud_switches']``).
"""
from edgeledger.agent import port as platform
from edgeledger.agent.errors import ConfigError, SourceError
from edgeledger.agent.sources import run_cycle
from edgeledger.protocols import dsmr, obis

NO_CRC_VERSIONS = ("2.2", "3.0")
# The P1 port speeds: DSMR 4+ (P1 5.0.2 §6.1) and DSMR 2.2/3.0 (P1 2.2 §4), tried in turn
# when neither version nor baud is configured.
DETECT_BAUDS = (115200, 9600)
# A board's UART receive buffer for the P1 port (``UART(rxbuf=...)``): a whole telegram,
# so the loop may read it late. DSMR 5.0.2 telegrams with four M-Bus channels and a
# 1024-character text message stay below 3 KB (see protocols/dsmr.py MAX_TELEGRAM).
RXBUF = 3072
# While waiting for a telegram the source reads the UART this often. A telegram arrives
# in ~0.1-0.3 s at 115200 baud, so RXBUF holds all of it when read this late.
RX_POLL_S = 0.1


class DsmrSource:
    def __init__(self, name, port, version=None, prefix="", interval_s=10.0, timeout_s=12.0,
                 clock=None, detect_baud=False):
        self.name = name
        self.port = port
        self.version = version
        self.prefix = prefix
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock or platform.monotonic
        self.sleep = platform.sleep
        if version is None:
            require = dsmr.DETECT
        else:
            require = version not in NO_CRC_VERSIONS
        self.framer = dsmr.TelegramFramer(require_crc=require)
        # baud switching: the index into DETECT_BAUDS in use, None when the baud is fixed
        self._baud = 0 if detect_baud and version is None else None
        self.counters = {"polls": 0, "telegrams": 0, "bad_frames": 0, "records": 0,
                         "unknown_objects": 0, "discarded_bytes": 0, "baud_switches": 0}
        self.last_telegram = None

    def begin(self, now, wall):
        """Drop what arrived before now and wait for the next valid telegram."""
        self.counters["polls"] += 1
        self.port.reset_input()
        self.framer = dsmr.TelegramFramer(require_crc=self.framer.require_crc)
        self._wall = wall
        self._deadline = now + self.timeout_s
        self._wake = now

    def wake_at(self):
        return self._wake

    def step(self, now):
        """Take what has arrived; returns None until a valid telegram is complete, then
        its SenML records. Raises SourceError when none came within ``timeout_s``."""
        try:
            while True:
                try:
                    raw = self.framer.next_telegram()
                except dsmr.DsmrFrameError:
                    self.counters["bad_frames"] += 1
                    continue
                if raw is not None:
                    try:
                        tg = dsmr.parse_telegram(raw, self.version)
                        records = dsmr.to_records(tg, self.prefix, self._wall)
                    except (dsmr.DsmrFrameError, obis.ObisValueError):
                        self.counters["bad_frames"] += 1
                        continue
                    self.last_telegram = tg
                    self.counters["telegrams"] += 1
                    self.counters["unknown_objects"] += tg.unknown
                    self.counters["records"] += len(records)
                    return records
                data = self.port.read(512, 0)
                if data:
                    if self.version is None:
                        data = bytes(b & 0x7F for b in data)  # 7E1 read as 8N1 (module docstring)
                    self.framer.receive_data(data)
                    continue
                if now >= self._deadline:
                    self._switch_baud()
                    raise SourceError("%s: no valid telegram within %.1f s" % (self.name, self.timeout_s))
                self._wake = min(self._deadline, now + RX_POLL_S)
                return None
        finally:
            self.counters["discarded_bytes"] += self.framer.discarded
            self.framer.discarded = 0

    def _switch_baud(self):
        """Detecting the speed too: try the other P1 speed at the next poll."""
        if self._baud is None or self.counters["telegrams"]:
            return
        self._baud = (self._baud + 1) % len(DETECT_BAUDS)
        self.port.set_baud(DETECT_BAUDS[self._baud])
        self.counters["baud_switches"] += 1

    def poll(self, now):
        """Wait for the next valid telegram; returns its SenML records.

        Raises SourceError when none arrives within ``timeout_s``."""
        return run_cycle(self, now)

    def close(self):
        self.port.close()


def from_config(cfg, port=None, clock=None):
    """Build a DsmrSource. Raises ConfigError for bad values, SourceError if
    the port cannot be opened."""
    version = cfg.get("version")
    if version is not None:
        version = str(version)
        if version not in dsmr.OBJECTS:
            raise ConfigError("dsmr version must be one of %s, found %r" % (sorted(dsmr.OBJECTS), version))
    old = version in NO_CRC_VERSIONS
    detect_baud = version is None and cfg.get("baud") is None
    if port is None:
        from edgeledger.agent.serial_port import open_port

        port = open_port(cfg["port"], int(cfg.get("baud", 9600 if old else 115200)),
                         int(cfg.get("bytesize", 7 if old else 8)), cfg.get("parity", "E" if old else "N"),
                         int(cfg.get("stopbits", 1)), rx=cfg.get("rx_pin"),
                         rxbuf=int(cfg.get("rxbuf", RXBUF)))
    return DsmrSource(cfg.get("name", "p1"), port, version, cfg.get("prefix", ""),
                      float(cfg.get("interval_s", 10.0)), float(cfg.get("timeout_s", 12.0)), clock,
                      detect_baud)

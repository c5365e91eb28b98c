"""IEC 62056-21 mode C source: optical-probe (or RS-485) meter readout.

Config::

    {"type": "iec62056", "name": "opt1", "port": "/dev/ttyUSB1",
     "address": "",            # device address for the sign-on, "" = any
     "max_baud": 9600,         # never switch above this
     "prefix": "meter7/", "interval_s": 900, "retries": 1}

Each poll signs on at 300 baud 7E1, switches to the baud rate the meter offers
(capped at ``max_baud``) after the option-select ACK, reads the data message
and checks its BCC. BCC and framing failures are counted in
``counters['bad_frames']`` and the readout is retried ``retries`` times.
"""
from edgeledger.agent import port as platform
from edgeledger.agent.errors import ConfigError, SourceError
from edgeledger.agent.sources import BUSY_POLL_S, run_cycle
from edgeledger.protocols import iec62056, obis


def data_sets_to_records(data_sets, prefix, t):
    """SenML records for the data sets whose OBIS code is in obis.OBIS.

    A data set with value group F other than 255 (``1.8.0*96``: a billing period or
    historical value) is signed as what it is: name ``<name>/period_<F>``, with the unit of
    the same code's current value in this readout when the meter prints none (Landis+Gyr
    ZMD: ``1.8.0*01(0000010.2)``). A name seen twice in one readout is signed once (the
    first): meters fill unused billing slots with ``*00`` and zeros. Raises
    obis.ObisValueError for a malformed value or F.
    """
    units = {}
    for ds in data_sets:
        if ds.values and ds.values[0][1] and obis.billing_period(ds.address) is None:
            units.setdefault(obis.obis_key(ds.address), ds.values[0][1])
    out = []
    seen = set()
    for ds in data_sets:
        key = obis.obis_key(ds.address)
        entry = obis.OBIS.get(key)
        if entry is None or not ds.values:
            continue
        name, kind = entry
        period = obis.billing_period(ds.address)
        if period is not None:
            name = "%s/period_%d" % (name, period)
        if name in seen:
            continue
        seen.add(name)
        value, unit = ds.values[0]
        out.append(obis.senml_record(prefix + name, kind, value, unit or units.get(key), t))
    return out


class Iec62056Source:
    def __init__(self, name, port, address="", max_baud=19200, prefix="", interval_s=900.0,
                 retries=1, clock=None, sleep=None):
        self.name = name
        self.port = port
        self.address = address
        self.max_baud = max_baud
        self.prefix = prefix
        self.interval_s = interval_s
        self.retries = retries
        self.clock = clock or platform.monotonic
        self.sleep = sleep or platform.sleep
        self.counters = {"polls": 0, "readouts": 0, "bad_frames": 0, "timeouts": 0, "records": 0}
        self.last_ident = None

    def begin(self, now, wall):
        """Start a readout (sign-on at 300 baud); records will be stamped ``wall``."""
        self.counters["polls"] += 1
        self._wall = wall
        self._reasons = []
        self._left = 1 + self.retries  # attempts
        self._session = None
        self._retry_at = now
        self._wake = now

    def wake_at(self):
        return self._wake

    def step(self, now):
        """Advance the readout without waiting; returns None until it is complete, then
        its records. Raises SourceError when every attempt failed."""
        while True:
            s = self._session
            if s is None:
                if now < self._retry_at:
                    self._wake = self._retry_at
                    return None
                self._left -= 1
                s = self._session = iec62056.ModeCSession(self.address, self.max_baud)
                self.port.set_baud(iec62056.INITIAL_BAUD)
                self.port.reset_input()
                self.port.write(s.start(now))
            ev = s.next_event()
            if ev is None:
                data = self.port.read(512, 0)
                if data:
                    s.receive_data(data, now)
                    continue
                deadline = s.timer()
                if deadline is not None and now >= deadline:
                    s.handle_timer(now)
                    continue
                self._wake = now + BUSY_POLL_S if deadline is None else min(deadline, now + BUSY_POLL_S)
                return None
            if isinstance(ev, iec62056.Identified):
                self.last_ident = ev.ident
                continue
            if isinstance(ev, iec62056.SwitchBaud):
                if ev.data:
                    self.port.write(ev.data)
                # §6.3.3: both sides change rate after the acknowledgement
                self.port.set_baud(ev.baud)
                continue
            self.counters["bad_frames"] += s.counters["bad_frames"]
            self._session = None
            if isinstance(ev, iec62056.Readout):
                self.counters["readouts"] += 1
                try:
                    records = data_sets_to_records(ev.data_sets, self.prefix, self._wall)
                    self.counters["records"] += len(records)
                    return records
                except obis.ObisValueError as e:
                    self.counters["bad_frames"] += 1
                    self._reasons.append(str(e))
            else:
                if ev.reason == "timeout":
                    self.counters["timeouts"] += 1
                self._reasons.append("%s %s" % (ev.reason, ev.detail))
            if not self._left:
                raise SourceError("%s: readout failed: %s" % (self.name, "; ".join(self._reasons)))
            # §6.3.14: the meter falls back to its idle state 1.5 s after the last
            # character; sign on again after that.
            self._retry_at = now + iec62056.INTER_CHAR_TIMEOUT_S

    def poll(self, now):
        """One readout (waiting); raises SourceError when every attempt failed."""
        return run_cycle(self, now)

    def close(self):
        self.port.close()


def from_config(cfg, port=None, clock=None, sleep=None):
    """Build an Iec62056Source. Raises ConfigError for bad values, SourceError
    if the port cannot be opened."""
    max_baud = int(cfg.get("max_baud", 19200))
    if max_baud not in iec62056.MODE_C_BAUD.values():
        raise ConfigError("max_baud must be one of %s, found %r"
                          % (sorted(iec62056.MODE_C_BAUD.values()), max_baud))
    if port is None:
        from edgeledger.agent.serial_port import open_port

        # §6.3.1 / IEC 62056-21 §5: 7 data bits, even parity, 1 stop bit
        port = open_port(cfg["port"], iec62056.INITIAL_BAUD, 7, "E", 1,
                         de=cfg.get("de_pin"), tx=cfg.get("tx_pin"), rx=cfg.get("rx_pin"))
    return Iec62056Source(cfg.get("name", "iec62056"), port, cfg.get("address", ""), max_baud,
                          cfg.get("prefix", ""), float(cfg.get("interval_s", 900.0)),
                          int(cfg.get("retries", 1)), clock, sleep)

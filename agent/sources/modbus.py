# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Modbus RTU source: polls register maps on one RS-485 bus (several devices).

Config::

    {"type": "modbus", "name": "bus1", "port": "/dev/ttyUSB0", "baud": 9600,
     "parity": "N", "stopbits": 1, "interval_s": 10, "retries": 2,
     "timeout_s": 0.5, "inter_request_delay_s": 0.05,
     "devices": [{"unit": 1, "map": "sdm630", "prefix": "m1/"},
                 {"unit": 7, "map": "xy_md02", "prefix": "hall/",
                  "inter_request_delay_s": 0.2}]}

Policy: one device that times out or answers with an exception does not stop
the others; its failure is counted (``counters``) and listed in
``last_errors``. A poll in which no request succeeded raises SourceError.
"""
from edgeledger.agent import port as platform
from edgeledger.agent.errors import ConfigError, SourceError
from edgeledger.agent.registermaps import decode_block, get_map, plan_blocks
from edgeledger.agent.sources import BUSY_POLL_S, run_cycle
from edgeledger.protocols import modbus

# Bytes asked of the transport per read: one whole ADU.
READ_CHUNK = modbus.MAX_ADU


class ModbusSource:
    def __init__(self, name, port, devices, baud=9600, interval_s=10.0, retries=2, timeout_s=0.5,
                 inter_request_delay_s=0.05, clock=None, sleep=None, master=None):
        self.name = name
        self.port = port
        self.interval_s = interval_s
        self.clock = clock or platform.monotonic
        self.sleep = sleep or platform.sleep
        # an RTU master on a serial bus; the Modbus TCP source passes its own (sources/modbus_tcp.py)
        self.master = master or modbus.RtuMaster(baud=baud, timeout_s=timeout_s, retries=retries,
                                                 inter_request_delay_s=inter_request_delay_s)
        self.devices = []
        for d in devices:
            unit = d["unit"]
            regmap = get_map(d["map"])
            if "inter_request_delay_s" in d:
                self.master.set_device_delay(unit, d["inter_request_delay_s"])
            self.devices.append((unit, regmap, d.get("prefix", "u%d/" % unit), plan_blocks(regmap)))
        # every read of a cycle: (unit, start, count, entries, prefix, function code)
        self._plan = [(unit, start, count, entries, prefix, regmap["function"])
                      for unit, regmap, prefix, blocks in self.devices
                      for start, count, entries in blocks]
        self._wake = None
        self.counters = {"polls": 0, "records": 0, "bad_frames": 0, "timeouts": 0,
                         "exceptions": 0, "failed_requests": 0, "retries": 0}
        self.last_errors = []

    def begin(self, now, wall):
        """Start reading every device's map; records will be stamped ``wall``."""
        self.counters["polls"] += 1
        self.last_errors = []
        self._link_error = None  # why the link could not send in this cycle
        self._records = []
        self._ok = 0
        self._wall = wall
        self._before = dict(self.master.counters)
        self._next = 0  # index of the next block in self._plan
        self._sent = False  # the block's request is on the bus
        self._wake = now

    def wake_at(self):
        return self._wake

    def step(self, now):
        """Advance the cycle without waiting; returns None until every block was read
        (or failed), then the records. Raises SourceError when nothing answered."""
        m = self.master
        while True:
            if not self._sent:
                if self._next == len(self._plan):
                    return self._finish()
                unit, start, count, _, _, function = self._plan[self._next]
                ready = m.ready_at(unit)
                if ready is not None and ready > now:
                    self._wake = ready  # t3.5 or the device's own inter-request delay
                    return None
                self._write(m.send_request(now, modbus.BUILDERS[function](unit, start, count)), now)
                self._sent = True
            ev = m.next_event()
            if ev is None:
                data = self.port.read(READ_CHUNK, 0)
                if data:
                    m.receive_data(data, now)
                    continue
                deadline = m.timer()
                if deadline is not None and now >= deadline:
                    out = m.handle_timer(now)  # a resend, or the final timeout event
                    if out:
                        self._write(out, now)
                    continue
                self._wake = now + BUSY_POLL_S if deadline is None else min(deadline, now + BUSY_POLL_S)
                return None
            unit, start, _, entries, prefix, _ = self._plan[self._next]
            self._next += 1
            self._sent = False
            if isinstance(ev, modbus.Response):
                self._ok += 1
                self._records.extend(decode_block(start, ev.values, entries, prefix, self._wall))
            elif isinstance(ev, modbus.DeviceException):
                self.last_errors.append("unit %d @%d: %s" % (unit, start, ev.error.name))
            else:
                self.last_errors.append("unit %d @%d: %s after %d attempts"
                                        % (unit, start, ev.reason, ev.attempts))

    def _write(self, data, now):
        """Send a request (or its resend) on a clean line: a TCP stream that went wrong is
        opened anew first, late bytes are dropped. A link that cannot send (a TCP device
        that refuses the connection) fails the request at once, with its reason, and the
        cycle's later requests without trying again."""
        if self.master.stream_lost:
            self.port.reconnect()
            self.master.connection_reset()
        if self._link_error is None:
            self.port.reset_input()
            try:
                self.port.write(data)
                return
            except SourceError as e:
                # one try per cycle: an unreachable TCP device costs one connect timeout
                self._link_error = str(e)
        self.master.abort(now, self._link_error)

    def _finish(self):
        mc, before, records = self.master.counters, self._before, self._records
        self._records = []
        self.counters["bad_frames"] += mc["crc_errors"] - before["crc_errors"]
        self.counters["timeouts"] += mc["timeouts"] - before["timeouts"]
        self.counters["exceptions"] += mc["exceptions"] - before["exceptions"]
        self.counters["failed_requests"] += mc["failed"] - before["failed"]
        self.counters["retries"] += mc["retries"] - before["retries"]
        self.counters["records"] += len(records)
        if self._ok == 0 and self.last_errors:
            raise SourceError("%s: no device answered: %s" % (self.name, "; ".join(self.last_errors)))
        if self.last_errors:
            # some devices answered, some did not: the silent ones still leave a signed trace
            records.append({0: self.name + "/status", 3: "; ".join(self.last_errors), 6: self._wall})
        return records

    def poll(self, now):
        """Read every device's map (one whole cycle, waiting); returns SenML records
        stamped ``now``. Raises SourceError when not a single request succeeded."""
        return run_cycle(self, now)

    def close(self):
        self.port.close()


def check_devices(cfg, kind="modbus"):
    """The ``devices`` list of a Modbus source config, each unit id and register map
    checked. Raises ConfigError."""
    try:
        devices = cfg["devices"]
        if not devices:
            raise ConfigError("%s source needs at least one device" % kind)
        for d in devices:
            if not 1 <= int(d["unit"]) <= 247:
                raise ConfigError("modbus unit must be 1..247, found %r" % (d["unit"],))
            get_map(d["map"])
    except KeyError as e:
        raise ConfigError("%s source config: missing or unknown %s" % (kind, e))
    except ValueError as e:
        raise ConfigError("%s source config: %s" % (kind, e))
    return devices


def from_config(cfg, port=None, clock=None, sleep=None):
    """Build a ModbusSource. Raises ConfigError for bad values, SourceError if
    the serial port cannot be opened."""
    devices = check_devices(cfg)
    try:
        baud = int(cfg.get("baud", 9600))
    except ValueError as e:
        raise ConfigError("modbus source config: %s" % (e,))
    if port is None:
        from edgeledger.agent.serial_port import open_port

        port = open_port(cfg["port"], baud, int(cfg.get("bytesize", 8)), cfg.get("parity", "N"),
                         int(cfg.get("stopbits", 1)), de=cfg.get("de_pin"),
                         tx=cfg.get("tx_pin"), rx=cfg.get("rx_pin"))
    return ModbusSource(
        cfg.get("name", "modbus"), port, devices, baud=baud,
        interval_s=float(cfg.get("interval_s", 10.0)), retries=int(cfg.get("retries", 2)),
        timeout_s=float(cfg.get("timeout_s", 0.5)),
        inter_request_delay_s=float(cfg.get("inter_request_delay_s", 0.05)),
        clock=clock, sleep=sleep)

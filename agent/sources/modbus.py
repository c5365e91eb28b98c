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
from edgeledger.protocols import modbus

# Bytes asked of the transport per read: one whole ADU.
READ_CHUNK = modbus.MAX_ADU


class ModbusSource:
    def __init__(self, name, port, devices, baud=9600, interval_s=10.0, retries=2, timeout_s=0.5,
                 inter_request_delay_s=0.05, clock=None, sleep=None):
        self.name = name
        self.port = port
        self.interval_s = interval_s
        self.clock = clock or platform.monotonic
        self.sleep = sleep or platform.sleep
        self.master = modbus.RtuMaster(baud=baud, timeout_s=timeout_s, retries=retries,
                                       inter_request_delay_s=inter_request_delay_s)
        self.devices = []
        for d in devices:
            unit = d["unit"]
            regmap = get_map(d["map"])
            if "inter_request_delay_s" in d:
                self.master.set_device_delay(unit, d["inter_request_delay_s"])
            self.devices.append((unit, regmap, d.get("prefix", "u%d/" % unit), plan_blocks(regmap)))
        self.counters = {"polls": 0, "records": 0, "bad_frames": 0, "timeouts": 0,
                         "exceptions": 0, "failed_requests": 0, "retries": 0}
        self.last_errors = []

    def _transact(self, request):
        """Run one request to completion; returns the master's final event."""
        m = self.master
        ready = m.ready_at(request.unit)
        if ready is not None:
            wait = ready - self.clock()
            if wait > 0:
                self.sleep(wait)
        self.port.reset_input()
        self.port.write(m.send_request(self.clock(), request))
        while True:
            ev = m.next_event()
            if ev is not None:
                return ev
            deadline = m.timer()
            now = self.clock()
            if deadline is not None and now >= deadline:
                out = m.handle_timer(now)
                if out:
                    self.port.reset_input()
                    self.port.write(out)
                continue
            wait = 0.01 if deadline is None else deadline - now
            data = self.port.read(READ_CHUNK, wait)
            if data:
                m.receive_data(data, self.clock())

    def poll(self, now):
        """Read every device's map; returns SenML records stamped ``now``.

        Raises SourceError when not a single request succeeded.
        """
        self.counters["polls"] += 1
        self.last_errors = []
        records = []
        ok = 0
        before = dict(self.master.counters)
        for unit, regmap, prefix, blocks in self.devices:
            build = modbus.BUILDERS[regmap["function"]]
            for start, count, entries in blocks:
                ev = self._transact(build(unit, start, count))
                if isinstance(ev, modbus.Response):
                    ok += 1
                    records.extend(decode_block(start, ev.values, entries, prefix, now))
                elif isinstance(ev, modbus.DeviceException):
                    self.last_errors.append("unit %d @%d: %s" % (unit, start, ev.error.name))
                else:
                    self.last_errors.append("unit %d @%d: %s after %d attempts"
                                            % (unit, start, ev.reason, ev.attempts))
        mc = self.master.counters
        self.counters["bad_frames"] += mc["crc_errors"] - before["crc_errors"]
        self.counters["timeouts"] += mc["timeouts"] - before["timeouts"]
        self.counters["exceptions"] += mc["exceptions"] - before["exceptions"]
        self.counters["failed_requests"] += mc["failed"] - before["failed"]
        self.counters["retries"] += mc["retries"] - before["retries"]
        self.counters["records"] += len(records)
        if ok == 0 and self.last_errors:
            raise SourceError("%s: no device answered: %s" % (self.name, "; ".join(self.last_errors)))
        if self.last_errors:
            # some devices answered, some did not: the silent ones still leave a signed trace
            records.append({0: self.name + "/status", 3: "; ".join(self.last_errors), 6: now})
        return records

    def close(self):
        self.port.close()


def from_config(cfg, port=None, clock=None, sleep=None):
    """Build a ModbusSource. Raises ConfigError for bad values, SourceError if
    the serial port cannot be opened."""
    try:
        devices = cfg["devices"]
        baud = int(cfg.get("baud", 9600))
        if not devices:
            raise ConfigError("modbus source needs at least one device")
        for d in devices:
            if not 1 <= int(d["unit"]) <= 247:
                raise ConfigError("modbus unit must be 1..247, found %r" % (d["unit"],))
            get_map(d["map"])
    except KeyError as e:
        raise ConfigError("modbus source config: missing or unknown %s" % (e,))
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

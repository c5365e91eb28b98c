# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Modbus TCP source: polls register maps of devices behind one TCP endpoint (a meter
with an Ethernet port, or a Modbus TCP-to-RTU gateway serving several unit ids).

Config::

    {"type": "modbus_tcp", "name": "sdm-eth", "host": "192.168.1.50", "port": 502,
     "timeout_s": 1.0, "retries": 2, "connect_timeout_s": 3.0, "interval_s": 10,
     "inter_request_delay_s": 0.0,
     "devices": [{"unit": 1, "map": "sdm630", "prefix": "m1/"}]}

The register maps, record names and failure policy are the RTU source's
(``sources/modbus.py``): one device failing does not stop the others, a poll in which
none answered raises SourceError. The connection is opened at the first request and
again after the device closed it or sent bytes that cannot be Modbus TCP.
"""
from edgeledger.agent.errors import ConfigError
from edgeledger.agent.sources.modbus import ModbusSource, check_devices
from edgeledger.protocols import modbus_tcp

DEFAULT_PORT = 502  # TCP §4.1: the registered port of Modbus TCP


def from_config(cfg, port=None, clock=None, sleep=None):
    """Build a ModbusSource over TCP. Raises ConfigError for bad values."""
    devices = check_devices(cfg, "modbus_tcp")
    try:
        host = cfg["host"]
        tcp_port = int(cfg.get("port", DEFAULT_PORT))
        timeout_s = float(cfg.get("timeout_s", 1.0))
        connect_timeout_s = float(cfg.get("connect_timeout_s", 3.0))
        retries = int(cfg.get("retries", 2))
        delay_s = float(cfg.get("inter_request_delay_s", 0.0))
    except KeyError as e:
        raise ConfigError("modbus_tcp source config: missing %s" % (e,))
    except (TypeError, ValueError) as e:
        raise ConfigError("modbus_tcp source config: %s" % (e,))
    if not 0 < tcp_port < 65536:
        raise ConfigError("modbus_tcp port must be 1..65535, found %r" % (tcp_port,))
    if port is None:
        from edgeledger.agent.tcp_port import TcpPort

        port = TcpPort(host, tcp_port, connect_timeout_s)
    master = modbus_tcp.TcpMaster(timeout_s=timeout_s, retries=retries, inter_request_delay_s=delay_s)
    return ModbusSource(cfg.get("name", "modbus_tcp"), port, devices,
                        interval_s=float(cfg.get("interval_s", 10.0)), clock=clock, sleep=sleep, master=master)

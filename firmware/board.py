"""The board profile (``board.json``): buses, pins, network interface, clock.

Profiles live in ``firmware/boards/<name>.json``; the image build copies one to
the board as ``board.json``. Fields::

    board        "unix" | "esp32" | "rp2040"
    march        mpy-cross architecture of the port (x64, xtensawin, armv6m)
    network      {"kind": "host"}                 unix: the host's network
                 {"kind": "wlan"}                 Wi-Fi station; ssid/password in config.json "wifi"
                 {"kind": "lan", "phy": "LAN8720", "phy_addr": 1, "mdc": 23, "mdio": 18, "power": 16}
                 {"kind": "wiznet5k", "spi": 0, "sck": .., "mosi": .., "miso": .., "cs": .., "reset": ..}
    clock        {"ntp": true, "host": "pool.ntp.org"}: set the RTC before sampling
    buses        name -> {"port": UART id, "tx_pin", "rx_pin", "de_pin" (RS-485 direction), "baud"}
    i2c          {"id", "scl", "sda", "freq", "atecc608_addr"} for a secure element
    outbox       default {"max_bytes", "segment_bytes"} for this board's flash
    exclude      edgeledger modules the image leaves out (the unix image has no UART)

A source in ``config.json`` names its bus (``"bus": "rs485"``); the bus fields
fill in the source's ``port``/``tx_pin``/``rx_pin``/``de_pin``/``baud``.

Network bring-up never blocks: ``network_start`` asks the interface to connect,
``network_ready`` is polled by the main loop, which keeps sampling meanwhile.
"""
import json
import time

from edgeledger.agent.errors import ConfigError

# A unix time before this is an RTC that was never set (2020-01-01T00:00:00Z).
MIN_VALID_TIME = 1577836800
# MicroPython ports whose time.time() counts from 2000-01-01 (older esp32/rp2 builds).
EPOCH_2000_OFFSET = 946684800
NTP_RETRY_S = 30.0
NTP_TIMEOUT_S = 0.5  # one NTP query may hold the loop this long (the default max_block_ms)


class Board:
    def __init__(self, profile):
        if not isinstance(profile, dict) or "board" not in profile:
            raise ConfigError("board profile: expected a JSON object with 'board', found %r"
                              % (profile,))
        self.profile = profile
        self.name = profile["board"]
        self.network = profile.get("network") or {"kind": "host"}
        self.buses = profile.get("buses") or {}
        self._nic = None
        self._clock_ok = not (profile.get("clock") or {}).get("ntp")
        self._ntp_at = -NTP_RETRY_S
        # time.gmtime(0) names the port's epoch year
        self._epoch_offset = EPOCH_2000_OFFSET if time.gmtime(0)[0] == 2000 else 0

    def outbox_defaults(self):
        return self.profile.get("outbox") or {}

    def source_config(self, cfg):
        """The source config with its bus's port and pins filled in. Raises ConfigError."""
        bus = cfg.get("bus")
        if bus is None:
            return cfg
        if bus not in self.buses:
            raise ConfigError("source %r names bus %r; board %s has %s"
                              % (cfg.get("name"), bus, self.name, sorted(self.buses) or "none"))
        merged = dict(self.buses[bus])
        merged.update(cfg)
        return merged

    # -- clock ------------------------------------------------------------------------------

    def wall_time(self):
        return time.time() + self._epoch_offset

    def clock_valid(self, now):
        """True once the RTC holds real time; tries NTP (when due) once the network is up."""
        if self._clock_ok:
            return True
        if self.wall_time() >= MIN_VALID_TIME:
            self._clock_ok = True
            return True
        if self.network_ready() and now - self._ntp_at >= NTP_RETRY_S:
            self._ntp_at = now
            try:
                import ntptime  # micropython-lib; its socket timeout is 1 s

                ntptime.host = self.profile["clock"].get("host", ntptime.host)
                ntptime.timeout = NTP_TIMEOUT_S
                ntptime.settime()
            except (ImportError, OSError, OverflowError):
                pass
        return self.wall_time() >= MIN_VALID_TIME

    # -- network ----------------------------------------------------------------------------

    def network_start(self, cfg):
        """Start bringing the interface up (returns at once). Raises ConfigError."""
        kind = self.network.get("kind", "host")
        if kind == "host":
            return
        import network

        if kind == "wlan":
            wifi = cfg.get("wifi") or {}
            if not wifi.get("ssid"):
                raise ConfigError("board %s uses Wi-Fi: config.json needs wifi.ssid" % self.name)
            nic = network.WLAN(network.STA_IF)
            nic.active(True)
            nic.connect(wifi["ssid"], wifi.get("password", ""))
        elif kind == "lan":
            from machine import Pin

            n = self.network
            nic = network.LAN(mdc=Pin(n["mdc"]), mdio=Pin(n["mdio"]),
                              power=Pin(n["power"]) if n.get("power") is not None else None,
                              phy_type=getattr(network, "PHY_" + n.get("phy", "LAN8720")),
                              phy_addr=n.get("phy_addr", 0))
            nic.active(True)
        elif kind == "wiznet5k":
            from machine import SPI, Pin

            n = self.network
            spi = SPI(n["spi"], 2000000, sck=Pin(n["sck"]), mosi=Pin(n["mosi"]), miso=Pin(n["miso"]))
            nic = network.WIZNET5K(spi, Pin(n["cs"]), Pin(n["reset"]))
            nic.active(True)
        else:
            raise ConfigError("board network kind must be host, wlan, lan or wiznet5k, found %r"
                              % (kind,))
        static = cfg.get("ifconfig")  # [ip, netmask, gateway, dns]; DHCP otherwise
        if static:
            nic.ifconfig(tuple(static))
        self._nic = nic

    def network_ready(self):
        if self._nic is None:
            return self.network.get("kind", "host") == "host"
        return self._nic.isconnected()

    # -- failure ----------------------------------------------------------------------------

    def restart(self, delay_s=5.0):
        """After a crash: reset a board (the outbox survives); the unix port just returns."""
        if self.name == "unix":
            return
        time.sleep(delay_s)
        import machine

        machine.reset()


def load(path="board.json"):
    """The Board of a profile file. Raises ConfigError."""
    try:
        with open(path) as f:
            return Board(json.load(f))
    except (OSError, ValueError) as e:
        raise ConfigError("cannot read board profile %s: %s" % (path, e))

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

Network bring-up never blocks: ``startup.network_start`` asks the interface to
connect, ``Board.network_ready`` is polled by the main loop, which keeps
sampling meanwhile.
"""
import json
import time

from edgeledger.agent import errors

# A unix time before this is an RTC that was never set (2020-01-01T00:00:00Z).
MIN_VALID_TIME = 1577836800
# MicroPython ports whose time.time() counts from 2000-01-01 (older esp32/rp2 builds).
EPOCH_2000_OFFSET = 946684800
NTP_RETRY_S = 30.0
NTP_TIMEOUT_S = 0.5  # one NTP query may hold the loop this long (the default max_block_ms)


class Board:
    """What the loop asks the board while it runs: the clock and the network state.

    Bringing the network up (``startup.network_start``, which sets ``nic``) and
    filling in bus settings (``startup.source_config``) happen once at start.
    """

    def __init__(self, profile):
        if not isinstance(profile, dict) or "board" not in profile:
            raise errors.ConfigError("board profile: expected a JSON object with 'board', found %r"
                              % (profile,))
        # Only what the loop needs is kept (start-up reads buses and outbox settings from
        # the profile it was given; the whole profile is not held for the device's life).
        self.name = profile["board"]
        self.network = profile.get("network") or {"kind": "host"}
        self.nic = None  # the interface once started; None on the unix port (host network)
        clock = profile.get("clock") or {}
        self._ntp_host = clock.get("host")
        self._clock_ok = not clock.get("ntp")
        self._ntp_at = -NTP_RETRY_S
        # time.gmtime(0) names the port's epoch year
        self._epoch_offset = EPOCH_2000_OFFSET if time.gmtime(0)[0] == 2000 else 0

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

                ntptime.host = self._ntp_host or ntptime.host
                ntptime.timeout = NTP_TIMEOUT_S
                ntptime.settime()
            except (ImportError, OSError, OverflowError):
                pass
        return self.wall_time() >= MIN_VALID_TIME

    # -- network ----------------------------------------------------------------------------

    def network_ready(self):
        if self.nic is None:
            return self.network.get("kind", "host") == "host"
        return self.nic.isconnected()

    # -- failure ----------------------------------------------------------------------------

    def restart(self, delay_s=5.0):
        """After a crash: reset a board (the outbox survives); the unix port just returns."""
        if self.name == "unix":
            return
        time.sleep(delay_s)
        import machine

        machine.reset()


def read_profile(path="board.json"):
    """The profile dict of a profile file. Raises ConfigError."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise errors.ConfigError("cannot read board profile %s: %s" % (path, e))


def load(path="board.json"):
    """The Board of a profile file. Raises ConfigError."""
    return Board(read_profile(path))

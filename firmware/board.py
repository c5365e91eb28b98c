# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
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
    watchdog_s   the hardware watchdog's timeout (default WATCHDOG_S)
    buses        name -> {"port": UART id, "tx_pin", "rx_pin", "de_pin" (RS-485 direction), "baud"}
    i2c          {"id", "scl", "sda", "freq", "atecc608_addr"} for a secure element
    outbox       default {"max_bytes", "segment_bytes"} for this board's flash
    exclude      edgeledger modules the image leaves out (the unix image has no UART)

A source in ``config.json`` names its bus (``"bus": "rs485"``); the bus fields
fill in the source's ``port``/``tx_pin``/``rx_pin``/``de_pin``/``baud``.

Network bring-up never blocks: ``startup.network_start`` asks the interface to
connect, ``Board.network_ready`` is polled by the main loop, which keeps
sampling meanwhile. Nothing else the loop asks the board waits long: a name is
resolved by one DNS query with a timeout (``netclock.resolver``), NTP likewise, and the
watchdog (``machine.WDT``; on the unix port the board records what a hardware
watchdog would have done) resets a board whose loop stops feeding it.
"""
import json
import time

from edgeledger.agent import errors

# A unix time before this is an RTC that was never set (2020-01-01T00:00:00Z).
MIN_VALID_TIME = 1577836800
# MicroPython ports whose time.time() counts from 2000-01-01 (older esp32/rp2 builds).
EPOCH_2000_OFFSET = 946684800
# The longest a watchdog may go unfed before it resets the board. The RP2040's hardware
# watchdog counts to 8.3 s at most; the loop feeds it at least every WATCHDOG_S / 2.
WATCHDOG_S = 8.0


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
        self.watchdog_s = float(profile.get("watchdog_s", WATCHDOG_S))
        clock = profile.get("clock") or {}
        # NTP state for netclock.keep_time: [server, last attempt, last success]
        self._ntp = [clock.get("host"), None, None] if clock.get("ntp") else None
        self._clock_ok = self._ntp is None
        # time.gmtime(0) names the port's epoch year
        self._epoch_offset = EPOCH_2000_OFFSET if time.gmtime(0)[0] == 2000 else 0

    # -- clock ------------------------------------------------------------------------------

    def wall_time(self):
        return time.time() + self._epoch_offset

    def clock_valid(self, now):
        """True once the RTC holds real time. With NTP, sets the clock when due and the
        network is up (``netclock.keep_time``: every 30 s until it works, then hourly)."""
        if self._ntp is not None and self.network_ready():
            from edgeledger.firmware import netclock

            netclock.keep_time(self._ntp, self.nic, now)
        if self._clock_ok:
            return True
        if self.wall_time() >= MIN_VALID_TIME:
            self._clock_ok = True
        return self._clock_ok

    # -- watchdog ---------------------------------------------------------------------------

    def watchdog(self, timeout_s=WATCHDOG_S, clock=None):
        """Start the watchdog (it cannot be stopped on a board); returns its ``feed``.

        The unix port has no ``machine.WDT``: the board stands in and records in
        ``wdt`` what a hardware watchdog would have seen: [timeout, clock, last feed,
        feeds, longest gap between two, gaps over the timeout (resets)].
        """
        if self.name != "unix":
            import machine

            return machine.WDT(timeout=int(timeout_s * 1000)).feed
        clock = clock or time.time
        self.wdt = [timeout_s, clock, clock(), 0, 0.0, 0]
        return self._feed_shim

    def _feed_shim(self):
        w = self.wdt
        now = w[1]()
        gap = now - w[2]
        if gap > w[4]:
            w[4] = gap
        if gap > w[0]:
            w[5] += 1  # a board would have been reset here
        w[2] = now
        w[3] += 1

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

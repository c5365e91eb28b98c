"""Bringing a board's network interface up (``board.json`` -> ``network``), once at start.

Imported by ``startup.prepare`` only on boards whose network is not the host's
(the unix port never loads it). ``network_start`` returns at once; the loop
polls ``Board.network_ready`` and keeps sampling meanwhile.
"""
from edgeledger.agent import errors


def network_start(board, cfg):
    """Start bringing the board's interface up (returns at once). Raises ConfigError."""
    net = board.network
    kind = net.get("kind", "host")
    if kind == "host":
        return
    import network

    if kind == "wlan":
        wifi = cfg.get("wifi") or {}
        if not wifi.get("ssid"):
            raise errors.ConfigError("board %s uses Wi-Fi: config.json needs wifi.ssid" % board.name)
        nic = network.WLAN(network.STA_IF)
        nic.active(True)
        nic.connect(wifi["ssid"], wifi.get("password", ""))
    elif kind == "lan":
        from machine import Pin

        nic = network.LAN(mdc=Pin(net["mdc"]), mdio=Pin(net["mdio"]),
                          power=Pin(net["power"]) if net.get("power") is not None else None,
                          phy_type=getattr(network, "PHY_" + net.get("phy", "LAN8720")),
                          phy_addr=net.get("phy_addr", 0))
        nic.active(True)
    elif kind == "wiznet5k":
        from machine import SPI, Pin

        spi = SPI(net["spi"], 2000000, sck=Pin(net["sck"]), mosi=Pin(net["mosi"]),
                  miso=Pin(net["miso"]))
        nic = network.WIZNET5K(spi, Pin(net["cs"]), Pin(net["reset"]))
        nic.active(True)
    else:
        raise errors.ConfigError("board network kind must be host, wlan, lan or wiznet5k, found %r"
                          % (kind,))
    static = cfg.get("ifconfig")  # [ip, netmask, gateway, dns]; DHCP otherwise
    if static:
        nic.ifconfig(tuple(static))
    board.nic = nic

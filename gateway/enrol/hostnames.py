"""The names and addresses devices may use to reach this machine, for the broker certificate.

A device checks that the broker's certificate names the host it connected to (RFC 6125
§6.4; paho and MicroPython's ``ssl`` do so with ``server_hostname``). A certificate that
names only ``localhost`` fails that check for every device on another machine, so
``broker config`` puts this machine's host name and its non-loopback addresses in the
certificate too (``machine_names``), besides the names the operator adds with ``--host``.
"""
import fcntl
import ipaddress
import socket
import struct

# Linux ioctl that reads an interface's IPv4 address (linux/sockios.h).
SIOCGIFADDR = 0x8915
# IPv6 addresses of every interface, one a line (Linux, proc(5) "/proc/net/if_inet6").
IF_INET6 = "/proc/net/if_inet6"
# An interface name and the 40-byte ``struct ifreq`` it goes in (linux/if.h: IFNAMSIZ 16).
IFNAMSIZ = 16
IFREQ_SIZE = 40


def _ipv4_addresses() -> list[str]:
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            req = struct.pack("%ds" % IFREQ_SIZE, name.encode()[: IFNAMSIZ - 1])
            try:
                res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)
            except OSError:  # no IPv4 address on this interface (or it is down)
                continue
            out.append(socket.inet_ntoa(res[20:24]))  # sockaddr_in.sin_addr
    return out


def _ipv6_addresses() -> list[str]:
    try:
        with open(IF_INET6) as f:
            lines = f.read().splitlines()
    except OSError:  # not Linux, or IPv6 disabled
        return []
    out = []
    for line in lines:
        fields = line.split()
        if fields and len(fields[0]) == 32:
            out.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return out


def _resolved(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def reachable(address: str) -> bool:
    """True for an address another machine can connect to: not loopback, not link-local
    (an fe80:: address needs a zone index no certificate can name), not unspecified."""
    ip = ipaddress.ip_address(address)
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def machine_names() -> list[str]:
    """This machine's host name, its fully qualified name when that differs and is not
    ``localhost``, then its reachable addresses (IPv4 first); no duplicates. A name that is
    not ASCII is left out (add its A-label with ``--host``)."""
    host = socket.gethostname()
    names = [host] if host.isascii() else []  # a certificate holds DNS names in ASCII (A-labels)
    fqdn = socket.getfqdn()
    if fqdn.isascii() and fqdn not in (host, "localhost") and not fqdn.startswith("localhost."):
        names.append(fqdn)
    for addr in _ipv4_addresses() + _ipv6_addresses() + _resolved(host):
        if reachable(addr) and addr not in names:
            names.append(addr)
    return names

"""Name lookup and NTP with a bound on the wait, for boards with their own network
interface (the unix port uses the host's resolver and clock and never loads this).

lwIP's ``getaddrinfo`` cannot be bounded in time, so a name is looked up with one UDP
query to the interface's DNS server (``protocols/dns.py``) and only numeric addresses
reach ``getaddrinfo``; ``ntptime`` (micropython-lib) then gets an address, not a name.
"""
import socket

from edgeledger.protocols import dns

DNS_PORT = 53
NTP_RETRY_S = 30.0  # until the clock is set, NTP is tried this often
NTP_TIMEOUT_S = 0.5  # one NTP query may hold the loop this long (the default max_block_ms)
# Once set, the RTC is set again this often: an ESP32's RC-based RTC drifts by seconds
# an hour, its crystal-driven one and the RP2040's by seconds a day.
NTP_PERIOD_S = 3600.0


def resolve(nic, host, port, timeout_s):
    """The socket address of ``host``, waiting at most ``timeout_s``. Raises OSError
    (timeout, no answer) or DnsError (a ValueError)."""
    if not dns.is_ipv4(host):
        import os

        txid = os.urandom(2)
        txid = txid[0] << 8 | txid[1]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.settimeout(timeout_s)
            sock.sendto(dns.query(txid, host), socket.getaddrinfo(nic.ifconfig()[3], DNS_PORT)[0][-1])
            host = dns.first_address(txid, sock.recv(512))
        finally:
            sock.close()
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]


def resolver(nic):
    """``resolve`` bound to the interface ``nic``: the MQTT client's ``resolve``."""
    return lambda host, port, timeout_s: resolve(nic, host, port, timeout_s)


def keep_time(state, nic, now):
    """Set the RTC by NTP when due: NTP_PERIOD_S after the last success, and until an
    attempt works, every NTP_RETRY_S. ``state`` is the board's ``[server, last attempt,
    last success]``."""
    tried, synced = state[1], state[2]
    if tried is not None and (now - tried < NTP_RETRY_S
                              or synced is not None and now - synced < NTP_PERIOD_S):
        return
    state[1] = now
    if ntp_sync(nic, state[0], NTP_TIMEOUT_S):
        state[2] = now


def ntp_sync(nic, host, timeout_s):
    """Set the RTC with one NTP query; False when it failed (no answer within
    ``timeout_s``, no ``ntptime``, a bad answer)."""
    try:
        import ntptime

        ntptime.host = resolve(nic, host or ntptime.host, 123, timeout_s)[0]
        ntptime.timeout = timeout_s
        ntptime.settime()
        return True
    except (ImportError, OSError, OverflowError, ValueError):
        return False

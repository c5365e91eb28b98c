"""Small helpers for tests that start local services on loopback."""
import socket
import time

from edgeledger.gateway.bench.mosquitto import free_port, wait_port  # noqa: F401 (re-exported)


def free_ports(n):
    """``n`` distinct free loopback ports. (Two free_port() calls in a row may return the
    same port: the first is released before the second is chosen.)"""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll ``predicate`` until it is truthy; raise AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))

"""Small helpers for tests that start local services on loopback."""
import time

from edgeledger.gateway.bench.mosquitto import free_port, wait_port  # noqa: F401 (re-exported)


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll ``predicate`` until it is truthy; raise AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))

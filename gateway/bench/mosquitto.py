"""A Mosquitto broker as a child process on a free loopback port: benchmarks and tests.

The test suite uses it through tests/support/broker.py. ``stop()`` and ``start()`` again
keep the port, so fault tests can take the broker away and bring it back. The default
configuration lets the gateway hold
many QoS 1 messages un-PUBACKed (it acknowledges only after its commit) and never
drops a queued message: ``max_queued_messages 0`` means no limit (mosquitto.conf(5)),
so a message lost in a benchmark is lost by the gateway, not by the broker.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from edgeledger.gateway.errors import GatewayError

START_TIMEOUT_S = 10.0


class BrokerMissing(GatewayError, RuntimeError):
    """The mosquitto binary is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = START_TIMEOUT_S, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on %s:%d after %.1f s" % (host, port, timeout))


def mosquitto_binary() -> str:
    """Path of mosquitto. Raises BrokerMissing with the install hint."""
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise BrokerMissing("expected the mosquitto binary on PATH or at /usr/sbin/mosquitto, found none: "
                        "apt-get install mosquitto")


class Mosquitto:
    """One broker; use as a context manager (started on enter, killed and cleaned on exit)."""

    def __init__(self, port: int | None = None, extra: Iterable[str] = (), config_text: str | None = None,
                 workdir: str | None = None) -> None:
        """``extra`` lines are appended to the default config; ``config_text`` replaces it."""
        self.port = port or free_port()
        self.workdir = workdir or tempfile.mkdtemp(prefix="el-mosq-")
        os.makedirs(self.workdir, exist_ok=True)
        self.config_path = os.path.join(self.workdir, "mosquitto.conf")
        self.log_path = os.path.join(self.workdir, "mosquitto.log")
        if config_text is None:
            config_text = "\n".join([
                "listener %d 127.0.0.1" % self.port,
                "allow_anonymous true",
                "max_inflight_messages 0",
                "max_queued_messages 0",
                "persistence false",
                "sys_interval 1",  # $SYS/broker/subscriptions/count: the bench waits for the gateway's
                "log_dest stderr",
                "log_type error",
                "log_type warning",
            ] + list(extra)) + "\n"
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self) -> "Mosquitto":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", self.config_path],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        try:
            wait_port(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError("mosquitto did not start: %s" % self.log()) from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_subscriptions(port: int, at_least: int, timeout: float = 60.0) -> None:
    """Wait until the broker counts ``at_least`` subscriptions ($SYS, every second).
    Raises RuntimeError with the last count seen."""
    import threading

    import paho.mqtt.client as mqtt

    seen = {"n": -1}
    done = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        try:
            seen["n"] = int(msg.payload)
        except ValueError:
            return
        if seen["n"] >= at_least:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="el-bench-sys")
    c.on_message = on_message
    c.on_connect = lambda client, *a: client.subscribe("$SYS/broker/subscriptions/count")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        if not done.wait(timeout):
            raise RuntimeError("expected %d subscriptions at the broker within %.0f s, found %d"
                               % (at_least, timeout, seen["n"]))
    finally:
        c.disconnect()
        c.loop_stop()

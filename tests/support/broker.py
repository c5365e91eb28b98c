"""A real Mosquitto broker as a child process on a free loopback port.

The broker runs in the foreground with its own config file; ``stop()`` and
``start()`` again keep the port, so fault tests can take it away and bring it
back. Mosquitto must be installed (``make test`` installs it from Debian
packages); a missing binary fails the test loudly.
"""
import os
import shutil
import signal
import subprocess
import tempfile

from tests.support.net import free_port, wait_port


def mosquitto_binary():
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("mosquitto is missing: run `make test`, which installs it from Debian packages")


class Mosquitto:
    """One broker. ``extra`` lines are appended to the generated config."""

    def __init__(self, port=None, extra=(), config_text=None, workdir=None):
        self.port = port or free_port()
        self.workdir = workdir or tempfile.mkdtemp(prefix="mosq-")
        os.makedirs(self.workdir, exist_ok=True)
        self.proc = None
        self.config_path = os.path.join(self.workdir, "mosquitto.conf")
        if config_text is None:
            lines = [
                "listener %d 127.0.0.1" % self.port,
                "allow_anonymous true",
                # the gateway holds PUBACKs until commit: let many QoS 1 messages be in flight
                "max_inflight_messages 0",
                "max_queued_messages 100000",
                "persistence false",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
            ]
            lines.extend(extra)
            config_text = "\n".join(lines) + "\n"
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.workdir, "mosquitto.log")

    @property
    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", self.config_path],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            wait_port(self.port, timeout=10)
        except RuntimeError:
            self.stop()
            raise RuntimeError("mosquitto did not start:\n" + self.log())
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

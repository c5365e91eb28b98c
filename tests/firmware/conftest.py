"""Fixtures for the firmware tests: the built unix image and devices running it."""
import json
import os
import shutil
import signal
import subprocess

import pytest

from tests.support.mpy import micropython_binary

# The GC heap the device loop gets in the end-to-end tests (see docs/firmware.md, "Heap").
# The issue asks for 64K. On the 64-bit unix port the loop's floor, measured with
# `edgeledger bench device` after the device-side split (lean encoders, start-up code
# dropped before the loop, compact simulated profiles), is ~81 KB with EdDSA and ~77 KB with
# ES256 (it was 146/138 KB); 64K is not reached yet (docs/firmware.md §5 says what is left).
# 96K keeps a margin above the EdDSA floor these tests use.
DEVICE_HEAP = "96K"


def cli(argv):
    """Run ``edgeledger`` in-process with the firmware commands registered."""
    from edgeledger.gateway import cli as gateway_cli

    if "edgeledger.firmware.cmd" not in gateway_cli.COMMAND_MODULES:
        gateway_cli.COMMAND_MODULES = tuple(gateway_cli.COMMAND_MODULES) + ("edgeledger.firmware.cmd",)
    return gateway_cli.main(argv)


@pytest.fixture(scope="session")
def unix_image(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("image-unix"))
    assert cli(["firmware", "build", "--board", "unix", "--out", out]) == 0
    return out


class Device:
    """One unix-port 'board': a copy of the image plus config.json and the key file."""

    def __init__(self, image, site, name, until_seq, interval_s=0.02, **config):
        self.name = name
        self.dir = os.path.join(site.root, "board-" + name)
        shutil.copytree(image, self.dir)
        shutil.copy(os.path.join(site.root, name + ".key"), os.path.join(self.dir, name + ".key"))
        cfg = {"device": name, "site": site.site, "key_file": name + ".key",
               "broker": site.broker_url, "until_seq": until_seq, "drain_timeout_s": 60,
               "resend_after_s": 2.0, "max_backoff_s": 1.0, "max_block_ms": 500,
               "sources": [{"type": "simulated", "name": name, "kind": "meter",
                            "interval_s": interval_s, "channels": 1}]}
        cfg.update(config)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        self.log_path = os.path.join(site.root, name + ".device.log")
        self.proc = None

    def start(self, heapsize=DEVICE_HEAP):
        env = dict(os.environ, MICROPYPATH=".frozen")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([micropython_binary(), "-X", "heapsize=" + heapsize, "main.py"],
                                     cwd=self.dir, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return self

    def wait(self, timeout=120):
        return self.proc.wait(timeout=timeout)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def devices():
    made = []

    def make(*args, **kwargs):
        d = Device(*args, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.kill()

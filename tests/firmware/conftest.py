"""Fixtures for the firmware tests: the built unix image and devices running it."""
import json
import os
import shutil
import signal
import subprocess

import pytest

from edgeledger.gateway.boards.unix_port import device_command

# The GC heap the device loop gets in the end-to-end tests: the literal 64 KB on this
# 64-bit unix port (objects and pointers twice a 32-bit board's size). The image is the ROMFS
# deployment (`firmware build --romfs`, bytecode run in place from romfs.img mapped outside
# the heap, as a board runs it from flash): its floor is 53-57 KB (EdDSA, ES256, SM2), measured
# with bench device's heap_floor (docs/firmware.md, "What the heap needs"); the plain image with
# native code in lib/ needs 71-74 KB. EDGELEDGER_DEVICE_HEAP overrides the size.
DEVICE_HEAP = os.environ.get("EDGELEDGER_DEVICE_HEAP", "64K")


def cli(argv):
    """Run ``edgeledger`` in-process."""
    from edgeledger.gateway import cli as gateway_cli

    return gateway_cli.main(argv)


@pytest.fixture(scope="session")
def unix_image(tmp_path_factory):
    """The unix board image as a board with ROMFS gets it (``firmware build --romfs``)."""
    out = str(tmp_path_factory.mktemp("image-unix"))
    assert cli(["firmware", "build", "--board", "unix", "--out", out, "--romfs"]) == 0
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
        self.proc = subprocess.Popen(device_command(self.dir, heapsize), cwd=self.dir, stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
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

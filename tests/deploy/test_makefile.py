"""`make system-deps` (the first step of `make setup`): never runs apt-get as a user who is
not root (it names the Debian packages to install and fails), and never when the tools are
there. apt-get, id and the tools are stand-ins on PATH that record what was run."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MAKE = shutil.which("make") or "make"  # make is how the project is set up: missing, the test fails


def _bin(tmp_path, uid, present):
    """A PATH holding only stand-ins: `id -u` answers ``uid``, apt-get notes its call in
    tmp_path/apt-get.log, and the tools in ``present`` exist."""
    d = tmp_path / "bin"
    d.mkdir()
    stubs = {"id": "echo %d" % uid, "apt-get": 'echo "$@" >> %s' % (tmp_path / "apt-get.log")}
    stubs.update((tool, "exit 0") for tool in present)
    for name, body in stubs.items():
        (d / name).write_text("#!/bin/sh\n%s\n" % body)
        (d / name).chmod(0o755)
    return str(d)


def _system_deps(tmp_path, uid, present):
    path = _bin(tmp_path, uid, present)
    r = subprocess.run([MAKE, "--no-print-directory", "-C", ROOT, "system-deps"], capture_output=True, text=True,
                       env={"PATH": path, "HOME": str(tmp_path)}, timeout=60)
    log = tmp_path / "apt-get.log"
    return r, log.read_text() if log.exists() else ""


def test_a_user_is_told_which_packages_to_install_and_apt_get_is_not_run(tmp_path):
    r, apt = _system_deps(tmp_path, 1000, present=["socat"])
    assert r.returncode != 0 and apt == ""
    assert "sudo apt-get install mosquitto mosquitto-clients socat strace chromium" in r.stderr


@pytest.mark.parametrize("uid", [0, 1000])
def test_nothing_is_installed_when_the_tools_are_there(tmp_path, uid):
    r, apt = _system_deps(tmp_path, uid, present=["mosquitto", "socat", "strace", "chromium"])
    assert r.returncode == 0 and apt == "", r.stderr


def test_root_installs_what_is_missing(tmp_path):
    r, apt = _system_deps(tmp_path, 0, present=[])
    assert r.returncode == 0, r.stderr
    assert "install -y -qq mosquitto mosquitto-clients socat strace chromium" in apt

"""The README's "Running it for real" block, run as it is written (issue 15: "the README's
real-site path runs verbatim in a test").

The block is the first ``sh`` code block after the README comment naming this file. It runs
in bash (``-e -u -o pipefail``: any failing command fails the test) in an empty directory the
``mosquitto`` user can enter (the generated broker drops root), with the venv's ``edgeledger``
first on ``PATH``, against an anvil this test starts; ``RPC`` and ``MQTT_PORT`` come from the
environment as the README allows. What the block starts in the background (Mosquitto, the
gateway) runs in the script's own process group, which is killed afterwards. If the README
drifts from what the commands accept, this test fails."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from tests.support.anvil import running_anvil

pytestmark = pytest.mark.interop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARK = "tests/integration/test_readme_site.py runs the next block"
# The whole path on a loaded 2-core machine: imports, site init (scrypt, deployment), a
# 10 s batch, confirmations (about a minute alone). Generous, and below pytest's timeout
# (600 s) so that a hang reports the script's output.
SCRIPT_TIMEOUT_S = 480


def readme_block():
    """The shell block the README marks for this test."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    at = text.index(MARK)
    m = re.compile(r"```sh\n(.*?)```", re.S).search(text, at)
    assert m is not None, "no ```sh block after the README's test mark"
    return m.group(1)


def two_free_ports():
    """A port P with P + 1 free too (the broker's devices' and gateway's listeners)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as s1, socket.socket() as s2:
                s1.bind(("0.0.0.0", port))
                s2.bind(("0.0.0.0", port + 1))
            return port
        except OSError:
            continue
    raise AssertionError("no two consecutive free ports found")


def test_readme_real_site_path_runs_verbatim():
    script = readme_block()
    assert "edgeledger site init" in script and "edgeledger verify" in script
    workdir = tempfile.mkdtemp(prefix="el-readme-")
    os.chmod(workdir, 0o755)  # the generated broker runs as the mosquitto user
    with open(os.path.join(workdir, "readme.sh"), "w") as f:
        f.write(script)
    try:
        with running_anvil() as node:
            env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
                       RPC=node.url, MQTT_PORT=str(two_free_ports()))
            env.pop("FUNDER_KEY", None)
            log_path = os.path.join(workdir, "readme.log")
            with open(log_path, "wb") as log:  # a file, not a pipe: the background jobs keep it open
                proc = subprocess.Popen(["bash", "-e", "-u", "-o", "pipefail", "readme.sh"], cwd=workdir, env=env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait(timeout=SCRIPT_TIMEOUT_S)
            finally:
                os.killpg(proc.pid, signal.SIGKILL)  # the broker and gateway the block started
                proc.wait()
            with open(log_path, "rb") as f:
                out = f.read().decode("utf-8", "replace")
        assert proc.returncode == 0, out[-6000:]
        verified = r"^OK bundle\.cbor: meter-01 seq 3 on site plant-a, verified on chain$"
        assert re.search(verified, out, re.M), out[-6000:]
        assert "all 7 checks passed" in out, out[-6000:]
        trusted = re.search(r"trusted   chain 31337, contract 0x[0-9a-fA-F]{40} \(EdgeLedgerAnchor v2\), deployment "
                            r"file sha256 ([0-9a-f]{64})$", out, re.M)
        assert trusted is not None, out[-6000:]
        assert "deployment.json written, sha256 %s" % trusted.group(1) in out  # the hash site init printed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

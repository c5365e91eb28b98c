"""anvil (Foundry's local Ethereum node, installed by ``npm ci``) as a child process.

The benchmark commands' own copy of tests/support/anvil.py's essentials (tests/ is
not installed). A missing binary raises AnvilMissing with the install hint.
"""
import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from edgeledger.gateway.bench.mosquitto import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
}
START_TIMEOUT_S = 20.0
FUND_WEI = 10 ** 21


class AnvilMissing(RuntimeError):
    """The anvil binary is not installed."""


def anvil_binary():
    pkg = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()), "anvil-linux-amd64")
    path = os.path.join(ROOT, "node_modules", "@foundry-rs", pkg, "bin", "anvil")
    if not os.access(path, os.X_OK):
        found = shutil.which("anvil")
        if found:
            return found
        raise AnvilMissing("expected the anvil binary at %s, found none: run `npm ci` in %s" % (path, ROOT))
    return path


def rpc(url, method, params=(), timeout=5.0):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RuntimeError("%s: %s" % (method, answer["error"]))
    return answer["result"]


class Anvil:
    """One anvil process; a context manager. ``block_time`` None = automine."""

    def __init__(self, block_time=None, hardfork="london"):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.dir = tempfile.mkdtemp(prefix="el-bench-anvil-")
        cmd = [anvil_binary(), "--host", "127.0.0.1", "--port", str(self.port), "--hardfork", hardfork]
        if block_time:
            cmd += ["--block-time", str(block_time)]
        self.cmd = cmd
        self.proc = None

    def __enter__(self):
        log = open(os.path.join(self.dir, "anvil.log"), "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("anvil exited with %d at start" % self.proc.returncode)
            try:
                rpc(self.url, "eth_chainId", timeout=0.5)
                return self
            except (OSError, urllib.error.URLError, ValueError):
                if time.monotonic() > deadline:
                    raise RuntimeError("anvil did not answer on %s" % self.url)
                time.sleep(0.05)

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def new_funded_key(self):
        from eth_account import Account

        key = "0x" + os.urandom(32).hex()
        rpc(self.url, "anvil_setBalance", [Account.from_key(key).address, hex(FUND_WEI)])
        return key

    def ledger(self):
        """A JsonRpcLedger with a fresh funded key, the contract deployed, itself a gateway."""
        from edgeledger.gateway.ledger import JsonRpcLedger

        key = self.new_funded_key()
        ledger = JsonRpcLedger(self.url, key=key)
        ledger.deploy(owner_key=key)
        ledger.set_gateway(ledger.account, True)
        return ledger

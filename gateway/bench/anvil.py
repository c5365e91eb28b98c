"""anvil (Foundry's local Ethereum node, from npm) as a child process: benchmarks and tests.

    with running_anvil(block_time=None, hardfork="london") as node:
        ledger = JsonRpcLedger(node.url, key=node.new_funded_key())
        ...
        node.stop()      # stops the process; with a state file the chain is dumped
        node.start()     # same port, state loaded back

The binary comes from `npm ci` (package.json pins @foundry-rs/anvil); a missing binary raises
AnvilMissing with the install hint (a test fails loudly, it never skips). The test suite
imports this module through tests/support/anvil.py. ``Anvil`` keeps its chain across ``stop``/``start``
through ``--state FILE`` (load at start, dump on exit) when ``persistent=True`` (the default).
"""
import contextlib
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
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.bench.mosquitto import free_port
from edgeledger.gateway.errors import GatewayError

if TYPE_CHECKING:
    from edgeledger.gateway.anchor.ledger import JsonRpcLedger

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
}
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
FUND_WEI = 10**21


class AnvilMissing(GatewayError, RuntimeError):
    """The anvil binary is not installed."""


def anvil_binary() -> str:
    """Path of the anvil binary installed by npm (or on PATH). Raises AnvilMissing with a hint."""
    pkg = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()), "anvil-linux-amd64")
    path = os.path.join(ROOT, "node_modules", "@foundry-rs", pkg, "bin", "anvil")
    if os.access(path, os.X_OK):
        return path
    found = shutil.which("anvil")
    if found:
        return found
    raise AnvilMissing(
        "expected the anvil binary at %s, found none: run `make test` (it runs `npm ci`, "
        "which installs @foundry-rs/anvil from package-lock.json)" % path)


def rpc(url: str, method: str, params: Iterable[object] = (), timeout: float = 5.0) -> Any:
    """One raw JSON-RPC request; returns ``result``; raises RuntimeError on an error object."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RuntimeError("%s: %s" % (method, answer["error"]))
    return answer["result"]


class Anvil(object):
    """One anvil process on a fixed loopback port; restartable with the same chain state."""

    def __init__(self, port: int | None = None, block_time: float | None = None, hardfork: str | None = "london",
                 persistent: bool = True, chain_id: int | None = None, extra_args: Iterable[str] = ()) -> None:
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.block_time = block_time
        self.hardfork = hardfork
        self.chain_id = chain_id
        self.extra_args = list(extra_args)
        self._dir = tempfile.mkdtemp(prefix="anvil-")
        self.state_path = os.path.join(self._dir, "state.json") if persistent else None
        self.log_path = os.path.join(self._dir, "anvil.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [anvil_binary(), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        if self.hardfork:
            cmd += ["--hardfork", self.hardfork]
        if self.chain_id:
            cmd += ["--chain-id", str(self.chain_id)]
        if self.state_path:
            cmd += ["--state", self.state_path]
        return cmd + self.extra_args

    def start(self, timeout: float = START_TIMEOUT_S) -> "Anvil":
        """Start (or restart) anvil and wait until it answers eth_chainId."""
        assert self.proc is None, "anvil already running"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError("anvil exited with %d at start; log:\n%s" % (code, self.log_tail()))
            try:
                rpc(self.url, "eth_chainId", timeout=0.5)
                return self
            except (OSError, urllib.error.URLError, ValueError):
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("anvil did not answer on %s within %.0f s; log:\n%s" % (
                        self.url, timeout, self.log_tail())) from None
                time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop anvil gracefully (SIGINT: it dumps ``--state`` on the way out)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Stop without giving anvil a chance to dump state (a crash)."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self, down_for: float = 0.0) -> "Anvil":
        self.stop()
        if down_for:
            time.sleep(down_for)
        return self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- dev helpers

    def ledger(self, sites: Iterable[str] = ("bench",)) -> "JsonRpcLedger":
        """A JsonRpcLedger with a fresh funded key, the contract deployed, itself the gateway of
        ``sites``."""
        from edgeledger.gateway.anchor.ledger import JsonRpcLedger

        key = self.new_funded_key()
        ledger = JsonRpcLedger(self.url, key=key)
        ledger.deploy(owner_key=key)
        for site in sites:
            ledger.authorize_gateway(site, ledger.account)
        return ledger

    def rpc(self, method: str, *params: object) -> Any:
        return rpc(self.url, method, params)

    def fund(self, address: str, wei: int = FUND_WEI) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))

    def new_funded_key(self, wei: int = FUND_WEI) -> str:
        from eth_account import Account

        key = "0x" + os.urandom(32).hex()
        self.fund(Account.from_key(key).address, wei)
        return key

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)


@contextlib.contextmanager
def running_anvil(**kwargs: Any) -> Iterator[Anvil]:
    """Context manager: a started ``Anvil``; killed and its temp dir removed on exit."""
    node = Anvil(**kwargs)
    try:
        node.start()
        yield node
    finally:
        node.close()

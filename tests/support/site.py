"""A whole site for integration tests: gateway config, device keys, processes.

Gateways and agents run as real processes (``python -m edgeledger.gateway.cli``)
so tests can SIGKILL them at any moment.
"""
import os
import signal
import subprocess
import sys
import time

from edgeledger.agent import key_file, signer
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store

CLI = [sys.executable, "-m", "edgeledger.gateway.cli"]
# What `gateway run -v` logs once it listens: one process, or each ingest worker.
READY_MARKS = ("subscribed to", "subscribing to owned devices")
# A loaded single core can take tens of seconds to import web3 and connect.
GATEWAY_READY_TIMEOUT_S = 120.0


class Site:
    def __init__(self, root, broker_url, site="plant-a", gateway_extra="", store="gateway.db"):
        """``store``: the gateway store's path, relative to ``root`` or absolute (e.g. on a
        small filesystem of its own)."""
        os.makedirs(str(root), exist_ok=True)
        self.root = str(root)
        self.store_path = os.path.join(self.root, store)
        self.broker_url = broker_url
        self.site = site
        self.devices = {}
        self.gateway = None
        self.gateway_starts = 0
        self.agents = {}
        self.gateway_config = os.path.join(self.root, "gateway.toml")
        self._gateway_toml = 'gateway_id = "gw-test"\nstore = "%s"\nbroker = "%s"\n%s\n' % (
            self.store_path, broker_url, gateway_extra)
        # gateway.toml must name its ledger: the in-process chain unless the test chose one
        self._write_gateway_toml("" if "[ledger]" in gateway_extra else '[ledger]\nbackend = "embedded"\n')

    def _write_gateway_toml(self, ledger_section):
        with open(self.gateway_config, "w") as f:
            f.write(self._gateway_toml + ledger_section)

    def use_ledger(self, url, contract, gateway_key, confirmations=2, max_size=200, max_age_s=1.0, finality=None):
        """Point the gateway at a JSON-RPC ledger (key file written 0600)."""
        key_path = os.path.join(self.root, "gateway.ethkey")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(gateway_key)
        self._write_gateway_toml(
            '\n[ledger]\nbackend = "jsonrpc"\nurl = "%s"\ncontract = "%s"\nkey_file = "gateway.ethkey"\n'
            'confirmations = %d\n%s\n[batch]\nmax_size = %d\nmax_age_s = %r\n'
            % (url, contract, confirmations, "finality = %d\n" % finality if finality else "", max_size, max_age_s))

    def register_on_chain(self, ledger, name):
        """Register ``name``'s key on chain (``ledger`` signs: the owner or a gateway of the site)
        and note the chain's registration in the gateway registry, as provisioning does."""
        from edgeledger.gateway.anchor import keysync

        assert name in self.devices
        st = self.store()
        try:
            keysync.sync_chain(Registry(st), ledger)
        finally:
            st.close()

    def trust(self, ledger):
        """The verifier's trust root for this site's chain: its chain id and contract."""
        from edgeledger.gateway.proofs.verifier import TrustRoot

        return TrustRoot(ledger.chain_id, ledger.address)

    def anchored_count(self, st):
        return st.db.execute("SELECT COALESCE(SUM(tree_size), 0) FROM batches WHERE state='anchored'").fetchone()[0]

    def store(self):
        return Store(self.store_path)

    def add_device(self, name, alg="EdDSA", kind="meter", interval_s=0.005, pack_size=1,
                   register=True, extra="", source_toml=None):
        """Write ``<name>.key`` and ``<name>.toml``; ``source_toml`` replaces the simulated
        ``[[sources]]`` table (e.g. a modbus source on a pty), ``kind``/``interval_s`` then unused."""
        s = signer.generate(alg, name)
        key_path = os.path.join(self.root, name + ".key")
        with open(key_path, "w") as f:
            f.write(key_file.key_file_content(name, alg, s.private_bytes()))
        cfg_path = os.path.join(self.root, name + ".toml")
        if source_toml is None:
            source_toml = ('[[sources]]\ntype = "simulated"\nname = "%s"\nkind = "%s"\ninterval_s = %r\n'
                           % (name, kind, interval_s))
        with open(cfg_path, "w") as f:
            f.write('device = "%s"\nsite = "%s"\nkey_file = "%s.key"\nbroker = "%s"\n'
                    'pack_size = %d\nresend_after_s = 2.0\n%s\n%s'
                    % (name, self.site, name, self.broker_url, pack_size, extra, source_toml))
        if register:
            st = self.store()
            Registry(st).register(name, self.site, s.alg, s.public_key, s.kid)
            st.close()
        self.devices[name] = s
        return s

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, args, log_name, prefix=()):
        log = open(os.path.join(self.root, log_name), "ab")
        proc = subprocess.Popen(list(prefix) + CLI + args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        log.close()
        return proc

    def cli(self, *args, timeout=120):
        return subprocess.run(CLI + list(args), capture_output=True, text=True, cwd=self.root, timeout=timeout)

    def start_gateway(self, *extra, prefix=()):
        """``prefix``: a command the gateway runs under (e.g. strace)."""
        assert self.gateway is None or self.gateway.poll() is not None
        self.gateway = self._spawn(["-v", "gateway", "run", "--config", self.gateway_config] + list(extra),
                                   "gateway.log", prefix)
        self.gateway_starts += 1
        return self.gateway

    def wait_gateway_ready(self, timeout=GATEWAY_READY_TIMEOUT_S):
        """Wait until the gateway started last has subscribed (its start-up -- imports,
        store, connect -- takes as long as the machine makes it); fail at once, with its
        log, if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log("gateway.log", tail=None)  # every start's line counts, however long the log
            if sum(text.count(m) for m in READY_MARKS) >= self.gateway_starts:
                return
            assert self.gateway.poll() is None, "the gateway exited with %s:\n%s" % (
                self.gateway.returncode, text[-4000:])
            assert time.monotonic() < deadline, "the gateway did not subscribe within %.0f s:\n%s" % (
                timeout, text[-4000:])
            time.sleep(0.05)

    wait_gateway_subscribed = wait_gateway_ready
    def start_one(self, name, last, interval_s, stored_first=1):
        """One simulated device, the gateway, and (once the gateway subscribed) its agent
        sealing up to ``last``; returns an open store once ``stored_first`` are stored."""
        self.add_device(name, interval_s=interval_s)
        self.start_gateway()
        self.wait_gateway_subscribed()
        self.start_agent(name, last)
        st = self.store()
        deadline = time.monotonic() + 120
        while st.count_messages() < stored_first:
            if time.monotonic() > deadline:
                raise AssertionError("%s stored %d of %d readings in 120 s" % (name, st.count_messages(), stored_first))
            time.sleep(0.05)
        return st

    def start_fleet(self, n, last, interval_s=0.005, prefix="dev"):
        """``n`` simulated devices (``<prefix>-<i>``), the gateway, and an agent per device
        sealing up to ``last``; returns an open store to watch them with."""
        for i in range(n):
            self.add_device("%s-%d" % (prefix, i), interval_s=interval_s)
        self.start_gateway()
        self.wait_gateway_ready()
        for name in self.devices:
            self.start_agent(name, last)
        return self.store()

    def kill_gateway(self, sig=signal.SIGKILL):
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(sig)
            self.gateway.wait(timeout=30)

    def start_agent(self, name, until_seq):
        self.agents[name] = self._spawn(
            ["agent", "run", "--config", os.path.join(self.root, name + ".toml"),
             "--until-seq", str(until_seq), "--drain-timeout", "300"], name + ".log")
        return self.agents[name]

    def kill_agent(self, name):
        proc = self.agents[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    def wait_agents(self, timeout=300):
        """Wait for every agent to exit; fail at once (with its log) if the gateway died."""
        deadline = time.monotonic() + timeout
        codes = {}
        while len(codes) < len(self.agents):
            for name, proc in self.agents.items():
                if name not in codes and proc.poll() is not None:
                    codes[name] = proc.returncode
            if self.gateway is not None and self.gateway.poll() is not None:
                raise AssertionError("the gateway exited with %s while agents ran:\n%s"
                                     % (self.gateway.returncode, self.log("gateway.log")))
            if time.monotonic() > deadline:
                raise AssertionError("agents still running after %.0f s: %s" % (
                    timeout, [n for n in self.agents if n not in codes]))
            time.sleep(0.05)
        return codes

    def log(self, name, tail=4000):
        """The last ``tail`` characters of a process's log (all of it with ``tail=None``)."""
        try:
            with open(os.path.join(self.root, name), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return text if tail is None else text[-tail:]

    def stop(self):
        for proc in list(self.agents.values()) + [self.gateway]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)


def count_exactly_once(store, expected):
    """Compare the store to ``{device: last_seq}``; return (lost, duplicated, broken_links)."""
    lost = duplicated = broken = 0
    for device, last in expected.items():
        seqs = store.seqs(device)
        distinct = set(seqs)
        duplicated += len(seqs) - len(distinct)
        lost += sum(1 for s in range(1, last + 1) if s not in distinct)
        rows = store.db.execute("SELECT seq, prev, digest FROM messages WHERE device=? ORDER BY seq",
                                (device,)).fetchall()
        prev_digest = b"\x00" * 32
        prev_seq = 0
        for seq, prev, digest in rows:
            if seq == prev_seq + 1 and prev != prev_digest:
                broken += 1
            prev_seq, prev_digest = seq, digest
    return lost, duplicated, broken

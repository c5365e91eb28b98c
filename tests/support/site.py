"""A whole site for integration tests: gateway config, device keys, processes.

Gateways and agents run as real processes (``python -m edgeledger.gateway.cli``)
so tests can SIGKILL them at any moment.
"""
import os
import signal
import subprocess
import sys

from edgeledger.agent import signer
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store

CLI = [sys.executable, "-m", "edgeledger.gateway.cli"]


class Site:
    def __init__(self, root, broker_url, site="plant-a", gateway_extra=""):
        os.makedirs(str(root), exist_ok=True)
        self.root = str(root)
        self.broker_url = broker_url
        self.site = site
        self.devices = {}
        self.gateway = None
        self.agents = {}
        self.gateway_config = os.path.join(self.root, "gateway.toml")
        with open(self.gateway_config, "w") as f:
            f.write('gateway_id = "gw-test"\nstore = "gateway.db"\nbroker = "%s"\n%s\n'
                    % (broker_url, gateway_extra))

    def store(self):
        return Store(os.path.join(self.root, "gateway.db"))

    def add_device(self, name, alg="EdDSA", kind="meter", interval_s=0.005, pack_size=1,
                   register=True, extra=""):
        s = signer.generate(alg, name)
        key_path = os.path.join(self.root, name + ".key")
        with open(key_path, "w") as f:
            f.write(signer.key_file_content(name, alg, s.private_bytes()))
        cfg_path = os.path.join(self.root, name + ".toml")
        with open(cfg_path, "w") as f:
            f.write('device = "%s"\nsite = "%s"\nkey_file = "%s.key"\nbroker = "%s"\n'
                    'pack_size = %d\nresend_after_s = 2.0\n%s\n'
                    '[[sources]]\ntype = "simulated"\nname = "%s"\nkind = "%s"\ninterval_s = %r\n'
                    % (name, self.site, name, self.broker_url, pack_size, extra, name, kind, interval_s))
        if register:
            st = self.store()
            Registry(st).register(name, self.site, s.alg, s.public_key, s.kid)
            st.close()
        self.devices[name] = s
        return s

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, args, log_name):
        log = open(os.path.join(self.root, log_name), "ab")
        proc = subprocess.Popen(CLI + args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        log.close()
        return proc

    def start_gateway(self, *extra):
        assert self.gateway is None or self.gateway.poll() is not None
        self.gateway = self._spawn(["-v", "gateway", "run", "--config", self.gateway_config] + list(extra),
                                   "gateway.log")
        return self.gateway

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
        codes = {}
        for name, proc in self.agents.items():
            codes[name] = proc.wait(timeout=timeout)
        return codes

    def log(self, name):
        try:
            with open(os.path.join(self.root, name), "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

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

"""A site under attack, all real parts: Mosquitto on the configuration ``broker config``
generates (tests/security/conftest.py ``SecureBroker``), ``edgeledger gateway run`` as its
own process on the gateway's listener, devices provisioned with ``device provision`` that
publish with their bundle's credentials. Tests count what the good devices got through.
"""
import os
import signal
import ssl
import subprocess
import sys
import threading
import time

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway.enrol import provision
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols import mqtt, session, topics
from tests.security.conftest import SITE, Client
from tests.support.devices import FakeDevice
from tests.support.net import wait_until

CLI = [sys.executable, "-m", "edgeledger.gateway.cli"]
GATEWAY_ID = "gw-att"
GATEWAY_CLIENT_ID = "el-gw-" + GATEWAY_ID
# Generous waits: a loaded 2-core machine runs six suites at once.
WAIT_S = 60


class Device:
    """A provisioned device: its signer (FakeDevice) and an MQTT connection with its bundle."""

    def __init__(self, site, name, bundle):
        self.site, self.name, self.bundle = site, name, bundle
        self.fake = FakeDevice(name, SITE, signer=load_key_file(bundle.files["key"]))
        self.conn = None
        self.acks = []

    def credentials(self):
        """Client keyword arguments for this device's bundle credentials."""
        if self.site.broker.site.auth == "mtls":
            return {"cert": self.bundle.files["tls_cert"], "key": self.bundle.files["tls_key"]}
        with open(self.bundle.files["password"]) as f:
            return {"username": self.name, "password": f.read().strip()}

    def connect(self, **kw):
        b = self.site.broker
        creds = self.credentials()
        creds.update(kw)
        self.conn = Client(b, self.name, **creds)
        assert self.conn.wait(10), b.log()
        self.conn.client.on_message = self._on_message
        self.conn.subscribe(topics.ack(SITE, self.name))
        return self.conn

    def _on_message(self, client, userdata, msg):
        if msg.topic == topics.ack(SITE, self.name) and msg.payload:
            self.acks.append((time.monotonic(), session.decode_ack(bytes(msg.payload))))

    @property
    def topic(self):
        return self.fake.topic

    def publish(self, n=1, t=None):
        """Sign and publish ``n`` readings (QoS 1); returns their seqs and publish times."""
        sent = []
        for _ in range(n):
            msg = self.fake.next(t=t)
            self.conn.publish(self.topic, msg)
            sent.append((self.fake.seq, time.monotonic()))
        return sent

    def acked(self):
        return self.acks[-1][1] if self.acks else 0


class AttackSite:
    def __init__(self, root, broker, gateway_extra=""):
        self.root, self.broker = str(root), broker
        os.makedirs(self.root, exist_ok=True)
        self.db = os.path.join(self.root, "gateway.db")
        self.config = os.path.join(self.root, "gateway.toml")
        site = broker.site
        with open(self.config, "w") as f:
            f.write('gateway_id = "%s"\nstore = "gateway.db"\nbroker = "%s"\nsites = ["%s"]\n%s\n'
                    '[ledger]\nbackend = "none"\n\n[mqtt]\nusername = "%s"\npassword_file = "%s"\nca_file = "%s"\n'
                    % (GATEWAY_ID, broker.gateway_url, SITE, gateway_extra, site.gateway_user,
                       site.paths["gateway_pass"], site.pki.ca_path))
        self.store = Store(self.db)
        self.registry = Registry(self.store)
        self.gateway = None
        self._log_from = 0
        self.devices = {}

    # -- devices ------------------------------------------------------------------------------

    def provision(self, name, alg="EdDSA"):
        b = provision.provision(self.registry, name, SITE, os.path.join(self.root, "bundles", name),
                                broker=self.broker.site, alg=alg)
        if self.broker.site.auth == "password":
            self.broker.reload()  # the new password line
        d = self.devices[name] = Device(self, name, b)
        return d

    # -- the gateway process ------------------------------------------------------------------

    def start_gateway(self, *extra):
        assert self.gateway is None or self.gateway.poll() is not None
        self._log_from = len(self.log(tail=None))
        log = open(os.path.join(self.root, "gateway.log"), "ab")
        self.gateway = subprocess.Popen(CLI + ["-v", "gateway", "run", "--config", self.config] + list(extra),
                                        stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        log.close()
        if "--workers" not in extra:  # (worker processes do not log at INFO: probe() tells)
            wait_until(lambda: "subscribed to" in self.log(tail=None)[self._log_from:]
                       or self.gateway.poll() is not None, WAIT_S, what="the gateway connected and subscribed")
        assert self.gateway.poll() is None, self.log()
        return self.gateway

    def probe(self, *devices):
        """Wait until the gateway hears each device: a birth message it records in the store.
        Proves the subscription is live at the broker (no race with the first readings)."""
        for d in devices:
            payload = session.encode_birth("probe", d.fake.signer.kid, d.fake.seq, time.monotonic_ns(), {})

            def heard():
                d.conn.publish(topics.birth(SITE, d.name), payload)  # noqa: B023 (again until it is heard; called in this loop)
                return wait_until_or_none(lambda: self.store.db.execute(
                    "SELECT last_birth FROM devices WHERE device=?",
                    (d.name,)).fetchone()[0] == payload, 2.0)  # noqa: B023

            wait_until(heard, WAIT_S, interval=0, what="the gateway hears %s" % d.name)

    def stop_gateway(self, sig=signal.SIGTERM):
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(sig)
            self.gateway.wait(timeout=60)

    def alive(self):
        return self.gateway is not None and self.gateway.poll() is None

    def log(self, tail=6000):
        try:
            with open(os.path.join(self.root, "gateway.log"), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return text if tail is None else text[-tail:]

    def close(self):
        self.stop_gateway(signal.SIGKILL)
        for d in self.devices.values():
            if d.conn is not None:
                try:
                    d.conn.close()
                except Exception:
                    pass

    # -- what the store says ------------------------------------------------------------------

    def seqs(self, device):
        return self.store.seqs(device)

    def quarantined(self, reason=None):
        q = self.store.quarantine_reasons()
        return sum(q.values()) if reason is None else q.get(reason, 0)

    def counters(self):
        from edgeledger.gateway.ingest.runner import total_counters

        return total_counters(self.store.load_counters())

    def wait_stored(self, device, last, what=None):
        wait_until(lambda: self.seqs(device.name)[-1:] == [last] and device.acked() >= last, WAIT_S,
                   what=what or "%s stored and acked up to %d" % (device.name, last))
        assert self.seqs(device.name) == list(range(1, last + 1)), self.seqs(device.name)


def wait_until_or_none(predicate, timeout, interval=0.05):
    """Like wait_until, but None instead of an AssertionError at the deadline."""
    try:
        return wait_until(predicate, timeout, interval)
    except AssertionError:
        return None


class RawPublisher:
    """A device's own TLS socket that writes prepared QoS 1 PUBLISH packets flat out and reads
    (and drops) the PUBACKs on a thread: what a flooding client can do, without paho's cost."""

    def __init__(self, broker, device):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(broker.site.pki.ca_path)
        ctx.load_cert_chain(device.bundle.files["tls_cert"], device.bundle.files["tls_key"])
        import socket

        raw = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.sock.sendall(mqtt.connect("flood-" + device.name, 60))
        assert self.sock.recv(4)[:1] == b"\x20", "no CONNACK"
        self.sock.settimeout(None)
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.closed.set()

    def send(self, packets):
        try:
            self.sock.sendall(b"".join(packets))
            return True
        except OSError:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

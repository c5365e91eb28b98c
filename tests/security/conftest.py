"""Fixtures for the security suite: a Mosquitto started with the GENERATED configuration.

``secure_broker(auth)`` writes a site broker directory with ``BrokerSite.generate`` (the
code behind ``edgeledger broker config``) and runs Mosquitto on it. Test directories under
pytest's tmp_path are private to root, so these brokers keep root (``run_as="root"``); the
default (drop to the ``mosquitto`` user) is exercised by test_cli.py in a directory that
user can reach.
"""
import os
import signal
import ssl
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from edgeledger.gateway import cli
from edgeledger.gateway.enrol.broker_config import BrokerSite
from tests.support.broker import Mosquitto
from tests.support.net import free_ports, wait_port

SITE = "plant-a"


@pytest.fixture
def run_cli(capsys):
    """Run ``edgeledger ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*argv):
        capsys.readouterr()
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


class SecureBroker:
    """The generated broker: devices' listener on ``port``, the gateway's on ``gateway_port``."""

    def __init__(self, root, auth, acl_text=None, **generate):
        self.port, self.gateway_port = free_ports(2)
        self.site = BrokerSite(os.path.join(root, "broker")).generate(
            SITE, port=self.port, auth=auth, bind="127.0.0.1", run_as="root", gateway_port=self.gateway_port,
            **generate)
        if acl_text is not None:  # deliberately loose device ACLs for tests of the gateway's own checks
            with open(self.site.paths["acl"], "w") as f:
                f.write(acl_text)
        with open(self.site.paths["config"]) as f:
            text = f.read()
        self.mosquitto = Mosquitto(port=self.port, config_text=text, workdir=os.path.join(root, "mosq"))
        with open(self.site.paths["gateway_pass"]) as f:
            self.gateway_password = f.read().strip()

    def start(self):
        self.mosquitto.start()
        wait_port(self.gateway_port)
        return self

    def restart(self):
        """SIGTERM (Mosquitto saves its persistence file) and start again on the same ports."""
        self.mosquitto.proc.send_signal(signal.SIGTERM)
        self.mosquitto.proc.wait(timeout=30)
        self.mosquitto.proc = None
        return self.start()

    @property
    def gateway_url(self):
        return "mqtts://localhost:%d" % self.gateway_port

    def gateway_mqtt(self):
        """IngestService keyword arguments for the gateway's credentials."""
        return {"username": self.site.gateway_user, "password": self.gateway_password, "ca_file": self.site.pki.ca_path}

    def reload(self):
        """SIGHUP: Mosquitto rereads its password file, ACL and CRL."""
        self.mosquitto.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def stop(self):
        self.mosquitto.stop()

    @property
    def url(self):
        return "mqtts://localhost:%d" % self.port

    def log(self):
        return self.mosquitto.log()


@pytest.fixture
def secure_broker(tmp_path):
    started = []

    def make(auth="mtls", acl_text=None, **generate):
        b = SecureBroker(str(tmp_path), auth, acl_text, **generate).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


class Client:
    """A paho client that records what it receives and whether the broker accepted it."""

    def __init__(self, broker, name, cert=None, key=None, username=None, password=None,
                 tls=True, ca=True, port=None, client_id=None, clean_session=True):
        self.received = []
        self.connack = None
        self.connected = threading.Event()
        self.done = threading.Event()
        self.disconnects = 0
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "t-%s-%d" % (name, id(self)),
                        protocol=mqtt.MQTTv311, clean_session=clean_session)
        if tls:
            c.tls_set(ca_certs=broker.site.pki.ca_path if ca else None, certfile=cert, keyfile=key,
                      cert_reqs=ssl.CERT_REQUIRED if ca else ssl.CERT_NONE)
        if username is not None:
            c.username_pw_set(username, password)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = lambda cl, u, m: self.received.append((m.topic, bytes(m.payload)))
        self.client = c
        self.error = None
        try:
            c.connect("localhost", port or broker.port, keepalive=10)
        except (OSError, ssl.SSLError) as e:
            self.error = e
            self.done.set()
            return
        c.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code
        if not reason_code.is_failure:
            self.connected.set()
        self.done.set()

    def _on_disconnect(self, *args):
        self.disconnects += 1
        self.connected.clear()
        self.done.set()

    def wait(self, timeout=60.0):
        """True if the broker accepted the connection, False if it refused or hung up.
        No answer at all within ``timeout`` fails: silence is not a refusal."""
        assert self.done.wait(timeout), "the broker neither accepted nor refused within %.0f s" % timeout
        return self.connected.is_set()

    def publish(self, topic, payload, qos=1, retain=False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        return info

    def subscribe(self, *filters):
        got = threading.Event()
        self.client.on_subscribe = lambda *a: got.set()
        self.client.subscribe([(f, 1) for f in filters])
        assert got.wait(5), "no SUBACK"

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def after_reload(make, accepted, timeout=60):
    """A new client from ``make()`` until the broker answers as ``accepted`` says: a SIGHUP
    reload is applied by the broker's loop, some time after the signal."""
    deadline = time.monotonic() + timeout
    while True:
        if make().wait() == accepted:
            return
        assert time.monotonic() < deadline, "the broker did not %s the client within %.0f s of the reload" % (
            "accept" if accepted else "refuse", timeout)
        time.sleep(0.2)


@pytest.fixture
def clients():
    made = []

    def make(*args, **kw):
        c = Client(*args, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.close()
        except Exception:
            pass


def gateway_client(clients, broker, name="gw", **kw):
    """A client with the gateway's credentials, on the gateway's listener."""
    return clients(broker, name, username=broker.site.gateway_user, password=broker.gateway_password,
                   port=broker.gateway_port, **kw)


def device_cert(broker, name):
    """Issue a client certificate for ``name`` from the broker's site CA (cert, key)."""
    return broker.site.pki.issue_client(name)

"""The broker certificate names the hosts devices use: ``broker config --host NAME`` adds a
name, and this machine's host name and addresses are in it by default. Checked with a real
Mosquitto on the generated configuration and clients that verify the name (paho as the
Linux agent uses it; ``ssl`` with check_hostname for a name that does not resolve here)."""
import os
import socket
import ssl
import threading

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509

from edgeledger.gateway.enrol.broker_config import BrokerSite
from edgeledger.gateway.enrol.hostnames import machine_names
from tests.support.broker import Mosquitto
from tests.support.net import free_ports

pytestmark = pytest.mark.security

EXTRA = "broker.plant-a.example"


def cert_names(path):
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in san}


def connect_by_name(host, port, ca, user, password, timeout=60):
    """The CONNACK reason of a paho client that connects to ``host`` and checks that the
    broker certificate names it (paho's default with a CA), or the TLS error."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
    c.username_pw_set(user, password)
    done = threading.Event()
    result = []
    c.on_connect = lambda cl, u, flags, rc, props: (result.append(rc), done.set())
    try:
        c.connect(host, port, keepalive=10)
    except ssl.SSLCertVerificationError as e:
        return e
    c.loop_start()
    try:
        assert done.wait(timeout), "no CONNACK from %s:%d within %d s" % (host, port, timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    return result[0]


def tls_handshake(port, server_hostname, ca):
    ctx = ssl.create_default_context(cafile=ca)  # check_hostname and CERT_REQUIRED
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with ctx.wrap_socket(sock, server_hostname=server_hostname) as tls:
            return tls.version()


def test_devices_reach_the_broker_by_host_name_address_and_added_name(tmp_path, run_cli):
    port, gw_port = free_ports(2)
    bdir = str(tmp_path / "plant-a")
    code, out, err = run_cli("broker", "config", "--dir", bdir, "--port", port, "--gateway-port", gw_port,
                             "--bind", "0.0.0.0", "--auth", "password", "--run-as", "root", "--host", EXTRA)
    assert code == 0, err
    site = BrokerSite.load(bdir)
    names = cert_names(site.pki.server_path)
    host = socket.gethostname()
    ours = machine_names()
    assert {host, EXTRA, "localhost", "127.0.0.1", "::1"} <= names and set(ours) <= names
    assert "broker certificate names: %s, localhost" % EXTRA in out
    site.set_password("dev-1", "pw-dev-1")
    with open(site.paths["config"]) as f:
        conf = f.read()
    with Mosquitto(port=port, config_text=conf, workdir=str(tmp_path / "mosq")):
        ca = site.pki.ca_path
        # by this machine's host name (before --host and the defaults, a device got
        # "certificate verify failed: Hostname mismatch" here), and by every address it has
        assert not connect_by_name(host, port, ca, "dev-1", "pw-dev-1").is_failure
        for addr in ours[1:]:
            if ":" in addr:  # the listener binds 0.0.0.0 (IPv4): check the IPv6 names alone
                assert tls_handshake(port, addr, ca), addr
            else:
                assert not connect_by_name(addr, port, ca, "dev-1", "pw-dev-1").is_failure, addr
        # the name given with --host (not resolvable here: the name check alone)
        assert tls_handshake(port, EXTRA, ca) in ("TLSv1.2", "TLSv1.3")
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|doesn't match"):
            tls_handshake(port, "not-named.example", ca)


def test_no_machine_names_leaves_them_out(tmp_path, run_cli):
    port, gw_port = free_ports(2)
    bdir = str(tmp_path / "b")
    code, out, err = run_cli("broker", "config", "--dir", bdir, "--site", "plant-a", "--port", port,
                             "--gateway-port", gw_port, "--run-as", "root", "--no-machine-names",
                             "--host", EXTRA)
    assert code == 0, err
    names = cert_names(os.path.join(bdir, "pki", "server.pem"))
    assert names == {EXTRA, "localhost", "127.0.0.1", "::1"}


def test_machine_names_skip_loopback_link_local_and_non_ascii(monkeypatch):
    from edgeledger.gateway.enrol import hostnames

    monkeypatch.setattr(hostnames.socket, "gethostname", lambda: "zähler-pc")
    monkeypatch.setattr(hostnames.socket, "getfqdn", lambda: "localhost")
    monkeypatch.setattr(hostnames, "_ipv4_addresses", lambda: ["127.0.0.1", "10.20.0.5"])
    monkeypatch.setattr(hostnames, "_ipv6_addresses", lambda: ["::1", "fe80::1", "fd00::2"])
    monkeypatch.setattr(hostnames, "_resolved", lambda host: ["10.20.0.5", "0.0.0.0"])
    assert hostnames.machine_names() == ["10.20.0.5", "fd00::2"]

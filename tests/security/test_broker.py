"""The generated Mosquitto configuration, on a real broker: who may connect and what each
client may publish and read (DESIGN.md §4: per-device topic subtrees)."""
import socket
import ssl
import warnings

import pytest

from edgeledger.protocols import topics
from tests.security.conftest import SITE, after_reload, device_cert, gateway_client
from tests.support.net import wait_until

pytestmark = pytest.mark.security


def _arrived(client, message, timeout=60):
    """Wait until ``client`` received ``message`` (topic, payload). Messages of one publisher
    reach a subscriber in order (MQTT 3.1.1 4.6), so once the last one published is in,
    anything published before it that was going to be delivered is in too."""
    wait_until(lambda: message in client.received, timeout, what="%r at %s" % (message, client))


def test_device_cannot_publish_on_another_devices_topics(secure_broker, clients):
    b = secure_broker("mtls")
    gw = gateway_client(clients, b)
    a = clients(b, "a", *device_cert(b, "dev-a"))
    assert gw.wait() and a.wait(), b.log()
    gw.subscribe(*(topics.subscription(k, SITE) for k in ("r", "birth", "death")))
    for kind in ("r", "birth", "death"):
        a.publish(topics.topic(SITE, "dev-b", kind), b"forged-" + kind.encode())
    a.publish(topics.readings(SITE, "dev-a"), b"own")
    _arrived(gw, (topics.readings(SITE, "dev-a"), b"own"))
    assert gw.received == [(topics.readings(SITE, "dev-a"), b"own")]


def test_device_cannot_read_another_devices_acks_or_commands(secure_broker, clients):
    b = secure_broker("mtls")
    gw = gateway_client(clients, b)
    a = clients(b, "a", *device_cert(b, "dev-a"))
    assert gw.wait() and a.wait(), b.log()
    # specific filters, a wildcard, and everything: the broker checks every delivery
    a.subscribe(topics.ack(SITE, "dev-b"), topics.cmd(SITE, "dev-b"), "el/v1/%s/+/ack" % SITE, "#",
                topics.ack(SITE, "dev-a"), topics.cmd(SITE, "dev-a"))
    for device in ("dev-b", "dev-a"):
        gw.publish(topics.ack(SITE, device), b"ack-" + device.encode(), retain=True)
        gw.publish(topics.cmd(SITE, device), b"cmd-" + device.encode())
    _arrived(a, (topics.cmd(SITE, "dev-a"), b"cmd-dev-a"))  # the last one published
    assert sorted(a.received) == sorted([(topics.ack(SITE, "dev-a"), b"ack-dev-a"),
                                         (topics.cmd(SITE, "dev-a"), b"cmd-dev-a")])
    # and a device cannot write acks (it could free another device's outbox)
    b_ = clients(b, "b", *device_cert(b, "dev-b"))
    assert b_.wait()
    b_.subscribe(topics.ack(SITE, "dev-b"))
    _arrived(b_, (topics.ack(SITE, "dev-b"), b"ack-dev-b"))  # the retained ack
    retained = list(b_.received)
    a.publish(topics.ack(SITE, "dev-b"), b"forged-ack")
    # The broker queues a publish's deliveries before it PUBACKs it, so a sentinel the gateway
    # publishes now reaches b after anything of a's would have.
    gw.publish(topics.ack(SITE, "dev-b"), b"sentinel")
    _arrived(b_, (topics.ack(SITE, "dev-b"), b"sentinel"))
    assert b_.received == retained + [(topics.ack(SITE, "dev-b"), b"sentinel")]
    assert retained == [(topics.ack(SITE, "dev-b"), b"ack-dev-b")]


def test_client_without_certificate_is_refused(secure_broker, clients):
    b = secure_broker("mtls")
    anon = clients(b, "anon")  # TLS, verifies the server, presents no certificate
    assert not anon.wait()
    # a certificate from another CA is refused too
    from edgeledger.gateway.enrol.pki import SitePKI

    other = SitePKI(b.site.dir + "-other").init(SITE)
    stranger = clients(b, "stranger", *other.issue_client("dev-a"))
    assert not stranger.wait()
    ok = clients(b, "a", *device_cert(b, "dev-a"))
    assert ok.wait(), b.log()


def test_plaintext_connection_is_refused(secure_broker):
    b = secure_broker("mtls")
    # An MQTT 3.1.1 CONNECT (clean session, keepalive 10, client id "plain") in clear text.
    connect = bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 5]) + b"plain"
    with socket.create_connection(("127.0.0.1", b.port), timeout=5) as s:
        s.sendall(connect)
        try:
            reply = s.recv(64)
        except (ConnectionResetError, socket.timeout):
            reply = b""
    assert not reply.startswith(b"\x20"), "the broker answered a plaintext CONNECT with a CONNACK"
    # and no plaintext listener hides on the default port of this config: the two TLS ones only
    with open(b.site.paths["config"]) as f:
        listeners = [line for line in f if line.startswith("listener")]
    assert listeners == ["listener %d 127.0.0.1\n" % b.port, "listener %d 127.0.0.1\n" % b.gateway_port]


def test_tls_below_1_2_is_refused(secure_broker):
    b = secure_broker("mtls")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(b.site.pki.ca_path)
    ctx.load_cert_chain(*device_cert(b, "dev-a"))
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", b.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as e:
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert "PROTOCOL_VERSION" in str(e.value)  # the broker's alert, not a local refusal
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", b.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == "TLSv1.2" and s.cipher()[0].startswith("ECDHE-ECDSA-")


def test_revoked_certificate_is_refusedafter_reload(secure_broker, clients):
    b = secure_broker("mtls")
    cert, key = device_cert(b, "dev-a")
    assert clients(b, "a1", cert, key).wait()
    assert b.site.pki.revoke_client("dev-a") is not None
    b.reload()
    after_reload(lambda: clients(b, "a2", cert, key), accepted=False)


def test_password_mode_refuses_anonymous_and_wrong_passwords(secure_broker, clients):
    from edgeledger.gateway.enrol.broker_config import new_password

    b = secure_broker("password")
    assert gateway_client(clients, b).wait(), b.log()
    assert not clients(b, "anon").wait()
    assert not clients(b, "anon-gw", port=b.gateway_port).wait()
    assert not clients(b, "wrong", username="gateway", password="not-it", port=b.gateway_port).wait()
    # the gateway's password opens only the gateway's listener
    assert not clients(b, "gw-on-devices", username="gateway", password=b.gateway_password).wait()
    pw = new_password()
    b.site.set_password("dev-a", pw)  # the hash is computed here, in Python
    assert not clients(b, "early", username="dev-a", password=pw).wait()  # not reloaded yet
    b.reload()
    after_reload(lambda: clients(b, "a-probe", username="dev-a", password=pw), accepted=True)
    a = clients(b, "a", username="dev-a", password=pw)
    assert a.wait(), b.log()
    # password users are confined by the same ACL patterns
    gw = gateway_client(clients, b, "gw2")
    assert gw.wait()
    gw.subscribe(topics.subscription("r", SITE))
    a.publish(topics.readings(SITE, "dev-b"), b"forged")
    a.publish(topics.readings(SITE, "dev-a"), b"own")
    _arrived(gw, (topics.readings(SITE, "dev-a"), b"own"))
    assert gw.received == [(topics.readings(SITE, "dev-a"), b"own")]
    assert b.site.remove_user("dev-a")
    b.reload()
    after_reload(lambda: clients(b, "a-gone", username="dev-a", password=pw), accepted=False)

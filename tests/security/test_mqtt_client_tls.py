"""The gateway's own MQTT client (gateway/ingest/mqtt_client.py) over TLS, against the
generated site broker: the site CA and the gateway's password get it in; a broker whose
certificate the configured trust does not cover, or a wrong password, keep it out with a
typed, reported error, and it keeps trying."""
import pytest

from edgeledger.gateway.errors import ConfigError
from edgeledger.gateway.ingest import mqtt_client as client_mod
from edgeledger.gateway.ingest.mqtt_client import BrokerError, BrokerRefused, MqttClient, tls_context
from edgeledger.protocols import topics
from tests.security.conftest import SITE
from tests.support.net import wait_until

pytestmark = pytest.mark.security


def _client(broker, password=None, ssl_context=None):
    kw = broker.gateway_mqtt()
    c = MqttClient("localhost", broker.gateway_port, "el-gw-tls", username=kw["username"],
                   password=password or kw["password"], ssl_context=ssl_context or tls_context(kw["ca_file"]))
    errors, subacks = [], []
    c.on_disconnect = lambda reason, error, was: errors.append(error)
    c.on_subscribe = lambda filters, granted: subacks.append(granted)
    return c, errors, subacks


def test_the_site_ca_and_the_gateway_password_connect_and_subscribe(secure_broker):
    b = secure_broker("mtls")
    c, errors, subacks = _client(b)
    c.start()
    try:
        wait_until(c.connected.is_set, 30, what="CONNACK over TLS")
        assert c.subscribe([(topics.subscription("r", SITE), 1)])
        wait_until(lambda: subacks, 30, what="SUBACK")
        assert subacks == [b"\x01"] and errors == []
    finally:
        c.stop()


def test_a_broker_certificate_outside_the_configured_trust_is_refused(secure_broker, monkeypatch):
    monkeypatch.setattr(client_mod, "MIN_BACKOFF_S", 0.05)
    b = secure_broker("mtls")
    c, errors, _ = _client(b, ssl_context=tls_context())  # the system's trust store, not the site CA
    c.start()
    try:
        wait_until(lambda: len(errors) >= 2, 30, what="two refused attempts")
        assert not c.connected.is_set() and c.connects == 0
        assert all(type(e) is BrokerError and "CERTIFICATE_VERIFY_FAILED" in str(e) for e in errors), errors
    finally:
        c.stop()


def test_a_wrong_password_is_a_typed_refusal(secure_broker, monkeypatch):
    monkeypatch.setattr(client_mod, "MIN_BACKOFF_S", 0.05)
    b = secure_broker("mtls")
    c, errors, _ = _client(b, password="not-the-password")
    c.start()
    try:
        wait_until(lambda: errors, 30, what="the CONNACK refusal")
        assert isinstance(errors[0], BrokerRefused) and errors[0].code in (4, 5), errors
        assert c.connects == 0
    finally:
        c.stop()


def test_unreadable_tls_files_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="expected readable PEM"):
        tls_context(str(tmp_path / "missing-ca.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError):
        tls_context(None, str(tmp_path / "junk.pem"), str(tmp_path / "junk.pem"))

"""A MicroPython device on the secured broker: TLS with its device certificate, the
bundle's config.json, the firmware's MQTT client; a reading it signs is stored."""
import json

import pytest

from edgeledger.gateway.enrol import provision
from tests.security.conftest import SITE
from tests.security.test_ingest import Gateway
from tests.support.mpy import run_micropython
from tests.support.net import wait_until

pytestmark = [pytest.mark.security, pytest.mark.micropython]

# Runs on the board: read config.json, TLS-connect with the device certificate, publish one
# signed reading (QoS 1) and wait for its PUBACK. Prints CONNECTED / PUBACKED, or REFUSED.
DEVICE_SCRIPT = """
import json, time
from edgeledger.agent.config import broker
from edgeledger.firmware import mqtt, startup
from edgeledger.agent.key_file import load_key_file
from edgeledger.protocols import chain, cose, topics
from edgeledger.protocols.reading import validate as reading_validate

cfg = json.load(open("config.json"))
tls, host, port = broker(cfg["broker"])
assert tls
tcfg = dict(cfg["tls"])
if %(drop_cert)r:
    tcfg.pop("cert_file"); tcfg.pop("key_file")
ctx = startup.ssl_context(tcfg)
c = mqtt.MQTTClient("el-dev-" + cfg["device"], host, port, ssl_context=ctx,
                    server_hostname=tcfg["server_hostname"], timeout_s=5.0)
try:
    c.connect()
except (mqtt.MqttError, OSError) as e:
    print("REFUSED", repr(e))
    raise SystemExit(0)
print("CONNECTED")
s = load_key_file(cfg["key_file"])
pack = [{0: cfg["device"] + "/power", 1: "W", 2: 42.5, 6: time.time()}]
msg = cose.sign1(reading_validate.encode_payload(cfg["device"], 1, chain.GENESIS, 1, pack), s)
c.publish(topics.readings(cfg["site"], cfg["device"]), msg, qos=1)
deadline = time.time() + 5
while c.inflight() and time.time() < deadline:
    c.poll()
    time.sleep(0.01)
print("PUBACKED" if not c.inflight() else "NO PUBACK")
c.disconnect()
"""


def _run_on_board(bundle_dir, drop_cert=False):
    out = run_micropython(DEVICE_SCRIPT % {"drop_cert": drop_cert}, heapsize="512K", timeout=60, cwd=bundle_dir)
    return out.stdout + out.stderr


def test_micropython_device_connects_with_its_certificate_and_its_reading_is_stored(secure_broker, tmp_path):
    b = secure_broker("mtls")
    gw = Gateway(str(tmp_path), b)
    try:
        bundle = provision.provision(gw.operator_registry(), "mpy-1", SITE, str(tmp_path / "mpy-1"), broker=b.site)
        cfg = json.load(open(bundle.files["config_json"]))
        assert cfg["tls"] == {"ca_file": "ca.der", "cert_file": "mpy-1-tls.der", "key_file": "mpy-1-tls-key.der",
                              "server_hostname": "localhost"}
        wait_until(lambda: gw.registry.key(bundle.kid) is not None, 60, what="gateway sees the key")
        out = _run_on_board(bundle.dir)
        assert "CONNECTED" in out and "PUBACKED" in out, out + b.log()
        wait_until(lambda: gw.store.seqs("mpy-1") == [1], 60, what="the MicroPython reading stored")
        assert "mpy-1" in b.log()  # the broker took the certificate's CN as the user name
        # the same board without its certificate is turned away
        out = _run_on_board(bundle.dir, drop_cert=True)
        assert "REFUSED" in out and "CONNECTED" not in out, out
    finally:
        gw.stop()

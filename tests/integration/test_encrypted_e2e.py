"""Encrypted readings end to end: Linux agents with a content key (ES256 + SM4-CCM, and
EdDSA + AES-CCM; SM2 keys cannot be registered on chain yet, so no SM2 bundle) publish to a
real Mosquitto, are SIGKILLed between sealing and publishing and restarted, the gateway
stores and anchors (embedded chain) without seeing a value, and the data owner's
`edgeledger decrypt` verifies a bundle and prints its readings; a wrong key or an altered
byte is refused. Every message the broker carried is checked: no nonce ever encrypts two
different plaintexts."""
import os
import threading

import paho.mqtt.client as mqtt
import pytest

from edgeledger.agent.content_key import content_key_file, parse_content_key
from edgeledger.protocols.cbor.decoder import decode as cbor_decode
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.reading import validate as reading_validate
from tests.support.net import wait_until

pytestmark = pytest.mark.faults

LAST = 40
DEVICES = {"meter-sm": ("ES256", "SM4-CCM-16-64-128"), "meter-aes": ("EdDSA", "AES-CCM-16-64-128")}


class Tap:
    """Every reading the broker delivers, as a subscriber sees it (QoS 1, duplicates included)."""

    def __init__(self, url):
        host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
        self.seen = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tap")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("el/v1/+/+/r", qos=1)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.seen.append(bytes(msg.payload))

    def messages(self):
        with self._lock:
            return list(self.seen)

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


def test_encrypted_readings_from_device_to_data_owner(site, broker):
    keys = {}
    for name, (alg, enc_alg) in DEVICES.items():
        text = content_key_file(enc_alg, os.urandom(16))
        keys[name] = parse_content_key(text)
        with open(os.path.join(site.root, name + ".ckey"), "w") as f:
            f.write(text)
        # group commits: a kill loses the packs sealed since the last flush, sealed again after
        site.add_device(name, alg=alg, interval_s=0.02,
                        extra='content_key_file = "%s.ckey"\n[outbox]\nflush_interval_s = 0.3\n' % name)
    tap = Tap(broker.url)
    try:
        site.start_gateway()
        site.wait_gateway_ready()
        st = site.store()
        for name in DEVICES:
            site.start_agent(name, LAST)
        for round_ in range(2):  # kill -9 twice mid-run, between seals and publishes
            wait_until(lambda: all(len(st.seqs(n)) > 8 * (round_ + 1) for n in DEVICES), 120,  # noqa: B023
                       what="readings stored before kill %d" % (round_ + 1))
            for name in DEVICES:
                site.kill_agent(name)
                site.start_agent(name, LAST)
        assert set(site.wait_agents().values()) == {0}, [site.log(n + ".log") for n in DEVICES]
        for name in DEVICES:
            assert st.seqs(name) == list(range(1, LAST + 1)), name
        wait_until(lambda: site.anchored_count(st) == LAST * len(DEVICES), 120, what="every reading anchored")
        assert st.quarantine_reasons() == {}  # no fork, nothing non-canonical
    finally:
        tap.stop()

    # no nonce encrypts two plaintexts, across kills and restarts, in all the broker carried
    nonces = {}
    for data in tap.messages():
        body = reading_validate.decode_payload(cose_verify.parse_canonical(data).payload)
        assert body.pack is None  # nothing travelled in the clear
        enc = cose_verify.parse_encrypt0(body.enc)
        plain = keys[body.device].open(enc)
        assert nonces.setdefault((body.device, enc.iv), plain) == plain, (body.device, body.seq)
    assert len(nonces) >= LAST * len(DEVICES)

    # the gateway never saw a value: its export says "encrypted"
    out = site.cli("export", "--config", site.gateway_config, "--device", "meter-sm")
    assert out.returncode == 0, out.stderr
    assert "encrypted" in out.stdout and "kWh" not in out.stdout, out.stdout[:2000]

    # the data owner: verify the bundle, then decrypt, with units
    for name, (_alg, enc_alg) in DEVICES.items():
        out = site.cli("proof", name, "7", "-o", name + ".cbor", "--config", site.gateway_config)
        assert out.returncode == 0, out.stderr
        ok = site.cli("decrypt", name + ".cbor", "--key-file", name + ".ckey")
        assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
        assert "%s seq 7" % name in ok.stdout and "decrypted with content key %s (%s)" % (
            keys[name].kid.hex(), enc_alg) in ok.stdout, ok.stdout
        assert " kWh (at " in ok.stdout and "value     %s/" % name in ok.stdout, ok.stdout
    os.rename(os.path.join(site.root, "meter-sm.cbor"), os.path.join(site.root, "b.cbor"))
    plain = site.cli("verify", "b.cbor")  # without the key: proven, values not shown
    assert plain.returncode == 0 and "encrypted for the data owner" in plain.stdout, plain.stdout
    # another device's key: refused before any plaintext; so is one altered ciphertext byte
    wrong = site.cli("decrypt", "b.cbor", "--key-file", "meter-aes.ckey")
    assert wrong.returncode == 1 and wrong.stdout.startswith("FAIL") and "decrypt" in wrong.stdout, wrong.stdout
    assert "kWh" not in wrong.stdout
    data = bytearray(open(os.path.join(site.root, "b.cbor"), "rb").read())
    enc = _bundle_enc(bytes(data))
    i = bytes(data).index(enc) + len(enc) - 3  # a byte of the ciphertext
    data[i] ^= 0x01
    open(os.path.join(site.root, "bad.cbor"), "wb").write(bytes(data))
    bad = site.cli("decrypt", "bad.cbor", "--key-file", "meter-sm.ckey")
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL"), bad.stdout + bad.stderr
    assert "kWh" not in bad.stdout


def _bundle_enc(bundle):
    from edgeledger.protocols.bundle import Bundle

    msg = cose_verify.parse_canonical(Bundle.decode(bundle).message)
    return cbor_decode(msg.payload)[7]

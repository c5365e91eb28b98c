"""The agent's MQTT link on Linux devices: paho-mqtt 2.x (CPython only).

* QoS 1 publishes of readings; the broker's PUBACK only frees paho's buffer —
  the outbox keeps the record until the gateway's end-to-end ack.
* Reconnect with exponential backoff (``reconnect_delay_set``), a retained birth
  message on every connect, a retained last-will death message.
* Acks arrive on paho's network thread; they are handed to the agent loop through
  a deque (append/popleft are atomic), never applied from that thread.
* A broker that cannot be reached or refuses the agent is logged (``edgeledger.agent``, on
  stderr): the first failure at once, then less and less often with a count
  (protocols/repeats.py), and the connection that ends the outage.
"""
import collections
import logging
import ssl
import sys
import time
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt

from edgeledger.agent.config import broker
from edgeledger.protocols import session, topics
from edgeledger.protocols.repeats import Repeats, repeated

log = logging.getLogger("edgeledger.agent")

# Acks waiting for the loop; the gateway sends at most one per commit per device.
MAX_QUEUED_ACKS = 10000
# paho's own in-flight QoS 1 window towards the broker.
MAX_INFLIGHT = 1000
# Readings handed to paho per agent loop turn: its in-flight window and the core's bound what
# is outstanding; this bounds one turn's work.
PUBLISH_BATCH = 256


class PahoLink:
    def __init__(self, url: str, site: str, device: str, epoch: int, birth: Callable[[], bytes],
                 username: str | None = None, password: str | None = None, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None, keepalive: int = 30,
                 min_backoff_s: float = 0.2, max_backoff_s: float = 10.0) -> None:
        tls, self.host, self.port = broker(url)
        self.site, self.device = site, device
        self.topic = topics.readings(site, device)
        self.birth = birth  # callable -> bytes, evaluated on every connect
        self.acks: collections.deque[int] = collections.deque(maxlen=MAX_QUEUED_ACKS)
        self.connects = 0
        self.connected = False
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="el-dev-" + device,
                        clean_session=True, protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(MAX_INFLIGHT)
        c.max_queued_messages_set(0)
        # paho annotates the delays as int, but its backoff sleeps take float seconds
        c.reconnect_delay_set(min_delay=min_backoff_s, max_delay=max_backoff_s)  # type: ignore[arg-type]
        self.death = session.encode_death(epoch)
        c.will_set(topics.death(site, device), self.death, qos=1, retain=True)
        if username:
            c.username_pw_set(username, password)
        if tls or ca_file:
            c.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file,
                      tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._down = Repeats()
        self._stopping = False
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.keepalive = keepalive
        self.client = c

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        if self.connected:
            # a clean disconnect does not fire the last will: say goodbye ourselves
            self.client.publish(topics.death(self.site, self.device), self.death, qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()

    def publish_birth(self) -> None:
        """Publish a fresh birth (retained): after a key change, say the new kid."""
        self.client.publish(topics.birth(self.site, self.device), self.birth(), qos=1, retain=True)

    def _failed(self, key: str, text: str) -> None:
        unsaid = self._down.say(key, time.monotonic())
        if unsaid is not None:
            log.warning("agent %s: broker %s:%d %s; trying again%s", self.device, self.host, self.port, text,
                        repeated(unsaid))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around the connection attempt
        e = sys.exc_info()[1]
        self._failed("unreachable %s" % type(e).__name__, "cannot be reached (%s)" % (e or "connection failed"))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._failed("refused %s" % reason_code, "refused the connection: %s" % reason_code)
            return
        failed = self._down.clear()
        if failed:
            log.warning("agent %s: connected to the broker %s:%d after %d failed attempt(s)", self.device,
                        self.host, self.port, failed)
        client.subscribe(topics.ack(self.site, self.device), qos=1)
        self.publish_birth()
        self.connects += 1
        self.connected = True

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        if self.connected and not self._stopping:
            log.warning("agent %s: disconnected from the broker %s:%d (%s); reconnecting", self.device, self.host,
                        self.port, reason_code)
        self.connected = False

    def service(self, now: float, sealed: int) -> None:
        """Nothing to do in the agent's turn: paho's network thread runs the connection."""

    def room(self) -> int:
        """Readings to hand over this turn (AgentCore.step)."""
        return PUBLISH_BATCH

    def take_acks(self) -> Iterator[int]:
        """The end-to-end acks received since the last call (AgentCore.step's link)."""
        acks = self.acks
        while acks:
            yield acks.popleft()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: Any) -> None:
        try:
            self.acks.append(session.decode_ack(msg.payload))
        except ValueError:
            pass  # not from our gateway's format; the gateway's retained ack will follow

    def publish(self, payload: bytes) -> bool:
        info = self.client.publish(self.topic, payload, qos=1)
        return bool(info.rc == mqtt.MQTT_ERR_SUCCESS)

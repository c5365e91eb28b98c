"""Broker upkeep from the gateway's side: clear retained readings, cut revoked devices off.

Two jobs on one thread of ``gateway run`` (the parent process with ``--workers``), each over
a short-lived MQTT connection to the gateway's listener with the gateway's credentials
(broker_config.py):

* **Retained readings.** Any publisher may set RETAIN, and Mosquitto cannot refuse it per
  topic (``retain_available`` is all or nothing; acks and births are retained by design).
  A retained reading would stay in the broker and be delivered again to every new
  subscriber. Every ``retained_sweep_s`` the gateway subscribes to its sites' readings
  topics: the broker sends the retained ones with the RETAIN flag set (MQTT 3.1.1
  §3.3.1.3), and each is removed with an empty retained publish on its topic (same
  clause). The live copy of such a message already reached the ingest service the normal
  way and was judged there (stored or quarantined): the sweep only clears the broker.
  Counted as ``upkeep_retained_cleared``.
* **Revoked devices.** After ``device revoke`` and a broker reload, a revoked device's new
  connections are refused (CRL or password file), but a live TLS session is not:
  Mosquitto checks a certificate at the handshake only. The gateway ends that session by
  connecting on its own listener with the device's client id, which on the devices'
  listener is the device id (``use_username_as_clientid``): the broker disconnects the
  holder of the id (MQTT-3.1.4-2), and the device's reconnect is refused. It does so every
  ``cut_every_s`` for ``cut_window_s`` after the revocation (its time, or when this thread
  first saw it: a revocation dated in the past counts from then), and again whenever a
  revoked device was heard from (its rejects, ``device_rejects``), so a reload made at any
  time takes effect within ``cut_every_s`` of it (or of the device's next message).
  Counted as ``upkeep_revoked_cut``.

gateway.toml (all optional)::

    [upkeep]
    enabled = true
    retained_sweep_s = 30.0
    cut_every_s = 2.0
    cut_window_s = 600.0

Never raises into ``gateway run``: a broker that is away or refuses is logged (once per
kind of failure) and tried again at the next round.
"""
import logging
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.errors import ConfigError, GatewayError
from edgeledger.gateway.store import Store
from edgeledger.protocols import broker_url, topics

log = logging.getLogger("edgeledger.gateway")

# How often the loop looks at the registry (new revocations) and the clocks.
POLL_S = 0.5
# Waits on the broker: CONNACK, SUBACK, PUBACK. After the SUBACK, retained messages are
# already on their way (the broker sends them with it); SETTLE_S lets them arrive.
REPLY_TIMEOUT_S = 10.0
SETTLE_S = 0.5
# Retained readings cleared per sweep at most (one PUBACK round trip each); the rest wait
# for the next sweep.
MAX_CLEARED_PER_SWEEP = 10000
# Its counters in the store, like a worker's "@wK" (runner.total_counters sums them).
COUNTER_SUFFIX = "@upkeep"


class UpkeepError(GatewayError):
    """The broker did not answer as expected (translated from paho's return codes)."""


class BrokerUpkeep:
    """The upkeep thread; ``start()``, ``stop()``. ``counters`` has what it did."""

    def __init__(self, cfg: GatewayConfig, store: Store | None = None) -> None:
        sec, mq = cfg.upkeep, cfg.mqtt
        self.sweep_s = sec.retained_sweep_s
        self.cut_every_s = sec.cut_every_s
        self.cut_window_s = sec.cut_window_s
        try:
            self.tls, self.host, self.port = broker_url.parse(cfg.broker)
        except ValueError as e:
            raise ConfigError(str(e)) from e
        self.username = mq.username
        self.password = mq.password()
        self.ca_file, self.cert_file, self.key_file = mq.ca_file, mq.cert_file, mq.key_file
        self.client_id = cfg.mqtt_client_id + "-upkeep"
        self.sites = list(cfg.sites)
        self.store = store or Store(cfg.store, cfg.sqlite_synchronous)
        self.counters = {"upkeep_retained_cleared": 0, "upkeep_revoked_cut": 0, "upkeep_failures": 0}
        self._first_seen: dict[str, float] = {}  # device -> when this thread first saw it revoked (wall clock)
        self._last_cut: dict[str, float] = {}
        self._started = False  # revocations found by the first look count from their own time
        self._failures_logged: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-upkeep", daemon=True)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> "BrokerUpkeep":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=REPLY_TIMEOUT_S + 5)

    def _run(self) -> None:
        log.info("broker upkeep: retained readings swept every %.0f s, revoked sessions cut every %.0f s",
                 self.sweep_s, self.cut_every_s)
        next_sweep = time.monotonic() + min(self.sweep_s, 5.0)
        while not self._stop.wait(POLL_S):
            if self.sweep_s > 0 and time.monotonic() >= next_sweep:
                self._guard("retained sweep", self.sweep_retained)
                next_sweep = time.monotonic() + self.sweep_s
            self._guard("revocation cut", self.cut_revoked)

    def _guard(self, what: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception as e:  # the broker away, refusing, or the store busy: next round
            self.counters["upkeep_failures"] += 1
            kind = (what, type(e).__name__)
            if kind not in self._failures_logged:
                self._failures_logged.add(kind)
                log.warning("broker upkeep: %s failed (%s: %s); trying again (logged once per kind)",
                            what, type(e).__name__, e)

    # -- MQTT -------------------------------------------------------------------------------

    def _connect(self, client_id: str) -> mqtt.Client:
        """A connected paho client (clean session, its loop running). Raises UpkeepError."""
        done = threading.Event()
        result = {}

        def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
            result["rc"] = reason_code
            done.set()

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                        protocol=mqtt.MQTTv311)
        if self.username:
            c.username_pw_set(self.username, self.password)
        if self.tls or self.ca_file:
            c.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)
        c.on_connect = on_connect
        c.connect(self.host, self.port, keepalive=30)
        c.loop_start()
        if not done.wait(REPLY_TIMEOUT_S) or result["rc"].is_failure:
            self._close(c)
            raise UpkeepError("the broker did not accept %s: %s" % (client_id, result.get("rc", "no CONNACK")))
        return c

    def _close(self, c: mqtt.Client) -> None:
        try:
            c.disconnect()
        finally:
            c.loop_stop()

    def sweep_retained(self) -> int:
        """Clear the retained readings on the gateway's sites. Returns how many."""
        c = self._connect(self.client_id)
        try:
            found = []
            subscribed = threading.Event()
            c.on_message = lambda cl, u, m: found.append(m.topic) if m.retain and m.payload else None
            c.on_subscribe = lambda *a: subscribed.set()
            c.subscribe([(topics.subscription("r", site), 1) for site in self.sites])
            if not subscribed.wait(REPLY_TIMEOUT_S):
                raise UpkeepError("no SUBACK for the readings topics")
            time.sleep(SETTLE_S)
            cleared = 0
            for topic in sorted(set(found))[:MAX_CLEARED_PER_SWEEP]:
                c.publish(topic, b"", qos=1, retain=True).wait_for_publish(REPLY_TIMEOUT_S)
                cleared += 1
            if cleared:
                log.warning("broker upkeep: cleared %d retained reading(s) (readings are never retained): %s",
                            cleared, ", ".join(sorted(set(found))[:5]))
                self._count("upkeep_retained_cleared", cleared)
            return cleared
        finally:
            self._close(c)

    def cut(self, device: str) -> None:
        """Disconnect ``device``'s live session (its client id, on the gateway's listener)."""
        self._close(self._connect(device))
        self._count("upkeep_revoked_cut", 1)

    # -- revocations ------------------------------------------------------------------------

    def cut_revoked(self, now: float | None = None) -> list[str]:
        """Cut the sessions of revoked devices that are due (see the module docstring)."""
        now = time.time() if now is None else now
        since = now - self.cut_window_s
        revoked = self.store.revoked_devices(now)
        heard = set(self.store.rejected_since(since))
        due = []
        for device, revoked_at in sorted(revoked.items()):
            # seen at the first look: counts from its own time; seen later: from now (a
            # revocation dated in the past still gets its window)
            first_seen = self._first_seen.setdefault(device, now if self._started else revoked_at)
            recent = max(first_seen, revoked_at) > since or device in heard
            if recent and now - self._last_cut.get(device, -1e18) >= self.cut_every_s:
                due.append(device)
        self._started = True
        for device in due:
            self._last_cut[device] = now
            self.cut(device)
            log.info("broker upkeep: cut the live session of revoked device %s", device)
        return due

    def _count(self, name: str, n: int) -> None:
        self.counters[name] += n
        with self.store.lock:  # "@upkeep": a writer of its own, summed by `gateway status`
            self.store.add_counters({name + COUNTER_SUFFIX: n})

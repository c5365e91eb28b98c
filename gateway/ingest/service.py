"""The gateway's MQTT ingest service: ack-after-commit over the project's own MQTT client.

::

    network thread (mqtt_client.py)           worker thread
    --------------                            -------------
    on_publish ──► inbox (bounded) ──────────► take a group (up to MAX_GROUP,
                   full: the network thread       or GROUP_WINDOW_S of arrivals)
                   waits, TCP pushes back on    ► pipeline.process() each
                   the broker, which queues     ► pipeline.commit()   one transaction
                                                ► PUBACK every message of the group (one write)
                                                ► publish end-to-end acks (retained, QoS 1)

A message is acknowledged to the broker only after it is committed (stored or
quarantined). If the gateway dies before that, the broker redelivers it to the
gateway's persistent session and the pipeline stores it once. Acks to devices
name the highest contiguous stored seq, so a device never deletes a record the
gateway has not committed.

When a commit fails (the disk is full, the store stays locked) the group stays
staged and un-acknowledged: the worker says so once, tries the commit again every
STORE_RETRY_S, and acknowledges the held messages when it succeeds, without a
restart. Meanwhile the inbox fills and TCP pushes back on the broker; devices keep
their records in their outboxes until the end-to-end ack comes.

The worker thread is supervised: an exception that escapes it (a bug: no message
should raise out of the pipeline) is logged with its traceback, counted as
``ingest_thread_restarts`` and the thread's loop starts again after a delay that
doubles per death in a row (RESTART_DELAY_S .. MAX_RESTART_DELAY_S); the group it
held is handled again (the pipeline recognises what it already staged).

Scale-out (``gateway run --workers N``, runner.py): each worker process runs one
IngestService with ``owns`` set, and subscribes to the exact topics of the
registered devices it owns (a hash of the device id) instead of the site
wildcard, so every message of a device reaches one worker, in order, and the
chain state of a device lives in one process.

The connection (``mqtt_client.MqttClient``): a plain socket, TLS for ``mqtts://``, and
the sans-IO codec of ``protocols/mqtt.py``. One ``recv_into`` fills the framer's buffer
with many packets, and ``Framer.take_publishes`` splits the QoS 1 PUBLISH packets in one
pass, payloads as views of that buffer: no per-packet system calls and no per-message
objects but the inbox tuple. A broker that closes the connection, restarts, kicks the
gateway (another client with its client id) or sends bytes that are not MQTT
(``MqttPacketError``, counted as ``mqtt_packet_errors``; MQTT cannot resynchronise) costs
a reconnection, never the thread: what was not acknowledged comes again.
"""
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from edgeledger.gateway import errors
from edgeledger.gateway.errors import StoreError
from edgeledger.gateway.ingest.mqtt_client import BrokerRefused, MqttClient, tls_context
from edgeledger.gateway.ingest.pipeline import Pipeline
from edgeledger.protocols import mqtt, session, topics
from edgeledger.protocols.broker_url import parse as parse_broker_url
from edgeledger.protocols.mqtt import MqttPacketError
from edgeledger.protocols.repeats import Repeats, repeated

log = logging.getLogger("edgeledger.gateway")

# Messages received but not yet committed. Bounds memory; when it is full the network
# thread waits and TCP flow control holds the rest in the broker.
MAX_INBOX = 50000
# Messages per commit: one fsync per group instead of per message (fsync ~0.2 ms).
MAX_GROUP = 5000
# How long a group may wait for more arrivals before it is committed.
GROUP_WINDOW_S = 0.005
# How often the registry is checked for changes made by the operator CLI.
REGISTRY_POLL_S = 0.5
COUNTER_SAVE_S = 1.0
# Keepalive of the gateway's MQTT connection (§3.1.2.10): a dead broker or line is noticed
# within about twice this, and an idle gateway sends one PINGREQ per interval.
KEEPALIVE_S = 30
# A PUBLISH packet may carry the largest message the pipeline accepts plus its topic and
# header: the generated broker config allows max_message_bytes + 1 KiB (broker_config.py).
PACKET_HEADROOM = 1024
# How long the network thread waits for room in a full inbox before it looks at ``stop``.
INBOX_WAIT_S = 0.5
# Devices per SUBSCRIBE packet when a worker subscribes device by device (3 filters each),
# and the packet's size at most: the generated broker disconnects a client whose packet
# passes its max_packet_size (broker_config.py: max_message_bytes + 1 KB; 64 KiB + 1 KB by
# default), and 500 devices with 64-character ids would need 220 KB.
SUBSCRIBE_CHUNK = 500
SUBSCRIBE_BYTES = 32 * 1024
# At most one log line per reject reason in this many seconds (the counters count them all).
REJECT_LOG_S = 1.0
# A failed commit (full disk, locked store) is tried again this often: a second is
# nothing next to how long freeing disk space takes, and costs one failed write.
STORE_RETRY_S = 1.0
# A dead worker thread starts again after RESTART_DELAY_S, doubled per death in a row
# up to MAX_RESTART_DELAY_S, so a fault that kills it at once cannot spin a core; a run
# of STABLE_RUN_S without dying resets the delay.
RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 30.0
STABLE_RUN_S = 60.0


class IngestService:
    def __init__(self, pipeline: Pipeline, broker_url: str, client_id: str, sites: Iterable[str] = ("+",),
                 username: str | None = None, password: str | None = None, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 on_commit: Callable[[int], object] | None = None,
                 owns: Callable[[str], bool] | None = None) -> None:
        """Ingest for ``pipeline`` from ``broker_url`` (``mqtt://`` or ``mqtts://host:port``) as
        ``client_id`` (a persistent session: one id per gateway process). TLS when the URL says
        ``mqtts`` or ``ca_file`` is given (the system's trust store otherwise), a client
        certificate with ``cert_file``/``key_file``. Nothing connects before ``start()``.
        Raises ConfigError for a URL that is not a broker URL or TLS files that cannot be read."""
        self.pipeline = pipeline
        # The rate limit runs on the receive thread, in front of the inbox: a device's flood
        # past its rate is counted and acknowledged there, never queued ahead of other
        # devices' messages (issue 12; pipeline.shed).
        pipeline.limit_in_front()
        # owns(device) -> bool: subscribe device by device to the owned registered devices
        # (a worker of ``gateway run --workers``); None: the site wildcards.
        self.owns = owns
        self._subscribed: set[str] = set()
        self.registry = pipeline.registry
        self.sites = list(sites)
        self.on_commit = on_commit  # called with the number of messages stored, after commit
        self.inbox: queue.Queue[Any] = queue.Queue(maxsize=MAX_INBOX)
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.commits = 0
        self._reject_logged: dict[str, float] = {}
        self.restarts = 0
        self._held: list[tuple[Any, bytes, int, int]] = []  # the group being handled: handled again if the thread dies
        for name in ("ingest_thread_restarts", "store_write_failures", "store_paused_s", "birth_not_saved",
                     "acks_sent"):
            pipeline.counters.setdefault(name, 0)
        try:
            tls, host, port = parse_broker_url(broker_url)
        except ValueError as e:
            raise errors.ConfigError(str(e)) from e
        self.host, self.port = host, port
        # A broker that stays away or keeps refusing is said at once, then less and less often
        # (protocols/repeats.py), never once per reconnection attempt.
        self._broker_down = Repeats()
        self.subscribed = threading.Event()  # set at every SUBACK that grants the subscriptions
        # a PUBLISH may be as large as the largest message the pipeline takes, plus its header
        max_packet = max(mqtt.DEFAULT_MAX_PACKET, pipeline.max_message_bytes + PACKET_HEADROOM)
        self.client = c = MqttClient(host, port, client_id, keepalive=KEEPALIVE_S, username=username or None,
                                     password=password if username else None,
                                     ssl_context=tls_context(ca_file, cert_file, key_file) if tls or ca_file else None,
                                     max_packet=max_packet)
        pipeline.counters.setdefault("mqtt_packet_errors", 0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        self._worker = threading.Thread(target=self._supervise, name="ingest-worker", daemon=True)

    # -- network thread ----------------------------------------------------------------------

    def _on_connect(self, session_present: bool) -> None:
        failed = self._broker_down.clear()
        if failed:
            log.warning("connected to the broker at %s:%d after %d failed attempt(s)", self.host, self.port, failed)
        if self.owns is not None:
            # the worker thread subscribes (it owns the store connection): see _run
            self._subscribed = set()
            self.connected.set()
            log.info("connected to %s:%d; subscribing to owned devices", self.host, self.port)
            return
        subs = []
        for site in self.sites:
            for kind in ("r", "birth", "death"):
                subs.append((topics.subscription(kind, site), 1))
        self.client.subscribe(subs)
        self.connected.set()

    def _on_subscribe(self, filters: list[tuple[str, int]], granted: bytes) -> None:
        refused = [f for (f, _q), code in zip(filters, granted) if code == mqtt.SUBACK_FAILURE]
        if refused:
            log.error("the broker refused the subscription to %s (SUBACK 0x80): check the gateway's ACL", refused)
            return
        if self.owns is None:
            log.info("connected to %s:%d, subscribed to %s", self.host, self.port, [f for f, _q in filters])
        else:
            log.info("subscribed to the topics of %d owned device(s)", len(filters) // 3)
        self.subscribed.set()

    def _subscribe_owned(self) -> None:
        """Subscribe to the topics of owned registered devices not subscribed yet."""
        owns = self.owns
        assert owns is not None, "only a worker subscribes device by device"
        subs = []
        for device in self.registry.devices():
            site = self.registry.site_of(device)
            if device in self._subscribed or site is None or not owns(device):
                continue
            if "+" not in self.sites and site not in self.sites:
                continue
            subs.append((device, site))
        i = 0
        while i < len(subs):
            # SUBSCRIBE_CHUNK devices, or fewer when their filters would pass SUBSCRIBE_BYTES
            chunk: list[tuple[str, str]] = []
            size = 0
            while i < len(subs) and len(chunk) < SUBSCRIBE_CHUNK:
                need = 3 * (len(topics.readings(subs[i][1], subs[i][0])) + 8)
                if chunk and size + need > SUBSCRIBE_BYTES:
                    break
                chunk.append(subs[i])
                size += need
                i += 1
            if self.client.subscribe([(topics.topic(site, device, kind), 1)
                                      for device, site in chunk for kind in ("r", "birth", "death")]):
                self._subscribed.update(device for device, _site in chunk)
            # else not connected: tried again at the next poll

    def _on_disconnect(self, reason: str, error: Exception, was_connected: bool) -> None:
        self.connected.clear()
        if self._stop.is_set():
            return
        if isinstance(error, MqttPacketError):
            self.pipeline.counters["mqtt_packet_errors"] += 1
            log.error("malformed packet from the broker (%s): reconnecting", error)
        if was_connected:
            self._broker_down.clear()
            log.warning("disconnected from broker (%s); reconnecting", reason)
            return
        unsaid = self._broker_down.say(reason, time.monotonic())
        if unsaid is None:
            return  # said recently: the next line counts this attempt
        if isinstance(error, BrokerRefused):
            log.error("broker refused the gateway: %s%s", reason, repeated(unsaid))
        else:
            log.warning("%s; trying again until it answers%s", reason, repeated(unsaid))

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        if self.pipeline.shed(topic):  # over its device's rate: counted, acknowledged, not queued
            if qos:
                self.client.ack([mid])  # written with the rest of this read's PUBACKs
            return
        item = (topic, payload, mid, qos)
        while True:  # full: wait (TCP pushes back on the broker), but not past stop()
            try:
                self.inbox.put(item, timeout=INBOX_WAIT_S)
                return
            except queue.Full:
                if self._stop.is_set():
                    return  # not acknowledged: the broker sends it again

    # -- worker -----------------------------------------------------------------------------

    def _take_group(self) -> list[tuple[Any, bytes, int, int]]:
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        group = [first]
        deadline = time.monotonic() + GROUP_WINDOW_S
        while len(group) < MAX_GROUP:
            try:
                group.append(self.inbox.get_nowait())
            except queue.Empty:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.0005)
        return group

    def _handle(self, topic: object, payload: bytes) -> None:
        kind = topic.rsplit("/", 1)[-1] if isinstance(topic, str) else None
        if kind in ("birth", "death"):
            self.pipeline.note_session(topic, payload)  # never raises
            return
        try:  # "r", and anything else a broker delivers (refused there as topic_mismatch)
            self.pipeline.process(topic, payload)
        except errors.RejectedMessage as e:
            # one line per reason and second at most: a flood must not cost a log line each
            now = time.monotonic()
            if now - self._reject_logged.get(e.reason, -REJECT_LOG_S) >= REJECT_LOG_S:
                self._reject_logged[e.reason] = now
                log.info("rejected on %s: %s (counted in rejected_%s)", topic, e, e.reason)

    def _event(self, kind: str, detail: str) -> None:
        """Record an event for ``gateway status``; a store that cannot take it is logged only."""
        try:
            self.pipeline.store.record_event(kind, detail)
        except StoreError as e:
            log.warning("could not record %s event: %s", kind, e)

    def _commit(self, save_counters: bool = True) -> dict[str, int] | None:
        """``pipeline.commit``, tried again every STORE_RETRY_S while the store fails
        (said once, and once when it works again). Returns the acks, or None if the
        service stops first (nothing acknowledged: the broker redelivers)."""
        failed_at = None
        while True:
            try:
                acks = self.pipeline.commit(save_counters=save_counters or failed_at is not None)
            except StoreError as e:
                if failed_at is None:
                    failed_at = time.time()
                    self.pipeline.counters["store_write_failures"] += 1
                    log.error("%s; acknowledging nothing until a commit succeeds (tried again every %.0f s)",
                              e, STORE_RETRY_S)
                    first_error = str(e)
                if self._stop.wait(STORE_RETRY_S):
                    return None
                continue
            if failed_at is not None:
                paused = time.time() - failed_at
                self.pipeline.counters["store_paused_s"] += int(round(paused))
                log.warning("gateway store writable again after %.0f s: the held messages are stored and acknowledged",
                            paused)
                self._event("store_recovered", "no commit for %.0f s from %s (%s); nothing was acknowledged meanwhile"
                            % (paused, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(failed_at)), first_error))
            return acks

    def _save_counters(self) -> bool:
        """Write the counters on their own; False (logged) when the store refuses."""
        try:
            self.pipeline.save_counters()
            return True
        except StoreError as e:
            log.warning("counters not saved (tried again in %.0f s): %s", COUNTER_SAVE_S, e)
            return False

    def _supervise(self) -> None:
        """Run the worker loop; if it dies, count it, say why and run it again."""
        delay = RESTART_DELAY_S
        while True:
            started = time.monotonic()
            try:
                self._run()
                return
            except Exception as e:
                if self._stop.is_set():
                    log.exception("ingest thread failed while stopping")
                    return
                if time.monotonic() - started >= STABLE_RUN_S:
                    delay = RESTART_DELAY_S
                self.restarts += 1
                self.pipeline.counters["ingest_thread_restarts"] += 1
                log.exception("ingest thread died (%d so far); starting it again in %.1f s", self.restarts, delay)
                self._event("ingest_thread_restart", "%s: %s (restart %d)" % (type(e).__name__, e, self.restarts))
                if self._stop.wait(delay):
                    return
                delay = min(2 * delay, MAX_RESTART_DELAY_S)

    def _run(self) -> None:
        last_registry = last_counters = 0.0
        unsaved = False
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_registry >= REGISTRY_POLL_S:
                if self.registry.reload_if_changed():
                    self.pipeline.reload_gaps(self.owns)  # an operator may have accepted a gap
                last_registry = now
            if self.owns is not None and self.connected.is_set() and (
                    not self._subscribed or now == last_registry):
                self._subscribe_owned()
            group = self._held or self._take_group()
            if not group:
                if self.pipeline.pending() and now - last_counters >= COUNTER_SAVE_S:
                    if self._commit() is None:
                        return
                    last_counters = now
                    unsaved = False
                elif unsaved and now - last_counters >= COUNTER_SAVE_S:
                    # counters that moved since the last save (a commit that did not save them,
                    # acks sent after it) reach the store, for status and /metrics, when idle
                    unsaved = not self._save_counters()
                    last_counters = now
                continue
            self._held = group
            stored_before = self.pipeline.counters["stored"]
            for topic, payload, _mid, _qos in group:
                self._handle(topic, payload)
            save = now - last_counters >= COUNTER_SAVE_S
            acks = self._commit(save_counters=save)
            if acks is None:
                return  # stopping before the commit: nothing acknowledged, the broker redelivers
            if save:
                last_counters = now
            unsaved = True  # at least the acks below
            self.commits += 1
            self._held = []
            # every PUBACK of the group in one write (the network thread sends it)
            self.client.ack([mid for _topic, _payload, mid, qos in group if qos > 0])
            for device, contig in acks.items():
                site = self.registry.site_of(device)
                if site is not None:
                    self.client.publish(topics.ack(site, device), session.encode_ack(contig), retain=True)
                    self.pipeline.counters["acks_sent"] += 1
            if self.on_commit is not None:
                self.on_commit(self.pipeline.counters["stored"] - stored_before)
        try:
            self.pipeline.commit()
            self.pipeline.save_counters()  # the last word: counters as they stand at shutdown
        except StoreError as e:
            log.error("at shutdown: %s (not acknowledged: the broker and devices send it again)", e)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and the network thread; the connection is made (and made again)
        in the background: ``connected`` and ``subscribed`` say when it is up."""
        self._worker.start()
        self.client.start()

    def stop(self) -> None:
        """Stop the worker (it commits what it holds), then write the last PUBACKs, DISCONNECT
        and close. Waits up to 10 s for each thread; raises nothing."""
        self._stop.set()
        self._worker.join(timeout=10)
        self.client.stop()

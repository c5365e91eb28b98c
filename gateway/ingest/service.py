"""The gateway's MQTT ingest service: paho-mqtt 2.x with ack-after-commit.

::

    paho network thread                       worker thread
    -------------------                       -------------
    on_message ──► inbox (bounded) ──────────► take a group (up to MAX_GROUP,
                   full: the network thread       or GROUP_WINDOW_S of arrivals)
                   waits, TCP pushes back on    ► pipeline.process() each
                   the broker, which queues     ► pipeline.commit()   one transaction
                                                ► PUBACK every message of the group, in order
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

Receive cost: paho reads a packet with several ``recv`` calls (1 byte of type,
the length one byte at a time, then the body). ``_BufferedSocket`` serves them
from one large ``recv`` instead, which removes most of paho's per-message system
calls (profiled: ~15% of the gateway's CPU at full load), and ``_Client.loop_read``
reads every buffered packet before paho selects again.
"""
import logging
import queue
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from edgeledger.gateway import errors
from edgeledger.gateway.errors import StoreError
from edgeledger.protocols import session, topics
from edgeledger.protocols.broker_url import parse as parse_broker_url

log = logging.getLogger("edgeledger.gateway")

# Messages received but not yet committed. Bounds memory; when it is full the paho
# thread blocks and TCP flow control holds the rest in the broker.
MAX_INBOX = 50000
# Messages per commit: one fsync per group instead of per message (fsync ~0.2 ms).
MAX_GROUP = 5000
# How long a group may wait for more arrivals before it is committed.
GROUP_WINDOW_S = 0.005
# How often the registry is checked for changes made by the operator CLI.
REGISTRY_POLL_S = 0.5
COUNTER_SAVE_S = 1.0
# Bytes taken from the kernel per recv by _BufferedSocket (many QoS 1 PUBLISH packets).
RECV_BUFFER = 1 << 16
# Packets read in one go from the buffer before paho's loop runs again.
READ_BURST = 1000
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


class _BufferedSocket:
    """Wraps the broker socket: paho's small ``recv(n)`` calls are served from one large
    read; ``pending()`` tells paho's select loop that buffered bytes are waiting (the
    same hook paho uses for TLS records, client.py ``_loop``). Everything else is the
    wrapped socket's."""

    def __init__(self, sock):
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, n):
        if self._pos >= len(self._buf):
            data = self._sock.recv(RECV_BUFFER)  # BlockingIOError / SSL errors pass to paho
            if not data:
                return data
            self._buf, self._pos = data, 0
        start = self._pos
        self._pos = min(start + n, len(self._buf))
        return self._buf[start:self._pos]

    def buffered(self):
        return len(self._buf) - self._pos

    def pending(self):
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + inner

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Client(mqtt.Client):
    def _create_socket(self):
        return _BufferedSocket(mqtt.Client._create_socket(self))

    # fast_publish(topic, payload, mid): set by IngestService; None = paho's own path only
    fast_publish: Callable[[str, bytes, int], Any] | None = None
    # PUBACKs of messages shed on this thread (IngestService: over their device's rate limit)
    _shed_acks = None

    def ack_shed(self, mid: int) -> None:
        """Acknowledge a QoS 1 message shed on the network thread. The PUBACKs (MQTT 3.1.1
        §3.4: 40 02 <packet id>) are collected and queued as one write when the read ends:
        one TLS record for a whole burst instead of one per message, which is what lets
        the receive thread keep ahead of a flood."""
        if self._shed_acks is None:
            self._shed_acks = bytearray()
        self._shed_acks += b"\x40\x02" + bytes(((mid >> 8) & 0xFF, mid & 0xFF))

    def _flush_shed_acks(self) -> None:
        if self._shed_acks:
            blob, self._shed_acks = bytes(self._shed_acks), None
            self._packet_queue(mqtt.PUBACK, blob, 0, 0)

    def loop_read(self, max_packets=1):
        """Read every whole packet that waits in the buffer (at most READ_BURST, so keepalive
        and writes still get their turn), instead of paho's one packet per select().

        QoS 1 PUBLISH packets (MQTT 3.1.1 §3.3: fixed header 0x32/0x33/0x3A/0x3B, topic,
        packet id, payload) go straight to ``fast_publish`` when paho is not in the middle
        of a packet: with manual acks paho keeps no state for them and would only build an
        MQTTMessage and call on_message. Anything else (CONNACK, SUBACK, PUBACK of our acks,
        QoS 0/2, a packet split across reads) takes paho's path. Profiled: paho's
        per-message work and select() were ~35% of a worker's CPU."""
        try:
            return self._loop_read(max_packets)
        except Exception as e:  # a packet paho cannot decode: drop the connection, not the thread
            # (the paho network thread would die with the exception, and ingest with it;
            # a reconnect gets the broker to redeliver whatever was not acknowledged)
            log.error("malformed packet from the broker (%s: %s): reconnecting", type(e).__name__, e)
            return self._loop_rc_handle(mqtt.MQTT_ERR_PROTOCOL)
        finally:
            self._flush_shed_acks()

    def _loop_read(self, max_packets: int) -> int:
        sock: Any = self._sock
        if not isinstance(sock, _BufferedSocket):
            return mqtt.Client.loop_read(self, max_packets)
        rc = mqtt.MQTT_ERR_SUCCESS
        buffered = sock.buffered
        for _ in range(READ_BURST):
            if self.fast_publish is not None and self._in_packet["command"] == 0 and buffered():
                if self._take_publishes(sock) and not buffered():
                    break
            rc = mqtt.Client.loop_read(self, 1)  # one packet; reads the kernel when the buffer is empty
            if rc != mqtt.MQTT_ERR_SUCCESS or self._sock is not sock or not buffered():
                break
        return rc

    def _take_publishes(self, sock):
        """Deliver the whole QoS 1 PUBLISH packets at the front of the buffer; returns how many.
        Stops, leaving the rest to paho, at anything else: another packet type, a length or
        topic that is incomplete or does not add up, a topic that is not UTF-8. Never
        raises (tests/fuzz/test_receive_path.py feeds it split, bytewise and hostile input)."""
        buf, pos = sock._buf, sock._pos
        n, taken, deliver = len(buf), 0, self.fast_publish
        assert deliver is not None  # only called when fast_publish is set
        while pos + 2 <= n:
            first = buf[pos]
            if first & 0xF6 != 0x32:  # PUBLISH, QoS 1 (DUP and RETAIN bits free)
                break
            length, mult, j = 0, 1, pos + 1
            while j < n and mult <= 128 ** 3:
                b = buf[j]
                length += (b & 0x7F) * mult
                mult *= 128
                j += 1
                if b < 0x80:
                    break
            else:
                break  # length incomplete (or malformed: paho reports it)
            end = j + length
            if end > n or length < 4:
                break
            tlen = (buf[j] << 8) | buf[j + 1]
            if j + 4 + tlen > end:
                break
            try:
                topic = buf[j + 2:j + 2 + tlen].decode("utf-8")
            except UnicodeDecodeError:
                break
            mid = (buf[j + 2 + tlen] << 8) | buf[j + 3 + tlen]
            deliver(topic, buf[j + 4 + tlen:end], mid)
            pos = end
            taken += 1
        if taken:
            sock._pos = pos
            with self._msgtime_mutex:
                self._last_bytes_received = mqtt.time_func()
        return taken


class IngestService:
    def __init__(self, pipeline, broker_url, client_id, sites=("+",), username=None, password=None,
                 ca_file=None, cert_file=None, key_file=None, on_commit=None, owns=None):
        self.pipeline = pipeline
        # The rate limit runs on the receive thread, in front of the inbox: a device's flood
        # past its rate is counted and acknowledged there, never queued ahead of other
        # devices' messages (issue 12; pipeline.shed).
        pipeline.limit_in_front()
        # owns(device) -> bool: subscribe device by device to the owned registered devices
        # (a worker of ``gateway run --workers``); None: the site wildcards.
        self.owns = owns
        self._subscribed = set()
        self.registry = pipeline.registry
        self.sites = list(sites)
        self.on_commit = on_commit  # called with the number of messages stored, after commit
        self.inbox: queue.Queue[Any] = queue.Queue(maxsize=MAX_INBOX)
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.commits = 0
        self._reject_logged = {}
        self.restarts = 0
        self._held = []  # the group being handled: handled again if the thread dies
        for name in ("ingest_thread_restarts", "store_write_failures", "store_paused_s", "birth_not_saved"):
            pipeline.counters.setdefault(name, 0)
        try:
            tls, host, port = parse_broker_url(broker_url)
        except ValueError as e:
            raise errors.ConfigError(str(e)) from e
        self.host, self.port = host, port
        c = _Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                        protocol=mqtt.MQTTv311, manual_ack=True)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(min_delay=0.2, max_delay=5)  # type: ignore[arg-type]  # paho's hint says int; it sleeps a float
        if username:
            c.username_pw_set(username, password)
        if tls or ca_file:
            c.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.fast_publish = self._on_publish
        self.client = c
        self._worker = threading.Thread(target=self._supervise, name="ingest-worker", daemon=True)

    # -- paho thread ------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the gateway: %s", reason_code)
            return
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
        client.subscribe(subs)
        self.connected.set()
        log.info("connected to %s:%d, subscribed to %s", self.host, self.port, [s for s, _ in subs])

    def _subscribe_owned(self):
        """Subscribe to the topics of owned registered devices not subscribed yet."""
        subs = []
        for device in self.registry.devices():
            site = self.registry.site_of(device)
            if device in self._subscribed or site is None or not self.owns(device):
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
            rc, _mid = self.client.subscribe([(topics.topic(site, device, kind), 1)
                                              for device, site in chunk for kind in ("r", "birth", "death")])
            if rc == mqtt.MQTT_ERR_SUCCESS:  # not connected: tried again at the next poll
                self._subscribed.update(device for device, _site in chunk)
                log.info("subscribed to the topics of %d owned device(s)", len(chunk))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg):
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers check topics are UTF-8; a hostile one may not
            topic = bytes(msg._topic).decode("utf-8", "backslashreplace")  # refused as topic_mismatch
        if self.pipeline.shed(topic):
            if msg.qos == 1:
                client.ack_shed(msg.mid)
            elif msg.qos == 2:  # (the gateway subscribes at QoS 1: not from a broker)
                client.ack(msg.mid, msg.qos)
            return
        self.inbox.put((topic, msg.payload, msg.mid, msg.qos))

    def _on_publish(self, topic, payload, mid):
        if self.pipeline.shed(topic):  # over its device's rate: counted, acknowledged, not queued
            self.client.ack_shed(mid)
            return
        self.inbox.put((topic, payload, mid, 1))

    # -- worker -----------------------------------------------------------------------------

    def _take_group(self):
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

    def _handle(self, topic, payload):
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

    def _event(self, kind, detail):
        """Record an event for ``gateway status``; a store that cannot take it is logged only."""
        try:
            self.pipeline.store.record_event(kind, detail)
        except StoreError as e:
            log.warning("could not record %s event: %s", kind, e)

    def _commit(self, save_counters=True):
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

    def _supervise(self):
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

    def _run(self):
        last_registry = last_counters = 0.0
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
            self.commits += 1
            self._held = []
            for _topic, _payload, mid, qos in group:
                if qos > 0:
                    self.client.ack(mid, qos)
            for device, contig in acks.items():
                site = self.registry.site_of(device)
                if site is not None:
                    self.client.publish(topics.ack(site, device), session.encode_ack(contig), qos=1, retain=True)
            if self.on_commit is not None:
                self.on_commit(self.pipeline.counters["stored"] - stored_before)
        try:
            self.pipeline.commit()
            self.pipeline.save_counters()  # the last word: counters as they stand at shutdown
        except StoreError as e:
            log.error("at shutdown: %s (not acknowledged: the broker and devices send it again)", e)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self):
        self._worker.start()
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self):
        self._stop.set()
        self._worker.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()

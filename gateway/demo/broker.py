"""The demo's embedded MQTT broker: amqtt 0.12 in its own thread, on a free loopback port.

DESIGN.md §4 makes amqtt the in-process broker of the demo and of single-box trials. Three
behaviours of amqtt 0.12.1 matter for ack-after-commit ingest, found by reading
``amqtt/broker.py`` and ``amqtt/mqtt/protocol/handler.py`` and checked by
``tests/demo/test_embedded_broker.py``:

1. **Anonymous sessions are never persistent.** ``AnonymousAuthPlugin`` marks every client
   ``is_anonymous``; the broker then neither queues QoS 1 messages for an offline
   ``clean_session=False`` client (``_run_broadcast``) nor keeps its session
   (``_session_monitor`` drops it). Workaround: ``LoopbackAuth`` below admits every client
   of this loopback-only broker *without* marking it anonymous, so the gateway's persistent
   session keeps collecting readings while it is away (MQTT-3.1.2-4/5).
2. **Unacknowledged deliveries are dropped, not redelivered.** A QoS 1 PUBLISH to a
   subscriber waits at most 5 s for its PUBACK; on timeout, or when the subscriber
   disconnects first, the message leaves ``inflight_out`` and is not sent again on
   reconnect (MQTT-4.4.0-1 asks for redelivery). The gateway PUBACKs after its commit
   (milliseconds), and the agents' end-to-end ack closes the gap anyway: a device that
   sees no ack for ``resend_after_s`` sends again from its last acked seq, and the gateway
   stores a message seen twice once.
3. **Deliveries use the subscription's QoS**, not min(publish QoS, subscription QoS). All
   edgeledger traffic is QoS 1 on both sides, so nothing changes for us.
4. **A connecting client is sent the retained messages of every client's subscriptions.**
   ``_handle_client_session`` walks the broker-wide subscription table and publishes each
   matching retained message to the new client. A device would receive the retained
   end-to-end ack of *another* device on its ack topic's connection and could drop records
   from its outbox that the gateway never stored. The same walk awaits inside a loop over
   that dict, so a second client subscribing meanwhile crashes the first one's connection
   ("dictionary changed size during iteration": seen with ten devices connecting at
   once). Workaround: ``_Broker`` sends retained messages only for filters the client
   itself holds, and schedules those publishes instead of awaiting them, so the walk never
   yields to the event loop mid-iteration.

Only the listener and the auth plugin are configured: no ``$SYS`` publisher, no packet
logger (it formats every packet, which costs more than the demo's whole ingest).
"""
import asyncio
import dataclasses
import logging
import threading
from typing import Any

from amqtt.plugins.base import BaseAuthPlugin

from edgeledger.gateway.errors import GatewayError

# How long start() waits for the listener and stop() for a clean shutdown.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
LOOPBACK = "127.0.0.1"


class BrokerStartError(GatewayError):
    """The embedded broker did not start (port, amqtt configuration)."""


class LoopbackAuth(BaseAuthPlugin):
    """Admit every client without marking its session anonymous (see note 1 above).

    Only for a broker bound to the loopback interface: it checks no credentials.
    """

    @dataclasses.dataclass
    class Config:
        pass

    async def authenticate(self, *, session: Any) -> bool:
        return True


def _broker_class() -> Any:
    """amqtt's Broker with note 4's fix (imported late: amqtt is only needed by the demo)."""
    from amqtt.broker import Broker

    class _Broker(Broker):
        _pending_retained: set[Any] = set()

        async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                              session: Any) -> None:
            topic_filter, qos = subscription
            if not any(s is session for s, _q in self._subscriptions.get(topic_filter, ())):
                return  # another client's filter (note 4)
            handler = self._get_handler(session)
            if handler is None:
                return
            for topic, retained in list(self._retained_messages.items()):
                if self._matches(topic, topic_filter):
                    task = asyncio.ensure_future(handler.mqtt_publish(
                        retained.topic, retained.data, min(qos, retained.qos or qos), retain=True))
                    self._pending_retained.add(task)  # keep a reference until it is done
                    task.add_done_callback(self._pending_retained.discard)

    return _Broker


class EmbeddedBroker:
    """amqtt on ``127.0.0.1``, port chosen by the kernel, serving from a daemon thread.

    ``start()`` returns once the listener accepts connections and raises BrokerStartError if
    it does not; ``url`` is then ``mqtt://127.0.0.1:<port>``. ``stop()`` shuts it down.
    """

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return "mqtt://%s:%d" % (self.host, self.port)

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": "%s:%d" % (self.host, self.port)}},
            "plugins": {"%s.%s" % (__name__, LoopbackAuth.__name__): {}},
        }

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._broker = _broker_class()(self._config(), loop=loop)
            await self._broker.start()
            server = self._broker._servers["default"].instance
            self.port = server.sockets[0].getsockname()[1]

        try:
            loop.run_until_complete(boot())
        except Exception as e:  # amqtt raises BrokerError, OSError, plugin errors
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # amqtt's shutdown leaves client handler tasks (and their sockets) behind: cancel
            # them and let them unwind, so no transport outlives the loop
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            for sock in getattr(loop, "_transports", {}).values():
                if sock is not None and not sock.is_closing():
                    sock.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def start(self) -> "EmbeddedBroker":
        # amqtt logs every connect and disconnect at INFO and a warning for each missing
        # optional plugin section; the demo shows its own progress instead.
        logging.getLogger("amqtt").setLevel(logging.ERROR)
        self._thread = threading.Thread(target=self._run, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise BrokerStartError("expected the embedded MQTT broker to listen within %.0f s, it did not"
                                   % START_TIMEOUT_S)
        if self._error is not None:
            raise BrokerStartError("embedded MQTT broker on %s:%d did not start: %s"
                                   % (self.host, self.port, self._error))
        return self

    def stop(self) -> None:
        if self._loop is None or self._broker is None or self._thread is None or not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(STOP_TIMEOUT_S)
        except Exception:  # a failed shutdown of a daemon thread's broker must not mask results
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT_S)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

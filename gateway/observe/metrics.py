"""Prometheus ``/metrics`` of a running gateway (gateway.toml ``[metrics] listen``).

Every scrape reads the store (facts.Facts: ``gateway status --json``'s snapshot), so the
figures are those of every ingest worker and the batcher together, as saved: counters reach
the store within a second (service.py COUNTER_SAVE_S, anchor/thread.py COUNTER_SAVE_S).
Off unless configured; serve it on loopback or a management network (it is read-only but
tells who is online). The metrics, all prefixed ``edgeledger_`` (docs/operators.md lists them):

counters  messages_received, messages_stored, messages_duplicate, messages_rejected{reason},
          quarantined{reason}, acks_sent, reorgs, batches_anchored, batches_final,
          ledger_unavailable, restarts{what}  (each exposed with ``_total``)
gauges    anchoring_backlog_batches, anchoring_backlog_messages, last_anchored_block,
          last_anchored_batch, chain_reachable, anchoring_halted, devices, devices_online,
          devices_stuck
"""
import logging
from typing import Any, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server

from edgeledger.gateway.errors import ConfigError
from edgeledger.gateway.observe.facts import Facts, listen_address

log = logging.getLogger("edgeledger.gateway")

PREFIX = "edgeledger_"
# Plain counters: (metric name, store counter, help).
COUNTERS = (
    ("messages_received", "received", "messages taken from the broker"),
    ("messages_stored", "stored", "messages stored (each once)"),
    ("messages_duplicate", "duplicates", "messages stored before and acknowledged again"),
    ("acks_sent", "acks_sent", "end-to-end acks published to devices"),
    ("reorgs", "reorgs", "chain reorganisations that removed anchored batches"),
    ("batches_anchored", "batches_anchored", "batches that reached their confirmations"),
    ("batches_final", "batches_final", "batches that reached finality"),
    ("ledger_unavailable", "ledger_unavailable", "batcher rounds that found the node unreachable"),
)
# restarts{what}: the store counter of each supervised thread or process.
RESTARTS = (("ingest_thread", "ingest_thread_restarts"), ("batcher", "batcher_restarts"),
            ("worker", "worker_restarts"))


class SnapshotCollector:
    """A prometheus_client collector that turns one store snapshot into the metrics."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    def collect(self) -> Iterator[Metric]:
        snap = self.facts.snapshot()
        yield from metrics_of(snap, self.facts.cfg.ledger.backend != "none")


def metrics_of(snap: dict[str, Any], anchoring: bool = True) -> Iterator[Metric]:
    """The metric families of a ``gateway status --json`` snapshot; ``anchoring``: whether
    the gateway has a ledger at all (``[ledger] backend`` other than none)."""
    c = snap["counters"]  # non-zero ones only: a missing name is 0
    for name, key, text in COUNTERS:
        yield CounterMetricFamily(PREFIX + name, text, value=c.get(key, 0))
    rejected = CounterMetricFamily(PREFIX + "messages_rejected", "messages rejected, by reason", labels=["reason"])
    for key in sorted(c):
        if key.startswith("rejected_"):
            rejected.add_metric([key[len("rejected_"):]], c[key])
    yield rejected
    quarantined = CounterMetricFamily(PREFIX + "quarantined", "rejected messages kept in quarantine, by reason",
                                      labels=["reason"])
    for reason, n in sorted(snap["quarantine"].items()):
        quarantined.add_metric([reason], n)
    yield quarantined
    restarts = CounterMetricFamily(PREFIX + "restarts", "threads and worker processes started again, by kind",
                                   labels=["what"])
    for what, key in RESTARTS:
        restarts.add_metric([what], c.get(key, 0))
    yield restarts
    backlog, last, state = snap["backlog"], snap["last_anchored"], snap["anchoring"]["state"]
    yield GaugeMetricFamily(PREFIX + "anchoring_backlog_batches", "batches not anchored yet",
                            value=backlog["batches_not_anchored"])
    yield GaugeMetricFamily(PREFIX + "anchoring_backlog_messages", "stored messages not in a batch yet",
                            value=backlog["messages_not_batched"])
    yield GaugeMetricFamily(PREFIX + "last_anchored_batch", "number of the newest anchored batch (0: none)",
                            value=last["batch"] if last else 0)
    yield GaugeMetricFamily(PREFIX + "last_anchored_block", "block of the newest anchored batch (0: none)",
                            value=(last["block"] or 0) if last else 0)
    yield GaugeMetricFamily(PREFIX + "chain_reachable", "1 while the batcher reaches the ledger node (0: no ledger)",
                            value=1 if anchoring and state != "unreachable" else 0)
    yield GaugeMetricFamily(PREFIX + "anchoring_halted", "1 when anchoring stopped on a conflict (gateway status)",
                            value=1 if state == "halted" else 0)
    devices = snap["devices"]
    yield GaugeMetricFamily(PREFIX + "devices", "registered devices", value=len(devices))
    yield GaugeMetricFamily(PREFIX + "devices_online", "devices whose last session message was a birth",
                            value=sum(1 for d in devices if d["online"]))
    yield GaugeMetricFamily(PREFIX + "devices_stuck", "devices whose acks wait at a gap in their chain",
                            value=sum(1 for d in devices if d["stuck"]))


class MetricsServer:
    """``/metrics`` on ``listen`` (host:port) in a thread of prometheus_client's WSGI server.
    Raises ConfigError for a bad address or one that cannot be bound (in use, not local)."""

    def __init__(self, facts: Facts, listen: str) -> None:
        host, port = listen_address(listen, "[metrics] listen")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(facts))
        try:
            self._server, self._thread = start_http_server(port, host, registry)
        except OSError as e:
            raise ConfigError("gateway config: [metrics] listen = %r: cannot listen there: %s" % (listen, e)) from e
        self.port = self._server.server_port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


__all__ = ["MetricsServer", "SnapshotCollector", "metrics_of"]

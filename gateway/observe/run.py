"""The observers of ``gateway run``: the summary line every ``[log] summary_s``, and the
``/metrics`` and status-page servers when gateway.toml turns them on."""
import logging
import time
from typing import Any

from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.errors import GatewayError
from edgeledger.gateway.observe import logs
from edgeledger.gateway.observe.facts import Facts

summary_log = logging.getLogger(logs.SUMMARY_LOGGER)


class Observers:
    """Started by ``gateway run`` beside ingest and the batcher. Raises ConfigError (a bad
    ``[log] level``, a ``listen`` address that cannot be bound) and StoreError."""

    def __init__(self, cfg: GatewayConfig, now: float | None = None) -> None:
        logs.apply_config(cfg.log.level, "gateway config: [log] level")
        self.cfg = cfg
        self.facts = Facts(cfg)
        self.servers: list[Any] = []
        self.urls: list[str] = []
        try:
            if cfg.metrics.listen:
                from edgeledger.gateway.observe.metrics import MetricsServer

                m = MetricsServer(self.facts, cfg.metrics.listen)
                self.servers.append(m)
                self.urls.append("metrics http://%s/metrics" % _hostport(cfg.metrics.listen, m.port))
            if cfg.web.listen:
                from edgeledger.gateway.observe.web import WebServer

                w = WebServer(self.facts, cfg.web.listen)
                self.servers.append(w)
                self.urls.append("status page http://%s/" % _hostport(cfg.web.listen, w.port))
        except Exception:
            self.stop()
            raise
        start = time.monotonic() if now is None else now
        self._next = start + cfg.log.summary_s if cfg.log.summary_s else None

    def tick(self, now: float) -> None:
        """Say the summary line when it is due (``now``: time.monotonic())."""
        if self._next is None or now < self._next:
            return
        self._next = now + self.cfg.log.summary_s
        try:
            summary_log.info("%s", logs.gateway_summary(self.cfg.gateway_id, self.facts.snapshot(),
                                                        self.cfg.ledger.backend != "none"))
        except GatewayError as e:
            summary_log.warning("gateway %s: no summary, the store cannot be read: %s", self.cfg.gateway_id, e)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
        self.servers = []
        self.facts.close()


def _hostport(listen: str, port: int) -> str:
    return "%s:%d" % (listen.rpartition(":")[0], port)

"""The observers' read-only view of the store (package docstring)."""
import threading
from typing import Any

from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.errors import ConfigError
from edgeledger.gateway.store import Store, StoredReading


class Facts:
    """A read connection to the store for the observers, one query at a time (a lock: the
    HTTP servers answer from several threads). Raises StoreError when the store cannot be
    opened."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self._store = Store(cfg.store, cfg.sqlite_synchronous)
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        """``gateway status --json``'s dict (cli/status.py). Raises StoreError."""
        from edgeledger.gateway.cli.status import snapshot

        with self._lock:
            return snapshot(self.cfg, self._store)

    def recent_batches(self, limit: int) -> list[Any]:
        """The newest ``limit`` batches, newest first. Raises StoreError."""
        from edgeledger.gateway.anchor.lifecycle import STATES

        with self._lock:
            last = self._store.last_batch()
            if last is None:
                return []
            batches = self._store.batches_above(last.number - limit, STATES)
        return batches[::-1]

    def readings(self, device: str, t_from: float, t_to: float, limit: int) -> list[StoredReading]:
        """Stored messages of ``device`` with a record time in [t_from, t_to]. Raises StoreError."""
        with self._lock:
            return self._store.readings_between(t_from, t_to, device, limit)

    def close(self) -> None:
        with self._lock:
            self._store.close()


def listen_address(text: str, key: str) -> tuple[str, int]:
    """(host, port) of a ``listen = "host:port"`` key (``[metrics]``, ``[web]``); an IPv6 host
    in brackets. Raises ConfigError naming ``key``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("gateway config: %s: expected host:port (e.g. 127.0.0.1:9108), found %r" % (key, text))
    return host, int(port)

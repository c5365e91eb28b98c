"""``edgeledger gateway run``: wire the store, registry, pipeline and MQTT service."""
import logging
import signal
import threading
import time

from edgeledger.gateway import config
from edgeledger.gateway.pipeline import Pipeline
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.service import IngestService
from edgeledger.gateway.store import Store

log = logging.getLogger("edgeledger.gateway")


def build(cfg):
    store = Store(cfg["store"], cfg["synchronous"])
    registry = Registry(store)
    pipeline = Pipeline(store, registry, max_message_bytes=int(cfg["max_message_bytes"]),
                        clock_skew_s=float(cfg["clock_skew_s"]))
    mq = cfg.get("mqtt", {})
    password = None
    if mq.get("password_file"):
        with open(mq["password_file"]) as f:
            password = f.read().strip()
    service = IngestService(pipeline, cfg["broker"], cfg["client_id"], sites=cfg["sites"],
                            username=mq.get("username"), password=password,
                            ca_file=mq.get("ca_file"), cert_file=mq.get("cert_file"),
                            key_file=mq.get("key_file"))
    return store, service


def main(config_path, duration_s=None):
    cfg = config.load(config_path)
    store, service = build(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    service.start()
    print("gateway %s: store %s, broker %s" % (cfg["gateway_id"], cfg["store"], cfg["broker"]), flush=True)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    finally:
        service.stop()
        c = service.pipeline.counters
        print("gateway %s: received %d, stored %d, duplicates %d, rejected %d"
              % (cfg["gateway_id"], c["received"], c["stored"], c["duplicates"], c["rejected"]), flush=True)
        store.close()
    return 0

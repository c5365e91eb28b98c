"""Ingest: from an MQTT message to a committed, acknowledged row (or a quarantined reject).

``pipeline.py``    one message in, a verdict out (size, topic, rate, CBOR, COSE, payload,
                   canonical form, key window, signature, clock, chain rules); staged
                   results committed in groups;
``service.py``     the MQTT receive path: a bounded inbox, a worker thread that commits and
                   then PUBACKs and publishes end-to-end acks;
``mqtt_client.py`` the broker connection: a plain (or TLS) socket and the project's MQTT
                   codec, persistent session, keepalive, reconnection with backoff;
``runner.py``      ``edgeledger gateway run``: the store, registry, pipeline and service
                   wired together, ingest worker processes, the batcher and upkeep threads;
``ratelimit.py``   token buckets per device, in front of the inbox;
``quarantine.py``  what rejects may store, in all and per device;
``upkeep.py``      the broker from the gateway's side: retained readings cleared, revoked
                   devices' live sessions cut.
"""
from edgeledger.gateway.ingest.pipeline import Accepted, Pipeline
from edgeledger.gateway.ingest.service import IngestService

__all__ = ["Accepted", "IngestService", "Pipeline"]

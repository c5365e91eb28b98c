"""What a running gateway shows of itself: log levels and a summary line (logs.py),
Prometheus ``/metrics`` (metrics.py) and a read-only status page (web.py).

All of it reads the store through ``facts.Facts``, its own connection, the same queries as
``gateway status`` (cli/status.py ``snapshot``): nothing here writes, and the ingest and
batcher threads never wait for a scrape or a page beyond SQLite's WAL readers.
"""

"""``edgeledger bench <suite>``: measurements against the physical limits of the machine.

One module per suite (``ingest``, ``anchor``, ``proof``); each has ``run(**options)``
returning a flat dict of figures and ``add_parser(suites)``. Every figure is reported
beside a baseline measured in the same run, because the machines are shared and noisy:
ratios travel between runs, absolute rates do not. docs/benchmarks.md explains every
figure and keeps the latest tables.
"""

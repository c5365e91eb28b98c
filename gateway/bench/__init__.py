"""``edgeledger bench <suite>``: measurements against the physical limits of the machine.

One module per suite (``ingest``, ``anchor``, ``proof``, ``flood``, ``device`` with its
32-bit half ``device32``, ``flash``); each has ``main(args)``, and ``cmd.py`` registers
them all in the one ``bench`` command group. Every figure is reported
beside a baseline measured in the same run, because the machines are shared and noisy:
ratios travel between runs, absolute rates do not. docs/benchmarks.md explains every
figure and keeps the latest tables.
"""

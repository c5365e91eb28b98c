"""Mosquitto for the tests: the implementation is installed with the benchmarks.

A missing binary raises BrokerMissing with the install hint: the test fails loudly.
"""
from edgeledger.gateway.bench.mosquitto import BrokerMissing, Mosquitto, mosquitto_binary  # noqa: F401

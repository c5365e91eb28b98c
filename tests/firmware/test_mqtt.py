"""The device MQTT client, exact bytes over a fake socket, under CPython and MicroPython."""
import os

import pytest

from tests.firmware import mqtt_cases
from tests.support.mpy import run_micropython

CASES = sorted(n for n in dir(mqtt_cases) if n.startswith("case_"))


@pytest.mark.parametrize("name", CASES)
def test_cpython(name):
    getattr(mqtt_cases, name)()


@pytest.mark.micropython
def test_micropython_runs_every_case():
    with open(os.path.join(os.path.dirname(__file__), "mqtt_cases.py")) as f:
        source = f.read()
    proc = run_micropython(source + "\nrun_all()\n", heapsize="256K")
    assert "mqtt cases ok %d" % len(CASES) in proc.stdout, proc.stdout

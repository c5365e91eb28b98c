"""protocols/mqtt.py: the sans-IO MQTT 3.1.1 codec, exact bytes, under CPython and MicroPython."""
from tests.protocols import mqtt_cases
from tests.support.mpy import case_tests

test_cpython, test_micropython_runs_every_case = case_tests(mqtt_cases, "mqtt codec cases ok")

"""The device MQTT client, exact bytes over a fake socket, under CPython and MicroPython."""
from tests.firmware import mqtt_cases
from tests.support.mpy import case_tests

test_cpython, test_micropython_runs_every_case = case_tests(mqtt_cases, "mqtt cases ok")

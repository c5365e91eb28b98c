"""The codec checks under the real MicroPython interpreter (STYLE.md item 8)."""
import os

import pytest

from tests.support.mpy import run_micropython

HERE = os.path.dirname(os.path.abspath(__file__))


def _source(tail):
    with open(os.path.join(HERE, "vectors.py")) as f:
        vectors = f.read()
    with open(os.path.join(HERE, "codec_checks.py")) as f:
        checks = f.read()
    return vectors + "\n" + checks + "\n" + tail


@pytest.mark.micropython
def test_codecs_under_micropython():
    proc = run_micropython(_source("run_all()\nprint('ALL OK')\n"), heapsize="512K")
    assert "ALL OK" in proc.stdout, proc.stdout
    for fn in ("check_modbus_master", "check_dsmr_framer", "check_obis_codes", "check_iec_session",
               "check_hostile_frames"):
        assert "ok " + fn in proc.stdout


@pytest.mark.micropython
def test_source_factory_under_micropython():
    # the source table imports lazily by module path; on the unix port there is
    # no serial backend, so opening a real port must fail with SourceError
    src = (
        "from edgeledger.agent import sources\n"
        "from edgeledger.agent.errors import SourceError, ConfigError\n"
        "try:\n"
        "    sources.from_config({'type': 'dsmr', 'port': '/dev/null', 'version': '5'})\n"
        "    raise AssertionError('expected SourceError')\n"
        "except SourceError as e:\n"
        "    print('source error', e)\n"
        "try:\n"
        "    sources.from_config({'type': 'nope'})\n"
        "except ConfigError:\n"
        "    print('config error')\n"
        "class P:\n"
        "    def __init__(self): self.baud = None\n"
        "    def set_baud(self, b): self.baud = b\n"
        "s = sources.from_config({'type': 'iec62056', 'max_baud': 9600}, port=P())\n"
        "print(type(s).__name__)\n"
    )
    proc = run_micropython(src)
    assert "source error" in proc.stdout and "config error" in proc.stdout
    assert "Iec62056Source" in proc.stdout

"""CPython run of the shared codec checks (the same checks run under MicroPython
in test_micropython.py)."""
import pytest

from tests.fieldbus import codec_checks


@pytest.mark.parametrize("check", codec_checks.ALL, ids=lambda f: f.__name__)
def test_codec(check):
    check()

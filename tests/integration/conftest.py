"""Fixtures the integration tests share with other suites."""
from tests.fieldbus.conftest import pty_pair  # noqa: F401 (socat pty pairs: a meter line nobody answers on)

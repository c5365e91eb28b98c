import pytest

from tests.support.broker import Mosquitto
from tests.support.site import Site


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto on a free loopback port, killed after the test."""
    with Mosquitto(workdir=str(tmp_path / "mosquitto")) as m:
        yield m


@pytest.fixture
def site(tmp_path, broker):
    """A site directory wired to ``broker``; every process it started is killed afterwards."""
    s = Site(tmp_path / "site", broker.url)
    yield s
    s.stop()

"""protocols/broker_url.py: one parser for every broker URL."""
import pytest

from edgeledger.protocols import broker_url
from edgeledger.protocols.broker_url import BrokerUrlError


@pytest.mark.parametrize("url, want", [
    ("mqtt://127.0.0.1:1883", (False, "127.0.0.1", 1883)),
    ("mqtt://broker.plant-a.local", (False, "broker.plant-a.local", 1883)),
    ("mqtts://broker:8884", (True, "broker", 8884)),
    ("mqtts://broker/", (True, "broker", 8883)),
    ("mqtt://[::1]:1884", (False, "::1", 1884)),
    ("mqtts://[fe80::1]", (True, "fe80::1", 8883)),
])
def test_good_urls(url, want):
    assert broker_url.parse(url) == want


@pytest.mark.parametrize("url", ["", "http://x:1", "mqtt:/x", "mqtt://", "mqtt://:1883", "mqtt://x:0",
                                 "mqtt://x:65536", "mqtt://x:port", "mqtt://x:1883/path", "mqtt://u:p@x",
                                 "mqtt://[::1", "mqtt://x?y", None, 1883, "mqtt://" + "x" * 400])
def test_bad_urls_raise_one_typed_error(url):
    with pytest.raises(BrokerUrlError):
        broker_url.parse(url)
    assert issubclass(BrokerUrlError, ValueError)

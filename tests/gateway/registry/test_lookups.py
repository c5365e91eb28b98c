"""The registry's strict lookups (require_site, require_key): a caller that needs a device's
site or a key to go on (the chain sync, provisioning) gets a RegistryError naming what is
missing, never a None it would pass on to the ledger."""
import pytest

from edgeledger.gateway.errors import RegistryError
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.devices import FakeDevice


@pytest.fixture
def registry(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    yield Registry(st)
    st.close()


def test_require_site_and_key_return_what_is_registered(registry):
    dev = FakeDevice("meter-07", site="plant-b")
    dev.register(registry)
    assert registry.require_site("meter-07") == "plant-b"
    assert registry.require_key(dev.signer.kid).device == "meter-07"


def test_an_unknown_device_or_key_raises_a_registry_error(registry):
    FakeDevice("meter-07").register(registry)
    with pytest.raises(RegistryError, match="unknown device 'meter-08'"):
        registry.require_site("meter-08")
    assert registry.site_of("meter-08") is None  # the lenient lookup stays lenient
    with pytest.raises(RegistryError, match="expected a registered key 00+, found none"):
        registry.require_key(bytes(16))

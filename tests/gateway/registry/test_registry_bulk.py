"""Registry.register_many: a site's devices registered in one transaction and one reload.

``register`` reloads every key after each call, so registering n devices one by one costs
n² (100,000 devices: ``edgeledger bench curves``); the bulk call must apply the same checks.
"""
import hashlib

import pytest
from nacl.signing import SigningKey

from edgeledger.gateway.errors import RegistryError
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from edgeledger.protocols.cose import EDDSA


def _entry(name):
    pub = bytes(SigningKey.generate().verify_key)
    return (name, EDDSA, pub, hashlib.sha256(pub).digest()[:16])


def test_register_many_adds_every_device_and_key_once(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    reg = Registry(st)
    entries = [_entry("dev-%03d" % i) for i in range(50)]
    assert reg.register_many("site-a", entries) == 50
    assert reg.register_many("site-a", entries[:10] + [_entry("dev-new")]) == 1  # known kids are skipped
    fresh = Registry(st)  # what another process reads from the store
    assert len(fresh.keys()) == 51 and len(fresh.devices()) == 51
    for name, alg, pub, kid in entries:
        k = fresh.key(kid)
        assert (k.device, k.alg, k.public_key, k.first_seq) == (name, alg, pub, 1)
        assert fresh.site_of(name) == "site-a"
    st.close()


def test_register_many_refuses_a_device_of_another_site_and_adds_nothing(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    reg = Registry(st)
    reg.register_many("site-a", [_entry("dev-1")])
    with pytest.raises(RegistryError, match="registered on site 'site-a', not 'site-b'"):
        reg.register_many("site-b", [_entry("dev-2"), _entry("dev-1")])
    assert reg.devices() == ["dev-1"] and len(reg.keys()) == 1
    st.close()


def test_register_many_refuses_a_bad_key_like_register(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    reg = Registry(st)
    name, alg, pub, kid = _entry("dev-1")
    with pytest.raises(RegistryError, match="public key must be 32 bytes"):
        reg.register_many("site-a", [_entry("dev-0"), (name, alg, pub[:31], kid)])
    assert reg.devices() == []
    st.close()

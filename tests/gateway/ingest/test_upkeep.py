"""Which revoked devices the gateway cuts off, and when (gateway/upkeep.py); the cut itself
and the retained sweep run against a real broker in tests/security/test_attacks.py."""
import pytest

from edgeledger.gateway import config
from edgeledger.gateway.ingest.upkeep import BrokerUpkeep
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.devices import FakeDevice

pytestmark = pytest.mark.security

T = 1_790_000_000.0


@pytest.fixture
def upkeep(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    reg = Registry(st)
    for name in ("old", "recent", "backdated", "noisy", "fine", "later"):
        FakeDevice(name).register(reg)
    reg.revoke("old", at=T - 3600)       # revoked an hour before the gateway started
    reg.revoke("recent", at=T - 10)      # ten seconds before
    reg.revoke("noisy", at=T - 3600)
    reg.revoke("later", at=T + 100)      # takes effect in the future
    cfg = config.resolve({"broker": "mqtts://localhost:1", "client_id": "el-gw-t", "store": "gw.db",
                          "upkeep": {"cut_every_s": 2.0, "cut_window_s": 600.0},
                          "ledger": {"backend": "none"}}, str(tmp_path))
    u = BrokerUpkeep(cfg, store=st)
    cuts = []
    u.cut = cuts.append
    yield u, reg, st, cuts
    st.close()


def test_cuts_recent_revocations_every_interval_and_old_ones_only_when_heard(upkeep):
    u, reg, st, cuts = upkeep
    assert u.cut_revoked(T) == ["recent"]
    assert u.cut_revoked(T + 1) == []  # not again before cut_every_s
    assert u.cut_revoked(T + 2) == ["recent"]
    # a revocation dated an hour back, made now: its window counts from when it is seen
    reg.revoke("backdated", at=T - 3600)
    assert u.cut_revoked(T + 3) == ["backdated"]
    # an old revocation whose device still speaks (its rejects): cut again
    st.add_device_rejects([("noisy", 1, 1, 0, T + 3)])
    assert u.cut_revoked(T + 4) == ["noisy", "recent"]
    assert u.cut_revoked(T + 5) == ["backdated"]
    # a future revocation is not one yet; the window closes
    assert u.cut_revoked(T + 50) == ["backdated", "noisy", "recent"]
    assert u.cut_revoked(T + 700) == ["later"]  # the others' windows have closed
    assert cuts.count("recent") == 4

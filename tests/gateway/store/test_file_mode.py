"""The store's files hold every reading of the site: created readable by their owner only."""
import os
import stat

from edgeledger.gateway.store import Store


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_store_and_its_wal_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)  # the usual umask: files would be world-readable
    try:
        path = str(tmp_path / "site" / "gateway.db")
        st = Store(path)
        st.record_event("probe", "something in the WAL")
        wal = path + "-wal"
        assert _mode(path) == 0o600
        assert os.path.exists(wal) and _mode(wal) == 0o600
    finally:
        os.umask(old)


def test_an_existing_store_keeps_its_mode(tmp_path):
    path = str(tmp_path / "gateway.db")
    Store(path).db.close()
    os.chmod(path, 0o640)  # an operator chose group read for a backup user
    Store(path).db.close()
    assert _mode(path) == 0o640

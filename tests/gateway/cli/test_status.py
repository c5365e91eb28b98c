"""`edgeledger gateway status --json`: the site's state for machines — counters, quarantine,
batches and backlog, the last anchored batch, a line per device with its marks, stuck flag,
session and last arrival."""
import json

import pytest

from edgeledger.gateway import errors
from edgeledger.gateway.cli import main
from edgeledger.protocols import topics
from tests.support.anchoring import anchor_stored, chain_site
from tests.support.devices import FakeDevice


@pytest.fixture
def site(tmp_path):
    """a: seqs 1-3, anchored, then seq 4 stored (not batched); b: seqs 1 and 3 (2 never came:
    stuck at 1); one quarantined message; a's session up (birth), b's down (death)."""
    a, b = FakeDevice("a"), FakeDevice("b", alg="ES256")
    path = str(tmp_path / "gw.db")
    st, _reg, pipe, led, t = chain_site(path, [a, b])
    for _ in range(3):
        pipe.process(a.topic, a.next(t=t))
    pipe.commit()
    anchor_stored(st, led, 3)
    pipe.process(a.topic, a.next(t=t + 1))
    pipe.process(b.topic, b.next(t=t))
    b.next(t=t)  # seq 2: lost on the way
    pipe.process(b.topic, b.next(t=t))
    with pytest.raises(errors.RejectedMessage):
        pipe.process(b.topic, b"\xff junk")
    pipe.note_session(topics.topic(a.site, "a", "birth"), b"\xa0")
    pipe.note_session(topics.topic(b.site, "b", "death"), b"")
    pipe.commit()
    st.close()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('store = "%s"\n[ledger]\nbackend = "none"\n' % path)
    return str(cfg)


def test_status_json_describes_devices_batches_and_backlog(site, capsys):
    assert main(["gateway", "status", "--config", site, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["messages"] == 6 and s["durability"] == "power_loss"
    assert s["quarantine"] == {"malformed_cbor": 1}
    assert s["batches"]["total"] == 1 and s["batches"]["by_state"] == {"anchored": 1}
    assert s["last_anchored"]["batch"] == 1 and isinstance(s["last_anchored"]["block"], int)
    assert s["backlog"] == {"batches_not_anchored": 0, "messages_not_batched": 3}
    devices = dict((d["device"], d) for d in s["devices"])
    assert (devices["a"]["contiguous_seq"], devices["a"]["max_seq"], devices["a"]["stuck"]) == (4, 4, False)
    assert (devices["b"]["contiguous_seq"], devices["b"]["max_seq"], devices["b"]["stuck"]) == (1, 3, True)
    assert devices["a"]["online"] is True and devices["b"]["online"] is False
    assert devices["a"]["last_seen"] > 0 and devices["b"]["last_seen"] > 0
    assert s["counters"] and all(v for v in s["counters"].values())


def test_status_text_is_unchanged_without_json(site, capsys):
    assert main(["gateway", "status", "--config", site]) == 0
    out = capsys.readouterr().out
    assert out.startswith("messages stored: 6\n") and "devices waiting at a gap:" in out

"""A device's life without dead ends: key rotation under a running agent, one agent per
state directory, a broken chain an operator gets moving again, outbox sizes that cannot
stall. Real Mosquitto, gateway and agents as processes, the operator CLI."""
import os
import signal
import time

import pytest

from edgeledger.agent import key_file, linux, signer
from edgeledger.agent.errors import ConfigError
from edgeledger.agent.outbox import HEADER_LEN, MAX_RECORD_BYTES, Outbox, check_sizes
from edgeledger.gateway.enrol import provision
from edgeledger.gateway.registry import Registry
from tests.support.net import wait_until
from tests.support.site import count_exactly_once

pytestmark = pytest.mark.faults


def _cfg(tmp_path, outbox):
    key = tmp_path / "d.key"
    s = signer.generate("EdDSA", "d")
    key.write_text(key_file.key_file_content("d", "EdDSA", s.private_bytes()))
    cfg = tmp_path / "agent.toml"
    cfg.write_text('device = "d"\nsite = "s"\nkey_file = "d.key"\n[outbox]\n%s\n'
                   '[[sources]]\ntype = "simulated"\nkind = "meter"\ninterval_s = 1.0\n' % outbox)
    return linux.load_config(str(cfg))


def test_outbox_sizes_that_would_stall_are_refused_at_start(tmp_path):
    """The old behaviour: max_bytes below the segment size, accepted, and the device stalled
    for good once one segment filled, with everything acknowledged."""
    with pytest.raises(ConfigError, match="stall"):
        linux.build(_cfg(tmp_path, "max_bytes = 100000"))  # default segment_bytes 262144
    with pytest.raises(ConfigError, match="stall"):
        check_sizes(300000, 262144)
    core = linux.build(_cfg(tmp_path, "max_bytes = 400000\nsegment_bytes = 65536"))
    core.outbox.close()


def test_the_smallest_accepted_outbox_keeps_moving(tmp_path):
    """At the bound (a segment plus a largest record) the outbox never refuses a record
    once everything before it is acknowledged, across many segments."""
    seg = 4096
    box = Outbox(str(tmp_path / "ob"), max_bytes=seg + MAX_RECORD_BYTES + HEADER_LEN, segment_bytes=seg)
    check_sizes(box.max_bytes, seg)
    record = b"x" * 200
    for seq in range(1, 2001):  # ~100 segments
        box.append(seq, record)
        box.ack(seq)
    assert box.counters["refused_full"] == 0 and box.head_seq == 2000
    box.append(2001, b"y" * MAX_RECORD_BYTES)  # even a largest record fits
    box.close()


def test_second_agent_on_one_state_dir_is_refused_and_the_chain_does_not_fork(site):
    last = 600
    st = site.start_one("dev-a", last, 0.01, stored_first=50)
    first = site.agents["dev-a"]
    # The first agent is stopped (it keeps its lock) while the second starts: however long the
    # second takes to start on this machine, the first cannot have finished and let go.
    first.send_signal(signal.SIGSTOP)
    try:
        second = site._spawn(["agent", "run", "--config", os.path.join(site.root, "dev-a.toml"),
                              "--until-seq", str(last)], "dev-a-second.log")
        assert second.wait(timeout=120) == 2, site.log("dev-a-second.log")
    finally:
        first.send_signal(signal.SIGCONT)
    assert "another agent (pid %d) runs on state directory" % first.pid in site.log(
        "dev-a-second.log")
    assert site.wait_agents() == {"dev-a": 0}, site.log("dev-a.log")
    lost, duplicated, broken = count_exactly_once(st, {"dev-a": last})
    print("two agents on one state dir: second exited 2; lost=%d duplicated=%d forks=%d"
          % (lost, duplicated, st.quarantine_reasons().get("fork", 0)))
    assert (lost, duplicated, broken) == (0, 0, 0)
    assert st.quarantine_reasons() == {}


def test_key_rotation_under_a_running_agent_loses_nothing(site):
    """The running agent reloads its rotated key file: nothing is signed with the old key
    after the overlap, so nothing is rejected, and the agent never restarts."""
    last = 1200  # ~12 s of sealing at 100 messages/s: the rotation lands early in it
    st = site.start_one("dev-r", last, 0.01, stored_first=50)
    old_kid = site.devices["dev-r"].kid
    # what `edgeledger device rotate --overlap-s 2 --out DIR` does, in this process (a CLI
    # start can take seconds on a loaded machine: the rotation must land mid-run)
    new_kid, _until = provision.rotate(Registry(st), "dev-r", 2.0, out_dir=site.root)
    rotated_at = time.monotonic()
    wait_until(lambda: "signing with key %s" % new_kid.hex() in site.log("dev-r.log", tail=None), 60,
               what="the agent to load the rotated key")
    reload_s = time.monotonic() - rotated_at
    assert site.wait_agents() == {"dev-r": 0}, site.log("dev-r.log")
    lost, duplicated, broken = count_exactly_once(st, {"dev-r": last})
    kids = dict(st.db.execute("SELECT kid, COUNT(*) FROM messages WHERE device='dev-r' GROUP BY kid"))
    print("rotation: reloaded %.1f s after the rotate command; old key %d, new key %d messages; lost=%d "
          "duplicated=%d rejected=%d" % (reload_s, kids.get(old_kid, 0), kids.get(new_kid, 0), lost, duplicated,
                                         sum(st.quarantine_reasons().values())))
    assert (lost, duplicated, broken) == (0, 0, 0)
    assert st.quarantine_reasons() == {}
    assert kids.get(new_kid, 0) > 0 and kids.get(old_kid, 0) > 0


def test_broken_chain_gets_moving_again_by_an_accepted_gap(site):
    """A key revoked under a running device: the seqs it signed in flight can never be
    stored. The device goes on with its new key, but its mark stops at the hole and it
    resends for ever (the old dead end). The operator accepts the gap: the device's
    outbox drains, and the gap is on record for status and for verifiers."""
    last = 700
    st = site.start_one("dev-b", last, 0.02, stored_first=100)
    # `edgeledger device revoke` then `device rotate --overlap-s 0 --out DIR`, in this process
    reg = Registry(st)
    provision.revoke(reg, "dev-b")
    wait_until(lambda: st.quarantine_reasons().get("revoked_device"), 120,
               what="the gateway to refuse what the revoked key signed")
    provision.rotate(reg, "dev-b", 0.0, out_dir=site.root)

    def waiting():
        text = site.cli("gateway", "status", "--config", site.gateway_config).stdout
        return "devices waiting at a gap" in text and "quarantined among them: revoked_device" in text

    wait_until(waiting, 120, interval=0.5, what="status to show dev-b waiting at its gap")
    stuck_at = time.monotonic()
    r = site.cli("device", "accept-gap", "--config", site.gateway_config, "--device", "dev-b",
                 "--reason", "key revoked while messages were in flight")
    assert r.returncode == 0, r.stdout + r.stderr
    assert site.wait_agents() == {"dev-b": 0}, site.log("dev-b.log")
    recover_s = time.monotonic() - stuck_at
    (gap,) = st.chain_gaps("dev-b")
    stored = set(st.seqs("dev-b"))
    in_gap = set(range(gap.after_seq + 1, gap.resume_seq))
    lost = [s for s in range(1, last + 1) if s not in stored and s not in in_gap]
    rejected = st.quarantined_seqs("dev-b", gap.after_seq + 1, gap.resume_seq - 1)
    print("broken chain: gap %d..%d accepted (%s), device drained %.1f s later; lost outside the gap=%d"
          % (gap.after_seq + 1, gap.resume_seq - 1, rejected, recover_s, len(lost)))
    assert lost == []
    assert st.device_marks()["dev-b"][0] == last
    assert rejected.get("revoked_device", 0) >= 1
    text = site.cli("gateway", "status", "--config", site.gateway_config).stdout
    assert "chain gaps:" in text and "key revoked while messages were in flight" in text

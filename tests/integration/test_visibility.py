"""A gateway and an agent an operator can see into (issue 15): real processes, a real closed
port, real Mosquitto and anvil, a real Prometheus scrape.

* a wrong broker port: both processes say so on stderr at once, then at growing intervals
  with a count of the attempts in between, never a line per attempt (the stumble: they ran
  for ever without a word, even with ``-v``);
* a chain node that goes away: a handful of lines, not "unavailable"/"reachable again" at
  every check with an event recorded each time;
* ``/metrics``: the counters move by what was published.
"""
import os
import re
import subprocess
import sys
import time
import urllib.request

import paho.mqtt.client as paho
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeledger.agent import key_file, signer
from edgeledger.gateway.registry import Registry
from tests.support.anvil import Anvil, deploy
from tests.support.devices import FakeDevice
from tests.support.net import free_ports, wait_until

CLI = [sys.executable, "-m", "edgeledger.gateway.cli"]
# Generous: a loaded 2-core machine takes tens of seconds to import web3 and start.
START_S = 120
# How long the repeat-line tests watch a failure that does not go away: one repeat of
# protocols/repeats.py FIRST_GAP_S (10 s) and some.
WATCH_S = 14
# Lines about one failure in WATCH_S: the first, one repeat, and slack for a slow start. A
# line per attempt (0.2 .. 10 s backoff) would be dozens.
MAX_LINES = 4


def _lines(path, pattern):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if re.search(pattern, line)]


def _spawn(args, root, name):
    """A CLI process with stdout and stderr in files of their own (``<name>.out``, ``<name>.err``)."""
    with open(os.path.join(root, name + ".out"), "wb") as out, open(os.path.join(root, name + ".err"), "wb") as err:
        return subprocess.Popen(CLI + args, stdout=out, stderr=err, cwd=root)


def _stop(*procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)


@pytest.mark.faults
def test_a_closed_broker_port_and_a_dead_meter_are_said_at_once_then_at_growing_intervals(tmp_path, pty_pair):
    """Also: the agent's meter on a serial line that never answers is said on the console
    (before, only a status record in the signed pack said it), and both processes print
    their summary lines."""
    root = str(tmp_path)
    closed = free_ports(1)[0]  # nothing listens there: every connect is refused
    url = "mqtt://127.0.0.1:%d" % closed
    meter_line, _nobody = pty_pair("meter")  # no Modbus server on the other end: every request times out
    with open(os.path.join(root, "gateway.toml"), "w") as f:
        f.write('gateway_id = "gw-v"\nstore = "gateway.db"\nbroker = "%s"\n[ledger]\nbackend = "none"\n'
                '[upkeep]\nenabled = false\n[log]\nsummary_s = 2.0\n' % url)
    s = signer.generate("EdDSA", "meter-v")
    with open(os.path.join(root, "meter-v.key"), "w") as f:
        f.write(key_file.key_file_content("meter-v", "EdDSA", s.private_bytes()))
    with open(os.path.join(root, "agent.toml"), "w") as f:
        f.write('device = "meter-v"\nsite = "plant-a"\nkey_file = "meter-v.key"\nbroker = "%s"\nmax_backoff_s = 1.0\n'
                'summary_s = 2.0\n[[sources]]\ntype = "modbus"\nname = "m"\nport = "%s"\ninterval_s = 1.0\n'
                'timeout_s = 0.2\nretries = 0\ndevices = [{unit = 1, map = "sdm630", prefix = "m1/"}]\n'
                % (url, meter_line))
    gw = _spawn(["gateway", "run", "--config", "gateway.toml"], root, "gateway")
    agent = _spawn(["agent", "run", "--config", "agent.toml"], root, "agent")
    try:
        gw_err, agent_err = os.path.join(root, "gateway.err"), os.path.join(root, "agent.err")
        port = r"127\.0\.0\.1:%d" % closed
        wait_until(lambda: _lines(gw_err, "cannot reach the broker at %s" % port), START_S,
                   what="the gateway saying it cannot reach the broker")
        wait_until(lambda: _lines(agent_err, "broker %s cannot be reached" % port), START_S,
                   what="the agent saying it cannot reach the broker")
        # then the same failure again, with how many attempts went unsaid in between
        wait_until(lambda: _lines(gw_err, r"trying again until it answers \(\d+ more times since the last line\)"),
                   60, what="the gateway's repeat line with a count")
        wait_until(lambda: _lines(agent_err, r"cannot be reached .*\(\d+ more times since the last line\)"),
                   60, what="the agent's repeat line with a count")
        watched_from = time.monotonic()
        wait_until(lambda: time.monotonic() - watched_from >= WATCH_S - 10, WATCH_S, what="the watch window")
        assert gw.poll() is None and agent.poll() is None, "both keep running, trying again"
        gw_lines, agent_lines = _lines(gw_err, "reach the broker"), _lines(agent_err, "cannot be reached")
        meter_lines = _lines(agent_err, "source m failed: .*timeout")
        summaries = (_lines(gw_err, r"summary INFO gateway gw-v: stored 0, rejected 0"),
                     _lines(agent_err, r"summary INFO agent meter-v: sealed \d+, .* broker NOT connected"))
    finally:
        _stop(gw, agent)
    print("closed broker port, dead meter: gateway said %d lines, agent %d about the broker and %d about the meter"
          % (len(gw_lines), len(agent_lines), len(meter_lines)))
    assert len(gw_lines) <= MAX_LINES, gw_lines
    assert len(agent_lines) <= MAX_LINES, agent_lines
    assert 1 <= len(meter_lines) <= MAX_LINES, meter_lines
    assert all(len(lines) >= 2 for lines in summaries), summaries


@pytest.mark.ledger
@pytest.mark.faults
def test_a_chain_node_that_goes_away_is_said_a_few_times_not_every_check(site):
    node = Anvil(block_time=1, hardfork="london")
    node.start()
    try:
        owner, gw_key = deploy(node)
        site.use_ledger(node.url, owner.address, gw_key, confirmations=1, max_size=100, max_age_s=0.5)
        site.start_gateway()
        site.wait_gateway_ready()
        log_path = os.path.join(site.root, "gateway.log")
        before = len(_lines(log_path, ""))
        node.stop()
        wait_until(lambda: _lines(log_path, "ledger unavailable"), START_S,
                   what="the gateway saying the ledger is gone")
        down_at = time.monotonic()
        # at least WATCH_S of the node being away: the old batcher said down / back again at every check (2 s),
        # and then nothing more however long the outage lasted
        wait_until(lambda: _lines(log_path, r"ledger unavailable for \d+ s .*\(\d+ more times since the last line\)"),
                   60, what="the repeat line with a count")
        wait_until(lambda: time.monotonic() - down_at >= WATCH_S, WATCH_S + 5, interval=0.5, what="the watch window")
        ledger_lines = [line for line in _lines(log_path, "")[before:] if re.search("ledger|batcher", line)]
        back = _lines(log_path, "reachable again")
        st = site.store()
        events = [e.kind for e in st.recent_events(100)]
        st.close()
    finally:
        node.close()
    print("chain node away %.0f s: %d log lines about it" % (time.monotonic() - down_at, len(ledger_lines)))
    assert back == [], "the node never came back, yet the gateway said so: %s" % back
    assert "ledger_back" not in events
    assert len(ledger_lines) <= MAX_LINES, ledger_lines


def _scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join("{%s=%s}" % kv for kv in sorted(sample.labels.items()))
            out[key] = sample.value
    return out


def _publish(broker_url, topic_and_payloads):
    host, port = broker_url.rsplit("//", 1)[1].split(":")
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="metrics-test", protocol=paho.MQTTv311)
    c.connect(host, int(port))
    c.loop_start()
    try:
        for topic, payload in topic_and_payloads:
            c.publish(topic, payload, qos=1).wait_for_publish(30)
    finally:
        c.disconnect()
        c.loop_stop()


def serving_gateway(site, toml, devices):
    """Register ``devices``, start the site's gateway with ``toml`` (holding ``%(port)d``
    where a free port goes) added to its config; returns that port once it subscribed."""
    port = free_ports(1)[0]
    with open(site.gateway_config, "a") as f:
        f.write("\n" + toml % {"port": port})
    st = site.store()
    for d in devices:
        d.register(Registry(st))
    st.close()
    site.start_gateway()
    site.wait_gateway_ready()
    return port


@pytest.mark.faults
def test_metrics_count_what_was_published(site):
    good, rogue = FakeDevice("meter-m"), FakeDevice("rogue-m")
    port = serving_gateway(site, '[metrics]\nlisten = "127.0.0.1:%(port)d"\n[batch]\nmax_size = 5\nmax_age_s = 0.5\n',
                           [good])
    before = wait_until(lambda: _try(_scrape, port), START_S, what="/metrics answering")
    tampered = bytearray(good.make(99, b"\0" * 32))
    tampered[-1] ^= 1  # the signature no longer verifies
    _publish(site.broker_url, [(good.topic, good.next()) for _ in range(5)]
             + [(rogue.topic, rogue.next()) for _ in range(2)] + [(good.topic, bytes(tampered))])

    def moved():
        m = _scrape(port)
        delta = dict((k, m.get(k, 0) - before.get(k, 0)) for k in set(m) | set(before))
        return (m, delta) if (delta["edgeledger_messages_stored_total"] == 5
                              and delta.get('edgeledger_messages_rejected_total{reason=unknown_device}') == 2
                              and delta.get('edgeledger_messages_rejected_total{reason=bad_signature}') == 1
                              and delta["edgeledger_acks_sent_total"] >= 1
                              and m["edgeledger_batches_anchored_total"] >= 1) else None
    m, delta = wait_until(moved, START_S, interval=0.5, what="the counters to move")
    print("metrics after 5 good, 2 unknown-device and 1 tampered messages: %s"
          % dict((k, v) for k, v in sorted(delta.items()) if v))
    assert delta["edgeledger_messages_received_total"] == 8
    assert delta["edgeledger_quarantined_total{reason=unknown_device}"] == 2
    assert delta["edgeledger_quarantined_total{reason=bad_signature}"] == 1
    assert m["edgeledger_last_anchored_block"] >= 1 and m["edgeledger_last_anchored_batch"] >= 1
    assert m["edgeledger_chain_reachable"] == 1
    assert m["edgeledger_devices"] == 1 and m["edgeledger_devices_stuck"] == 0
    assert m["edgeledger_restarts_total{what=ingest_thread}"] == 0


def _try(fn, *args):
    try:
        return fn(*args)
    except OSError:
        return None

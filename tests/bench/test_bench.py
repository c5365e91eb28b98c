"""The bench suites run end to end at tiny sizes and print the documented JSON keys.

These are not benchmarks (the figures at these sizes mean nothing); they keep the
commands working: real Mosquitto, real anvil, the real gateway with two workers.
"""
import argparse
import json

import pytest

from edgeledger.gateway.bench import anchor, cmd, curves, flood, ingest, pipeline, proof


def _args(argv):
    p = argparse.ArgumentParser()
    top = p.add_subparsers(dest="command")
    cmd.add_commands({"top": top})
    return p.parse_args(argv)


def _run_json(module, argv, capsys):
    args = _args(argv)
    code = module.main(args)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, "expected one JSON line, found %d lines:\n%s" % (len(out), "\n".join(out[:20]))
    return code, json.loads(out[0])


def _assert_context(r):
    """Every suite reports the machine and its same-run baseline (report.context)."""
    assert r["machine"]["nproc"] >= 1 and r["machine"]["cpu"] and len(r["machine"]["load_average"]) == 3
    assert r["baselines"]["ed25519_verify_per_s"] > 0


def test_one_bench_group_holds_every_suite_device_and_flash_included():
    from edgeledger.gateway.boards import cmd as boards_cmd

    p = argparse.ArgumentParser()
    top = p.add_subparsers(dest="command")
    for module in (boards_cmd, cmd):
        module.add_commands({"top": top})
    assert "firmware" in top.choices
    args = p.parse_args(["bench", "device", "--json"])
    assert args.bench_suite == "device" and args.json
    for suite in ("device", "flash", "ingest", "curves", "pipeline", "anchor", "proof", "flood"):
        assert p.parse_args(["bench", suite]).bench_suite == suite


def test_ingest_tiny_run_prints_the_json_keys_and_loses_nothing(monkeypatch, capsys):
    # No stock size is given here: the suite sizes it from this machine's measured verify rate,
    # so the window is never cut short, on a slow machine or a fast one.
    monkeypatch.setattr(ingest, "WARMUP_S", 0.5)
    monkeypatch.setattr(ingest, "GENERATOR_ALONE_S", 0.5)
    code, r = _run_json(ingest, ["bench", "ingest", "--json", "--seconds", "1", "--devices", "4",
                                 "--workers", "2"], capsys)
    for key in ("msgs_per_s", "baseline_msgs_per_s", "ratio", "lost", "duplicated", "acks_missing",
                "ed25519_verify_per_s", "es256_verify_per_s", "sm2_verify_per_s",
                "generator_alone_msgs_per_s",
                "pack10_readings_per_s", "gateway_cpu_us_per_msg", "machine"):
        assert key in r, key
    assert r["msgs_per_s"] > 0 and r["baseline_msgs_per_s"] > 0
    assert r["ratio"] == pytest.approx(r["msgs_per_s"] / r["baseline_msgs_per_s"])
    assert r["generator_pubacks_ok"] is True
    assert (r["lost"], r["duplicated"], r["acks_missing"], r["pack10_acks_missing"]) == (0, 0, 0, 0)
    assert r["sent"] > 0 and r["quarantined"] == 0
    # every rate came from a whole window
    assert r["stock_exhausted"] is False and r["pack10_stock_exhausted"] is False
    # the headline is the durable mode; the not-durable one is measured beside it
    assert r["durability"] == "power_loss" and r["crash_only_durability"] == "process_crash_only"
    assert "crash_only_msgs_per_s" in r and "durable_vs_crash_only" in r  # rates of a 1 s window: any value
    assert (r["crash_only_lost"], r["crash_only_duplicated"], r["crash_only_acks_missing"]) == (0, 0, 0)
    _assert_context(r)
    assert code == 0


def test_ingest_with_sm2_devices_stores_every_reading(monkeypatch, capsys):
    """``bench ingest --alg SM2``: the devices sign with SM2, the gateway verifies and stores
    every message, and the rate is set against SM2's verify-only rate."""
    monkeypatch.setattr(ingest, "WARMUP_S", 0.5)
    monkeypatch.setattr(ingest, "GENERATOR_ALONE_S", 0.5)
    # presigning SM2 is slow (~1k/s): small recycled stocks, a small backlog, one gateway worker
    monkeypatch.setattr(ingest, "CYCLE_STOCK", 400)
    monkeypatch.setattr(ingest, "BACKLOG_S", 0.1)
    code, r = _run_json(ingest, ["bench", "ingest", "--json", "--seconds", "1", "--devices", "2", "--workers", "1",
                                 "--alg", "SM2", "--no-packs", "--no-durability-compare"], capsys)
    assert r["alg"] == "SM2" and r["msgs_per_s"] > 0 and r["sent"] > 0
    assert (r["lost"], r["duplicated"], r["acks_missing"], r["quarantined"]) == (0, 0, 0, 0)
    assert r["stock_exhausted"] is False
    assert r["verify_ratio"] == pytest.approx(r["msgs_per_s"] / r["sm2_verify_per_s"])
    assert code == 0


def test_pipeline_tiny_run_prints_the_json_keys(capsys):
    code, r = _run_json(pipeline, ["bench", "pipeline", "--json", "--messages", "30", "--repeats", "1"], capsys)
    for key in ("single_us_per_msg", "pack10_us_per_msg", "ed25519_verify_us", "ed25519_verify_per_s",
                "single_ratio", "pack10_ratio", "single_msgs_per_s", "pack10_readings_per_s", "commit_group",
                "single_commit_us_per_msg", "pack10_commit_us_per_msg",
                "machine"):
        assert key in r, key
    assert r["single_ratio"] == pytest.approx(r["single_us_per_msg"] / r["single_ed25519_verify_us"])
    assert r["pack10_readings_per_s"] == pytest.approx(10 * r["pack10_msgs_per_s"])
    assert code == 0


def test_pipeline_profile_prints_one_profile_per_phase(capsys):
    r = pipeline.run(messages=20, repeats=1, profile=5)
    out = capsys.readouterr().out
    assert out.count("cProfile, ") == 2 and "function calls" in out
    assert r["single_us_per_msg"] > 0


def test_anchor_tiny_run_prints_the_json_keys(monkeypatch, capsys):
    monkeypatch.setattr(anchor, "THROUGHPUT_BATCHES", 4)
    code, r = _run_json(anchor, ["bench", "anchor", "--json", "--sizes", "10,100", "--batch-age", "1",
                                 "--latency-seconds", "1"], capsys)
    for key in ("gas_per_reading", "gas_per_batch", "p95_latency_s", "p50_latency_s", "p99_latency_s",
                "baseline_gas_per_reading", "anchors_per_min", "by_size"):
        assert key in r, key
    # one transaction per batch whatever its size: the same gas for 10 and 100 readings
    # (only the calldata bytes of tree size and times differ)
    assert r["by_size"]["10"]["gas_per_batch"] == pytest.approx(r["by_size"]["100"]["gas_per_batch"], rel=0.01)
    assert r["gas_per_batch"] == r["by_size"]["100"]["gas_per_batch"]
    assert r["gas_per_reading"] == pytest.approx(r["gas_per_batch"] / 100.0)
    assert 0 < r["p50_latency_s"] <= r["p95_latency_s"] <= r["p99_latency_s"]
    _assert_context(r)
    assert code == 0


def test_proof_tiny_run_prints_the_json_keys(capsys):
    code, r = _run_json(proof, ["bench", "proof", "--json", "--sizes", "8,64", "--repeat", "5"], capsys)
    for key in ("bundle_bytes", "verify_ms", "verify_gas_by_depth", "verify_gas_depth20", "ed25519_verify_ms"):
        assert key in r, key
    assert r["by_size"]["8"]["path_length"] == 3 and r["by_size"]["64"]["path_length"] == 6
    assert r["bundle_bytes"] == r["by_size"]["64"]["bundle_bytes"]
    gas = r["verify_gas_by_depth"]
    assert gas["1"] < gas["8"] < gas["20"]  # one sha256 precompile call more per level
    assert r["light_client_verify_ms"] > 0 and r["light_client_bundle_bytes"] > 0
    assert set(r["key_registry_gas"]) == {"authorize_gateway", "register_key", "register_key_sm2", "rotate_key",
                                          "seal_last_seq", "revoke_key"}
    assert all(21000 < g < 200000 for g in r["key_registry_gas"].values())
    # SM3 on chain is EVM code: each block costs, and a depth-20 check costs far more than SHA-256's
    assert r["sm3_gas_by_blocks"]["1"] < r["sm3_gas_by_blocks"]["4"] and r["sm3_gas_per_block"] > 0
    assert r["sm3_gas_depth20"] > r["sha256_gas_depth20"] > 0
    _assert_context(r)
    assert code == 0


def test_flood_tiny_run_prints_the_json_keys_and_loses_nothing(capsys):
    code, r = _run_json(flood, ["bench", "flood", "--json", "--seconds", "1", "--devices", "2", "--rate", "5"],
                        capsys)
    for phase in ("baseline", "flood"):
        for key in ("latency_p50_s", "latency_p99_s", "latency_max_s", "good_sent", "good_lost", "good_unacked",
                    "flood_sent", "flood_per_s", "rejected", "rate_limited"):
            assert key in r[phase], (phase, key)
        assert r[phase]["good_sent"] > 0 and r[phase]["good_lost"] == 0
    assert r["baseline"]["flood_sent"] == 0 and r["flood"]["flood_sent"] > 0
    _assert_context(r)
    assert code == 0


def test_curves_quick_run_prints_every_curve_and_loses_nothing(monkeypatch, capsys):
    monkeypatch.setattr(ingest, "WARMUP_S", 0.5)
    code, r = _run_json(curves, ["bench", "curves", "--json", "--quick", "--max-workers", "2"], capsys)
    for key in ("machine", "baselines", "workers_curve", "devices_curve", "latency_curve", "cpu_growth",
                "rss_kib_per_device", "stock_exhausted"):
        assert key in r, key
    _assert_context(r)
    assert [p["workers"] for p in r["workers_curve"]] == [1, 2]
    counts = [p["devices"] for p in r["devices_curve"]]
    assert counts == sorted(set(counts)) and len(counts) == 3, counts
    assert all(p["workers"] == 1 for p in r["devices_curve"])
    points = r["workers_curve"] + r["devices_curve"] + r["latency_curve"]
    for p in points:
        for key in ("msgs_per_s", "gateway_cpu_us_per_msg", "gateway_rss_mib", "acks_per_msg"):
            assert p[key] > 0, (key, p)
        assert (p["lost"], p["duplicated"], p["acks_missing"], p["quarantined"]) == (0, 0, 0, 0), p
        assert p["stock_exhausted"] is False, p
    assert r["stock_exhausted"] is False and (r["lost"], r["duplicated"], r["acks_missing"]) == (0, 0, 0)
    for p in r["latency_curve"]:
        assert 0 < p["load"] < 1 and p["offered_msgs_per_s"] > 0
        assert p["kept_up"] == pytest.approx(p["msgs_per_s"] / p["offered_msgs_per_s"])
        for label in ("stored", "acked"):
            assert p[label + "_timed"] > 0, (label, p)
            assert 0 < p[label + "_p50_s"] <= p[label + "_p95_s"] <= p[label + "_p99_s"] <= p[label + "_max_s"]
    assert code == 0


"""``edgeledger demo`` end to end: embedded broker, embedded chain, counts, bundles, exit codes."""
import glob
import json
import os

from edgeledger.gateway import cli, demo, proofs, registry
from edgeledger.gateway.demo.fleet import device_names
from edgeledger.gateway.registry import Registry
from tests.demo.conftest import demo_json, run_cli

COUNT_KEYS = ("sent", "stored", "anchored", "verified", "lost", "duplicated", "rejected")


def test_json_run_of_10_devices_by_20_readings_loses_nothing_and_verifies_every_bundle():
    code, r, proc = demo_json("--devices", 10, "--readings", 20)
    assert code == 0, proc.stderr[-3000:]
    for key in COUNT_KEYS:
        assert isinstance(r[key], int), key
    assert r["lost"] == 0 and r["duplicated"] == 0 and r["rejected"] == 0
    assert r["sent"] == r["stored"] == r["anchored"] == 200
    assert r["checked"] >= 10  # at least one bundle per device
    assert r["verified"] == r["checked"] and r["failures"] == []
    assert r["tamper_rejected"] is True
    assert r["ok"] is True and r["timed_out"] is False
    assert r["batches"] >= 2  # 200 readings in batches of at most 100
    assert r["broker"] == "embedded" and r["ledger"] == "embedded"


def test_out_dir_keeps_store_config_and_a_bundle_per_device_that_the_cli_verifies(tmp_path):
    out = tmp_path / "run"
    code, r, proc = demo_json("--devices", 4, "--readings", 10, "--out", out)
    assert code == 0, proc.stderr[-3000:]
    assert r["out"] == str(out)
    assert (out / "gateway.toml").is_file() and (out / "gateway.db").is_file()
    names = [name for name, _kind, _alg in device_names(4)]
    bundles = sorted(glob.glob(str(out / "bundles" / "*.cbor")))
    for name in names:
        assert any(os.path.basename(b).startswith(name + "-") for b in bundles), (name, bundles)

    ok = run_cli("verify", bundles[0])
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    data = bytearray(open(bundles[0], "rb").read())
    data[demo.TAMPER_OFFSET] ^= 0x01
    bad_path = tmp_path / "bad.cbor"
    bad_path.write_bytes(bytes(data))
    bad = run_cli("verify", bad_path)
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL"), bad.stdout + bad.stderr

    # the written gateway.toml serves `edgeledger proof` for any stored reading
    made = run_cli("proof", names[1], 7, "-o", tmp_path / "p.cbor", "--config", out / "gateway.toml")
    assert made.returncode == 0, made.stdout + made.stderr
    again = run_cli("verify", tmp_path / "p.cbor")
    assert again.returncode == 0 and "%s seq 7" % names[1] in again.stdout, again.stdout + again.stderr


def test_out_dir_that_already_holds_a_store_is_refused(tmp_path):
    (tmp_path / "gateway.db").write_bytes(b"")
    r = run_cli("demo", "--devices", 1, "--readings", 1, "--out", tmp_path, "--json")
    assert r.returncode == 2 and "already holds a gateway store" in r.stderr, r.stdout + r.stderr


def test_a_bundle_that_fails_the_on_chain_check_makes_the_demo_exit_1(monkeypatch, capsys):
    real = proofs.bundle_for

    def wrong_batch(store, device, seq, *args, **kwargs):
        b = real(store, device, seq, *args, **kwargs)
        if device == "meter-01" and seq == 1:
            b.header.number += 1  # offline checks still pass; that header is not the anchored one
        return b

    monkeypatch.setattr(proofs, "bundle_for", wrong_batch)
    code = cli.main(["demo", "--devices", "2", "--readings", "5", "--json"])
    out = capsys.readouterr().out
    assert code == 1, out
    r = json.loads(out)
    assert r["lost"] == 0 and r["checked"] == r["verified"] + 1
    assert len(r["failures"]) == 1 and r["failures"][0].startswith("meter-01 seq 1: root not on chain")


def test_a_device_the_gateway_does_not_know_is_lost_and_the_demo_exits_1(monkeypatch, capsys):
    class Forgetful(Registry):
        def register(self, device, *args, **kwargs):
            if device == "sensor-02":
                return None  # never registered: the gateway rejects its messages
            return Registry.register(self, device, *args, **kwargs)

    monkeypatch.setattr(registry, "Registry", Forgetful)
    code = cli.main(["demo", "--devices", "2", "--readings", "5", "--json", "--timeout", "15"])
    out = capsys.readouterr().out
    assert code == 1, out
    r = json.loads(out)
    assert r["timed_out"] is True
    assert r["lost"] == 5 and r["stored"] == 5 and r["rejected"] >= 5
    assert r["verified"] < r["checked"]

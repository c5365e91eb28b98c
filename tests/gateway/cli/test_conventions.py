"""The CLI speaks one language: ``--config`` is gateway.toml and defaults to ./gateway.toml
wherever it is read, ``--site`` is a site id and ``--dir`` a directory, and algorithms are
shown by name."""
import argparse

import pytest

from edgeledger.agent.signer import generate
from edgeledger.gateway import cli
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store


def _run(capsys, *argv):
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _commands(parser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
    for sub in subs:
        for name, p in sub.choices.items():
            yield from _commands(p, path + (name,))


def test_every_command_that_reads_gateway_toml_defaults_config_to_the_current_folder():
    seen = []
    for command, parser in _commands(cli.build_parser()):
        for a in parser._actions:
            if "--config" in a.option_strings and "agent.toml" not in (a.help or ""):
                seen.append(command)
                assert not a.required and a.default == "gateway.toml", command
    assert {"device list", "device register", "gateway run", "gateway status", "proof", "readings"} <= set(seen)


@pytest.fixture
def site_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gateway.toml").write_text('store = "gw.db"\n[ledger]\nbackend = "none"\n')
    st = Store(str(tmp_path / "gw.db"))
    reg = Registry(st)
    for device, alg in (("m-ed", "EdDSA"), ("m-p256", "ES256"), ("m-sm2", "SM2")):
        s = generate(alg, device)
        reg.register(device, "plant-a", s.alg, s.public_key, s.kid)
    st.close()
    return tmp_path


def test_device_list_names_the_algorithm_and_finds_gateway_toml_by_itself(site_dir, capsys):
    code, out, err = _run(capsys, "device", "list")
    assert code == 0, err
    rows = dict((line.split()[0], line.split()) for line in out.splitlines()[1:])
    assert (rows["m-ed"][6], rows["m-p256"][6], rows["m-sm2"][6]) == ("EdDSA", "ES256", "SM2")
    assert "-8" not in out and "-7" not in out


def test_broker_config_writes_to_dir_and_takes_the_site_id_as_site(tmp_path, capsys):
    code, out, err = _run(capsys, "broker", "config", "--site", tmp_path / "broker", "--run-as", "root")
    assert code == 2 and "broker config needs --dir DIR" in err and "--site names the site id" in err
    assert not (tmp_path / "broker").exists()
    code, out, err = _run(capsys, "broker", "config", "--dir", tmp_path / "broker", "--site", "plant-b",
                          "--run-as", "root")
    assert code == 0, err
    assert '"site": "plant-b"' in (tmp_path / "broker" / "broker.json").read_text()
    code, out, err = _run(capsys, "broker", "renew-crl", "--dir", tmp_path / "broker")
    assert code == 0 and not err, err
    # timers installed from older units still say --site DIR: it works, with a warning
    code, out, err = _run(capsys, "broker", "renew-crl", "--site", tmp_path / "broker")
    assert code == 0 and "renewed" in out and "is now `--dir DIR`" in err

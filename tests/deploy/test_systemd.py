"""The systemd units in deploy/systemd: valid for systemd, sandboxed, and running commands
that exist.

``systemd-analyze verify`` checks each unit as systemd would load it (unknown keys, bad
values, a missing binary). The units name the install paths of docs/operators.md
(/opt/edgeledger/bin/edgeledger, /usr/sbin/mosquitto); the test points them at this
machine's binaries first. Where systemd-analyze is not installed, only that check is skipped
(the issue asks for it "where it is available"); the rest runs everywhere.
"""
import configparser
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from edgeledger.gateway.bench.mosquitto import mosquitto_binary
from edgeledger.gateway.cli import build_parser

UNITS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "deploy", "systemd")
INSTALLED_CLI = "/opt/edgeledger/bin/edgeledger"
SERVICES = ("edgeledger-gateway.service", "edgeledger-agent.service", "edgeledger-broker.service",
            "edgeledger-renew-crl.service")
LONG_RUNNING = ("edgeledger-gateway.service", "edgeledger-agent.service", "edgeledger-broker.service")
# What every long-running unit must set (systemd.exec(5)): the sandbox the docs promise.
SANDBOX = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
           "ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes"}


def _unit(name):
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str  # keys are case-sensitive in systemd
    with open(os.path.join(UNITS, name)) as f:
        cp.read_string(f.read())
    return cp


def _cli():
    """This environment's edgeledger console script (the venv's, beside its python)."""
    path = os.path.join(os.path.dirname(sys.executable), "edgeledger")
    assert os.path.exists(path), "expected the edgeledger console script at %s" % path
    return path


def _local_copies(tmp_path, names, edit=lambda text: text):
    for name in names:
        with open(os.path.join(UNITS, name)) as f:
            text = f.read()
        text = text.replace(INSTALLED_CLI, _cli()).replace("/usr/sbin/mosquitto", mosquitto_binary())
        (tmp_path / name).write_text(edit(text))
    return [str(tmp_path / n) for n in names]


def _verify(paths):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd)")
    return subprocess.run([tool, "verify"] + paths, capture_output=True, text=True, timeout=120)


def test_every_unit_in_the_folder_is_checked():
    assert sorted(os.listdir(UNITS)) == sorted(SERVICES + ("edgeledger-renew-crl.timer",))


def test_units_verify_cleanly(tmp_path):
    r = _verify(_local_copies(tmp_path, sorted(os.listdir(UNITS))))
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_a_bad_value_is_seen_by_the_check(tmp_path):
    # the check above can fail: systemd-analyze reports a value it cannot parse
    paths = _local_copies(tmp_path, ["edgeledger-gateway.service"],
                          lambda t: t.replace("ProtectSystem=strict", "ProtectSystem=stricter"))
    r = _verify(paths)
    assert "stricter" in r.stderr


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_units_are_sandboxed(name):
    service = _unit(name)["Service"]
    missing = dict((k, v) for k, v in SANDBOX.items() if service.get(k) != v)
    assert not missing, "%s lacks %s" % (name, missing)
    if name != "edgeledger-broker.service":  # Mosquitto drops to its user itself
        assert service["User"] == "edgeledger" and service["UMask"] == "0077"
        assert service.get("CapabilityBoundingSet", None) == ""  # no capabilities at all


@pytest.mark.parametrize("name", [s for s in SERVICES if s != "edgeledger-broker.service"])
def test_the_commands_the_units_run_exist(name):
    service = _unit(name)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == INSTALLED_CLI
    args = build_parser().parse_args(argv[1:])  # exits (SystemExit) on an unknown command or option
    assert callable(args.func)


def test_the_broker_unit_runs_the_generated_configuration():
    service = _unit("edgeledger-broker.service")["Service"]
    assert shlex.split(service["ExecStart"]) == ["/usr/sbin/mosquitto", "-c", "/etc/edgeledger/broker/mosquitto.conf"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # reload = reread password file, ACL, CRL


def test_the_crl_is_renewed_monthly():
    timer = _unit("edgeledger-renew-crl.timer")["Timer"]
    assert timer["OnCalendar"] == "monthly" and timer["Persistent"] == "true"
    service = _unit("edgeledger-renew-crl.service")["Service"]
    assert shlex.split(service["ExecStart"])[1:3] == ["broker", "renew-crl"]
    assert "reload edgeledger-broker.service" in service["ExecStartPost"]

"""Helpers for the demo tests: run the console script as a user would."""
import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "edgeledger.gateway.cli"]
# A 10 x 20 demo takes ~10 s on the 2-core machine (3 s of it importing web3/py-evm).
DEMO_TIMEOUT_S = 600  # an upper bound for a loaded slow machine, not an expectation


def run_cli(*args, cwd=None, env=None, timeout=DEMO_TIMEOUT_S):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def demo_json(*args, env=None):
    """Run ``edgeledger demo --json ARGS``; return (exit code, the one JSON object)."""
    r = run_cli("demo", "--json", *args, env=env)
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, "expected one JSON line on stdout, found:\n%s\nstderr:\n%s" % (r.stdout, r.stderr[-3000:])
    return r.returncode, json.loads(lines[0]), r


@pytest.fixture
def cli():
    return run_cli

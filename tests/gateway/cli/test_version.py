"""`edgeledger --version` names the installed release."""
from importlib.metadata import version

import pytest

from edgeledger.gateway.cli import main


def test_version_prints_the_installed_release(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == "edgeledger %s" % version("edgeledger")

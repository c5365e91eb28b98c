"""``edgeledger device keygen``: the default algorithm is the one a board signs cheapest
with (ES256: on a 32-bit board SHA-512's words make EdDSA cost megabytes of allocation per
signature, see ``bench device``); the key file is private to its owner."""
import os
import stat

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway import cli


def test_keygen_defaults_to_es256_and_writes_a_private_key_file(tmp_path, capsys):
    out = str(tmp_path / "meter-01.key")
    assert cli.main(["device", "keygen", "--device", "meter-01", "-o", out]) == 0
    s = load_key_file(out)
    assert (s.alg, s.device) == (-7, "meter-01")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    eddsa = str(tmp_path / "linux.key")
    assert cli.main(["device", "keygen", "--device", "linux-01", "--alg", "EdDSA", "-o", eddsa]) == 0
    assert load_key_file(eddsa).alg == -8

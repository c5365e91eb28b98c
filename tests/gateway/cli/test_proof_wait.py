"""`edgeledger proof --wait S` waits for the reading to be anchored, then says why not."""
from edgeledger.gateway import cli


def test_proof_wait_gives_up_with_the_reason(tmp_path, capsys):
    (tmp_path / "gateway.toml").write_text('store = "gateway.db"\n[ledger]\nbackend = "none"\n')
    code = cli.main(["proof", "meter-01", "1", "-o", str(tmp_path / "b.cbor"), "--config",
                     str(tmp_path / "gateway.toml"), "--wait", "0.2"])
    assert code == 2 and "never anchored a batch" in capsys.readouterr().err
    assert not (tmp_path / "b.cbor").exists()

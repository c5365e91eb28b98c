"""Issue 16 item 6: keys born on the device. ``edgeledger device enroll`` drives a board's serial
REPL with mpremote; here the board is the real MicroPython unix port on a pty (socat), its
flash a temporary directory. Only the public key may reach the host."""
import json
import os
import shutil
import subprocess
import time

import pytest

from edgeledger.agent.key_file import load_key_file
from edgeledger.gateway.anchor.ledger import EmbeddedLedger
from edgeledger.gateway.enrol import enroll
from edgeledger.gateway.registry import Registry
from edgeledger.gateway.store import Store
from tests.support.mpy import micropython_binary

pytestmark = [pytest.mark.security, pytest.mark.micropython]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The unix board image (``firmware build``): enroll must be in what goes onto a board."""
    from edgeledger.gateway.boards import image

    out = str(tmp_path_factory.mktemp("image"))
    image.build_image("unix", out)
    return out


class Board:
    """The unix port's REPL on a pty: ``tty`` is the board's serial port, ``flash`` its files."""

    def __init__(self, root, image):
        self.flash = os.path.join(root, "flash")
        os.makedirs(self.flash)
        self.tty = os.path.join(root, "board.tty")
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is missing: apt-get install socat (make system-deps)")
        env = dict(os.environ, MICROPYPATH=os.path.join(image, "lib"))
        self.proc = subprocess.Popen(
            [socat, "pty,raw,echo=0,link=%s" % self.tty,
             "EXEC:%s,pty,raw,echo=0,stderr,setsid,ctty" % micropython_binary()],
            cwd=self.flash, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.tty):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("socat did not make the board's pty")
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def board(tmp_path, image):
    b = Board(str(tmp_path / "board"), image)
    yield b
    b.stop()


def _registry(tmp_path):
    st = Store(str(tmp_path / "gateway.db"))
    return st, Registry(st)


@pytest.mark.parametrize("alg", ["ES256", "SM2"])
def test_enroll_makes_the_key_on_the_board_and_registers_only_its_public_half(board, tmp_path, alg):
    st, reg = _registry(tmp_path)
    ledger = EmbeddedLedger()
    ledger.deploy(ledger.new_funded_key())
    ledger.authorize_gateway("plant-a", ledger.account)
    out = tmp_path / "bundle"
    b = enroll.enroll(reg, "meter-07", "plant-a", str(out), board.tty, alg=alg,
                      broker_url="mqtt://127.0.0.1:1883", ledger=ledger)
    on_board = load_key_file(os.path.join(board.flash, "meter-07.key"))
    assert (on_board.public_key, on_board.kid, b.alg) == (b.public_key, b.kid, alg)
    # registered in the gateway registry and on chain, with the board's public key
    assert reg.key(b.kid).public_key == b.public_key
    assert ledger.registration("plant-a", b.kid)["public_key"] == b.public_key
    # nothing on the host holds the private key; the board got its config naming its key file
    secret = on_board.private_bytes().hex()
    for name in os.listdir(out):
        assert secret not in (out / name).read_text(errors="replace"), name
    with open(os.path.join(board.flash, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["key_file"] == "meter-07.key" and cfg["kid"] == b.kid.hex() and "signer" not in cfg
    st.close()


def test_enroll_again_keeps_the_board_key(board, tmp_path):
    st, reg = _registry(tmp_path)
    first = enroll.enroll(reg, "meter-08", "plant-a", str(tmp_path / "b"), board.tty, alg="EdDSA",
                          broker_url="mqtt://127.0.0.1:1883")
    again = enroll.enroll(reg, "meter-08", "plant-a", str(tmp_path / "b"), board.tty, alg="EdDSA",
                          broker_url="mqtt://127.0.0.1:1883")
    assert again.kid == first.kid and len(reg.keys_of("meter-08")) == 1
    st.close()


def test_enroll_refuses_a_board_holding_another_devices_key(board, tmp_path):
    st, reg = _registry(tmp_path)
    enroll.enroll(reg, "meter-09", "plant-a", str(tmp_path / "b"), board.tty, key_file="dev.key",
                  broker_url="mqtt://127.0.0.1:1883")
    with pytest.raises(enroll.EnrollError, match="belongs to 'meter-09'"):
        enroll.enroll(reg, "meter-10", "plant-a", str(tmp_path / "c"), board.tty, key_file="dev.key",
                      broker_url="mqtt://127.0.0.1:1883")
    assert reg.keys_of("meter-10") == []
    st.close()


class LyingLink:
    """A board that prints someone else's public key: it cannot sign the challenge with it."""

    def __init__(self, signer, liar):
        self.signer, self.liar = signer, liar

    def run(self, code):
        challenge = bytes.fromhex(code.rsplit("bytes.fromhex(", 1)[1].split("'")[1])
        return "ENROLL|meter-11|%s|%s|%s\nSIG|%s\n" % (self.liar.alg_name, self.liar.public_key.hex(),
                                                      self.liar.kid.hex(), self.signer.sign(challenge).hex())


def test_enroll_refuses_a_public_key_the_board_cannot_sign_with():
    from edgeledger.agent.signer import generate

    link = LyingLink(generate("ES256", "meter-11"), generate("ES256", "meter-11"))
    with pytest.raises(enroll.EnrollError, match="does not verify"):
        enroll.board_key(link, "meter-11", "ES256", "meter-11.key")


def test_enroll_without_a_board_is_a_clear_error(tmp_path):
    st, reg = _registry(tmp_path)
    with pytest.raises(enroll.EnrollError, match="no raw REPL"):
        enroll.enroll(reg, "meter-12", "plant-a", str(tmp_path / "b"), str(tmp_path / "no-such-tty"),
                      broker_url="mqtt://127.0.0.1:1883")
    st.close()


def test_device_enroll_command(board, tmp_path, run_cli):
    gw_cfg = tmp_path / "gateway.toml"
    gw_cfg.write_text('gateway_id = "gw-en"\nstore = "%s"\nbroker = "mqtt://127.0.0.1:1883"\n'
                      'sites = ["plant-a"]\n[ledger]\nbackend = "none"\n' % (tmp_path / "gateway.db"))
    code, out, err = run_cli("device", "enroll", "--config", gw_cfg, "--device", "meter-13", "--site", "plant-a",
                             "--port", board.tty, "--out", tmp_path / "bundle", "--broker-url",
                             "mqtt://127.0.0.1:1883")
    assert code == 0, err
    kid = load_key_file(os.path.join(board.flash, "meter-13.key")).kid
    assert "enrolled meter-13" in out and kid.hex() in out and "copied to the board" in out
    st = Store(str(tmp_path / "gateway.db"))
    assert [k.kid for k in Registry(st).keys_of("meter-13")] == [kid]
    st.close()

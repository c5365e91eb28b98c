"""The board image build (gateway/boards/image.py): what goes onto a board and what stays
on the host."""
import pytest

from edgeledger.gateway.boards import image


def _board_modules(board="esp32"):
    return set(image.closure([image.ENTRY] + list(image.REPL_ENTRIES),
                             image.load_profile(board).get("exclude", ())))


def test_board_image_ships_signing_and_leaves_verification_out():
    mods = _board_modules()
    for alg in ("ed25519", "p256", "sm2"):  # every signer a board can be given
        assert "edgeledger.agent.crypto.pure.%s.sign" % alg in mods
        assert "edgeledger.agent.crypto.pure.%s.verify" % alg not in mods
    assert "edgeledger.agent.crypto" in mods and "edgeledger.agent.crypto.pure.ecc.curve" in mods
    # a board signs, the gateway verifies: signer.verify names the module, the build leaves it out
    for host_only in ("edgeledger.agent.crypto.verify", "edgeledger.agent.crypto.pure.ecc.verify",
                      "edgeledger.agent.crypto.cpython", "edgeledger.agent.crypto.tongsuo",
                      "edgeledger.agent.linux", "edgeledger.agent.mqtt_paho"):
        assert host_only not in mods, host_only
    assert not [m for m in mods if m.startswith("edgeledger.gateway")]


def test_board_image_has_its_entry_points_and_their_packages():
    mods = _board_modules("unix")
    assert {"edgeledger.firmware.main", "edgeledger.firmware.enroll", "edgeledger.firmware",
            "edgeledger.agent", "edgeledger.protocols"} <= mods
    # the unix profile excludes the field-bus sources (no UART on that port)
    assert "edgeledger.agent.sources" not in mods and "edgeledger.agent.sources" in _board_modules()


@pytest.mark.micropython
@pytest.mark.parametrize("board", ["unix", "esp32"])
def test_plain_image_compiles_every_module_to_native_code(tmp_path, board):
    # The plain image (no ROMFS) compiles with mpy-cross's native emitter, which refuses some
    # Python ("raise ... from": NotImplementedError: native raise); a ROMFS build would not notice.
    built = image.build_image(board, str(tmp_path / board))
    assert built["lib_bytes"] > 0 and len(built["modules"]) >= 40
    assert built["march"] is not None

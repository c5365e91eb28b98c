"""The device loop on a 32-bit MicroPython (issue 16 item 1): the real configurations run
there, and what they cost is read from its heap, not scaled from the 64-bit port."""
import subprocess

import pytest

from edgeledger.gateway.bench import device32
from tests.support import mpy32

pytestmark = pytest.mark.micropython


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return device32.bytecode_lib(str(tmp_path_factory.mktemp("lib32")))


def test_the_interpreter_is_32_bit():
    out = mpy32.run("import sys\nprint(sys.maxsize, sys.implementation.name)\n").stdout
    assert out.split() == [str(2 ** 31 - 1), "micropython"]


@pytest.mark.parametrize("config", device32.CONFIGS)
def test_each_real_configuration_runs_the_loop_on_32_bit(lib, config):
    m = device32.measure(lib, config, "ES256", readings=3)
    assert m["messages"] == 3  # signed, published and acked end to end
    # the figures are consistent: code is part of the live heap, the loop adds state to it
    assert 0 < m["code_kb"] < m["startup_kb"] <= m["heap_kb"]


def test_sm2_runs_the_loop_on_32_bit_too(lib):
    # SM2 is a board signer like the other two: bench device measures it per configuration
    m = device32.measure(lib, "simulated", "SM2", readings=2)
    assert m["messages"] == 2
    assert 0 < m["code_kb"] < m["startup_kb"] <= m["heap_kb"]


def test_es256_costs_a_32_bit_board_less_than_eddsa(lib):
    # SHA-512's 64-bit words are big integers once small ints have 31 bits: every EdDSA
    # signature allocates megabytes of garbage, ES256 a fraction of it (the board default)
    ed = device32.measure(lib, "simulated", "EdDSA", readings=2)
    es = device32.measure(lib, "simulated", "ES256", readings=2)
    assert es["seal_alloc_kb"] * 2 < ed["seal_alloc_kb"]


def test_mpy_parts_reads_what_mpy_cross_wrote(tmp_path):
    from edgeledger.gateway.boards import image

    src = tmp_path / "m.py"
    src.write_text('MSG = "expected a value, found %r"\nRAW = b"\\x00\\x01\\x02"\nT = ("a b", 1.5)\n'
                   "def f(x):\n    return x + 1\n\ndef g():\n    return MSG % (RAW,)\n")
    out = tmp_path / "m.mpy"
    subprocess.run([image.mpy_cross_command(), "-o", str(out), str(src)], check=True)
    names, constants, code = device32.mpy_parts(out.read_bytes())
    assert b"MSG" in names and b"RAW" in names
    assert ("str", b"expected a value, found %r") in constants and ("bytes", b"\x00\x01\x02") in constants
    assert ("str", b"a b") in constants  # inside a tuple constant
    assert len(code) == 3 and all(n > 0 for n in code)  # the module body, f and g
    native = tmp_path / "n.mpy"
    subprocess.run([image.mpy_cross_command(), "-o", str(native), "-march=x64", "-X", "emit=native", str(src)],
                   check=True)
    with pytest.raises(ValueError):
        device32.mpy_parts(native.read_bytes())


def test_romfs_estimate_is_below_the_measured_heap(lib):
    m = device32.measure(lib, "simulated", "ES256", readings=2)
    assert 0 < m["romfs_saving_kb"] < m["code_kb"] and m["romfs_estimate_kb"] == round(
        m["heap_kb"] - m["romfs_saving_kb"], 1)

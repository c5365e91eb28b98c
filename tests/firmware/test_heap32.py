"""The device loop on a 32-bit MicroPython (issue 16 item 1): the real configurations run
there, and what they cost is read from its heap, not scaled from the 64-bit port."""
import pytest

from edgeledger.firmware import bench32
from tests.support import mpy32

pytestmark = pytest.mark.micropython


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return bench32.bytecode_lib(str(tmp_path_factory.mktemp("lib32")))


def test_the_interpreter_is_32_bit():
    out = mpy32.run("import sys\nprint(sys.maxsize, sys.implementation.name)\n").stdout
    assert out.split() == [str(2 ** 31 - 1), "micropython"]


@pytest.mark.parametrize("config", bench32.CONFIGS)
def test_each_real_configuration_runs_the_loop_on_32_bit(lib, config):
    m = bench32.measure(lib, config, "ES256", readings=3)
    assert m["messages"] == 3  # signed, published and acked end to end
    # the figures are consistent: code is part of the live heap, the loop adds state to it
    assert 0 < m["code_kb"] < m["startup_kb"] <= m["heap_kb"]


def test_es256_costs_a_32_bit_board_less_than_eddsa(lib):
    # SHA-512's 64-bit words are big integers once small ints have 31 bits: every EdDSA
    # signature allocates megabytes of garbage, ES256 a fraction of it (the board default)
    ed = bench32.measure(lib, "simulated", "EdDSA", readings=2)
    es = bench32.measure(lib, "simulated", "ES256", readings=2)
    assert es["seal_alloc_kb"] * 2 < ed["seal_alloc_kb"]

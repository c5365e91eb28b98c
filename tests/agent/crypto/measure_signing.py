"""One-off measurement (not a test): pure Ed25519 / ES256 / SM2 sign and verify times under MicroPython.

Run:  .venv/bin/python -m tests.agent.crypto.measure_signing [rounds]
Prints medians in milliseconds for a 200-byte message (about one COSE
Sig_structure), the first call (which builds the comb table) separately.
"""
import sys

from tests.support.mpy import run_micropython

SCRIPT = """
import time
from edgeledger.agent import crypto
from edgeledger.agent import signer

def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]

msg = b"\\xa5" * 200
print("backends:", crypto.implementation())
for alg in ("EdDSA", "ES256", "SM2"):
    t0 = time.ticks_us()
    s = signer.KeySigner(alg, bytes(range(1, 33)))
    first = time.ticks_diff(time.ticks_us(), t0)
    sign_t = []
    verify_t = []
    for i in range(ROUNDS):
        t0 = time.ticks_us()
        sig = s.sign(msg)
        t1 = time.ticks_us()
        ok = signer.verify(s.alg, s.public_key, msg, sig)
        t2 = time.ticks_us()
        assert ok
        sign_t.append(time.ticks_diff(t1, t0))
        verify_t.append(time.ticks_diff(t2, t1))
    print("%-6s key setup (first use, builds table) %6.1f ms | sign %6.1f ms | verify %6.1f ms"
          % (alg, first / 1000, median(sign_t) / 1000, median(verify_t) / 1000))
"""


def main(rounds=30):
    proc = run_micropython("ROUNDS = %d\n" % rounds + SCRIPT, heapsize="256K", timeout=600)
    sys.stdout.write(proc.stdout)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

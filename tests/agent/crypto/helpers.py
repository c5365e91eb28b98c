"""Helpers for running the crypto vectors under MicroPython.

The scripts embed the vectors (``vectors.py``) as Python literals, print one
``key|value`` line per result and the CPython side compares them with the
published values, so a failure names the vector.
"""
from tests.agent.crypto import vectors
from tests.support.mpy import run_micropython

_NAMES = ("SHA512", "HMAC", "ED25519", "P256_PRIVATE", "P256_PUBLIC", "P256_SHA256",
          "AES128", "CCM_KEY", "CCM", "SM3", "SM2_GMT", "SM4", "SM4_CCM")


def preamble():
    """MicroPython source defining the vector tables as literals."""
    return "".join("%s = %r\n" % (name, getattr(vectors, name)) for name in _NAMES)


def run_lines(body, heapsize="256K", extra=""):
    """Run ``preamble() + extra + body`` under MicroPython; return {key: value} of printed lines."""
    proc = run_micropython(preamble() + extra + body, heapsize=heapsize)
    out = {}
    for line in proc.stdout.splitlines():
        if "|" in line:
            k, v = line.split("|", 1)
            out[k] = v
    return out

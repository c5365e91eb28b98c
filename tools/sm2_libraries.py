"""Compare the SM2 libraries on PyPI: does each install, is it right, how fast does it verify.

    python3 tools/sm2_libraries.py --setup /tmp/sm2-candidates    # venv + pip install each
    /tmp/sm2-candidates/bin/python tools/sm2_libraries.py [--seconds 1] [--json]

``--setup DIR`` makes a venv in DIR, installs every candidate into it one at a time (so
one that fails to install does not stop the others; the failures are printed), then runs
the comparison with that venv's Python. Without ``--setup`` the comparison runs with the
current interpreter and skips candidates that do not import.

Per candidate, in one run (the machine is shared: compare the rows, not runs):

* ``gmt``: verifies the GM/T 0003.5-2012 annex signature example ("message digest",
  default id 1234567812345678, sm2p256v1);
* ``ours->lib``: verifies signatures made by edgeledger's pure SM2 (``agent/crypto/pure/sm2``)
  on random keys and messages; ``lib->ours``: its signatures verify with ours;
* ``refuses``: a flipped bit in the message and in the signature, and an all-zero
  signature, are refused;
* ``survives_malformed``: a malformed signature in the library's own input form (not DER
  where it takes DER, 63 bytes where it takes r ‖ s) is refused without the process dying
  (each check runs in a child process, so a library that aborts is reported, not fatal);
* ``verify/s``: verifications per second of one 120-byte message with one key (key
  object made once, as a gateway caches it), for ``--seconds`` on one core. The last row
  is ES256 through ``cryptography`` (what the gateway verifies P-256 with), the one before
  it edgeledger's own pure SM2 on CPython, both for scale.

The candidates are the SM2 libraries this project found on PyPI for CPython 3.11
(docs/national-crypto.md says how they were chosen and what was measured).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from typing import Any, Callable

# An adapter's three functions (see ``adapter``).
Verify = Callable[[bytes, bytes], bool]
Adapter = tuple[Callable[[bytes], Verify], Callable[[bytes, bytes, bytes], bytes], Callable[[bytes, bytes, bytes], Any]]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UID = b"1234567812345678"
# GM/T 0003.5-2012 annex A (also GB/T 32918.5-2017): the sm2p256v1 signature example.
GMT_D = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
GMT_PUB = ("0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
           "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
GMT_SIG = ("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
           "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")
GMT_MSG = b"message digest"

# The candidates whose verify function takes an ASN.1 DER signature.
DER_INPUT = ("gmssl-pyx", "tongsuopy", "smcryptopy")
# PyPI name -> (import name, what it is built on). Pure-Python ones first.
CANDIDATES = {
    "gmssl": ("gmssl", "pure Python"),
    "gmalg": ("gmalg", "pure Python"),
    "snowland-smx": ("pysmx", "pure Python"),
    "gmalglib": ("gmalglib", "C extension"),
    "gmssl-fast": ("gmssl_fast", "C (GmSSL, static)"),
    "gmssl-pyx": ("gmssl_pyx", "C (GmSSL)"),
    "tongsuopy": ("tongsuopy", "C (Tongsuo, an OpenSSL fork)"),
    "smcryptopy": ("smcryptopy", "Rust (smcrypto) via cffi"),
    "gmssl-python": ("gmssl.py", "ctypes over a system libgmssl"),
    "easy-gmssl": ("easy_gmssl", "ctypes over GmSSL"),
}


def _der(sig: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


def _raw(der: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _gmssl() -> Adapter:
    from gmssl import sm2

    def mk(pub: bytes) -> Verify:
        c = sm2.CryptSM2(private_key="", public_key=pub[1:].hex())
        return lambda m, s: bool(c.verify_with_sm3(s.hex(), m))

    def sign(d: bytes, pub: bytes, m: bytes) -> bytes:
        return bytes.fromhex(sm2.CryptSM2(private_key=d.hex(), public_key=pub[1:].hex())
                             .sign_with_sm3(m))
    return mk, sign, lambda pub, m, sig: mk(pub)(m, sig)


def _gmalg() -> Adapter:
    import gmalg

    def mk(pub: bytes) -> Verify:
        c = gmalg.SM2(pk=pub, uid=UID)
        return lambda m, s: bool(c.verify(m, s[:32], s[32:]))

    def sign(d: bytes, pub: bytes, m: bytes) -> bytes:
        r, s = gmalg.SM2(sk=d, uid=UID, pk=pub).sign(m)
        return r + s
    return mk, sign, lambda pub, m, sig: mk(pub)(m, sig)


def _snowland_smx() -> Adapter:
    import pysmx.SM2 as px

    def mk(pub: bytes) -> Verify:
        return lambda m, s: bool(px.Verify(s, m, pub[1:], 64, uid=UID))

    def sign(d: bytes, pub: bytes, m: bytes) -> bytes:
        return px.Sign(m, d, os.urandom(32).hex(), 64, uid=UID)
    return mk, sign, lambda pub, m, sig: mk(pub)(m, sig)


def _gmalglib() -> Adapter:
    from gmalglib.sm2 import SM2

    def mk(pub: bytes) -> Verify:
        c = SM2(pk=pub, uid=UID)
        return lambda m, s: bool(c.verify(m, s))

    return mk, lambda d, pub, m: SM2(sk=d, uid=UID).sign(m), lambda pub, m, sig: mk(pub)(m, sig)


def _gmssl_fast() -> Adapter:
    import gmssl_fast

    def mk(pub: bytes) -> Verify:
        c = gmssl_fast.SM2(public_key=pub.hex())
        return lambda m, s: bool(c.verify(m, s))

    return (mk, lambda d, pub, m: gmssl_fast.SM2(private_key=d.hex(), public_key=pub.hex()).sign(m),
            lambda pub, m, sig: mk(pub)(m, sig))


def _gmssl_pyx() -> Adapter:
    import gmssl_pyx

    def mk(pub: bytes) -> Verify:
        return lambda m, s: bool(gmssl_pyx.sm2_verify(pub[1:], m, _der(s), UID))

    return (mk, lambda d, pub, m: _raw(gmssl_pyx.sm2_sign(d, pub[1:], m, UID)),
            lambda pub, m, der: gmssl_pyx.sm2_verify(pub[1:], m, der, UID))


def _tongsuopy() -> Adapter:
    from tongsuopy.crypto import hashes
    from tongsuopy.crypto.asymciphers import ec
    from tongsuopy.crypto.exceptions import InvalidSignature

    def mk(pub: bytes) -> Verify:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), pub)

        def verify(m: bytes, s: bytes) -> bool:
            try:
                key.verify(_der(s), m, ec.ECDSA(hashes.SM3()))
                return True
            except InvalidSignature:
                return False
        return verify

    def sign(d: bytes, pub: bytes, m: bytes) -> bytes:
        key = ec.derive_private_key(int.from_bytes(d, "big"), ec.SM2())
        return _raw(key.sign(m, ec.ECDSA(hashes.SM3())))

    def raw(pub: bytes, m: bytes, der: bytes) -> None:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), pub).verify(
            der, m, ec.ECDSA(hashes.SM3()))
    return mk, sign, raw


def _smcryptopy() -> Adapter:
    from smcryptopy import sm2

    def mk(pub: bytes) -> Verify:
        return lambda m, s: bool(sm2.verify(UID, m, _der(s), pub[1:].hex()))

    return (mk, lambda d, pub, m: _raw(sm2.sign(UID, m, d.hex())),
            lambda pub, m, der: sm2.verify(UID, m, der, pub[1:].hex()))


# PyPI name -> its adapter (the candidates without one are reported as not importing).
ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "gmssl": _gmssl, "gmalg": _gmalg, "snowland-smx": _snowland_smx, "gmalglib": _gmalglib,
    "gmssl-fast": _gmssl_fast, "gmssl-pyx": _gmssl_pyx, "tongsuopy": _tongsuopy, "smcryptopy": _smcryptopy,
}


def adapter(name: str) -> Adapter:
    """(make_verifier(pub) -> verify(msg, sig) -> bool, sign(d, pub, msg) -> sig,
    native_verify(pub, msg, sig in the library's own form)) for a candidate; keys and
    signatures as raw bytes (65-byte SEC 1 key, 64-byte r ‖ s) but for the last one, which
    gives the library a signature as it takes it (DER where it wants DER)."""
    make = ADAPTERS.get(name)
    if make is None:
        raise ImportError("no adapter for %s (it did not import here)" % name)
    return make()


def _ours() -> types.SimpleNamespace:
    """edgeledger's pure SM2 (``agent/crypto/pure/sm2``), staged from this checkout (the
    candidates' venv does not have edgeledger installed): N, public_key, sign_message and
    verify_message."""
    stage = tempfile.mkdtemp(prefix="el-sm2-")
    os.makedirs(os.path.join(stage, "edgeledger"))
    open(os.path.join(stage, "edgeledger", "__init__.py"), "w").close()
    for pkg in ("protocols", "agent"):
        os.symlink(os.path.join(ROOT, pkg), os.path.join(stage, "edgeledger", pkg))
    sys.path.insert(0, stage)
    from edgeledger.agent.crypto.pure.sm2 import sign, verify

    return types.SimpleNamespace(N=sign.N, public_key=sign.public_key,
                                 sign_message=sign.sign_message, verify_message=verify.verify_message)


def _import_candidate(name: str) -> None:
    """Import the candidate's module (raises what the import raises)."""
    import importlib.metadata

    module = CANDIDATES[name][0]
    if module.endswith(".py"):  # a top-level module that a package of the same name shadows
        import importlib.util

        path = [f for f in importlib.metadata.files(name) or [] if str(f) == module][0].locate()
        spec = importlib.util.spec_from_file_location(module[:-3] + "_module", path)
        if spec is None or spec.loader is None:
            raise ImportError("cannot load %s from %s" % (module, path))
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    else:
        __import__(module)


def _rate(call: Callable[[], Any], seconds: float) -> float:
    """Calls of ``call`` per second, for ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        call()
        n += 1
    return round(n / (time.perf_counter() - t0), 1)


def _cross_check(mk: Callable[[bytes], Verify], sign: Callable[[bytes, bytes, bytes], bytes],
                 ours: types.SimpleNamespace) -> tuple[dict[str, Any], int, bytes]:
    """The ``ours->lib``, ``lib->ours`` and ``refuses`` columns over five random keys; also
    the last key (d, public key) for the timing."""
    ok_to, ok_from, refuses = True, True, True
    for i in range(5):
        d = int.from_bytes(os.urandom(32), "big") % (ours.N - 2) + 1
        db = d.to_bytes(32, "big")
        pub = ours.public_key(d)
        msg = os.urandom(40 + 37 * i)
        sig = ours.sign_message(d, msg)
        v = mk(pub)
        ok_to &= v(msg, sig)
        ok_from &= ours.verify_message(pub, msg, sign(db, pub, msg))
        bad = bytearray(sig)
        bad[5 + i] ^= 1
        refuses &= not v(msg + b"!", sig) and not v(msg, bytes(bad))
    refuses &= not mk(pub)(msg, bytes(64))
    return {"ours->lib": ok_to, "lib->ours": ok_from, "refuses": refuses}, d, pub


def check(name: str, seconds: float) -> dict[str, Any]:
    """One candidate's row (run in a child process: see the module docstring)."""
    import importlib.metadata

    row: dict[str, Any] = {"library": name, "built_on": CANDIDATES[name][1]}
    try:
        row["version"] = importlib.metadata.version(name)
        _import_candidate(name)
        mk, sign = adapter(name)[:2]
    except Exception as e:  # a candidate that does not install or import is a finding
        row["error"] = "does not import: %s" % (str(e).splitlines() or [repr(e)])[0][:120]
        return row
    ours = _ours()
    try:
        row["gmt"] = mk(bytes.fromhex(GMT_PUB))(GMT_MSG, bytes.fromhex(GMT_SIG))
        columns, d, pub = _cross_check(mk, sign, ours)
        row.update(columns)
        msg = os.urandom(120)  # about one COSE Sig_structure of a single reading
        sig = ours.sign_message(d, msg)
        v = mk(pub)
        assert v(msg, sig)
        row["verify_per_s"] = _rate(lambda: v(msg, sig), seconds)
    except Exception as e:
        row["error"] = "%s: %s" % (type(e).__name__, str(e)[:120])
    return row


def es256_reference(seconds: float) -> dict[str, Any]:
    """The ES256 verify rate (cryptography, OpenSSL) measured the same way."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    msg = os.urandom(120)
    der = key.sign(msg, ec.ECDSA(hashes.SHA256()))
    pub, alg = key.public_key(), ec.ECDSA(hashes.SHA256())
    return {"library": "cryptography (ES256, for scale)", "built_on": "C (OpenSSL)",
            "version": __import__("cryptography").__version__,
            "verify_per_s": _rate(lambda: pub.verify(der, msg, alg), seconds)}


def survives_malformed(name: str) -> dict[str, Any]:
    """Give the library a malformed signature in its own input form: 64 bytes that are not
    DER where it takes DER, 63 bytes where it takes r ‖ s. A clean False or exception is
    fine; the caller sees whether this process lived (a gateway must)."""
    __import__(CANDIDATES[name][0])
    native = adapter(name)[2]
    try:
        native(bytes.fromhex(GMT_PUB), GMT_MSG, b"\x41" * 64 if name in DER_INPUT else b"\x41" * 63)
    except Exception:  # a clean refusal
        pass
    return {"survives_malformed": True}


def ours_row(seconds: float) -> dict[str, Any]:
    """edgeledger's own pure SM2 (the board code) verifying on this CPython, for scale."""
    ours = _ours()
    d = int.from_bytes(os.urandom(32), "big") % (ours.N - 2) + 1
    pub, msg = ours.public_key(d), os.urandom(120)
    sig = ours.sign_message(d, msg)
    gmt = ours.verify_message(bytes.fromhex(GMT_PUB), GMT_MSG, bytes.fromhex(GMT_SIG))
    return {"library": "edgeledger agent/crypto/pure/sm2 (ours)", "built_on": "pure Python",
            "version": "-", "gmt": gmt, "verify_per_s": _rate(lambda: ours.verify_message(pub, msg, sig), seconds)}


def setup(venv: str) -> None:
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "cryptography"], check=True)  # DER helpers, tongsuopy
    for name in CANDIDATES:
        proc = subprocess.run(pip + ["install", name], capture_output=True, text=True)
        if proc.returncode:
            print("pip install %s failed: %s" % (name, (proc.stderr.strip().splitlines()
                                                        or ["?"])[-1][:160]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setup", metavar="DIR", help="make a venv in DIR with the candidates")
    ap.add_argument("--seconds", type=float, default=1.0, help="verify timing per library")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child process: one candidate
    ap.add_argument("--malformed", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one and args.malformed:
        print(json.dumps(survives_malformed(args.one)))
        return 0
    if args.one:
        special = {"es256": es256_reference, "ours": ours_row}
        row = special.get(args.one, lambda sec: check(args.one, sec))(args.seconds)
        print(json.dumps(row))
        return 0
    if args.setup:
        setup(args.setup)
        python = os.path.join(args.setup, "bin", "python")
        cmd = [python, os.path.abspath(__file__), "--seconds", str(args.seconds)]
        return subprocess.run(cmd + (["--json"] if args.json else [])).returncode
    rows = []
    for name in list(CANDIDATES) + ["ours", "es256"]:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name,
                               "--seconds", str(args.seconds)], capture_output=True, text=True)
        try:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        except (IndexError, ValueError):
            rows.append({"library": name, "built_on": CANDIDATES.get(name, ("", ""))[1],
                         "error": "process died (exit %d): %s" % (
                             proc.returncode, (proc.stderr.strip().splitlines() or ["?"])[0][:120])})
        if name in CANDIDATES and "error" not in rows[-1]:
            mal = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name,
                                  "--malformed"], capture_output=True, text=True)
            rows[-1]["survives_malformed"] = mal.returncode == 0 and "true" in mal.stdout
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    cols = ("library", "version", "built_on", "gmt", "ours->lib", "lib->ours", "refuses",
            "survives_malformed", "verify_per_s")
    print(" | ".join(cols))
    for r in rows:
        if "error" in r:
            print(" | ".join(str(r.get(c, "")) for c in cols[:3]) + " | " + r["error"])
        else:
            print(" | ".join(str(r.get(c, "")) for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())

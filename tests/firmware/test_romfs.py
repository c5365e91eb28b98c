"""The ROMFS deployment (issue 16 item 2): ``firmware build --romfs`` packs the modules into
romfs.img, MicroPython's own VfsRom driver mounts it, and bytecode imported from it runs in
place: the loop's modules cost the heap less than the same bytecode loaded from files, and
at least what ``device32.romfs_saving`` counts (the count the 32-bit estimate rests on)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from edgeledger.gateway.bench import device, device32
from edgeledger.gateway.boards import image
from edgeledger.gateway.boards.unix_port import MODULE as UNIX_PORT
from edgeledger.gateway.boards.unix_port import device_command
from tests.firmware.conftest import cli
from tests.support.mpy import micropython_binary

pytestmark = pytest.mark.micropython

LISTING = """
import os, sys, uctypes, vfs
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(*[int(x) for x in os.getenv(%r).split(":")])), "/rom")
def walk(d):
    for name, kind, *_ in os.ilistdir(d):
        if kind == 0x4000:
            yield from walk(d + "/" + name)
        else:
            yield d + "/" + name
print("FILES|" + ",".join(sorted(walk("/rom"))))
""" % image.ROMFS_ENV


def test_romfs_image_holds_every_module_and_its_bytecode_runs_in_place(tmp_path):
    rom = str(tmp_path / "rom")
    assert cli(["firmware", "build", "--board", "unix", "--out", rom, "--romfs"]) == 0
    manifest = json.load(open(os.path.join(rom, "manifest.json")))
    assert not os.path.exists(os.path.join(rom, "lib"))
    assert manifest["romfs_bytes"] == os.path.getsize(os.path.join(rom, image.ROMFS_IMAGE))
    # the same modules as bytecode files in lib/ (what romfs.img was packed from)
    lib = os.path.join(rom, "lib")
    assert image.compile_modules(image.board_modules("unix"), lib).keys() == manifest["modules"].keys()
    with open(os.path.join(rom, "main.py"), "w") as f:
        f.write(LISTING)
    out = subprocess.run(device_command(rom, "256K"), cwd=rom, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, MICROPYPATH=".frozen")).stdout
    listed = set(dict(x.split("|", 1) for x in out.splitlines() if "|" in x)["FILES"].split(","))
    expected = {"/rom/edgeledger/__init__.mpy"}
    for name in manifest["modules"]:
        path = name.replace(".", "/")
        expected.add("/rom/%s.mpy" % path if os.path.exists(os.path.join(lib, path + ".mpy"))
                     else "/rom/%s/__init__.mpy" % path)
    assert listed == expected

    in_files, loaded = device.import_heap(rom)
    in_rom, _ = device.import_heap(rom, rom=True)
    # in place: the bytecode, its strings and names stay in the image, only the objects
    # (functions, classes, dicts, tables) are made in the heap
    assert in_rom < 0.8 * in_files, (in_rom, in_files)
    # what the 32-bit ROMFS estimate subtracts is no more than the loader really saves
    counted = sum(device32.romfs_saving(lib, loaded, block=32).values())
    assert 0 < counted <= in_files - in_rom, (counted, in_files - in_rom)


def test_romfs_main_without_an_image_says_what_is_missing(tmp_path):
    out = str(tmp_path / "rom")
    assert cli(["firmware", "build", "--board", "unix", "--out", out, "--romfs"]) == 0
    env = {k: v for k, v in os.environ.items() if k != image.ROMFS_ENV}
    proc = subprocess.run([micropython_binary(), "main.py"], cwd=out, capture_output=True, text=True,
                          timeout=60, env=dict(env, MICROPYPATH=".frozen"))
    assert proc.returncode == 2
    assert "no ROMFS at /rom" in proc.stdout
    # and the launcher refuses a folder without an image
    shutil.rmtree(out)
    os.makedirs(out)
    proc = subprocess.run([sys.executable, "-m", UNIX_PORT, out], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "expected a ROMFS image" in proc.stderr

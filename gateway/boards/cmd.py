"""CLI command of the board tools: ``edgeledger firmware build``.

Registered by ``gateway/cli.py`` through ``COMMAND_MODULES`` (``add_commands``). The
device benchmarks (``bench device``, ``bench flash``) are suites of the one ``bench``
group, built in ``gateway/bench/cmd.py``.
"""
import argparse
import sys


def _firmware_build(args: argparse.Namespace) -> int:
    from edgeledger.gateway.boards import image

    try:
        manifest = image.build_image(args.board, args.out, romfs=args.romfs)
    except image.BuildError as e:
        print("edgeledger: %s" % e, file=sys.stderr)
        return 2
    print("built %s image in %s: %d modules, lib %d bytes, image %d bytes (%s)%s"
          % (args.board, args.out, len(manifest["modules"]), manifest["lib_bytes"],
             manifest["image_bytes"], manifest["mpy_cross"],
             ", romfs.img %d bytes" % manifest["romfs_bytes"] if args.romfs else ""))
    return 0


def add_commands(groups: dict) -> None:
    from edgeledger.gateway.boards import image

    fw = groups["top"].add_parser("firmware", help="build the MicroPython board image")
    fsub = fw.add_subparsers(dest="firmware_command", metavar="ACTION")
    b = fsub.add_parser("build", help="compile the agent with mpy-cross into a board image folder")
    b.add_argument("--board", required=True, choices=image.boards())
    b.add_argument("--out", required=True, help="image folder (copy to the board with mpremote)")
    b.add_argument("--romfs", action="store_true",
                   help="pack the modules as bytecode into romfs.img (mpremote romfs deploy): "
                        "the code runs from flash and stays out of the heap")
    b.set_defaults(func=_firmware_build)

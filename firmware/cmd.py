"""CLI commands of ``edgeledger.firmware``: ``firmware build``, ``bench device`` and ``bench flash``.

Registered by ``gateway/cli.py`` through ``COMMAND_MODULES`` (``add_commands``).

``bench`` is a group of suites: ``bench_suites(top)`` returns its subparsers,
creating the group on first use, so any module can add ``bench <suite>``.
"""
import json
import sys


def bench_suites(top):
    """The ``bench`` subparsers (created on first use; each suite adds one parser)."""
    bench = top.choices.get("bench")
    if bench is None:
        bench = top.add_parser("bench", help="measure the system (suites: ingest, anchor, proof, device)")
        bench.set_defaults(func=lambda args: bench.print_help() or 2)
        bench.suites = bench.add_subparsers(dest="bench_suite", metavar="SUITE")
    return bench.suites


def _firmware_build(args):
    from edgeledger.firmware import build

    try:
        manifest = build.build_image(args.board, args.out, romfs=args.romfs)
    except build.BuildError as e:
        print("edgeledger: %s" % e, file=sys.stderr)
        return 2
    print("built %s image in %s: %d modules, lib %d bytes, image %d bytes (%s)%s"
          % (args.board, args.out, len(manifest["modules"]), manifest["lib_bytes"],
             manifest["image_bytes"], manifest["mpy_cross"],
             ", romfs.img %d bytes" % manifest["romfs_bytes"] if args.romfs else ""))
    return 0


def _bench_device(args):
    from edgeledger.firmware import bench

    result = bench.run(readings=args.readings, heap_readings=args.heap_readings, log=None if args.json else print)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _bench_flash(args):
    from edgeledger.firmware import bench_flash

    return bench_flash.main_cli(args)


def add_commands(groups):
    from edgeledger.firmware import build

    top = groups["top"]
    fw = top.add_parser("firmware", help="build the MicroPython board image")
    fsub = fw.add_subparsers(dest="firmware_command", metavar="ACTION")
    b = fsub.add_parser("build", help="compile the agent with mpy-cross into a board image folder")
    b.add_argument("--board", required=True, choices=build.boards())
    b.add_argument("--out", required=True, help="image folder (copy to the board with mpremote)")
    b.add_argument("--romfs", action="store_true",
                   help="pack the modules as bytecode into romfs.img (mpremote romfs deploy): "
                        "the code runs from flash and stays out of the heap")
    b.set_defaults(func=_firmware_build)

    d = bench_suites(top).add_parser(
        "device", help="heap (64-bit floors, 32-bit per configuration), per-reading cost, flash wear, "
                       "image size and wire bytes under MicroPython")
    d.add_argument("--json", action="store_true", help="print the figures as JSON")
    d.add_argument("--readings", type=int, default=20, help="readings timed per signer")
    d.add_argument("--heap-readings", type=int, default=10,
                   help="readings the loop must publish and get acked at each heap size")
    d.set_defaults(func=_bench_device)

    fl = bench_suites(top).add_parser(
        "flash", help="outbox flash wear on littlefs and FAT: erases per reading, projected life")
    fl.add_argument("--json", action="store_true", help="print the figures as JSON")
    fl.add_argument("--seconds", type=int, default=2000, help="seconds of device time per configuration")
    fl.add_argument("--board", default="esp32", help="board profile whose outbox settings are used")
    fl.set_defaults(func=_bench_flash)

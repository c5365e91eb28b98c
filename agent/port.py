"""Platform services for the agent core: the one place that knows the runtime.

Clocks, durable file flushes and CRC differ between CPython and MicroPython;
everything else in ``agent/`` calls these functions instead of importing
platform modules itself.
"""
import os
import time

try:  # CPython
    from zlib import crc32 as _crc32

    def fsync(f):
        f.flush()
        os.fsync(f.fileno())

    def monotonic():
        return time.monotonic()

    def sleep(seconds):
        time.sleep(seconds)

    RUNTIME = "cpython"
except ImportError:  # MicroPython: no zlib.crc32, no os.fsync, ticks instead of monotonic
    from binascii import crc32 as _crc32

    def fsync(f):
        # flush() hands the data to the filesystem driver (littlefs/FAT commit on flush)
        f.flush()

    # ticks_ms wraps (every 2**30 ms on most ports); add up the differences instead of
    # subtracting a start value, so the clock keeps going forward on a board up for weeks
    _ticks = [time.ticks_ms(), 0]  # last reading, milliseconds accumulated

    def monotonic():
        now = time.ticks_ms()
        _ticks[1] += time.ticks_diff(now, _ticks[0])
        _ticks[0] = now
        return _ticks[1] / 1000.0

    def sleep(seconds):
        time.sleep_ms(int(seconds * 1000))

    RUNTIME = "micropython"


def crc32(data, value=0):
    return _crc32(data, value) & 0xFFFFFFFF


def wall_time():
    """Unix time in seconds (float). Boards must have set their RTC (NTP/GNSS) first."""
    return time.time()


def file_size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def makedirs(path):
    parts = path.split("/")
    cur = "" if not path.startswith("/") else "/"
    for part in parts:
        if not part:
            continue
        cur = cur + part if cur.endswith("/") or cur == "" else cur + "/" + part
        try:
            os.mkdir(cur)
        except OSError:
            pass

"""Key generation on the board, for ``edgeledger device enroll``.

The host opens the board's serial REPL (raw mode, with mpremote) and runs::

    from edgeledger.firmware import enroll; enroll.run("meter-01", "ES256", "meter-01.key")

``run`` makes the device's signing key from the board's random source (``os.urandom``:
the hardware RNG on ESP32 and RP2040, see docs/firmware.md) and writes the key file on the
board's flash. It prints one line, and only the public half of the key leaves the board::

    ENROLL|<device>|<alg>|<public key hex>|<kid hex>

Run again, it keeps the key it has and prints the same line (a re-run after a lost
connection registers the same key), unless the file belongs to another device id.
"""
import os

from edgeledger.agent import port
from edgeledger.agent import signer as signers


def _entropy_on():
    """ESP32: the hardware RNG behind os.urandom mixes in physical noise only while the radio
    is on (ESP-IDF, "Random Number Generation"), so switch Wi-Fi on before drawing a key.
    Ports without ``network`` (the unix port) have nothing to switch."""
    try:
        import network

        network.WLAN(network.STA_IF).active(True)
    except (ImportError, AttributeError, OSError):
        pass


def run(device, alg, path):
    """Create (or keep) the key in ``path``; print the ENROLL line. Raises KeyFileError,
    ValueError (another device's key file), UnknownAlgorithmError, OSError."""
    from edgeledger.agent.key_file import key_file_content, load_key_file

    try:
        os.stat(path)
        have = True
    except OSError:
        have = False
    if have:
        s = load_key_file(path)
        if s.device != device:
            raise ValueError("key file %s belongs to %r, not %r: remove it to enroll again"
                             % (path, s.device, device))
    else:
        _entropy_on()
        s = signers.generate(alg, device)
        tmp = path + ".new"
        with open(tmp, "w") as f:
            f.write(key_file_content(device, s.alg_name, s.private_bytes()))
            port.fsync(f)
        os.rename(tmp, path)
    print("ENROLL|%s|%s|%s|%s" % (device, s.alg_name, s.public_key.hex(), s.kid.hex()))

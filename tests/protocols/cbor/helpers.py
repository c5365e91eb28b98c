"""Helpers shared by the CBOR tests (CPython side, and source for MicroPython)."""
import io
import math
import struct

import cbor2

from edgeledger.protocols import cbor
from edgeledger.protocols.cbor.decoder import Tag

# Compare decoded values strictly: bool is not int, 1.0 is not 1, -0.0 is not
# 0.0 and NaN equals NaN. Kept as source so MicroPython scripts use the same
# definition.
SAME_SRC = '''
import struct
def same(a, b):
    if type(a) is not type(b):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
            return False
    if isinstance(a, float):
        if a != a:
            return b != b
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for k in a:
            if k not in b or not same(a[k], b[k]):
                return False
        return True
    if type(a).__name__ == "Tag":
        return a.tag == b.tag and same(a.value, b.value)
    return a == b
'''
_ns = {}
exec(SAME_SRC, _ns)
same = _ns["same"]


def materialize(v):
    """Turn the vector table's ("tag", n, value) triples into Tag objects."""
    if isinstance(v, tuple) and len(v) == 3 and v[0] == "tag":
        return Tag(v[1], materialize(v[2]))
    if isinstance(v, list):
        return [materialize(x) for x in v]
    if isinstance(v, dict):
        return {k: materialize(x) for k, x in v.items()}
    return v


def literal(v):
    """Python source for ``v`` that both CPython and MicroPython evaluate back."""
    if v is None or isinstance(v, (bool, int)):
        return repr(v)
    if isinstance(v, float):
        if v != v:
            return "float('nan')"
        if math.isinf(v):
            return "float('inf')" if v > 0 else "float('-inf')"
        # exact: rebuild from the bit pattern
        return "struct.unpack('>d', bytes.fromhex(%r))[0]" % struct.pack(">d", v).hex()
    if isinstance(v, (bytes, bytearray)):
        return "bytes.fromhex(%r)" % bytes(v).hex()
    if isinstance(v, str):
        return "str(bytes.fromhex(%r), 'utf-8')" % v.encode("utf-8").hex()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (literal(k), literal(x)) for k, x in v.items()) + "}"
    if isinstance(v, Tag):
        return "Tag(%d, %s)" % (v.tag, literal(v.value))
    raise TypeError(type(v))


def to_cbor2(v):
    """Our value model -> what cbor2 encodes to the same CBOR."""
    if isinstance(v, Tag):
        return cbor2.CBORTag(v.tag, to_cbor2(v.value))
    if isinstance(v, (list, tuple)):
        return [to_cbor2(x) for x in v]
    if isinstance(v, dict):
        return {to_cbor2_key(k): to_cbor2(x) for k, x in v.items()}
    return v


def to_cbor2_key(k):
    if isinstance(k, Tag):
        return cbor2.CBORTag(k.tag, to_cbor2_key(k.value))
    return k


def from_cbor2(v):
    """cbor2's decoded value -> our value model (CBORTag -> Tag, tuple -> list)."""
    if isinstance(v, cbor2.CBORTag):
        return Tag(v.tag, from_cbor2(v.value))
    if isinstance(v, (list, tuple)):
        return [from_cbor2(x) for x in v]
    if isinstance(v, (dict, cbor2.frozendict)):  # cbor2 freezes maps inside tags and keys
        return {from_cbor2_key(k): from_cbor2(x) for k, x in v.items()}
    return v


def from_cbor2_key(k):
    if isinstance(k, cbor2.CBORTag):
        return Tag(k.tag, from_cbor2_key(k.value))
    return k


def cbor2_strict_loads(data):
    """cbor2 configured as close to our decoder's verdicts as it goes.

    cbor2 6.x ``loads`` ignores bytes after the first item, accepts
    indefinite lengths and duplicate keys by default, and its errors are not
    ValueErrors: the gateway has to wrap it like this (and translate errors).
    """
    fp = io.BytesIO(data)
    dec = cbor2.CBORDecoder(fp, allow_indefinite=False, allow_duplicate_keys=False)
    value = dec.decode()
    if fp.tell() != len(data):
        raise cbor2.CBORDecodeError("%d trailing bytes" % (len(data) - fp.tell()))
    return value


def maps_in(v):
    if isinstance(v, dict):
        yield v
        for k, x in v.items():
            yield from maps_in(k)
            yield from maps_in(x)
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from maps_in(x)
    elif isinstance(v, Tag):
        yield from maps_in(v.value)


def key_orders_agree(v):
    """True when, in every map of ``v``, RFC 8949 §4.2.1 bytewise key order
    equals cbor2's length-first order (RFC 8949 §4.2.3)."""
    for m in maps_in(v):
        keys = [cbor.encode(k) for k in m]
        if sorted(keys) != sorted(keys, key=lambda b: (len(b), b)):
            return False
    return True

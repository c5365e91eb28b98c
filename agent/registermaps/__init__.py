"""Modbus register maps as data, and their decoding into SenML records.

A map is a dict::

    {"name": ..., "function": 3 or 4, "max_block": registers per request,
     "entries": ((address, type, word_order, scale, unit, name), ...)}

``address`` is the 0-based wire address (PDU address, AP §4.4: register
30001 in a data sheet is wire address 0); ``type`` one of u16/i16/u32/i32/f32/
u64; ``word_order`` "big" (most significant register first) or "little";
``scale`` multiplies the raw value into ``unit`` (a SenML unit, RFC 8428 §12.1
and RFC 8798 §2 primary units only); ``name`` is appended to the device's
record-name prefix.

Maps are looked up by name in MAPS, which names the module holding each map's
``MAP``; a configuration may also pass a map dict directly. A map's module is
imported only when a device names it, so a board holds in its heap only the maps
its devices use (the image build still puts every module named here in flash).
"""
from edgeledger.agent.sources import _load
from edgeledger.protocols.modbus import TYPE_WORDS, decode_value

# the scales of meters that count kWh and kvarh, into the SenML primary units
KWH = 3600000.0  # J per kWh
KVARH = 3600000.0  # vars (var-seconds) per kvarh

# map name -> module whose MAP it is (docs/field-buses.md lists them with their sources)
MAPS = {
    "sdm120": "edgeledger.agent.registermaps.sdm120",
    "sdm630": "edgeledger.agent.registermaps.sdm630",
    "sdm72d_m": "edgeledger.agent.registermaps.sdm72d_m",
    "xy_md02": "edgeledger.agent.registermaps.xy_md02",
}


def get_map(name_or_map):
    """Return a register map by name (or validate and return a map dict).

    Raises KeyError for an unknown name and ValueError for a malformed map or a value
    that is neither a name nor a map.
    """
    if isinstance(name_or_map, dict):
        check_map(name_or_map)
        return name_or_map
    if not isinstance(name_or_map, str):
        raise ValueError("register map must be a map name or a table, found %r" % (name_or_map,))
    if name_or_map not in MAPS:
        raise KeyError("unknown register map %r; known: %s" % (name_or_map, ", ".join(sorted(MAPS))))
    return _load(MAPS[name_or_map]).MAP


def check_map(m):
    """Raise ValueError if ``m`` is not a well-formed register map."""
    if m.get("function") not in (3, 4):
        raise ValueError("register map function must be 3 or 4, found %r" % (m.get("function"),))
    if not 1 <= m.get("max_block", 125) <= 125:
        raise ValueError("max_block must be 1..125 (AP §6.3), found %r" % (m.get("max_block"),))
    for e in m["entries"]:
        if len(e) != 6:
            raise ValueError("register map entry needs 6 fields, found %r" % (e,))
        if e[1] not in TYPE_WORDS:
            raise ValueError("register type must be one of %s, found %r" % (sorted(TYPE_WORDS), e[1]))
        if e[2] not in ("big", "little"):
            raise ValueError("word order must be big or little, found %r" % (e[2],))


def plan_blocks(m):
    """Group the map's entries into read requests.

    Returns a list of ``(start, count, entries)``: contiguous-or-near entries
    share one request of at most ``max_block`` registers; a gap of more than
    ``max_gap`` (default 8) unused registers starts a new request, so devices
    that refuse reads of unmapped registers can set ``max_gap`` to 0.
    """
    limit = m.get("max_block", 125)
    max_gap = m.get("max_gap", 8)
    entries = sorted(m["entries"], key=lambda e: e[0])
    blocks = []
    start = None
    end = 0
    members = []
    for e in entries:
        addr = e[0]
        words = TYPE_WORDS[e[1]]
        if start is not None and (addr - end > max_gap or addr + words - start > limit):
            blocks.append((start, end - start, members))
            start = None
        if start is None:
            start = addr
            end = addr
            members = []
        members.append(e)
        if addr + words > end:
            end = addr + words
    if start is not None:
        blocks.append((start, end - start, members))
    return blocks


def _scaled(raw, scale):
    if scale == 1:
        return raw
    # A decimal scale such as 0.1 is applied as a division by 10 so that
    # 253 x 0.1 is recorded as 25.3, not 25.300000000000001.
    if scale < 1:
        inv = 1.0 / scale
        if inv == int(inv):
            return raw / inv
    return raw * scale


def decode_block(start, registers, entries, prefix, t):
    """SenML records (dicts with RFC 8428 CBOR labels) for ``entries`` read
    as ``registers`` starting at wire address ``start``. A NaN or infinite
    f32 (a device's "not available") becomes no record.

    Raises ModbusFrameError if the block is too short for an entry.
    """
    out = []
    for addr, kind, order, scale, unit, name in entries:
        raw = decode_value(registers, addr - start, kind, order)
        if kind == "f32" and (raw != raw or raw in (float("inf"), float("-inf"))):
            continue
        rec = {0: prefix + name, 2: _scaled(raw, scale), 6: t}
        if unit:
            rec[1] = unit
        out.append(rec)
    return out

# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""DSMR P1 telegrams (NL DSMR 2.2 / 3.0 / 4.x / 5.0.2, BE Fluvius e-MUCS P1).

Telegram (DSMR P1 Companion Standard 5.0.2 §6.2)::

    /XXX5<identification> CR LF
    CR LF
    <OBIS reference>(<value>[*<unit>])[(...)] CR LF      ... one object per line
    !<CRC> CR LF

* CRC (v4 and later): CRC-16/ARC (x^16+x^15+x^2+1, LSB first, init 0) over
  every byte from ``/`` through ``!``, printed as four hex digits. DSMR 2.2
  and 3.0 end with ``!`` CR LF and carry no CRC.
* Timestamps: ``YYMMDDhhmmssX`` (§6.4), X = S (summer time, UTC+2) or W
  (winter time, UTC+1); see ``obis.parse_timestamp``.
* M-Bus devices (gas, water, heat) sit on channels 1..4 (the B field of the
  OBIS reference, ``0-n:24.2.1``) and report their reading with its own
  capture time: ``0-n:24.2.1(YYMMDDhhmmssX)(value*m3)``. Fluvius reports
  non-temperature-corrected gas as ``0-n:24.2.3``. DSMR 2.2/3.0 use
  ``0-n:24.3.0(ts)(00)(60)(1)(0-n:24.2.1)(m3)`` CR LF ``(value)``.

Object lists per version are data (OBJECTS[version]): an OBIS reference with
``n`` for the M-Bus channel maps to a layout. Lines whose reference is not in
the version's list are counted in ``Telegram.unknown`` and produce no record.
"""
from edgeledger.protocols import obis
from edgeledger.protocols.crc import crc16_arc
from edgeledger.protocols.errors import FrameError

# DSMR 5.0.2 §6.12 limits a text message (0-0:96.13.0) to 1024 characters; a
# full telegram with four M-Bus channels and a text message stays below 3 KB,
# and a Fluvius telegram with 13 monthly peaks below 2 KB. Bytes past this
# bound without a complete telegram are junk: dropped and counted.
MAX_TELEGRAM = 8192


class DsmrFrameError(FrameError):
    """A telegram is malformed; a framer drops ``consumed`` bytes to go on."""

    def __init__(self, msg, consumed=0):
        super().__init__(msg)
        self.consumed = consumed


class DsmrCrcError(DsmrFrameError):
    """A telegram failed its CRC."""


# Version detection, for a meter whose DSMR version is not configured. The rules, in order
# (tests/fieldbus/test_dsmr_detect.py names each):
#   D1 CRC_PRESENT: a telegram ending "!XXXX" CR LF is DSMR 4+; its CRC-16 must match
#      (P1 5.0.2 §6.2), or it is rejected like any bad CRC, never re-read as 2.2.
#   D2 LEGACY_CLEAN: a telegram ending "!" CR LF is DSMR 2.2/3.0 (P1 2.2 §5: no CRC) only if
#      it holds none of the objects DSMR 4+ introduced (DSMR4_MARKERS); otherwise it is a
#      DSMR 4+ telegram that lost its CRC, and rejected.
#   D3 CRC_STICKS: once a meter has sent one telegram with a valid CRC, every later telegram
#      must carry one (a meter does not change version while it runs).
# The identification line cannot tell: 2.2/3.0 and 4+ meters print the same /XXX5 form, and
# dsmr_parser's published 3.0 and 5.0 telegrams even share "/ISk5\2MT382-1000".
DETECT = None  # the ``require_crc`` value that applies D1..D3
# Objects only DSMR 4.0 and later print: the P1 version (1-3:0.2.8), the telegram's
# timestamp (0-0:1.0.0) and Fluvius' version (0-0:96.1.4). dsmr_parser's V2_2 and V3
# specifications have neither P1_MESSAGE_HEADER nor P1_MESSAGE_TIMESTAMP; V4 and V5 both.
DSMR4_MARKERS = ("1-3:0.2.8(", "0-0:1.0.0(", "0-0:96.1.4(")


def legacy_clean(telegram):
    """True if a CRC-less ``telegram`` (bytes) holds no DSMR 4+ object (rule D2)."""
    for m in DSMR4_MARKERS:
        if telegram.find(m.encode()) >= 0:
            return False
    return True


def decode_telegram(buf, require_crc=True):
    """Find one telegram in ``buf``.

    Returns ``(telegram_bytes, consumed)``: the bytes from ``/`` through the
    final CR LF, or None when more bytes are needed; ``consumed`` is how many
    bytes to drop from ``buf`` (junk before ``/``, a truncated telegram
    followed by a new ``/``, plus the telegram). ``require_crc``: True (DSMR
    4+), False (2.2/3.0: a CRC is checked if present) or DETECT (rules D1, D2
    above). Raises DsmrCrcError (with ``.consumed``) when the CRC does not
    match and DsmrFrameError when a CRC is required but absent.
    """
    start = buf.find(b"/")
    if start < 0:
        return None, len(buf)
    while True:
        bang = buf.find(b"!", start + 1)
        nxt = buf.find(b"/", start + 1)
        if nxt >= 0 and (bang < 0 or nxt < bang):
            # a telegram that started before we listened (or was cut off):
            # resynchronise on the next "/"
            start = nxt
            continue
        break
    if bang < 0:
        return None, start
    tail = buf[bang + 1 : bang + 7]
    if tail[:2] == b"\r\n":
        if require_crc:
            raise DsmrFrameError("telegram ends '!' CR LF without the CRC that DSMR 4+ requires", bang + 3)
        tg = bytes(buf[start : bang + 3])
        if require_crc is DETECT and not legacy_clean(tg):
            raise DsmrFrameError("telegram without CRC holds DSMR 4+ objects: expected '!' and a CRC, "
                                 "found '!' CR LF", bang + 3)
        return tg, bang + 3
    if len(tail) < 6:
        if len(tail) >= 2 and not _is_hex(tail[: min(4, len(tail))]):
            raise DsmrFrameError("expected 4 hex CRC digits after '!', found %r" % (bytes(tail),), bang + 1)
        return None, start
    if not _is_hex(tail[:4]) or tail[4:6] != b"\r\n":
        raise DsmrFrameError("expected '!' CRC CR LF, found %r" % (bytes(tail),), bang + 1)
    expected = crc16_arc(buf[start : bang + 1])
    found = int(bytes(tail[:4]).decode(), 16)
    if expected != found:
        raise DsmrCrcError(
            "telegram CRC expected %04X, found %04X" % (expected, found), bang + 7
        )
    return bytes(buf[start : bang + 7]), bang + 7


def _is_hex(b):
    for c in b:
        if not (0x30 <= c <= 0x39 or 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66):
            return False
    return True


class TelegramFramer:
    """Buffering framer: ``receive_data``, then ``next_telegram()`` until None.

    ``bad_frames`` counts CRC and layout failures, ``discarded`` junk bytes.
    """

    def __init__(self, require_crc=True):
        self.require_crc = require_crc  # True, False or DETECT; DETECT becomes True by rule D3
        self._buf = bytearray()
        self.bad_frames = 0
        self.discarded = 0

    def receive_data(self, data):
        self._buf.extend(data)
        over = len(self._buf) - MAX_TELEGRAM
        if over > 0:
            self._buf = self._buf[over:]
            self.discarded += over

    def next_telegram(self):
        """Next complete telegram (bytes) or None. Raises DsmrFrameError
        (counted in ``bad_frames``) for a rejected telegram; call again to go on."""
        try:
            tg, consumed = decode_telegram(self._buf, self.require_crc)
        except DsmrFrameError as e:
            self._buf = self._buf[max(1, e.consumed) :]
            self.bad_frames += 1
            raise
        if consumed:
            self._buf = self._buf[consumed:]
        if tg is None:
            self.discarded += consumed
        else:
            self.discarded += consumed - len(tg)
            if self.require_crc is DETECT and not tg.endswith(b"!\r\n"):
                self.require_crc = True  # rule D3
        return tg


# ---------------------------------------------------------------------------
# Object layouts.
VALUE = "value"  # (value[*unit]) by obis.OBIS kind
TIMESTAMP = "timestamp"  # (YYMMDDhhmmssX): the telegram's time
MBUS_TYPE = "mbus_type"  # (ddd) M-Bus device type
MBUS_ID = "mbus_id"  # (hex) M-Bus equipment identifier
MBUS_READING = "mbus_reading"  # (ts)(value*unit)
MBUS_LEGACY = "mbus_legacy"  # DSMR 2.2/3.0: (ts)(00)(60)(1)(0-n:24.2.1)(unit)(value)
MBUS_VALVE = "mbus_valve"  # (d)
PEAK = "peak"  # (ts)(value*unit): monthly maximum demand with its time

_COMMON_E = (
    "1-0:1.8.1", "1-0:1.8.2", "1-0:2.8.1", "1-0:2.8.2", "0-0:96.14.0",
    "1-0:1.7.0", "1-0:2.7.0", "0-0:96.1.1", "0-0:96.13.0",
)
_V4_EXTRA = (
    "1-3:0.2.8", "0-0:1.0.0", "0-0:96.7.21", "0-0:96.7.9", "1-0:99.97.0",
    "1-0:32.32.0", "1-0:52.32.0", "1-0:72.32.0", "1-0:32.36.0", "1-0:52.36.0", "1-0:72.36.0",
    "0-0:96.13.1", "1-0:31.7.0", "1-0:51.7.0", "1-0:71.7.0", "1-0:32.7.0", "1-0:52.7.0",
    "1-0:72.7.0", "1-0:21.7.0", "1-0:41.7.0", "1-0:61.7.0", "1-0:22.7.0", "1-0:42.7.0",
    "1-0:62.7.0", "0-n:24.1.0", "0-n:96.1.0", "0-n:24.2.1",
)

# Object lists. Sources: DSMR 2.2 P1 (Netbeheer Nederland, 2008) §5; DSMR 4.2.2
# P1 companion standard §6.12; DSMR 5.0.2 P1 companion standard §6.12 (table
# "Data objects"); Fluvius "e-MUCS P1" specification Ed. 1.7.1 §"Data objects".
OBJECTS = {
    "2.2": _COMMON_E + ("0-0:17.0.0", "0-0:96.3.10", "0-n:24.1.0", "0-n:96.1.0", "0-n:24.3.0", "0-n:24.4.0"),
    "3.0": _COMMON_E + ("0-0:17.0.0", "0-0:96.3.10", "0-n:24.1.0", "0-n:96.1.0", "0-n:24.3.0", "0-n:24.4.0"),
    "4": _COMMON_E + _V4_EXTRA + ("0-0:17.0.0", "0-0:96.3.10", "0-n:24.4.0"),
    "5": _COMMON_E + _V4_EXTRA,
    "fluvius": _COMMON_E + _V4_EXTRA + (
        "0-0:96.1.4", "1-0:1.4.0", "1-0:1.6.0", "0-0:98.1.0", "0-0:96.3.10", "0-0:17.0.0",
        "1-0:31.4.0", "0-n:96.1.1", "0-n:24.2.3", "0-n:24.4.0",
    ),
}

# reference (with n for the channel) -> layout; plain value objects default to VALUE
LAYOUTS = {
    "0-0:1.0.0": TIMESTAMP,
    "0-n:24.1.0": MBUS_TYPE,
    "0-n:96.1.0": MBUS_ID,
    "0-n:96.1.1": MBUS_ID,
    "0-n:24.2.1": MBUS_READING,
    "0-n:24.2.3": MBUS_READING,
    "0-n:24.3.0": MBUS_LEGACY,
    "0-n:24.4.0": MBUS_VALVE,
    "1-0:1.6.0": PEAK,
    "1-0:99.97.0": None,  # power failure event log: kept in the raw telegram only
    "0-0:98.1.0": None,  # 13-month maximum demand history: raw telegram only
    "0-0:96.13.1": None,  # consumer message code (DSMR 4): raw telegram only
    "0-0:96.13.0": None,  # text message: raw telegram only
}

# M-Bus device types (EN 13757-3 table "Device type identification") -> medium name.
MBUS_MEDIUM = {3: "gas", 4: "heat", 6: "warm_water", 7: "water", 10: "cooling", 12: "heat"}


class MBusDevice:
    def __init__(self, channel):
        self.channel = channel
        self.device_type = None
        self.equipment_id = None
        self.valve = None
        self.reading = None  # (value, senml unit, unix time or None)


class Telegram:
    """A parsed telegram: ``header`` (identification line), ``timestamp``
    (unix seconds or None), ``objects`` {reference: list of group strings},
    ``mbus`` {channel: MBusDevice}, ``unknown`` (count of lines not in the
    version's object list), ``raw`` (bytes)."""

    def __init__(self, raw, header, version):
        self.raw = raw
        self.header = header
        self.version = version
        self.timestamp = None
        self.objects = {}
        self.mbus = {}
        self.unknown = 0
        self.peak = None  # (value, unit, time)


def _groups(rest):
    """``(a)(b*u)`` -> ["a", "b*u"]; raises DsmrFrameError on bad nesting."""
    out = []
    i = 0
    n = len(rest)
    while i < n:
        if rest[i] != "(":
            raise DsmrFrameError("expected '(' at %r" % (rest[i:],))
        j = rest.find(")", i + 1)
        if j < 0:
            raise DsmrFrameError("unclosed '(' in %r" % (rest,))
        out.append(rest[i + 1 : j])
        i = j + 1
    return out


def _channel_ref(ref):
    """``0-2:24.2.1`` -> (``0-n:24.2.1``, 2); other references -> (ref, 0)."""
    if len(ref) > 3 and ref[0] == "0" and ref[1] == "-" and ref[2] in "1234" and ref[3] == ":":
        return "0-n" + ref[3:], int(ref[2])
    return ref, 0


def detect_version(text):
    """Guess the object list from the telegram text: ``0-0:96.1.4`` ->
    Fluvius, ``1-3:0.2.8(4x)`` -> 4, ``(5x)`` -> 5, other telegrams with a
    CRC -> 4, without one -> 2.2 (whose object list is 3.0's)."""
    if "0-0:96.1.4(" in text:
        return "fluvius"
    k = text.find("1-3:0.2.8(")
    if k >= 0:
        return "5" if text[k + 10 : k + 11] == "5" else "4"
    return "2.2" if text.endswith("!\r\n") else "4"


def parse_telegram(raw, version=None):
    """Parse a framed telegram (bytes from ``/`` through CR LF).

    ``version`` is a key of OBJECTS or None to detect it. Raises
    DsmrFrameError for a malformed line and obis.ObisValueError for a
    malformed value; nothing else, whatever the bytes (tests/fuzz).
    """
    try:
        text = bytes(raw).decode()
    except UnicodeError:
        raise DsmrFrameError("telegram is not ASCII")
    if version is None:
        version = detect_version(text)
    if version not in OBJECTS:
        raise DsmrFrameError("DSMR version must be one of %s, found %r" % (sorted(OBJECTS), version))
    allowed = OBJECTS[version]
    lines = text.split("\r\n")
    header = lines[0]
    if not header.startswith("/") or len(header) < 5:
        raise DsmrFrameError("telegram must start with /XXX5ident, found %r" % (header,))
    tg = Telegram(bytes(raw), header, version)
    # join continuation lines ("(value)" on its own line, DSMR 2.2/3.0 gas)
    logical = []
    for line in lines[1:]:
        if not line or line.startswith("!"):
            continue
        if line.startswith("(") and logical:
            logical[-1] += line
        else:
            logical.append(line)
    for line in logical:
        p = line.find("(")
        if p < 0:
            raise DsmrFrameError("object line without value: %r" % (line,))
        ref = line[:p]
        groups = _groups(line[p:])
        key, ch = _channel_ref(ref)
        if key not in allowed:
            tg.unknown += 1
            continue
        tg.objects[ref] = groups
        layout = LAYOUTS.get(key, VALUE)
        if layout is None:
            continue
        if layout == TIMESTAMP:
            tg.timestamp = obis.parse_timestamp(groups[0])
        elif layout == PEAK:
            value, _, unit = groups[-1].partition("*")
            tg.peak = obis.scaled_value(value, unit) + (obis.parse_timestamp(groups[0]),)
        elif ch:
            dev = tg.mbus.get(ch)
            if dev is None:
                dev = tg.mbus[ch] = MBusDevice(ch)
            _mbus_object(dev, layout, ref, groups)
    return tg


def _mbus_object(dev, layout, ref, groups):
    """Set what an M-Bus channel's object (``layout``, its value ``groups``) says on ``dev``."""
    if layout == MBUS_TYPE:
        dev.device_type = obis.parse_int(groups[0])
    elif layout == MBUS_ID:
        dev.equipment_id = groups[0]
    elif layout == MBUS_VALVE:
        dev.valve = obis.parse_int(groups[0]) if groups[0] else None
    elif layout == MBUS_READING:
        if len(groups) < 2:
            raise DsmrFrameError("M-Bus reading %s needs (time)(value*unit), found %d group(s)"
                                 % (ref, len(groups)))
        value, _, unit = groups[1].partition("*")
        dev.reading = obis.scaled_value(value, unit) + (obis.parse_timestamp(groups[0]),)
    elif layout == MBUS_LEGACY:
        # (ts)(00)(60)(1)(0-n:24.2.1)(unit)(value)
        if len(groups) != 7:
            raise DsmrFrameError("legacy M-Bus object needs 7 groups, found %d" % len(groups))
        dev.reading = obis.scaled_value(groups[6], groups[5]) + (obis.parse_timestamp(groups[0]),)


def to_records(tg, prefix="", now=None):
    """SenML records (RFC 8428 CBOR labels) for a parsed Telegram.

    Electricity objects carry the telegram's own time (0-0:1.0.0) or ``now``
    when the telegram has none (DSMR 2.2/3.0); M-Bus readings and the monthly
    peak carry their own capture time. Raises obis.ObisValueError for a
    malformed value.
    """
    t = tg.timestamp if tg.timestamp is not None else now
    out = []
    for ref, groups in tg.objects.items():
        key, ch = _channel_ref(ref)
        if ch or LAYOUTS.get(key, VALUE) != VALUE:
            continue
        entry = obis.OBIS.get(obis.obis_key(ref))
        if entry is None or not groups:
            continue
        name, kind = entry
        value, _, unit = groups[0].partition("*")
        if kind == "str" and not value:
            continue
        out.append(obis.senml_record(prefix + name, kind, value, unit, t))
    if tg.peak is not None:
        v, u, pt = tg.peak
        out.append({0: prefix + "demand_max_month", 1: u, 2: v, 6: pt})
    for ch in sorted(tg.mbus):
        dev = tg.mbus[ch]
        medium = MBUS_MEDIUM.get(dev.device_type, "mbus")
        base = prefix + "%s_%d" % (medium, ch)
        if dev.reading is not None:
            v, u, rt = dev.reading
            rec = {0: base, 2: v, 6: rt}
            if u:
                rec[1] = u
            out.append(rec)
        if dev.equipment_id:
            rec = {0: base + "_id", 3: dev.equipment_id}
            if t is not None:
                rec[6] = t
            out.append(rec)
    return out

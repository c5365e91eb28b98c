# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""The agent's configuration: one table of keys, their types and their defaults.

The Linux agent reads ``agent.toml`` (``agent/linux.py``), a board its ``config.json`` and
the board profile (``firmware/startup.py``); both pass the parsed dict through
``agent_settings``, which fills in every default stated here (once, for both runtimes) and
converts each value to its type. A default that differs between the two runtimes is a
pair (Linux, board), each with the reason in a comment. The tables are strict: a key they
do not hold is an error naming the nearest key they do hold (a misspelt ``interval`` would
otherwise be ignored and the default used without a word). Each field-bus source type has
its own table of keys (``SOURCE_KEYS``: the keys only; the source module holds their
defaults). docs/configuration.md shows every key (tests/agent/test_config.py keeps the two
in step).

Runs under MicroPython (a board imports it at start and drops it as soon as the settings,
the chain digest and the broker address are read: ``firmware/startup.py``). Every
name and string in this module becomes a permanent interned string (qstr) on a board,
even after start-up drops the module, and the qstr pool grows in chunks of several KB
(docs/firmware.md): the module keeps its names few (types named by ``__name__``, a
required key is one without defaults). Most key names are qstrs already: the modules that
read them name them too.
"""
from edgeledger.agent.errors import ConfigError

# key: (type, Linux default, board default), or (type,) for a key every config must set.
# None: not set (the feature is off or the value comes from elsewhere, see the comment).
AGENT_KEYS = {
    "device": (str,),
    "site": (str,),
    "key_file": (str,),
    # The data owner's content key file (agent/content_key.py): every pack is then sent
    # encrypted (AES-CCM or SM4-CCM, COSE_Encrypt0). Not set: packs are sent in the clear.
    "content_key_file": (str, None, None),
    "sources": (list,),
    "broker": (str, "mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:1883"),
    # outbox and boot counter; Linux: var/<device> next to the config (linux.load_config)
    "state_dir": (str, None, "state"),
    # Records per signed message at most. Linux: a 1 kHz sensor's second of samples in one
    # signature. Board: one pack per poll (18 records for an SDM630, ~30 for a DSMR 5
    # telegram) while the pack being built stays small in RAM (64 records of ~30 B).
    "pack_size": (int, 1000, 64),
    "pack_age_s": (float, 0.0, 0.0),  # seal when the oldest record is this old (0: every tick)
    # Messages in flight beyond the last end-to-end ack. Linux: keeps a fast link busy
    # (the gateway acks every commit, tens of ms) while bounding what one rewind resends.
    # Board: 64 record seqs, no record bytes held.
    "window": (int, 256, 64),
    "resend_after_s": (float, 5.0, 5.0),  # rewind to the last ack when it has not moved
    # Messages per second at most, catching up included: half the gateway's default
    # per-device rate limit (gateway/ratelimit.py DEFAULT_RATE), 50x a 1 kHz sensor's packs.
    "send_rate": (float, 500.0, 500.0),
    "until_seq": (int, None, None),  # stop sealing after this seq (bounded runs; Linux: --until-seq)
    "drain_timeout_s": (float, 120.0, 120.0),  # bounded runs: how long to wait for the last acks
    "username": (str, None, None),
    "password": (str, None, None),
    "password_file": (str, None, None),  # Linux: the password in a file next to the config
    "tls": (dict, None, None),  # ca_file, cert_file, key_file, server_hostname, insecure
    "keepalive": (int, 30, 30),  # MQTT keepalive, seconds
    # The longest the network may hold a board's loop (connect, TLS handshake, a stalled
    # write): half a second keeps a 1 Hz meter on time.
    "max_block_ms": (int, None, 500),
    "max_backoff_s": (float, 10.0, 10.0),  # reconnect backoff ceiling
    "watchdog_s": (float, None, None),  # board: the profile's watchdog_s (board.WATCHDOG_S)
    "wifi": (dict, None, None),  # board with "network": wlan: ssid, password
    "ifconfig": (list, None, None),  # board: a static [ip, netmask, gateway, dns]; DHCP if unset
    "outbox": (dict, None, None),  # OUTBOX_KEYS
    # The hash of the device's chain (each message's prev): the deployment's, as the
    # gateway's deployment_hash says (protocols/hashes.py). "sm3" on a board loads the pure SM3.
    "chain_hash": (str, "sha256", "sha256"),
    # Linux: the console's level (debug, info, warning, error; -v/-q win) and a summary line
    # this often (0: never): five minutes, 288 lines a day. A board prints neither.
    "log_level": (str, None, None),
    "summary_s": (float, 300.0, 300.0),
    # Written into a bundle by `edgeledger device provision` for the operator (which key the
    # device holds); the agent does not read them.
    "alg": (str, None, None),
    "kid": (str, None, None),
    "public_key": (str, None, None),  # a key kept in a secure element ...
    "signer": (str, None, None),  # ... "secure_element"
}

OUTBOX_KEYS = {
    # Linux: 64 MiB of flash or disk is a week of one message a second. Board: the
    # profile's (firmware/boards/*.json), else 256 KiB, a quarter of a small board's
    # filesystem.
    "max_bytes": (int, 64 * 1024 * 1024, 262144),
    # One file per segment; a board's is small so that acked records free flash early.
    "segment_bytes": (int, 256 * 1024, 16384),
    "policy": (str, "drop_new", "drop_new"),  # outbox.POLICIES
    # Group commits: records made durable together (0: every record at once). A board's
    # profile sets its own (30 s on flash that wears, docs/firmware.md).
    "flush_interval_s": (float, 0.0, 0.0),
}


# The keys of ``tls`` and ``wifi``: checked by name and type; absent ones are None.
TLS_KEYS = {"ca_file": str, "cert_file": str, "key_file": str, "server_hostname": str, "insecure": bool}
WIFI_KEYS = {"ssid": str, "password": str}

# The keys of each source type (agent/sources/__init__.py SOURCE_TYPES), each with its type
# (None: more than one type, e.g. a serial port's path on Linux or UART number on a board).
# Every source may also have the COMMON_SOURCE_KEYS; a field-bus one must name its ``port``
# or a ``bus`` of the board profile (which fills in port, pins and baud). The defaults are
# the source modules' (docs/configuration.md lists them).
SOURCE_KEYS = {
    "simulated": {"kind": str, "seed": int, "channels": int},
    "modbus": {"port": None, "bus": str, "baud": int, "bytesize": int, "parity": str, "stopbits": int,
               "de_pin": int, "tx_pin": int, "rx_pin": int, "devices": list, "retries": int, "timeout_s": float,
               "inter_request_delay_s": float},
    "dsmr": {"port": None, "bus": str, "baud": int, "bytesize": int, "parity": str, "stopbits": int,
             "rx_pin": int, "rxbuf": int, "version": None, "prefix": str, "timeout_s": float},
    # IEC 62056-21 fixes the line (300 baud 7E1 at sign-on, then the agreed rate): no baud keys
    "iec62056": {"port": None, "bus": str, "de_pin": int, "tx_pin": int, "rx_pin": int, "address": str,
                 "max_baud": int, "prefix": str, "retries": int},
    # Modbus TCP (Linux): a host and a TCP port (default 502) instead of a serial line
    "modbus_tcp": {"host": str, "port": int, "devices": list, "retries": int, "timeout_s": float,
                   "connect_timeout_s": float, "inter_request_delay_s": float},
}
COMMON_SOURCE_KEYS = {"type": str, "name": str, "interval_s": float}
# The keys of one device on a Modbus line (``[[sources.devices]]``); ``map`` is a shipped
# map's name or a map table of the user's own (checked by registermaps.get_map).
MODBUS_DEVICE_KEYS = {"unit": int, "map": None, "prefix": str, "inter_request_delay_s": float}


def _ratio(a, b):
    """2 x the longest common subsequence of ``a`` and ``b`` over their total length: for
    short names close to difflib's ratio, which MicroPython does not have."""
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j in range(len(b)):
            cur.append(prev[j] + 1 if ca == b[j] else max(prev[j + 1], cur[j]))
        prev = cur
    return 2.0 * prev[-1] / ((len(a) + len(b)) or 1)


def nearest(name, known):
    """The name in ``known`` most like ``name`` (ratio at least 0.6, difflib's default
    cutoff, and the same first letter: the common subsequence is more forgiving than
    difflib's blocks), or None."""
    best, score = None, 0.6
    for k in known:
        r = _ratio(name, k) if k[:1] == name[:1] else 0.0
        if r >= score and (best is None or r > score):
            best, score = k, r
    return best


def unknown_key(where, key, known):
    """The ConfigError for ``key``, which is not among ``known``."""
    near = nearest(key, known)
    return ConfigError("%s: unknown key %r%s" % (where, key, "; did you mean %r?" % near if near else ""))


def check_keys(cfg, table, where):
    """A copy of the table ``cfg`` whose keys are all in ``table`` (key -> type, None for any),
    numbers converted. Raises ConfigError."""
    if not isinstance(cfg, dict):
        raise ConfigError("%s: expected a table of settings, found %r" % (where, cfg))
    out = {}
    for key in cfg:
        if key not in table:
            raise unknown_key(where, key, table)
        kind = table[key]
        out[key] = cfg[key] if kind is None else _convert(where, key, kind, cfg[key])
    return out


def check_source(cfg, where):
    """A source's settings (one ``[[sources]]``), checked against its type's keys; the
    serial port named (or a board bus). Raises ConfigError."""
    kind = cfg.get("type") if isinstance(cfg, dict) else None
    if kind not in SOURCE_KEYS:
        raise ConfigError("%s: type must be one of %s, found %r" % (where, ", ".join(sorted(SOURCE_KEYS)), kind))
    where = "%s (%s)" % (where, kind)
    table = dict(COMMON_SOURCE_KEYS)
    table.update(SOURCE_KEYS[kind])
    out = check_keys(cfg, table, where)
    if "bus" in table and "port" not in out and "bus" not in out:
        raise ConfigError("%s: missing 'port' (the serial device, e.g. /dev/ttyUSB0; on a board a UART "
                          "number or a 'bus' of the board profile)" % where)
    if "host" in table and "host" not in out:
        raise ConfigError("%s: missing 'host' (the meter's or the Modbus gateway's address)" % where)
    if kind in ("modbus", "modbus_tcp"):
        out["devices"] = [check_keys(d, MODBUS_DEVICE_KEYS, "%s devices[%d]" % (where, i))
                          for i, d in enumerate(out.get("devices") or ())]
    return out


def _convert(where, key, kind, value):
    """``value`` as ``kind``; an int or a number may be given as text. Raises ConfigError."""
    if kind is float or kind is int:
        if not isinstance(value, bool) and isinstance(value, (int, float, str)):
            try:
                return kind(value)
            except ValueError:
                pass
    elif isinstance(value, kind):
        return value
    raise ConfigError("%s: %r must be of type %s, found %r" % (where, key, _TYPE_NAMES.get(kind, kind.__name__),
                                                                value))


_TYPE_NAMES = {str: "str (text in quotes)", bool: "bool (true or false)"}


def settle(cfg, table, board, where, base=None):
    """A copy of ``cfg`` with every key of ``table`` present: converted to its type, or its
    default (the board's if ``board`` is true, else the Linux agent's; ``base``, a dict of
    defaults that comes first, e.g. the board profile's outbox). Raises ConfigError for a
    key not in the table, a missing required key or a value of the wrong type."""
    if not isinstance(cfg, dict):
        raise ConfigError("%s: expected a table of settings, found %r" % (where, cfg))
    for key in cfg:
        if key not in table:
            raise unknown_key(where, key, table)
    out = dict(cfg)
    for key in table:
        spec = table[key]
        if key in cfg and cfg[key] is not None:
            out[key] = _convert(where, key, spec[0], cfg[key])
        elif base is not None and key in base:
            out[key] = _convert(where, key, spec[0], base[key])
        elif len(spec) == 1:
            raise ConfigError("%s: missing %r" % (where, key))
        else:
            out[key] = spec[2 if board else 1]
    return out


def agent_settings(cfg, board, where, base=None):
    """``settle`` for the whole agent config, the ``outbox`` table included (over ``base``,
    the board profile's outbox). Raises ConfigError."""
    out = settle(cfg, AGENT_KEYS, board, where)
    out["outbox"] = settle(out["outbox"] or {}, OUTBOX_KEYS, board, where + " [outbox]", base)
    if out["tls"] is not None:
        out["tls"] = check_keys(out["tls"], TLS_KEYS, where + " [tls]")
    if out["wifi"] is not None:
        out["wifi"] = check_keys(out["wifi"], WIFI_KEYS, where + " [wifi]")
    out["sources"] = [check_source(s, "%s [[sources]] %d" % (where, i + 1)) for i, s in enumerate(out["sources"])]
    tls, _host, _port = broker(out["broker"])
    if out["tls"] and not tls:
        raise ConfigError("%s: broker %r is plain MQTT but [tls] is set: write mqtts://%s to use TLS"
                          % (where, out["broker"], out["broker"].partition("://")[2]))
    return out


def chain_digest(name):
    """The agent's digest function for ``chain_hash`` ``name``: ``crypto.sha256`` or
    ``crypto.sm3`` (a board imports the pure SM3 only when it is named). Raises ConfigError."""
    from edgeledger.agent import crypto

    if name != "sha256":  # the default needs no table (nothing more on a board's heap)
        from edgeledger.protocols import hashes

        try:
            hashes.by_name(name)
        except ValueError as e:
            raise ConfigError("chain_hash: %s" % e)
    return getattr(crypto, name)


def broker(url):
    """(tls, host, port) of the agent's broker URL (``protocols/broker_url.py``, the one
    parser). Raises ConfigError."""
    from edgeledger.protocols import broker_url

    try:
        return broker_url.parse(url)
    except ValueError as e:
        raise ConfigError(str(e))

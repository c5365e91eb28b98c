# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""The agent's configuration: one table of keys, their types and their defaults.

The Linux agent reads ``agent.toml`` (``agent/linux.py``), a board its ``config.json`` and
the board profile (``firmware/startup.py``); both pass the parsed dict through ``settle``,
which fills in every default stated here (once, for both runtimes) and converts each value
to its type. A default that differs between the two runtimes is a pair (Linux, board), each
with the reason in a comment. ``unknown_keys`` names what a config holds beyond the table
(refusing those is a later step: today they are kept and ignored; the keys of a config
that are not in ``AGENT_KEYS`` are the ones to refuse).

Runs under MicroPython (a board imports it at start and drops it with start-up). Every
name and string in this module becomes a permanent interned string (qstr) on a board,
even after start-up drops the module, and the qstr pool grows in chunks of several KB
(docs/firmware.md): the module keeps its names few (types named by ``__name__``, a
required key is one without defaults).
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
    raise ConfigError("%s: %r must be of type %s, found %r" % (where, key, kind.__name__, value))


def settle(cfg, table, board, where, base=None):
    """A copy of ``cfg`` with every key of ``table`` present: converted to its type, or its
    default (the board's if ``board`` is true, else the Linux agent's; ``base``, a dict of
    defaults that comes first, e.g. the board profile's outbox). Keys not in the table are
    kept as they are. Raises ConfigError for a missing required key or a value of the
    wrong type."""
    if not isinstance(cfg, dict):
        raise ConfigError("%s: expected a table of settings, found %r" % (where, cfg))
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

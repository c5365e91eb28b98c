"""Mosquitto configuration for one site: TLS only, per-device ACLs, no anonymous clients.

``edgeledger broker config --dir DIR`` writes into DIR::

    broker.json          what was generated (site, ports, auth, names, gateway user, run_as,
                         max_message_bytes): ``device provision`` reads it to issue matching
                         credentials
    mosquitto.conf       two TLS listeners (TLS 1.2+), nothing in plaintext
    acl                  devices' listener: pattern rules, a device reaches only its own subtree
    gateway-acl          gateway's listener: the gateway user's rules
    passwd               (auth = password) devices' ``$7$`` PBKDF2-SHA512 hashes, mosquitto_passwd format
    gateway-passwd       the gateway's hash (its listener admits nobody else)
    pki/                 the site CA, broker certificate, client certificates, CRL (pki.py)
    gateway.pass         the gateway's MQTT password, mode 0600
    gateway-mqtt.toml    the ``[mqtt]`` section to paste into gateway.toml
    data/                broker persistence (the gateway's QoS 1 session survives a restart)

Two listeners (issue 12). Mosquitto keeps one table of client ids for the whole broker, and
a client that connects with an id already in use disconnects its holder (MQTT-3.1.4-2),
clean session or not. So:

* the **devices' listener** (``port``) sets ``use_username_as_clientid``: a device's client
  id is its authenticated identity (certificate CN, or user name), whatever it asks for,
  so a device can take over no one's session but its own;
* the **gateway's listener** (``gateway_port``) admits only the gateway's password (its own
  password file): the gateway chooses its client ids there (``el-gw-<id>``, one per worker
  of ``gateway run --workers``), and uses the same takeover on purpose to disconnect a
  revoked device's live session (gateway/upkeep.py). Device ids may not start with
  ``el-gw-`` (provision.py refuses them).

Two ways to authenticate devices (``auth``):

* ``mtls`` — every device presents a certificate issued by the site CA;
  ``use_identity_as_username`` makes its CN (the device id) the MQTT user name. Revoked
  certificates go on the CRL (``crlfile``), which pki.py renews (``broker renew-crl``).
* ``password`` — the server is still authenticated by TLS; devices send a user name (the
  device id) and a random password whose PBKDF2-SHA512 hash is in ``passwd``.

Either way the ACLs confine a device to ``el/v1/<site>/<its id>/…`` (DESIGN.md §4):

    device  may write  r, birth, death        may read  ack, cmd      (its own id only)
    gateway may read   r, birth, death        may write ack, cmd      (every device of the site)
            may write  r (empty and retained only, to clear a retained reading: upkeep.py)

Limits: ``max_packet_size`` is the gateway's ``max_message_bytes`` plus MQTT's own bytes
(``MQTT_OVERHEAD``): a larger publish gets its sender disconnected before the broker reads it
(Mosquitto's ``message_size_limit`` would accept the packet, PUBACK it and drop it silently,
so the device would resend it forever and the gateway would never see the evidence). Per
client, at most ``MAX_QUEUED_MESSAGES`` messages and ``MAX_QUEUED_BYTES`` bytes wait while
it is away.

Running as root: Mosquitto 2.0 drops to the user named by ``user`` (default ``mosquitto``)
*before* it opens the ACL, password, certificate and CRL files, so those files must be
readable by that user and every directory above them traversable. ``run_as`` chooses: a
user name (files are chowned to it, and the directory path is checked), or ``root``
(Mosquitto keeps root: no file juggling, but a broker bug then runs with root rights).
When this runs as a non-root user, Mosquitto cannot change user and ``run_as`` is ignored.

Raises ``BrokerConfigError`` (a ``ConfigError``) for anything it cannot set up.
"""
import base64
import hashlib
import json
import os
import pwd
import secrets
import stat
from typing import Any, Sequence

from edgeledger.gateway.config.schema import DEFAULT_MAX_MESSAGE_BYTES
from edgeledger.gateway.enrol import hostnames
from edgeledger.gateway.enrol.pki import SitePKI, write_private, write_public
from edgeledger.gateway.errors import ConfigError
from edgeledger.protocols import topics

DEFAULT_PORT = 8883  # IANA "secure-mqtt"
DEFAULT_BIND = "0.0.0.0"
DEFAULT_GATEWAY_USER = "gateway"
AUTH_MODES = ("mtls", "password")
META_FILE = "broker.json"

# mosquitto_passwd (2.0) "$7$" format: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte hash,
# both base64; 101 iterations is mosquitto_passwd's default. The passwords issued here are
# 192-bit random strings, so key stretching adds nothing to their strength; the broker runs
# PBKDF2 on every CONNECT, so a low count also keeps reconnect storms cheap.
PBKDF2_ITERATIONS = 101
PBKDF2_SALT_LEN = 12
PBKDF2_HASH_LEN = 64
PASSWORD_BYTES = 24  # secrets.token_urlsafe(24): 192 bits, 32 characters
# A password file line is "user:$7$it$salt$hash": ~150 bytes; a site has thousands of devices.
MAX_PASSWD_BYTES = 16 * 1024 * 1024

# The ACL, as data: (access, topic kind). DESIGN.md §4, topics in protocols/topics.py.
DEVICE_RULES = (("write", "r"), ("write", "birth"), ("write", "death"), ("read", "ack"), ("read", "cmd"))
GATEWAY_RULES = (("read", "r"), ("read", "birth"), ("read", "death"), ("write", "ack"), ("write", "cmd"))

# TLS 1.2 suites: ECDHE with ECDSA (the site CA is P-256) and AEAD only (RFC 7525 §4.2).
# TLS 1.3 suites are all AEAD and are left at OpenSSL's defaults.
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305")
# The gateway holds each PUBACK until its commit, so many QoS 1 messages are in flight
# (service.py MAX_INBOX); queued messages per offline client are bounded.
MAX_QUEUED_MESSAGES = 100000
# ... and their bytes: the broker keeps the queue in memory. 512 MiB holds the whole
# message bound of typical readings (a few hundred bytes to 12 KB) and caps what maximum-
# size messages can take (100,000 x 64 KB would be 6.4 GB). What the broker drops past it,
# devices still hold in their outboxes and resend (agent/core.py).
MAX_QUEUED_BYTES = 512 * 1024 * 1024
# What MQTT adds around a payload: fixed header (<= 5 bytes), topic (2 + at most 141 bytes for
# el/v1/<64>/<64>/birth), packet id (2), and room for MQTT 5 properties.
MQTT_OVERHEAD = 1024
# MQTT's own limit on a packet's remaining length is 268,435,455 bytes (§2.2.3).
MAX_PACKET_PAYLOAD = 268435455 - MQTT_OVERHEAD


class BrokerConfigError(ConfigError):
    """The broker configuration cannot be generated, read or applied."""


# --------------------------------------------------------------------------- password file

def hash_password(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The ``$7$`` hash of ``password`` as mosquitto_passwd writes it."""
    if salt is None:
        salt = os.urandom(PBKDF2_SALT_LEN)
    dk = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, PBKDF2_HASH_LEN)
    return "$7$%d$%s$%s" % (iterations, base64.b64encode(salt).decode(), base64.b64encode(dk).decode())


def check_password(hashed: str, password: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash. Raises BrokerConfigError for another format."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise BrokerConfigError("password hash: expected $7$iterations$salt$hash, found %r" % hashed[:20])
    salt, expect = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    dk = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]), len(expect))
    return secrets.compare_digest(dk, expect)


def read_passwd(path: str) -> dict[str, str]:
    """{user: hash} from a password file ({} if it does not exist)."""
    try:
        if os.path.getsize(path) > MAX_PASSWD_BYTES:
            raise BrokerConfigError("password file %s is larger than %d bytes" % (path, MAX_PASSWD_BYTES))
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep:
            raise BrokerConfigError("password file %s line %d: expected user:hash, found %r" % (path, n, line[:40]))
        out[user] = hashed
    return out


def write_passwd(path: str, entries: dict[str, str]) -> None:
    write_private(path, "".join("%s:%s\n" % (u, h) for u, h in sorted(entries.items())).encode())


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


# --------------------------------------------------------------------------- rendering

def render_acl(site: str, gateway_user: str) -> str:
    """The devices' listener ACL text. ``pattern`` rules apply to every client with ``%u`` = its
    user name (Mosquitto refuses the substitution for names containing ``+``, ``#`` or ``/``).
    Nothing else is granted there: the gateway's rules live in ``render_gateway_acl``, on the
    listener only the gateway can log in to."""
    topics.check_id(site, "site")
    topics.check_id(gateway_user, "gateway user")
    lines = ["# generated by `edgeledger broker config`: site %s, devices' listener" % site,
             "# Anything not granted here is denied (including $SYS).", "",
             "# every client: only the subtree named by its own user name (= device id, = cert CN)"]
    for access, kind in DEVICE_RULES:
        lines.append("pattern %s %s/%s/%%u/%s" % (access, topics.PREFIX, site, kind))
    return "\n".join(lines) + "\n"


def render_gateway_acl(site: str, gateway_user: str) -> str:
    """The gateway's listener ACL text: the gateway reads every device's readings and session
    messages, writes acks and commands, and may clear a retained reading."""
    topics.check_id(site, "site")
    topics.check_id(gateway_user, "gateway user")
    lines = ["# generated by `edgeledger broker config`: site %s, gateway's listener" % site,
             "# the gateway: reads every device's readings and session messages, writes acks and commands",
             "user %s" % gateway_user]
    for access, kind in GATEWAY_RULES:
        lines.append("topic %s %s" % (access, topics.subscription(kind, site)))
    lines.append("# ... and clears retained readings (an empty retained publish): gateway/upkeep.py")
    lines.append("topic write %s" % topics.subscription("r", site))
    return "\n".join(lines) + "\n"


def render_config(meta: dict[str, Any], paths: dict[str, str]) -> str:
    """The mosquitto.conf text for ``meta`` (see ``BrokerSite``)."""
    max_bytes = int(meta.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))
    lines = [
        "# generated by `edgeledger broker config`: site %s, auth %s" % (meta["site"], meta["auth"]),
        "# Only the two TLS listeners below exist: Mosquitto opens no default plaintext port",
        "# once a listener is configured.",
        "per_listener_settings true",
    ]
    if meta.get("run_as") and os.geteuid() == 0:
        lines.append("user %s" % meta["run_as"])
    lines += [
        "persistence true",
        "persistence_location %s/" % paths["data"],
        "max_inflight_messages 0",
        "max_queued_messages %d" % MAX_QUEUED_MESSAGES,
        "max_queued_bytes %d" % MAX_QUEUED_BYTES,
        "# the gateway's max_message_bytes (%d) plus MQTT's own bytes: larger packets disconnect" % max_bytes,
        "max_packet_size %d" % (max_bytes + MQTT_OVERHEAD),
        "connection_messages true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "",
        "# devices: the client id is the authenticated identity, so no device takes over another's session",
        "listener %d %s" % (meta["port"], meta["bind"]),
        "protocol mqtt",
        "allow_anonymous false",
        "acl_file %s" % paths["acl"],
        "use_username_as_clientid true",
    ]
    if meta["auth"] == "password":
        lines.append("password_file %s" % paths["passwd"])
    lines += _tls_lines(paths)
    lines.append("crlfile %s" % paths["crl"])
    if meta["auth"] == "mtls":
        lines += ["require_certificate true", "use_identity_as_username true"]
    else:
        lines += ["require_certificate false"]
    lines += [
        "",
        "# the gateway: its password only; it chooses its client ids (one per ingest worker)",
        "listener %d %s" % (meta["gateway_port"], meta["bind"]),
        "protocol mqtt",
        "allow_anonymous false",
        "acl_file %s" % paths["gateway_acl"],
        "password_file %s" % paths["gateway_passwd"],
    ] + _tls_lines(paths) + ["require_certificate false"]
    return "\n".join(lines) + "\n"


def _tls_lines(paths: dict[str, str]) -> list[str]:
    return [
        "cafile %s" % paths["ca"],
        "certfile %s" % paths["server_cert"],
        "keyfile %s" % paths["server_key"],
        "tls_version tlsv1.2",  # the minimum version: TLS 1.3 is negotiated when both can
        "ciphers %s" % TLS12_CIPHERS,
    ]


# --------------------------------------------------------------------------- the site directory

class BrokerSite:
    """A generated broker directory. ``generate()`` creates it; ``load()`` reads it back."""

    def __init__(self, directory: str, meta: dict[str, Any] | None = None) -> None:
        self.dir = os.path.abspath(directory)
        self.meta: dict[str, Any] = meta if meta is not None else {}  # filled by generate()
        self.pki = SitePKI(os.path.join(self.dir, "pki"))
        self.paths = {
            "meta": os.path.join(self.dir, META_FILE),
            "config": os.path.join(self.dir, "mosquitto.conf"),
            "acl": os.path.join(self.dir, "acl"),
            "gateway_acl": os.path.join(self.dir, "gateway-acl"),
            "passwd": os.path.join(self.dir, "passwd"),
            "gateway_passwd": os.path.join(self.dir, "gateway-passwd"),
            "data": os.path.join(self.dir, "data"),
            "gateway_pass": os.path.join(self.dir, "gateway.pass"),
            "gateway_snippet": os.path.join(self.dir, "gateway-mqtt.toml"),
            "ca": self.pki.ca_path,
            "server_cert": self.pki.server_path,
            "server_key": self.pki.server_key_path,
            "crl": self.pki.crl_path,
        }

    @classmethod
    def load(cls, directory: str) -> "BrokerSite":
        """Read ``broker.json``. Raises BrokerConfigError if the directory was not generated."""
        path = os.path.join(os.path.abspath(directory), META_FILE)
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise BrokerConfigError("cannot read %s (run `edgeledger broker config --dir %s` first): %s"
                                    % (path, directory, e)) from e
        return cls(directory, meta)

    @property
    def site(self) -> str:
        return str(self.meta["site"])

    @property
    def auth(self) -> str:
        return str(self.meta["auth"])

    @property
    def gateway_user(self) -> str:
        return str(self.meta["gateway_user"])

    def url(self, host: str | None = None) -> str:
        """The devices' listener."""
        return "mqtts://%s:%d" % (host or self.meta["hosts"][0], self.meta["port"])

    def gateway_url(self, host: str | None = None) -> str:
        """The gateway's listener."""
        return "mqtts://%s:%d" % (host or self.meta["hosts"][0], self.gateway_port)

    @property
    def gateway_port(self) -> int:
        return int(self.meta.get("gateway_port") or self.meta["port"] + 1)

    # -- generation --------------------------------------------------------------------------

    def generate(self, site: str, port: int = DEFAULT_PORT, auth: str = "mtls", bind: str = DEFAULT_BIND,
                 names: Sequence[str] = (), gateway_user: str = DEFAULT_GATEWAY_USER, run_as: str = "mosquitto",
                 gateway_port: int | None = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 machine_names: bool = True) -> "BrokerSite":
        """Write (or rewrite) the whole directory; an existing CA and passwd are kept.
        ``gateway_port`` defaults to ``port + 1``; ``max_message_bytes`` must be the gateway's.
        The broker certificate names ``names``, localhost and, with ``machine_names``, this
        machine's host name and reachable addresses (``hostnames.machine_names``).

        Returns self. Raises BrokerConfigError, PkiError, TopicError.
        """
        if auth not in AUTH_MODES:
            raise BrokerConfigError("auth: expected one of %s, found %r" % (AUTH_MODES, auth))
        topics.check_id(site, "site")
        topics.check_id(gateway_user, "gateway user")
        gateway_port = int(port) + 1 if gateway_port is None else int(gateway_port)
        for name, value in (("port", port), ("gateway port", gateway_port)):
            if not 0 < int(value) < 65536:
                raise BrokerConfigError("%s: expected 1..65535, found %r" % (name, value))
        if int(port) == gateway_port:
            raise BrokerConfigError("the gateway's port must differ from the devices' port %d" % int(port))
        if not 0 < int(max_message_bytes) <= MAX_PACKET_PAYLOAD:
            raise BrokerConfigError("max_message_bytes: expected 1..%d, found %r" % (MAX_PACKET_PAYLOAD,
                                                                                   max_message_bytes))
        cert_names, hosts = _host_names(names, machine_names)
        self.meta = {"site": site, "port": int(port), "gateway_port": gateway_port, "bind": bind, "auth": auth,
                     "names": list(names), "hosts": hosts, "gateway_user": gateway_user, "run_as": run_as,
                     "max_message_bytes": int(max_message_bytes)}
        os.makedirs(self.paths["data"], exist_ok=True)
        self.pki.init(site)
        self.pki.issue_server(cert_names)
        for key, text in (("acl", render_acl(site, gateway_user)),
                          ("gateway_acl", render_gateway_acl(site, gateway_user))):
            with open(self.paths[key] + ".new", "w") as f:
                f.write(text)
            os.replace(self.paths[key] + ".new", self.paths[key])
        # The gateway logs in with a password on its own listener, in both modes.
        password = new_password()
        write_passwd(self.paths["gateway_passwd"], {gateway_user: hash_password(password)})
        write_private(self.paths["gateway_pass"], (password + "\n").encode())
        if auth == "password":
            entries = read_passwd(self.paths["passwd"])
            entries.pop(gateway_user, None)  # the devices' listener never admits the gateway
            write_passwd(self.paths["passwd"], entries)
        mqtt = {"username": gateway_user, "password_file": self.paths["gateway_pass"],
                "ca_file": self.pki.ca_path}
        snippet = ["# paste into gateway.toml (this gateway owns site %s)" % site,
                   '# broker = "%s"          (the gateway\'s listener)' % self.gateway_url(),
                   '# sites = ["%s"]' % site,
                   "# max_message_bytes = %d      (the broker's max_packet_size allows no more)"
                   % int(max_message_bytes), "[mqtt]"]
        snippet += ['%s = "%s"' % (k, v) for k, v in mqtt.items()]
        write_public(self.paths["gateway_snippet"], ("\n".join(snippet) + "\n").encode())
        write_public(self.paths["config"], render_config(self.meta, self.paths).encode())
        write_public(self.paths["meta"], (json.dumps(self.meta, indent=2, sort_keys=True) + "\n").encode())
        self.hand_over()
        return self

    # -- credentials -------------------------------------------------------------------------

    def set_password(self, user: str, password: str) -> None:
        """Add or replace ``user`` in the password file (the broker reloads it on SIGHUP)."""
        topics.check_id(user, "MQTT user")
        entries = read_passwd(self.paths["passwd"])
        entries[user] = hash_password(password)
        write_passwd(self.paths["passwd"], entries)
        self.hand_over()

    def remove_user(self, user: str) -> bool:
        """Delete ``user`` from the password file. Returns True if it was there."""
        entries = read_passwd(self.paths["passwd"])
        if entries.pop(user, None) is None:
            return False
        write_passwd(self.paths["passwd"], entries)
        self.hand_over()
        return True

    # -- file ownership for the broker user --------------------------------------------------

    def broker_files(self) -> list[str]:
        files = [self.paths[k] for k in ("acl", "gateway_acl", "gateway_passwd", "ca", "server_cert", "server_key",
                                         "crl")]
        if self.meta["auth"] == "password":
            files.append(self.paths["passwd"])
        return files

    def hand_over(self) -> None:
        """Make the files the broker opens readable by the user it runs as (see module doc)."""
        run_as = self.meta.get("run_as")
        if os.geteuid() != 0 or not run_as or run_as == "root":
            return
        try:
            pw = pwd.getpwnam(run_as)
        except KeyError:
            raise BrokerConfigError("run_as: no user %r on this host (use --run-as root or create it)"
                                    % run_as) from None
        for path in self.broker_files() + [self.paths["data"]]:
            if os.path.exists(path):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        _check_traversable(self.dir, pw)


def _host_names(names: Sequence[str], machine_names: bool) -> tuple[list[str], list[str]]:
    """(names for the broker certificate beyond pki.LOCAL_NAMES, every host a device may use:
    ``names`` first, then localhost, then this machine's names)."""
    cert_names = list(names)
    for name in hostnames.machine_names() if machine_names else []:
        if name not in cert_names:
            cert_names.append(name)
    hosts = list(names) + ["localhost", "127.0.0.1"]
    return cert_names, hosts + [n for n in cert_names if n not in hosts]


def _check_traversable(directory: str, pw: pwd.struct_passwd) -> None:
    """Raise BrokerConfigError if user ``pw`` cannot reach ``directory``."""
    path = os.path.abspath(directory)
    while True:
        st = os.stat(path)
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == pw.pw_gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise BrokerConfigError(
                "Mosquitto runs as %r and cannot enter %s (mode %o, owner uid %d): put the broker "
                "directory where that user can reach it, or pass --run-as root"
                % (pw.pw_name, path, stat.S_IMODE(st.st_mode), st.st_uid))
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent

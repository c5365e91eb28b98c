"""Provision, revoke and rotate device keys, keeping three records in step.

A device key lives in three places, and each operation writes them in an order chosen so
that a failure half-way leaves the system safe and a re-run finishes the job:

==========  =========================================  ==============================
operation   order                                      if it stops half-way
==========  =========================================  ==============================
provision   chain registerKey -> gateway registry      an unused key on chain (harmless);
            -> MQTT credentials -> device bundle       re-run provisions a fresh key
revoke      gateway registry (stops ingest at once)    ``sync_chain`` / re-run pushes
            -> chain revokeKey -> broker credentials   the revocation to the chain
rotate      chain registerKey(new) -> registry         re-run, or ``sync_chain``
            register -> per old key: registry expire
            -> chain rotateKey(old, until)
==========  =========================================  ==============================

Times are whole seconds on both sides, because the contract stores ``uint64`` seconds. A key's
window opens at the chain's own block time of its ``registerKey`` (no caller chooses it), which
the gateway registry adopts as ``valid_from``, and at ``first_seq`` (1 for a new device; after a
rotation, one above the highest seq the gateway has from the device, so the new key cannot sign
the device's past). A revocation or the end of a rotation overlap is rounded *up* to a whole
second, so a reading the gateway accepted before the cut is never judged invalid by a verifier
reading the chain. Revocation also records the device's contiguous mark as the key's last seq;
a rotated-out key's last seq is sealed when the device's first message under its new key is
stored (or, if the device never switches, when the overlap ends): ``sync_chain`` and
``push_key_ends`` carry those to the chain. Every reading is judged by the one key-window rule
(protocols/keywindow.py), at the gateway and by any verifier alike.

Raises ``ProvisionError`` (and RegistryError, PkiError, BrokerConfigError, LedgerError
from the layers below).
"""
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from edgeledger.gateway.anchor import keysync
from edgeledger.gateway.anchor.ledger import Ledger
from edgeledger.gateway.config.schema import GATEWAY_CLIENT_PREFIX
from edgeledger.gateway.enrol import broker_config, keys
from edgeledger.gateway.enrol.broker_config import BrokerSite
from edgeledger.gateway.enrol.keys import DeviceKey
from edgeledger.gateway.enrol.pki import pem_to_der, write_private, write_public
from edgeledger.gateway.errors import GatewayError, RegistryError
from edgeledger.gateway.registry import Registry, signatures
from edgeledger.protocols import topics

BUNDLE_DIR_MODE = 0o700

# Placeholder field-bus source written into a new agent.toml / config.json: the operator
# replaces it with the device's real sources (Modbus, IEC 62056-21, DSMR P1).
DEFAULT_SOURCE = {"type": "simulated", "kind": "meter", "interval_s": 1.0}


class ProvisionError(GatewayError):
    """A provisioning step cannot be done (conflicting names, existing files, ...)."""


@dataclass
class Bundle:
    """What ``provision`` wrote: the device's files (name -> path) and identifiers."""

    dir: str
    device: str
    site: str
    alg: str
    kid: bytes
    public_key: bytes
    files: dict[str, str]

    def __repr__(self) -> str:
        return "<Bundle %s on %s kid %s in %s>" % (self.device, self.site, self.kid.hex(), self.dir)


@dataclass
class _Credentials:
    """How a device logs in to the broker: TLS files for agent.toml (PEM) and for a board's
    config.json (DER), or a user name and password."""

    tls: dict[str, str] = field(default_factory=dict)
    board_tls: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: str | None = None


# --------------------------------------------------------------------------- provision

def _enroll(registry: Registry, ledger: Ledger | None, site: str, key: DeviceKey, now: float) -> bytes:
    """Register a new key of ``key.device``: on chain first (its block time opens the window),
    then in the registry. Its first seq is one above the highest the gateway holds from the
    device, so the key cannot sign the device's past. Returns the kid."""
    device, alg, public, kid = key.device, key.alg.cose_id, key.public_key, key.kid
    marks = registry.store.marks_of(device)
    first_seq = (marks.max_seq if marks else 0) + 1
    if ledger is None:
        registry.register(device, site, alg, public, kid, valid_from=math.floor(now), first_seq=first_seq)
        return kid
    reg, _sent = keysync.register_on_chain(ledger, site, device, alg, public, kid, first_seq)
    registry.register(device, site, alg, public, kid, valid_from=reg["timestamp"], first_seq=reg["first_seq"],
                      chain_block=reg["block_number"], chain_time=reg["timestamp"])
    return kid


def register(registry: Registry, device: str, site: str, key: DeviceKey, ledger: Ledger | None = None,
             now: float | None = None) -> bytes:
    """Register an existing key of ``device`` (``device register``): on chain first when there
    is a ``ledger`` (a verifier proves the key against the chain), then in the registry, as
    ``provision`` does. Returns the kid. Raises ProvisionError, RegistryError, TopicError,
    LedgerError."""
    _check_names(registry, device, site)
    return _enroll(registry, ledger, site, key, time.time() if now is None else now)


def _new_key(alg: int | str, device: str, public_key: bytes | None) -> DeviceKey:
    """A fresh key for ``device``, or the given public key checked before anything is written,
    on chain or in the registry. Raises ProvisionError."""
    try:
        if public_key is None:
            return keys.generate(alg, device)
        key = keys.public_only(alg, device, public_key)
    except keys.DeviceKeyError as e:
        raise ProvisionError(str(e)) from e
    try:
        signatures.check_public_key(key.alg.cose_id, key.public_key)
    except ValueError as e:
        raise ProvisionError("%s public key refused: %s" % (key.alg.name, e)) from e
    return key


def _toml_str(v: str) -> str:
    return json.dumps(v)  # a JSON string is a valid TOML basic string for our characters


def render_agent_toml(device: str, site: str, broker_url: str, key_file: str, username: str | None = None,
                      password_file: str | None = None, tls: dict[str, str] | None = None,
                      source: dict[str, Any] = DEFAULT_SOURCE) -> str:
    """The agent.toml of a device bundle (agent/linux.py reads it)."""
    lines = ["# device bundle written by `edgeledger device provision`",
             "device = %s" % _toml_str(device), "site = %s" % _toml_str(site),
             "key_file = %s" % _toml_str(key_file), "broker = %s" % _toml_str(broker_url)]
    if username:
        lines.append("username = %s" % _toml_str(username))
    if password_file:
        lines.append("password_file = %s" % _toml_str(password_file))
    if tls:
        lines += ["", "[tls]"] + ["%s = %s" % (k, _toml_str(v)) for k, v in sorted(tls.items())]
    lines += ["", "# placeholder: replace with the device's field-bus sources", "[[sources]]"]
    lines += ["%s = %s" % (k, _toml_str(v) if isinstance(v, str) else repr(v)) for k, v in sorted(source.items())]
    return "\n".join(lines) + "\n"


def _check_names(registry: Registry, device: str, site: str) -> None:
    """Raises TopicError for an id that cannot be in a topic, ProvisionError for a device id a
    gateway connection uses, RegistryError for a device registered on another site."""
    topics.check_id(device, "device id")
    topics.check_id(site, "site")
    if device.startswith(GATEWAY_CLIENT_PREFIX):
        # the broker's client ids are the devices' ids: this one could take the gateway's session
        raise ProvisionError("device id %r starts with %r, which the gateway's MQTT client ids use; choose another id"
                             % (device, GATEWAY_CLIENT_PREFIX))
    registered_site = registry.site_of(device)
    if registered_site not in (None, site):
        raise RegistryError("device %r is registered on site %r, not %r" % (device, registered_site, site))


def _device_broker_url(broker: BrokerSite | None, device: str, site: str, auth: str | None,
                       broker_host: str | None, broker_url: str | None) -> str:
    """The URL the device connects to: ``broker``'s, at ``broker_host`` (a name in its
    certificate), else ``broker_url``. Raises ProvisionError when they do not fit."""
    if broker is None:
        if broker_url is None:
            raise ProvisionError("expected a broker directory or a broker URL, found neither")
        return broker_url
    if broker.site != site:
        raise ProvisionError("the broker in %s serves site %r, not %r" % (broker.dir, broker.site, site))
    if device == broker.gateway_user:
        raise ProvisionError("device id %r is the gateway's MQTT user name; choose another id" % device)
    if auth is not None and auth != broker.auth:
        raise ProvisionError("the broker in %s authenticates with %s, not %s" % (broker.dir, broker.auth, auth))
    host = broker_host or broker.meta["hosts"][0]
    if host not in broker.meta["hosts"]:
        raise ProvisionError("broker host %r is not a name in the broker certificate %s; add it with "
                             "`edgeledger broker config --host %s`" % (host, broker.meta["hosts"], host))
    return broker.url(host)


def _credentials(broker: BrokerSite, device: str, out_dir: str, files: dict[str, str]) -> _Credentials:
    """Issue the device's broker credentials into ``out_dir`` (recorded in ``files``). PEM for
    OpenSSL (agent.toml); DER for boards (config.json): the mbedTLS in MicroPython's ssl may be
    built without PEM parsing, and DER is smaller."""
    c = _Credentials()
    files["ca"] = os.path.join(out_dir, "ca.pem")
    shutil.copyfile(broker.pki.ca_path, files["ca"])
    files["ca_der"] = os.path.join(out_dir, "ca.der")
    write_public(files["ca_der"], pem_to_der(files["ca"]))
    c.tls["ca_file"], c.board_tls["ca_file"] = "ca.pem", "ca.der"
    if broker.auth != "mtls":
        c.username, c.password = device, broker_config.new_password()
        broker.set_password(device, c.password)
        files["password"] = os.path.join(out_dir, "mqtt.pass")
        write_private(files["password"], (c.password + "\n").encode())
        return c
    files["tls_key"] = os.path.join(out_dir, device + "-tls.key")
    files["tls_cert"] = os.path.join(out_dir, device + "-tls.pem")
    cert, _ = broker.pki.issue_client(device, key_path=files["tls_key"])
    shutil.copyfile(cert, files["tls_cert"])
    c.tls["cert_file"], c.tls["key_file"] = device + "-tls.pem", device + "-tls.key"
    files["tls_cert_der"] = os.path.join(out_dir, device + "-tls.der")
    files["tls_key_der"] = os.path.join(out_dir, device + "-tls-key.der")
    write_public(files["tls_cert_der"], pem_to_der(files["tls_cert"]))
    write_private(files["tls_key_der"], pem_to_der(files["tls_key"], private=True))
    c.board_tls["cert_file"], c.board_tls["key_file"] = device + "-tls.der", device + "-tls-key.der"
    return c


def _board_config(key: DeviceKey, site: str, broker_url: str, creds: _Credentials,
                  device_key_file: str | None) -> dict[str, Any]:
    """A board's config.json: where its key is (a file, or a secure element), the broker and
    its credentials."""
    cfg: dict[str, Any] = {"device": key.device, "site": site, "broker": broker_url, "alg": key.alg.name,
                           "kid": key.kid.hex(), "sources": [DEFAULT_SOURCE]}
    if key.private is not None:
        cfg["key_file"] = key.device + ".key"
    elif device_key_file is not None:
        cfg["key_file"] = device_key_file  # on the board's flash: made there by `device enroll`
    else:
        cfg["public_key"] = key.public_key.hex()
        cfg["signer"] = "secure_element"
    if creds.board_tls:
        cfg["tls"] = dict(creds.board_tls, server_hostname=broker_url.split("://", 1)[1].rsplit(":", 1)[0])
    if creds.username:
        cfg["username"], cfg["password"] = creds.username, creds.password
    return cfg


def provision(registry: Registry, device: str, site: str, out_dir: str, alg: int | str = "EdDSA",
              public_key: bytes | None = None, broker: BrokerSite | None = None, auth: str | None = None,
              broker_host: str | None = None, broker_url: str | None = None, ledger: Ledger | None = None,
              now: float | None = None, device_key_file: str | None = None) -> Bundle:
    """Create (or take) a device key, register it on chain and in the gateway registry, issue
    MQTT credentials from ``broker`` and write the device bundle.

    ``public_key`` (raw bytes) is for keys that never leave the device: no key file is
    written. With ``device_key_file`` the key was made on the board (``device enroll``) and
    config.json names that file; without it, a secure element signs. ``broker_url`` is used
    when there is no ``broker``. Returns a Bundle. Raises ProvisionError, RegistryError,
    TopicError, PkiError, BrokerConfigError, LedgerError.
    """
    _check_names(registry, device, site)
    now = time.time() if now is None else now
    broker_url = _device_broker_url(broker, device, site, auth, broker_host, broker_url)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, mode=BUNDLE_DIR_MODE, exist_ok=True)
    files = {"agent_toml": os.path.join(out_dir, "agent.toml"), "config_json": os.path.join(out_dir, "config.json"),
             "key": os.path.join(out_dir, device + ".key")}
    if os.path.exists(files["key"]):
        raise ProvisionError("%s exists: this bundle has a key already (use `device rotate`)" % files["key"])
    key = _new_key(alg, device, public_key)
    _enroll(registry, ledger, site, key, now)
    if key.private is not None:
        write_private(files["key"], key.key_file_text().encode())
    else:
        del files["key"]
    creds = _credentials(broker, device, out_dir, files) if broker is not None else _Credentials()
    write_public(files["agent_toml"], render_agent_toml(
        device, site, broker_url, device + ".key", creds.username, "mqtt.pass" if creds.password else None,
        creds.tls).encode())
    data = (json.dumps(_board_config(key, site, broker_url, creds, device_key_file), indent=2, sort_keys=True)
            + "\n").encode()
    # config.json carries the MQTT password when there is one: owner-only like the key.
    (write_private if creds.password else write_public)(files["config_json"], data)
    return Bundle(out_dir, device, site, key.alg.name, key.kid, key.public_key, files)


# --------------------------------------------------------------------------- revoke

def revoke(registry: Registry, device: str, at: float | None = None, kid: bytes | None = None,
           ledger: Ledger | None = None, broker: BrokerSite | None = None, now: float | None = None) -> dict[str, Any]:
    """Revoke ``device``'s keys (or one ``kid``) from time ``at`` (default now), in the
    registry, on chain and — when the whole device is revoked — at the broker (its
    certificate goes on the CRL, or its password is deleted; the broker rereads both on
    SIGHUP). Returns {"revoked": n, "chain": m, "broker": bool, "at": t}. Raises
    RegistryError (an unknown device or kid), LedgerError, PkiError, BrokerConfigError.
    """
    now = time.time() if now is None else now
    at = math.ceil(now if at is None else at)
    n = registry.revoke(device, at=at, kid=kid)
    keys = [k for k in registry.keys_of(device) if kid is None or k.kid == bytes(kid)]
    if kid is not None and not keys:
        raise RegistryError("device %r has no key %s" % (device, bytes(kid).hex()))
    chain = 0
    if ledger is not None:
        for k in keys:
            chain += keysync.end_on_chain(ledger, registry.require_site(device), k)
    cut = False
    if broker is not None and kid is None:
        if broker.auth == "mtls":
            cut = broker.pki.revoke_client(device) is not None
        else:
            cut = broker.remove_user(device)
    return {"revoked": n, "chain": chain, "broker": cut, "at": at}


# --------------------------------------------------------------------------- rotate

def rotate(registry: Registry, device: str, overlap_s: float, out_dir: str | None = None, alg: int | str | None = None,
           public_key: bytes | None = None, ledger: Ledger | None = None,
           now: float | None = None) -> tuple[bytes, int]:
    """Register a new key for ``device``; its current keys stay valid until now + overlap.

    The new private key replaces ``<device>.key`` in ``out_dir`` (the bundle), unless
    ``public_key`` comes from a secure element. Returns (new kid, valid_until). Raises
    ProvisionError, RegistryError, LedgerError.
    """
    now = time.time() if now is None else now
    if overlap_s < 0:
        raise ProvisionError("overlap: expected seconds >= 0, found %r" % (overlap_s,))
    site = registry.site_of(device)
    if site is None:
        raise RegistryError("unknown device %r" % (device,))
    until = math.ceil(now + overlap_s)
    current = [k for k in registry.keys_of(device)
               if k.revoked_at is None and (k.valid_until is None or k.valid_until > until)]
    if alg is None:
        alg = current[0].alg if current else "EdDSA"
    key = _new_key(alg, device, public_key)
    kid = _enroll(registry, ledger, site, key, now)
    for k in current:
        registry.expire(k.kid, until)
        if ledger is not None:
            keysync.end_on_chain(ledger, site, registry.require_key(k.kid))
    if out_dir is not None and key.private is not None:
        _replace_bundle_key(out_dir, key)
    return kid, until


def _replace_bundle_key(out_dir: str, key: DeviceKey) -> None:
    """Put a rotated key into a device bundle: its key file, and its kid and algorithm in
    config.json (kept owner-only if it was)."""
    write_private(os.path.join(out_dir, key.device + ".key"), key.key_file_text().encode())
    cfg_path = os.path.join(out_dir, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["kid"], cfg["alg"] = key.kid.hex(), key.alg.name
        mode = os.stat(cfg_path).st_mode & 0o777
        (write_private if mode == 0o600 else write_public)(
            cfg_path, (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode())

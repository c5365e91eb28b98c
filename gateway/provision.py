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
from typing import Any

from edgeledger.agent import signer as signers
from edgeledger.agent.key_file import key_file_content
from edgeledger.gateway import broker_config, signatures
from edgeledger.gateway.errors import GatewayError, RegistryError
from edgeledger.gateway.ledger import OPEN_SEQ
from edgeledger.gateway.pki import pem_to_der, write_private, write_public
from edgeledger.protocols import topics

BUNDLE_DIR_MODE = 0o700

# Placeholder field-bus source written into a new agent.toml / config.json: the operator
# replaces it with the device's real sources (Modbus, IEC 62056-21, DSMR P1).
DEFAULT_SOURCE = {"type": "simulated", "kind": "meter", "interval_s": 1.0}


class ProvisionError(GatewayError):
    """A provisioning step cannot be done (conflicting names, existing files, ...)."""


class Bundle:
    """What ``provision`` wrote: the device's files and identifiers."""

    def __init__(self, directory, device, site, alg, kid, public_key, files):
        self.dir, self.device, self.site = directory, device, site
        self.alg, self.kid, self.public_key = alg, kid, public_key
        self.files = files  # name -> path

    def __repr__(self):
        return "<Bundle %s on %s kid %s in %s>" % (self.device, self.site, self.kid.hex(), self.dir)


# --------------------------------------------------------------------------- the chain

def _chain_register(ledger: Any, site: str, device: str, alg: int, public_key: bytes, kid: bytes,
                    first_seq: int) -> tuple[dict, bool]:
    """registerKey for (site, kid), idempotent: a registration already on chain for the same
    device and key is adopted. Returns (the chain's registration dict, whether a transaction was
    sent); see ``Ledger.registration``."""
    sent = False
    reg = ledger.registration(site, kid)
    if reg is None:
        ledger.register_key(site, device, alg, public_key, first_seq)
        reg = ledger.registration(site, kid)
        sent = True
    if reg is None or reg["device_id"] != device or reg["public_key"] != bytes(public_key):
        raise ProvisionError("kid %s is on chain for site %r under %r with another key" % (
            bytes(kid).hex(), site, reg and reg["device_id"]))
    return reg, sent


def _chain_end(ledger: Any, site: str, key: Any) -> bool:
    """Carry a key's end (time and last seq) to the chain, idempotent: the contract keeps the
    earlier of what it has and what is sent. Returns True if a transaction was sent."""
    end_at, last_seq = key.end_at, key.revoked_after_seq
    if end_at is None and last_seq is None:
        return False
    entry = ledger.key_entry(site, key.kid)
    if entry is None:
        raise ProvisionError("kid %s is not on chain for site %r: run sync_chain (or provision) first"
                             % (key.kid.hex(), site))
    end = math.ceil(end_at) if end_at is not None else None
    if end is None:  # a sealed last seq without an end time cannot happen in the registry
        return False
    time_done = entry["end_time"] is not None and entry["end_time"] <= end
    seq_done = last_seq is None or (entry["last_seq"] is not None and entry["last_seq"] <= last_seq)
    if time_done and seq_done:
        return False
    seq = last_seq if last_seq is not None else OPEN_SEQ
    if key.revoked_at is not None:
        ledger.revoke_key(site, key.kid, end, seq)
    else:
        ledger.rotate_key(site, key.kid, end, seq)
    return True


def sync_chain(registry: Any, ledger: Any, now: float | None = None, known: set | None = None) -> dict:
    """Push every key of the gateway registry, with its window's end, to the chain.

    Seals rotations whose overlap has ended first (``Registry.seal_expired``). Idempotent; the
    gateway runs it at start on the embedded chain (new on every start) and an operator after
    a provisioning step whose chain half failed (``device sync-chain``). ``known``, a set of
    kids, skips those keys and gains the ones pushed (the gateway's periodic step on its own
    embedded chain). Returns {"registered": n, "ended": m}.
    """
    registry.seal_expired(now)
    registered = ended = 0
    keys = [k for k in registry.keys() if known is None or k.kid not in known]
    for k in keys:
        reg, sent = _chain_register(ledger, registry.site_of(k.device), k.device, k.alg, k.public_key, k.kid,
                                    k.first_seq)
        registry.record_chain_registration(k.kid, reg["block_number"], reg["timestamp"], reg["first_seq"])
        registered += sent
    for k in keys:  # re-read: the registration moved the window's start
        ended += _chain_end(ledger, registry.site_of(k.device), registry.key(k.kid))
        if known is not None:
            known.add(k.kid)
    return {"registered": registered, "ended": ended}


def push_key_ends(registry: Any, ledger: Any, pushed: dict, now: float | None = None) -> int:
    """The gateway's periodic step: seal rotations whose overlap has ended, then carry every key
    end that changed since the last call to the chain. ``pushed`` ({kid: (end, last seq)}) is
    the caller's memory of what it sent. Returns the number of transactions sent."""
    registry.seal_expired(now)
    sent = 0
    for k in registry.keys():
        state = (k.end_at, k.revoked_after_seq)
        if state == (None, None) or pushed.get(k.kid) == state or k.chain_block is None:
            continue  # nothing to end, already sent, or not on this chain (``sync_chain`` first)
        sent += _chain_end(ledger, registry.site_of(k.device), k)
        pushed[k.kid] = state
    return sent


# --------------------------------------------------------------------------- provision

def _enroll(registry: Any, ledger: Any, device: str, site: str, alg: int, public: bytes, now: float) -> bytes:
    """Register a new key of ``device``: on chain first (its block time opens the window), then
    in the registry. Its first seq is one above the highest the gateway holds from the device,
    so the key cannot sign the device's past. Returns the kid."""
    kid = signers.key_id(public)
    first_seq = registry.store.device_marks().get(device, (0, 0))[1] + 1
    if ledger is None:
        registry.register(device, site, alg, public, kid, valid_from=math.floor(now), first_seq=first_seq)
        return kid
    reg, _sent = _chain_register(ledger, site, device, alg, public, kid, first_seq)
    registry.register(device, site, alg, public, kid, valid_from=reg["timestamp"], first_seq=reg["first_seq"],
                      chain_block=reg["block_number"], chain_time=reg["timestamp"])
    return kid


def _new_key(alg, device, public_key):
    """(alg row, public key, private key or None)."""
    row = signers.algorithm(alg)
    if public_key is None:
        s = signers.generate(row.cose_id, device)
        return row, s.public_key, s.private_bytes()
    public_key = bytes(public_key)
    if len(public_key) != row.public_len:
        raise ProvisionError("%s public key: expected %d bytes, found %d" % (row.name, row.public_len, len(public_key)))
    try:  # before anything is written, on chain or in the registry
        signatures.check_public_key(row.cose_id, public_key)
    except ValueError as e:
        raise ProvisionError("%s public key refused: %s" % (row.name, e))
    return row, public_key, None


def _toml_str(v):
    return json.dumps(v)  # a JSON string is a valid TOML basic string for our characters


def render_agent_toml(device, site, broker_url, key_file, username=None, password_file=None,
                      tls=None, source=DEFAULT_SOURCE):
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


def provision(registry, device, site, out_dir, alg="EdDSA", public_key=None, broker=None, auth=None,
              broker_host=None, broker_url=None, ledger=None, now=None, device_key_file=None):
    """Create (or take) a device key, register it on chain and in the gateway registry, issue
    MQTT credentials from ``broker`` (a ``BrokerSite``) and write the device bundle.

    ``public_key`` (raw bytes) is for keys that never leave the device: no key file is
    written. With ``device_key_file`` the key was made on the board (``device enroll``) and
    config.json names that file; without it, a secure element signs. ``broker_url`` is used
    when there is no ``broker``. Returns a Bundle.
    """
    topics.check_id(device, "device id")
    topics.check_id(site, "site")
    if device.startswith(broker_config.GATEWAY_CLIENT_PREFIX):
        # the broker's client ids are the devices' ids: this one could take the gateway's session
        raise ProvisionError("device id %r starts with %r, which the gateway's MQTT client ids use; choose another id"
                             % (device, broker_config.GATEWAY_CLIENT_PREFIX))
    now = time.time() if now is None else now
    if broker is not None:
        if broker.site != site:
            raise ProvisionError("the broker in %s serves site %r, not %r" % (broker.dir, broker.site, site))
        if device == broker.gateway_user:
            raise ProvisionError("device id %r is the gateway's MQTT user name; choose another id" % device)
        if auth is not None and auth != broker.auth:
            raise ProvisionError("the broker in %s authenticates with %s, not %s" % (broker.dir, broker.auth, auth))
        host = broker_host or broker.meta["hosts"][0]
        if host not in broker.meta["hosts"]:
            raise ProvisionError("broker host %r is not a name in the broker certificate %s; add it with "
                                 "`edgeledger broker config --name %s`" % (host, broker.meta["hosts"], host))
        broker_url = broker.url(host)
    elif broker_url is None:
        raise ProvisionError("expected a broker directory or a broker URL, found neither")
    registered_site = registry.site_of(device)
    if registered_site not in (None, site):
        raise RegistryError("device %r is registered on site %r, not %r" % (device, registered_site, site))

    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, mode=BUNDLE_DIR_MODE, exist_ok=True)
    files = {"agent_toml": os.path.join(out_dir, "agent.toml"),
             "config_json": os.path.join(out_dir, "config.json")}
    key_name = device + ".key"
    files["key"] = os.path.join(out_dir, key_name)
    if os.path.exists(files["key"]):
        raise ProvisionError("%s exists: this bundle has a key already (use `device rotate`)" % files["key"])

    row, public, private = _new_key(alg, device, public_key)
    kid = _enroll(registry, ledger, device, site, row.cose_id, public, now)

    if private is not None:
        write_private(files["key"], key_file_content(device, row.name, private).encode())
    else:
        del files["key"]
    tls, board_tls = {}, {}
    username = password = None
    if broker is not None:
        # PEM for OpenSSL (agent.toml); DER for boards (config.json): the mbedTLS in
        # MicroPython's ssl may be built without PEM parsing, and DER is smaller.
        files["ca"] = os.path.join(out_dir, "ca.pem")
        shutil.copyfile(broker.pki.ca_path, files["ca"])
        files["ca_der"] = os.path.join(out_dir, "ca.der")
        write_public(files["ca_der"], pem_to_der(files["ca"]))
        tls["ca_file"], board_tls["ca_file"] = "ca.pem", "ca.der"
        if broker.auth == "mtls":
            files["tls_key"] = os.path.join(out_dir, device + "-tls.key")
            files["tls_cert"] = os.path.join(out_dir, device + "-tls.pem")
            cert, _ = broker.pki.issue_client(device, key_path=files["tls_key"])
            shutil.copyfile(cert, files["tls_cert"])
            tls["cert_file"], tls["key_file"] = device + "-tls.pem", device + "-tls.key"
            files["tls_cert_der"] = os.path.join(out_dir, device + "-tls.der")
            files["tls_key_der"] = os.path.join(out_dir, device + "-tls-key.der")
            write_public(files["tls_cert_der"], pem_to_der(files["tls_cert"]))
            write_private(files["tls_key_der"], pem_to_der(files["tls_key"], private=True))
            board_tls["cert_file"], board_tls["key_file"] = device + "-tls.der", device + "-tls-key.der"
        else:
            username, password = device, broker_config.new_password()
            broker.set_password(device, password)
            files["password"] = os.path.join(out_dir, "mqtt.pass")
            write_private(files["password"], (password + "\n").encode())
    write_public(files["agent_toml"], render_agent_toml(
        device, site, broker_url, key_name, username, "mqtt.pass" if password else None, tls).encode())
    cfg = {"device": device, "site": site, "broker": broker_url, "alg": row.name, "kid": kid.hex(),
           "sources": [DEFAULT_SOURCE]}
    if private is not None:
        cfg["key_file"] = key_name
    elif device_key_file is not None:
        cfg["key_file"] = device_key_file  # on the board's flash: made there by `device enroll`
    else:
        cfg["public_key"] = public.hex()
        cfg["signer"] = "secure_element"
    if board_tls:
        cfg["tls"] = dict(board_tls, server_hostname=broker_url.split("://", 1)[1].rsplit(":", 1)[0])
    if username:
        cfg["username"], cfg["password"] = username, password
    data = (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode()
    # config.json carries the MQTT password when there is one: owner-only like the key.
    (write_private if password else write_public)(files["config_json"], data)
    return Bundle(out_dir, device, site, row.name, kid, public, files)


# --------------------------------------------------------------------------- revoke

def revoke(registry, device, at=None, kid=None, ledger=None, broker=None, now=None):
    """Revoke ``device``'s keys (or one ``kid``) from time ``at`` (default now), in the
    registry, on chain and — when the whole device is revoked — at the broker (its
    certificate goes on the CRL, or its password is deleted; the broker rereads both on
    SIGHUP). Returns {"revoked": n, "chain": m, "broker": bool, "at": t}.
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
            chain += _chain_end(ledger, registry.site_of(device), k)
    cut = False
    if broker is not None and kid is None:
        if broker.auth == "mtls":
            cut = broker.pki.revoke_client(device) is not None
        else:
            cut = broker.remove_user(device)
    return {"revoked": n, "chain": chain, "broker": cut, "at": at}


# --------------------------------------------------------------------------- rotate

def rotate(registry, device, overlap_s, out_dir=None, alg=None, public_key=None, ledger=None, now=None):
    """Register a new key for ``device``; its current keys stay valid until now + overlap.

    The new private key replaces ``<device>.key`` in ``out_dir`` (the bundle), unless
    ``public_key`` comes from a secure element. Returns (new kid, valid_until).
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
    row, public, private = _new_key(alg, device, public_key)
    kid = _enroll(registry, ledger, device, site, row.cose_id, public, now)
    for k in current:
        registry.expire(k.kid, until)
        if ledger is not None:
            _chain_end(ledger, site, registry.key(k.kid))
    if out_dir is not None and private is not None:
        write_private(os.path.join(out_dir, device + ".key"),
                      key_file_content(device, row.name, private).encode())
        cfg_path = os.path.join(out_dir, "config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                cfg = json.load(f)
            cfg["kid"], cfg["alg"] = kid.hex(), row.name
            mode = os.stat(cfg_path).st_mode & 0o777
            (write_private if mode == 0o600 else write_public)(
                cfg_path, (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode())
    return kid, until


# --------------------------------------------------------------------------- configuration

def ledger_from_config(cfg):
    """(ledger or None, note) for the operator CLI, from a resolved gateway.toml.

    Only a ``jsonrpc`` ledger is reachable from another process; the ``embedded`` chain
    lives inside the gateway process (the gateway pushes the registry to it with
    ``sync_chain``). Raises ConfigError/KeystoreError/LedgerError.
    """
    from edgeledger.gateway import keystore
    from edgeledger.gateway.errors import ConfigError

    lc = cfg.get("ledger") or {}
    backend = lc.get("backend", "embedded")
    if backend == "none":
        return None, "no ledger configured: gateway registry only"
    if backend == "embedded":
        return None, ("ledger backend embedded lives in the gateway process: the gateway registers "
                      "the key on its chain (sync_chain)")
    if backend != "jsonrpc":
        raise ConfigError("[ledger] backend: expected embedded, jsonrpc or none, found %r" % (backend,))
    if not lc.get("url") or not lc.get("contract"):
        raise ConfigError("[ledger] backend jsonrpc: expected url and contract")
    secret = keystore.account_key(lc)
    if secret is None:
        raise ConfigError("[ledger] backend jsonrpc: expected keystore_file (or key_file) for the gateway account")
    from edgeledger.gateway.ledger import JsonRpcLedger

    ledger = JsonRpcLedger(lc["url"], key=secret)
    ledger.attach(lc["contract"])
    return ledger, "ledger %s contract %s" % (lc["url"], ledger.address)

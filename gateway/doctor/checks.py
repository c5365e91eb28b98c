"""``edgeledger doctor``: is this site able to take, store and anchor readings right now?

Each check is one line, OK or FAIL with the reason; the command exits non-zero when any fails.
The checks, in order (``CHECKS``):

==============  ===============================================================================
broker          TCP to the broker URL of gateway.toml, the TLS handshake with the configured CA
                and a hostname check of the broker certificate against the URL's host (what a
                device's TLS client does), then an MQTT CONNECT with the gateway's credentials
chain           the JSON-RPC node answers (chain id, latest block)
contract        code at the configured address is EdgeLedgerAnchor (known code hash), its
                VERSION(), and the gateway account is authorized for each of its sites
funds           the ledger account pays for at least ``min_batches`` anchor batches at the
                node's current fees (anchor/funding.py), and for the next anchor at its maximum fee
certificates    the site CA, broker and client certificates the site issued, and the CRL: none
                expired (a CRL past its nextUpdate makes Mosquitto refuse every device)
disk            free space on the store's filesystem: at least what a full quarantine takes
clock           this host's clock against the latest block's timestamp: within ``max_skew_s``
                (the key-window rule's grace, protocols/keywindow.py); on a node that mines only
                when a transaction arrives (anvil), an old latest block is not a skew
==============  ===============================================================================

A check that needs the chain is FAIL "not checked" when the chain does not answer. Nothing is
written: no transaction, no MQTT publish.
"""
import datetime
import os
import shutil
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable

from edgeledger.gateway.anchor import funding, keystore
from edgeledger.gateway.anchor.ledger import JsonRpcLedger
from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.enrol.broker_config import BrokerSite
from edgeledger.gateway.enrol.pki import PkiError
from edgeledger.gateway.errors import GatewayError, LedgerError
from edgeledger.protocols import broker_url, mqtt
from edgeledger.protocols.keywindow import CLOCK_SLACK_S

# Anchor batches the account must pay for: at one batch per max_age_s (10 s) of steady
# traffic, 100 batches are about 17 minutes; at a meter site's usual rate, days.
DEFAULT_MIN_BATCHES = 100
# Seconds between this host's clock and the chain's that still pass: the grace the key-window
# rule gives a reading timed before its key's registration block.
DEFAULT_MAX_SKEW_S = float(CLOCK_SLACK_S)
# Seconds to wait for the broker's TCP connect, TLS handshake and CONNACK.
BROKER_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return "%-4s %-12s %s" % ("OK" if self.ok else "FAIL", self.name, self.detail)


@dataclass
class Inputs:
    """What the checks look at: the resolved gateway.toml, its broker directory (or None), the
    thresholds, and the clock (a parameter, for tests)."""

    cfg: GatewayConfig
    broker: BrokerSite | None
    min_batches: int = DEFAULT_MIN_BATCHES
    max_skew_s: float = DEFAULT_MAX_SKEW_S
    now: Callable[[], float] = time.time
    ledger: JsonRpcLedger | None = None  # opened by the chain check


class CheckFailed(GatewayError):
    """A check's reason to FAIL."""


def run(inputs: Inputs) -> list[Check]:
    """Every check, in order."""
    out = []
    for name, fn in CHECKS:
        try:
            out.append(Check(name, True, fn(inputs)))
        except (CheckFailed, GatewayError, OSError, ssl.SSLError, ValueError) as e:
            out.append(Check(name, False, str(e)))
    return out


# --------------------------------------------------------------------------- broker

def check_broker(i: Inputs) -> str:
    tls, host, port = broker_url.parse(i.cfg.broker)
    try:
        raw = socket.create_connection((host, port), timeout=BROKER_TIMEOUT_S)
    except OSError as e:
        raise CheckFailed("%s: cannot connect to %s:%d: %s" % (i.cfg.broker, host, port, e)) from e
    sock: Any = raw
    note = "plain TCP (no TLS)"
    try:
        if tls:
            sock = _tls(i.cfg, raw, host)
            note = "%s, certificate valid for %s" % (sock.version(), host)
        sock.settimeout(BROKER_TIMEOUT_S)
        sock.sendall(mqtt.connect(i.cfg.mqtt_client_id + "-doctor", username=i.cfg.mqtt.username,
                                  password=i.cfg.mqtt.password()))
        connack = _read(sock, 4)
        sock.sendall(mqtt.DISCONNECT_PACKET)
    finally:
        sock.close()
    if connack[0] >> 4 != mqtt.CONNACK or connack[1] != 2:
        raise CheckFailed("%s: expected a CONNACK, found %s" % (i.cfg.broker, connack.hex()))
    code = connack[3]
    if code:
        reason = mqtt.CONNACK_REFUSALS[code - 1] if code <= len(mqtt.CONNACK_REFUSALS) else "code %d" % code
        raise CheckFailed("%s: %s, but the broker refused the gateway's login: %s" % (i.cfg.broker, note, reason))
    return "%s: %s, gateway login accepted" % (i.cfg.broker, note)


def _tls(cfg: GatewayConfig, raw: socket.socket, host: str) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=cfg.mqtt.ca_file)  # check_hostname and CERT_REQUIRED
    if cfg.mqtt.cert_file:
        ctx.load_cert_chain(cfg.mqtt.cert_file, cfg.mqtt.key_file)
    try:
        return ctx.wrap_socket(raw, server_hostname=host)
    except ssl.SSLCertVerificationError as e:
        raise CheckFailed("%s: the broker's certificate does not pass a device's check: %s"
                          % (cfg.broker, e.verify_message or e)) from e
    except (ssl.SSLError, OSError) as e:
        raise CheckFailed("%s: TLS handshake failed: %s" % (cfg.broker, e)) from e


def _read(sock: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise CheckFailed("the broker closed the connection after %d of %d CONNACK bytes" % (len(data), n))
        data += chunk
    return data


# --------------------------------------------------------------------------- chain

def _need_ledger(i: Inputs) -> JsonRpcLedger:
    if i.ledger is None:
        raise CheckFailed("not checked: the chain does not answer (see chain)")
    return i.ledger


def check_chain(i: Inputs) -> str:
    lc = i.cfg.ledger
    if lc.backend != "jsonrpc" or not lc.url:
        raise CheckFailed("[ledger] backend is %r: expected \"jsonrpc\" with a url (a site's own chain)" % lc.backend)
    ledger = JsonRpcLedger(lc.url, key=keystore.account_key(lc))
    try:
        chain_id, block = ledger.chain_id, ledger.block_number()
    except LedgerError as e:
        raise CheckFailed("%s does not answer: %s" % (lc.url, e)) from e
    i.ledger = ledger
    return "%s: chain id %d, block %d" % (lc.url, chain_id, block)


def check_contract(i: Inputs) -> str:
    ledger = _need_ledger(i)
    if not i.cfg.ledger.contract:
        raise CheckFailed("[ledger] names no contract: run `edgeledger site init`")
    try:
        ledger.attach(i.cfg.ledger.contract)
        version = ledger.check_anchor_contract()
    except LedgerError as e:
        raise CheckFailed(str(e)) from e
    sites = [s for s in i.cfg.sites if s != "+"]
    missing = [s for s in sites if not ledger.is_gateway_for(s, ledger.account)]
    if missing:
        raise CheckFailed("%s is EdgeLedgerAnchor v%d, but gateway %s is not authorized for site(s) %s"
                          % (ledger.address, version, ledger.account, ", ".join(missing)))
    return "%s: EdgeLedgerAnchor v%d; gateway %s authorized for %s" % (
        ledger.address, version, ledger.account, ", ".join(sites) or "(sites \"+\": not checked)")


def check_funds(i: Inputs) -> str:
    ledger = _need_ledger(i)
    if ledger.account is None:
        raise CheckFailed("[ledger] names no account key (keystore_file or key_file)")
    f = funding.funding(ledger)
    if f.batches < i.min_batches or not f.can_anchor:
        raise CheckFailed("%s; expected at least %d: send %s more" % (
            f.describe(), i.min_batches, funding.eth(max(0, i.min_batches * f.per_batch - f.balance))))
    return f.describe()


def check_clock(i: Inputs) -> str:
    ledger = _need_ledger(i)
    block = ledger.w3.eth.get_block("latest")
    skew = float(block["timestamp"]) - i.now()
    where = "block %d is %.0f s %s this host's clock" % (block["number"], abs(skew), "ahead of" if skew > 0 else
                                                          "behind")
    if skew > i.max_skew_s:
        raise CheckFailed("%s (more than %.0f s): fix this host's clock (NTP) or the node's" % (where, i.max_skew_s))
    if -skew > i.max_skew_s:
        if ledger.mines_only_on_transactions():
            return "%s: the node mines only when a transaction arrives, so its latest block is old" % where
        raise CheckFailed("%s (more than %.0f s): this host's clock is ahead, or the chain has stalled"
                          % (where, i.max_skew_s))
    return where


# --------------------------------------------------------------------------- files

def check_certificates(i: Inputs) -> str:
    if i.broker is None:
        return "no broker directory from `site init` / `broker config` found through [mqtt] ca_file: nothing to check"
    now = datetime.datetime.fromtimestamp(i.now(), datetime.timezone.utc)
    found = list(i.broker.pki.expiries())
    if i.broker.auth == "mtls":
        try:
            found.append(("CRL %s" % i.broker.pki.crl_path, i.broker.pki.crl_next_update()))
        except PkiError as e:
            raise CheckFailed(str(e)) from e
    expired = ["%s expired %s" % (what, until.strftime("%Y-%m-%d %H:%M UTC")) for what, until in found if until <= now]
    if expired:
        hint = " (renew: `edgeledger broker renew-crl`, then reload the broker)" if any(
            e.startswith("CRL") for e in expired) else ""
        raise CheckFailed("; ".join(expired) + hint)
    what, first = min(found, key=lambda f: f[1])
    return "%d checked, none expired; the first to expire: %s on %s (%d days)" % (
        len(found), what, first.strftime("%Y-%m-%d"), (first - now).days)


def check_disk(i: Inputs) -> str:
    folder = os.path.dirname(os.path.abspath(i.cfg.store))
    free = shutil.disk_usage(folder).free
    need = i.cfg.quarantine.max_bytes
    text = "%s: %.1f GiB free" % (folder, free / 2**30)
    if free < need:
        raise CheckFailed("%s; expected at least %.1f GiB (a full quarantine, [quarantine] max_bytes)"
                          % (text, need / 2**30))
    return text


CHECKS: tuple[tuple[str, Callable[[Inputs], str]], ...] = (
    ("broker", check_broker),
    ("chain", check_chain),
    ("contract", check_contract),
    ("funds", check_funds),
    ("certificates", check_certificates),
    ("disk", check_disk),
    ("clock", check_clock),
)

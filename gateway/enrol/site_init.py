"""``edgeledger site init``: from an empty directory to a site a gateway can run, in one command.

It writes into DIR::

    broker/                the site's broker (broker_config.py): CA, broker certificate, CRL,
                           mosquitto.conf with the devices' and the gateway's TLS listeners
    ledger.keystore.json   the gateway's ledger account, encrypted (anchor/keystore.py), or the
                           keystore named by ``--keystore`` (an imported account)
    ledger.passphrase      its passphrase: random, mode 0600 (or ``--passphrase-file``)
    gateway.toml           the gateway's configuration, naming all of the above and the contract
    deployment.json        the trust root verifiers pin by its SHA-256 (proofs/deployment.py)

The steps, in order; each one is skipped when its result is already there, so **site init is
idempotent**: a second run changes nothing, and a run that stopped (waiting for funds, or for
the contract owner) goes on where it stopped when run again:

==========  ===================================================================================
broker      generate the broker directory (kept if it exists for this site)
account     create the ledger account key, or load the one there (never overwritten)
funds       read the balance and the cost of one anchor batch at the node's current fees
            (anchor/funding.py); short of what the next steps need: send the difference from a
            funder key (test chains, or a funding wallet), else stop: ``WaitingForFunds``
contract    adopt ``--contract`` (or the one gateway.toml names) after checking its code and
            VERSION(); else deploy a new one, owned by the gateway account
config      write gateway.toml as soon as the contract is known, so a run that stops later
            adopts that contract when run again and never deploys a second one; an existing
            gateway.toml naming the same contract is kept as it is, one naming another
            contract (or none) is replaced only with ``force``
authorize   authorize the gateway account for the site (the owner must; if the contract is
            someone else's: ``WaitingForOwner``, with the command the owner runs)
deployment  export deployment.json and print its SHA-256; an existing one for this contract
            that lists the gateway for the site is kept
==========  ===================================================================================

``force`` regenerates the broker directory (its CA and device passwords are kept) and
replaces a gateway.toml that names another contract; it never overwrites a key.

Raises ``SiteInitError`` (and its ``Waiting*`` subclasses), KeystoreError, BrokerConfigError,
PkiError, LedgerError (LedgerUnavailable when the node does not answer).
"""
import hashlib
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from typing import Callable

from edgeledger.gateway.anchor import funding, keystore
from edgeledger.gateway.anchor.ledger import ANCHOR_GAS, JsonRpcLedger
from edgeledger.gateway.config.schema import DEFAULT_CONFIRMATIONS
from edgeledger.gateway.enrol.broker_config import DEFAULT_BIND, DEFAULT_PORT, META_FILE, BrokerSite
from edgeledger.gateway.enrol.pki import write_private, write_public
from edgeledger.gateway.errors import ConfigError, LedgerError
from edgeledger.gateway.proofs import deployment
from edgeledger.protocols import topics

# Batches the funding step pays for when it sends funds itself: at most one batch closes
# every [batch] max_age_s (10 s), so 1,000 batches last at least ~3 hours of steady traffic
# and far longer at a site's usual rate; `edgeledger doctor` warns before they run out.
DEFAULT_FUND_BATCHES = 1000
# The passphrase site init makes for a new keystore: 256 bits.
PASSPHRASE_BYTES = 32

# What the steps print: (step, text).
Say = Callable[[str, str], None]


class SiteInitError(ConfigError):
    """``site init`` cannot go on: the directory holds something else, or an option conflicts."""


class WaitingForFunds(SiteInitError):
    """The ledger account cannot pay for the next steps: fund it, then run site init again."""


class WaitingForOwner(SiteInitError):
    """The adopted contract's owner must authorize the gateway first."""


@dataclass
class SiteOptions:
    """What ``edgeledger site init`` was asked for."""

    directory: str
    site: str
    rpc: str
    gateway_id: str = "gw-1"
    contract: str | None = None
    broker_port: int | None = None  # None: the existing broker's, or DEFAULT_PORT
    gateway_port: int | None = None  # None: the existing broker's, or broker_port + 1
    bind: str = DEFAULT_BIND
    names: list[str] = field(default_factory=list)
    auth: str = "mtls"
    run_as: str = "mosquitto"
    keystore_file: str | None = None
    passphrase_file: str | None = None
    funder_key: bytes | None = None
    fund_batches: int = DEFAULT_FUND_BATCHES
    force: bool = False


@dataclass
class SiteResult:
    """Where site init left the site."""

    config: str
    broker: BrokerSite
    account: str
    contract: str
    deployment: str
    deployment_sha256: str
    funding: funding.Funding


def init_site(o: SiteOptions, say: Say) -> SiteResult:
    """Run every step (module docstring); ``say(step, text)`` reports each as it ends."""
    topics.check_id(o.site, "site")
    topics.check_id(o.gateway_id, "gateway id")
    o.directory = os.path.abspath(o.directory)
    os.makedirs(o.directory, mode=0o755, exist_ok=True)
    config_path = os.path.join(o.directory, "gateway.toml")
    existing = _existing_contract(config_path)
    if o.contract and existing and o.contract.lower() != existing.lower() and not o.force:
        raise SiteInitError("%s names contract %s, not %s: pass --force to switch the site to another contract"
                            % (config_path, existing, o.contract))
    bs = _broker(o, say)
    key, paths = _account(o, say)
    ledger = JsonRpcLedger(o.rpc, key=key.secret())
    contract = o.contract or existing
    if contract:
        _adopt(ledger, contract, say)
        _ensure_funds(ledger, o, funding.setup_cost(funding.fee_quote(ledger), 1, deploy=False), say)
    else:
        _ensure_funds(ledger, o, funding.setup_cost(funding.fee_quote(ledger), 1, deploy=True), say)
        ledger.deploy(owner_key=ledger.key)
        say("contract", "%s: EdgeLedgerAnchor v%d deployed, owned by the gateway account %s"
            % (ledger.address, ledger.check_anchor_contract(), ledger.account))
    # Written before anything else can fail: a run that stops later adopts this contract when
    # run again, never deploying a second one.
    _write_config(config_path, render_gateway_toml(o, bs, paths, ledger.address), ledger.address, o.force, say)
    _authorize(ledger, o.site, say)
    dep_path, sha = _deployment(o, ledger, say)
    f = funding.funding(ledger)
    say("funds", f.describe())
    return SiteResult(config_path, bs, ledger.account, ledger.address, dep_path, sha, f)


# --------------------------------------------------------------------------- broker, account

def _broker(o: SiteOptions, say: Say) -> BrokerSite:
    bdir = os.path.join(o.directory, "broker")
    if os.path.exists(os.path.join(bdir, META_FILE)) and not o.force:
        bs = BrokerSite.load(bdir)
        wanted = {"site": o.site, "auth": o.auth, "port": o.broker_port, "gateway_port": o.gateway_port}
        for k, v in wanted.items():
            if v is None:  # not asked for: the existing one is kept
                continue
            if bs.meta.get(k) != v:
                raise SiteInitError("%s has %s %r, not %r: pass --force to generate the broker directory again "
                                    "(its CA is kept)" % (bdir, k, bs.meta.get(k), v))
        say("broker", "%s kept" % bs.paths["config"])
        return bs
    os.makedirs(bdir, exist_ok=True)
    port = DEFAULT_PORT if o.broker_port is None else o.broker_port
    bs = BrokerSite(bdir).generate(o.site, port=port, auth=o.auth, bind=o.bind, names=o.names, run_as=o.run_as,
                                   gateway_port=o.gateway_port)
    say("broker", "%s: devices (%s) on %s:%d, the gateway on port %d, certificate for %s" % (
        bs.paths["config"], o.auth, o.bind, port, bs.gateway_port, ", ".join(bs.meta["hosts"])))
    return bs


def _account(o: SiteOptions, say: Say) -> tuple[keystore.GatewayKey, dict[str, str]]:
    """The gateway's ledger key: loaded from its keystore, or created. Returns (key, paths of
    the keystore and passphrase files)."""
    ks = os.path.abspath(o.keystore_file or os.path.join(o.directory, "ledger.keystore.json"))
    pf = os.path.abspath(o.passphrase_file or os.path.join(o.directory, "ledger.passphrase"))
    if not os.path.exists(pf):
        if o.passphrase_file or os.path.exists(ks):
            raise SiteInitError("expected the keystore's passphrase in %s, found no such file" % pf)
        write_private(pf, (secrets.token_urlsafe(PASSPHRASE_BYTES) + "\n").encode())
    passphrase = keystore.read_passphrase(pf)
    if os.path.exists(ks):
        key = keystore.load(ks, passphrase)
        say("account", "%s: gateway account %s (kept)" % (ks, key.address))
    elif o.keystore_file:
        raise SiteInitError("expected a keystore at %s (--keystore), found no such file" % ks)
    else:
        key = keystore.generate(ks, passphrase)
        say("account", "%s: new gateway account %s (passphrase in %s, mode 0600)" % (ks, key.address, pf))
    return key, {"keystore": ks, "passphrase": pf}


# --------------------------------------------------------------------------- chain

def _ensure_funds(ledger: JsonRpcLedger, o: SiteOptions, setup_wei: int, say: Say) -> None:
    """Make sure the account pays for ``setup_wei`` and one anchor; send the shortfall (up to
    ``fund_batches`` batches) from the funder key, or raise WaitingForFunds."""
    f = funding.funding(ledger)
    say("funds", f.describe())
    need = setup_wei + ANCHOR_GAS * f.quote.max_fee
    if f.balance >= need:
        return
    want = max(need, setup_wei + o.fund_batches * f.per_batch)
    if o.funder_key is None:
        raise WaitingForFunds(
            "fund the gateway account %s: send at least %s (the next steps' gas limits and one anchor at the "
            "current maximum fee), or %s for about %d anchor batches; then run `edgeledger site init` again"
            % (f.address, funding.eth(need - f.balance), funding.eth(want - f.balance), o.fund_batches))
    funder = JsonRpcLedger(o.rpc, key=o.funder_key)
    funder.transfer(f.address, want - f.balance)
    say("funds", "sent %s from %s to %s" % (funding.eth(want - f.balance), funder.account, f.address))


def _adopt(ledger: JsonRpcLedger, contract: str, say: Say) -> None:
    try:
        ledger.attach(contract)
        version = ledger.check_anchor_contract()
    except LedgerError as e:
        raise SiteInitError("cannot adopt contract %s: %s" % (contract, e)) from e
    say("contract", "%s: EdgeLedgerAnchor v%d adopted (owner %s)" % (ledger.address, version, ledger.owner()))


def _authorize(ledger: JsonRpcLedger, site: str, say: Say) -> None:
    start, end = ledger.authorization(site, ledger.account)
    if end:
        raise SiteInitError("gateway account %s was de-authorized for site %s at block %d and cannot be authorized "
                            "again: give the gateway a new account (--keystore)" % (ledger.account, site, end))
    if start:
        say("authorize", "gateway %s may anchor for site %s from block %d (kept)" % (ledger.account, site, start))
        return
    owner = ledger.owner()
    if owner != ledger.account:
        raise WaitingForOwner(
            "the contract's owner %s must authorize this gateway for site %s: edgeledger deployment authorize "
            "--rpc %s --contract %s --site %s --gateway %s --keystore OWNER.json --passphrase-file OWNER.pass; "
            "then run `edgeledger site init` again" % (owner, site, ledger.url, ledger.address, site, ledger.account))
    ledger.authorize_gateway(site, ledger.account, key=ledger.key)
    start, _ = ledger.authorization(site, ledger.account)
    say("authorize", "gateway %s may anchor for site %s from block %d" % (ledger.account, site, start))


# --------------------------------------------------------------------------- files

def _existing_contract(config_path: str) -> str | None:
    """The contract an existing gateway.toml names, or None."""
    if not os.path.exists(config_path):
        return None
    try:
        with open(config_path, "rb") as f:
            parsed = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SiteInitError("cannot read the existing %s: %s" % (config_path, e)) from e
    contract = (parsed.get("ledger") or {}).get("contract")
    return contract if isinstance(contract, str) and contract else None


def _rel(path: str, base: str) -> str:
    rel = os.path.relpath(path, base)
    return path if rel.startswith("..") else rel


def render_gateway_toml(o: SiteOptions, bs: BrokerSite, paths: dict[str, str], contract: str) -> str:
    """The gateway.toml site init writes (paths relative to its folder where they are inside it)."""
    d = o.directory
    lines = [
        "# written by `edgeledger site init` (docs/operators.md, \"Setting up a site\")",
        'gateway_id = "%s"' % o.gateway_id,
        'store = "gateway.db"',
        'broker = "%s"                # the broker\'s gateway listener' % bs.gateway_url(),
        'sites = ["%s"]' % o.site,
        "max_message_bytes = %d" % int(bs.meta["max_message_bytes"]),
        "",
        "[mqtt]",
        'username = "%s"' % bs.gateway_user,
        'password_file = "%s"' % _rel(bs.paths["gateway_pass"], d),
        'ca_file = "%s"' % _rel(bs.pki.ca_path, d),
        "",
        "[ledger]",
        'backend = "jsonrpc"',
        'url = "%s"' % o.rpc,
        'contract = "%s"' % contract,
        'keystore_file = "%s"' % _rel(paths["keystore"], d),
        'passphrase_file = "%s"' % _rel(paths["passphrase"], d),
        "confirmations = %d" % DEFAULT_CONFIRMATIONS,
    ]
    return "\n".join(lines) + "\n"


def _write_config(path: str, text: str, contract: str, force: bool, say: Say) -> None:
    existing = _existing_contract(path)
    if os.path.exists(path) and not force:
        if existing and existing.lower() == contract.lower():
            say("config", "%s kept (names contract %s)" % (path, contract))
            return
        raise SiteInitError("%s exists and names contract %s, not %s: pass --force to replace it"
                            % (path, existing or "none", contract))
    write_public(path, text.encode())
    say("config", "%s written" % path)


def _deployment(o: SiteOptions, ledger: JsonRpcLedger, say: Say) -> tuple[str, str]:
    """deployment.json: kept if it is this contract's and lists the gateway for the site, else
    exported again. Returns (path, SHA-256 hex)."""
    path = os.path.join(o.directory, "deployment.json")
    if os.path.exists(path) and not o.force:
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        try:
            d, _ = deployment.load(path, sha)
        except deployment.DeploymentError:
            d = {}
        if d.get("contract") == ledger.address and ledger.account in d.get("sites", {}).get(o.site, {}):
            say("deployment", "%s kept, sha256 %s" % (path, sha))
            return path, sha
    data = deployment.dumps(deployment.export(o.rpc, ledger.address))
    write_public(path, data)
    sha = hashlib.sha256(data).hexdigest()
    say("deployment", "%s written, sha256 %s (publish it with the file: verifiers pin it)" % (path, sha))
    return path, sha

"""What several command groups share: opening the store gateway.toml names, the site's broker
directory, the ledger an operator command writes to, and the argument types that turn a bad
value on the command line into a usage error naming the option (not a traceback)."""
import argparse
import os
import re
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.config.schema import ADDRESS, JSONRPC_URL
from edgeledger.gateway.store import Store

if TYPE_CHECKING:  # imported where used: `edgeledger --help` loads no crypto library
    from edgeledger.gateway.enrol.broker_config import BrokerSite
    from edgeledger.gateway.registry import Registry

# Where every command that reads gateway.toml looks for it unless --config names another.
DEFAULT_CONFIG = "gateway.toml"

RELOAD_HINT = "reload the broker to apply it: kill -HUP <mosquitto pid> (or systemctl reload mosquitto)"


def open_store(config_path: str) -> tuple[GatewayConfig, Store]:
    """(gateway.toml, its store). Raises ConfigError, StoreError."""
    from edgeledger.gateway import config

    cfg = config.load(config_path)
    return cfg, Store(cfg.store, cfg.sqlite_synchronous)


def open_registry(config_path: str) -> tuple[GatewayConfig, Store, "Registry"]:
    """(gateway.toml, its store, the device registry over it). Raises ConfigError, StoreError."""
    from edgeledger.gateway.registry import Registry

    cfg, st = open_store(config_path)
    return cfg, st, Registry(st)


def site_broker(cfg: GatewayConfig, broker_dir: str | None = None) -> "BrokerSite | None":
    """The site's broker directory (``edgeledger broker config``): ``broker_dir``, else the one
    whose CA gateway.toml's ``[mqtt] ca_file`` names (DIR/pki/ca.pem), else None. Raises
    BrokerConfigError for a directory that is not one."""
    from edgeledger.gateway.enrol.broker_config import META_FILE, BrokerSite

    if broker_dir:
        return BrokerSite.load(broker_dir)
    ca = cfg.mqtt.ca_file
    if ca:
        candidate = os.path.dirname(os.path.dirname(ca))  # DIR/pki/ca.pem -> DIR
        if os.path.exists(os.path.join(candidate, META_FILE)):
            return BrokerSite.load(candidate)
    return None


def operator_ledger(args: argparse.Namespace, cfg: GatewayConfig) -> tuple[Any, str]:
    """(ledger or None, a note) for a command that changes keys: none with ``--no-ledger``."""
    from edgeledger.gateway.anchor import ledger_for_operator

    if getattr(args, "no_ledger", False):
        return None, "--no-ledger: gateway registry only"
    return ledger_for_operator(cfg)


def add_config(p: argparse.ArgumentParser) -> None:
    """The ``--config`` option of a command that reads gateway.toml, defaulting to ./gateway.toml."""
    p.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help="gateway.toml (default: ./%s)" % DEFAULT_CONFIG)


def hex_bytes(text: str) -> bytes:
    """argparse type: bytes written as hex digits."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected hex digits (0-9, a-f), found %r" % text) from None


def _pattern(spec: tuple[str, str]) -> "argparse._ActionType":
    def check(text: str) -> str:
        if not re.fullmatch(spec[0], text):
            raise argparse.ArgumentTypeError("expected %s, found %r" % (spec[1], text))
        return text

    return check


address = _pattern(ADDRESS)  # argparse type: an Ethereum address (the schema's rule)
rpc_url = _pattern(JSONRPC_URL)  # argparse type: a JSON-RPC URL (the schema's rule)


def _topic_id(what: str) -> "argparse._ActionType":
    def check(text: str) -> str:
        from edgeledger.protocols import topics

        try:
            return str(topics.check_id(text, what))
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return check


device_id = _topic_id("device id")  # argparse type: a device id as topics allow it
site_id = _topic_id("site")  # argparse type: a site id as topics allow it
# argparse type: an account's private key, 64 hex digits (0x optional)
private_key = _pattern((r"(0x)?[0-9a-fA-F]{64}", "a private key: 64 hex digits"))


def broker_url(text: str) -> str:
    """argparse type: an mqtt:// or mqtts:// URL (protocols/broker_url.py)."""
    from edgeledger.protocols import broker_url as parser

    try:
        parser.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text

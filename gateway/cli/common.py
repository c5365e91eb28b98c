"""What several command groups share: opening the store gateway.toml names, the site's broker
directory, the ledger an operator command writes to."""
import argparse
import os
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.store import Store

if TYPE_CHECKING:  # imported where used: `edgeledger --help` loads no crypto library
    from edgeledger.gateway.enrol.broker_config import BrokerSite
    from edgeledger.gateway.registry import Registry

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

"""Log levels of the ``edgeledger`` commands, and the gateway's periodic summary line.

Every command logs to stderr. The level: ``-q`` errors only, nothing given warnings (and
the summary lines), ``-v`` information too, ``-vv`` debugging; without ``-v``/``-q`` the
config file's level (gateway.toml ``[log] level``, agent.toml ``log_level``) when the
command reads one. Summary lines go to the logger ``edgeledger.summary``, which says them
at every level but ``-q``/``error``: an operator who starts a gateway by hand sees it
working every ``summary_s`` without turning on the chatter of ``-v``.
"""
import logging
from typing import Any

from edgeledger.gateway.errors import ConfigError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
SUMMARY_LOGGER = "edgeledger.summary"
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

# The level the command line chose (None: none, the config's applies).
_chosen: list[int | None] = [None]


def configure(verbose: int = 0, quiet: int = 0) -> None:
    """Log to stderr at the level of ``-v`` (count) and ``-q`` (count; wins)."""
    level = None
    if quiet:
        level = logging.ERROR
    elif verbose:
        level = logging.INFO if verbose == 1 else logging.DEBUG
    _chosen[0] = level
    configure_level(logging.WARNING if level is None else level)


def configure_level(level: int) -> None:
    """Log to stderr at ``level`` (a process the gateway spawns: its parent's level)."""
    logging.basicConfig(format=FORMAT)
    set_level(level)


def set_level(level: int) -> None:
    """Every logger at ``level``; the summary lines too, unless errors only."""
    logging.getLogger().setLevel(level)
    logging.getLogger(SUMMARY_LOGGER).setLevel(min(level, logging.INFO) if level <= logging.WARNING else level)


def apply_config(name: str | None, where: str) -> None:
    """The config file's level ``name`` (None: not set), unless ``-v``/``-q`` chose one.
    Raises ConfigError for a name that is not a level."""
    if name is None:
        return
    if name not in LEVELS:
        raise ConfigError("%s: expected a log level (%s), found %r" % (where, ", ".join(LEVELS), name))
    if _chosen[0] is None:
        set_level(LEVELS[name])


def anchoring_text(state: str | None, ledger: bool) -> str:
    """The anchoring state the batcher left in the store, for a person: ``off (no ledger)``,
    ``running`` (nothing said yet), ``ok``, ``unreachable`` or ``HALTED``."""
    if not ledger:
        return "off (no ledger)"
    if state == "halted":
        return "HALTED"
    return state or "running"


def gateway_summary(gateway_id: str, snap: dict[str, Any], ledger: bool = True) -> str:
    """The summary line of a ``gateway status --json`` snapshot: stored, rejected,
    quarantined, anchoring backlog, last anchored batch and block, anchoring state, devices;
    ``ledger``: whether the gateway anchors at all."""
    c = snap["counters"]
    devices = snap["devices"]
    last = snap["last_anchored"]
    backlog = snap["backlog"]
    return ("gateway %s: stored %d, rejected %d, quarantined %d, backlog %d batches + %d messages, last anchored %s, "
            "anchoring %s, devices %d (online %d, stuck %d)"
            % (gateway_id, snap["messages"], c.get("rejected", 0), sum(snap["quarantine"].values()),
               backlog["batches_not_anchored"], backlog["messages_not_batched"],
               "batch %d in block %s" % (last["batch"], last["block"]) if last else "none yet",
               anchoring_text(snap["anchoring"]["state"], ledger), len(devices),
               sum(1 for d in devices if d["online"]), sum(1 for d in devices if d["stuck"])))

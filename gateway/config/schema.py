"""The schema of gateway.toml: every key, its type and its default, in one place.

Each section is a frozen dataclass; its fields are the section's keys. A field's type is
what the file must hold (``Optional`` ones may be left out), its default is the gateway's
default, and its metadata says more:

* ``path``: a file name, relative to gateway.toml's folder;
* ``secret``: a file others must not read (the gateway refuses to start otherwise);
* ``choices``: the values allowed;
* ``minimum``: the smallest value allowed;
* ``legacy``: an older spelling, still read (the documentation shows the new one);
* ``required``: the key must be given (its section too);
* ``pattern``: (regular expression the whole value must match, what it looks like).

``config.resolve`` reads a parsed file through this schema: a value of the wrong type, out
of its choices or below its minimum is a ConfigError naming the key, what was expected and
what was found; so is a key or a section the schema does not know (with the nearest known
name). docs/configuration.md shows every key (tests/gateway/config/test_schema.py keeps the
two in step).

The defaults, and where each number comes from, are the module constants below; the rest
of the gateway takes them from here.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from edgeledger.protocols import hashes

# -- top level ------------------------------------------------------------------------------

# One pack of 1000 samples is ~12 KB; 5x headroom. The broker's max_packet_size is derived
# from it (enrol/broker_config.py), so a larger publish never reaches the gateway.
DEFAULT_MAX_MESSAGE_BYTES = 65536
# A device may replay a week-old outbox; not a year-off clock.
DEFAULT_CLOCK_SKEW_S = 7 * 86400.0
# What a commit survives, per ``durability``: SQLite's synchronous pragma (FULL fsyncs the
# WAL at every commit; NORMAL survives a process crash only).
DURABILITY = {"power_loss": "FULL", "process_crash_only": "NORMAL"}
# The deployment's hash for Merkle trees and device chains (protocols/hashes.py): SHA-256 by
# default, SM3 where the GM/T algorithms are required (docs/national-crypto.md).
DEPLOYMENT_HASHES = tuple(hashes.NAMES[alg] for alg in sorted(hashes.NAMES))
# Client ids of the gateway's MQTT connections start with this; no device id may
# (enrol/provision.py), or a device could take over the gateway's session.
GATEWAY_CLIENT_PREFIX = "el-gw-"

# -- [batch] --------------------------------------------------------------------------------

# Readings per Merkle batch: one anchor transaction (~80k gas) per 10,000 readings, and a
# proof of 14 hashes.
DEFAULT_BATCH_SIZE = 10000
# A batch closes this long after its first reading: the longest a reading waits to be batched.
DEFAULT_BATCH_AGE_S = 10.0
# The largest batch: 2**20 messages keep a proof at 20 hashes (640 bytes).
MAX_BATCH_SIZE = 1 << 20

# -- [ledger] -------------------------------------------------------------------------------

LEDGER_BACKENDS = ("embedded", "jsonrpc", "none")
# An Ethereum address as JSON-RPC writes it: 20 bytes in hex (checksum case or not).
ADDRESS = (r"0x[0-9a-fA-F]{40}", "an address: 0x and 40 hex digits (0x5FbDB2315678afecb367f032d93F642f64180aa3)")
JSONRPC_URL = (r"https?://[^\s/]+(/\S*)?", "an http:// or https:// URL of a JSON-RPC node "
                                                   "(http://127.0.0.1:8545)")
# Blocks before a batch counts as anchored (the mined block counts 1): proofs from then on.
DEFAULT_CONFIRMATIONS = 2
# Finality depth on a JSON-RPC chain: Ethereum proof of stake finalizes a block after two
# epochs of 32 slots. On the embedded chain the default is the confirmations.
DEFAULT_FINALITY = 64

# -- [ratelimit] (ingest/ratelimit.py says why an honest device never meets them) ----------

DEFAULT_RATE = 1000.0  # messages/s per device, sustained: 100x a device's live traffic
DEFAULT_BURST = 5000  # messages at once: 83 minutes of a device sending every second

# -- [quarantine] ---------------------------------------------------------------------------

# A million rows or 1 GiB of raw bytes (~16k maximum-size messages), whichever comes first;
# far beyond honest failure rates, small next to the message store.
DEFAULT_QUARANTINE_ROWS = 1000000
DEFAULT_QUARANTINE_BYTES = 1 << 30
# Per device: 10,000 rows or 16 MiB (256 maximum-size messages) of evidence. 64 devices
# would have to misbehave together to fill the global bytes bound.
DEFAULT_DEVICE_ROWS = 10000
DEFAULT_DEVICE_BYTES = 16 << 20

# -- [upkeep] (ingest/upkeep.py) ------------------------------------------------------------

# A retained reading lives at most this long in the broker (a sweep is one TLS connection
# and one SUBSCRIBE, ~10 ms of broker time).
DEFAULT_RETAINED_SWEEP_S = 30.0
# A revoked device's live session is cut at most this long after the broker reload...
DEFAULT_CUT_EVERY_S = 2.0
# ... for this long after the gateway first sees the revocation (an operator reloads the
# broker well within 10 minutes of `device revoke`), and after every later reject of it.
DEFAULT_CUT_WINDOW_S = 600.0

# -- [log], [metrics], [web] (gateway/observe/) ----------------------------------------------

LOG_LEVELS = ("debug", "info", "warning", "error")
# A summary line every five minutes: a day of them is 288 lines, and an operator who looks
# at the journal after a coffee sees one that is recent.
DEFAULT_SUMMARY_S = 300.0


def _meta(doc: str, **more: Any) -> dict[str, Any]:
    return dict(doc=doc, **more)


@dataclass(frozen=True)
class MqttConfig:
    """``[mqtt]``: how the gateway logs in to the broker (broker config writes this section)."""

    username: Optional[str] = field(default=None, metadata=_meta("the gateway's MQTT user name"))
    password_file: Optional[str] = field(default=None, metadata=_meta("its password", path=True, secret=True))
    ca_file: Optional[str] = field(default=None, metadata=_meta("the site CA (TLS)", path=True))
    cert_file: Optional[str] = field(default=None, metadata=_meta("a client certificate", path=True))
    key_file: Optional[str] = field(default=None, metadata=_meta("its key", path=True, secret=True))

    def password(self) -> Optional[str]:
        """The password from ``password_file`` (stripped), or None. Raises OSError."""
        if not self.password_file:
            return None
        with open(self.password_file) as f:
            return f.read().strip()


@dataclass(frozen=True)
class BatchConfig:
    """``[batch]``: when a Merkle batch closes."""

    max_size: int = field(default=DEFAULT_BATCH_SIZE,
                          metadata=_meta("messages per batch", minimum=1, maximum=MAX_BATCH_SIZE))
    max_age_s: float = field(default=DEFAULT_BATCH_AGE_S,
                             metadata=_meta("close a batch this long after its first message", minimum=0.0))


@dataclass(frozen=True)
class LedgerConfig:
    """``[ledger]``: where batches are anchored (anchor/connect.py opens it)."""

    backend: str = field(default="embedded", metadata=_meta("embedded, jsonrpc or none", choices=LEDGER_BACKENDS,
                                                             required=True))
    url: Optional[str] = field(default=None, metadata=_meta("the node's JSON-RPC URL (jsonrpc)", pattern=JSONRPC_URL))
    contract: Optional[str] = field(default=None, metadata=_meta("the deployed EdgeLedgerAnchor (jsonrpc)",
                                                                 pattern=ADDRESS))
    deploy: bool = field(default=False, metadata=_meta(
        "no longer deploys: the gateway refuses to start without contract (`edgeledger site init` deploys)"))
    keystore_file: Optional[str] = field(default=None,
                                         metadata=_meta("the account key, encrypted", path=True, secret=True))
    passphrase_file: Optional[str] = field(default=None,
                                           metadata=_meta("its passphrase", path=True, secret=True))
    passphrase_env: Optional[str] = field(default=None, metadata=_meta("or the variable holding it"))
    key_file: Optional[str] = field(default=None, metadata=_meta("a plain hex key (test chains)",
                                                                 path=True, secret=True))
    confirmations: int = field(default=DEFAULT_CONFIRMATIONS, metadata=_meta("blocks before anchored", minimum=1))
    finality: Optional[int] = field(default=None, metadata=_meta("blocks before final", minimum=1))

    @property
    def finality_blocks(self) -> int:
        """The finality depth in force: ``finality``, by default DEFAULT_FINALITY on a
        JSON-RPC chain and the confirmations on the embedded one; never below the
        confirmations."""
        default = self.confirmations if self.backend == "embedded" else DEFAULT_FINALITY
        return max(self.confirmations, self.finality if self.finality is not None else default)


@dataclass(frozen=True)
class ChainConfig:
    """``[chain]``: device chain rules an operator chooses."""

    accept_restarts: bool = field(default=True, metadata=_meta("accept a declared chain restart at once"))


@dataclass(frozen=True)
class RateLimitConfig:
    """``[ratelimit]``: per device, before anything is decoded."""

    rate: float = field(default=DEFAULT_RATE, metadata=_meta("messages/s sustained; 0 turns it off", minimum=0.0))
    burst: int = field(default=DEFAULT_BURST, metadata=_meta("messages at once", minimum=1))


@dataclass(frozen=True)
class QuarantineConfig:
    """``[quarantine]``: what rejects may store; past a bound they are only counted."""

    max_rows: int = field(default=DEFAULT_QUARANTINE_ROWS, metadata=_meta("rows in all", minimum=0))
    max_bytes: int = field(default=DEFAULT_QUARANTINE_BYTES, metadata=_meta("raw bytes in all", minimum=0))
    device_rows: int = field(default=DEFAULT_DEVICE_ROWS, metadata=_meta("rows of one device", minimum=0))
    device_bytes: int = field(default=DEFAULT_DEVICE_BYTES, metadata=_meta("raw bytes of one device", minimum=0))


@dataclass(frozen=True)
class UpkeepConfig:
    """``[upkeep]``: the gateway's broker upkeep (ingest/upkeep.py)."""

    enabled: bool = field(default=True, metadata=_meta("run it"))
    retained_sweep_s: float = field(default=DEFAULT_RETAINED_SWEEP_S,
                                    metadata=_meta("clear retained readings this often; 0: never", minimum=0.0))
    cut_every_s: float = field(default=DEFAULT_CUT_EVERY_S,
                               metadata=_meta("end a revoked device's session this often", minimum=0.0))
    cut_window_s: float = field(default=DEFAULT_CUT_WINDOW_S,
                                metadata=_meta("for this long after its revocation", minimum=0.0))


@dataclass(frozen=True)
class LogConfig:
    """``[log]``: what ``gateway run`` says on stderr (``-v``/``-q`` win over ``level``)."""

    level: str = field(default="warning", metadata=_meta("debug, info, warning or error", choices=LOG_LEVELS))
    summary_s: float = field(default=DEFAULT_SUMMARY_S,
                             metadata=_meta("a summary line this often; 0: never", minimum=0.0))


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: Prometheus ``/metrics`` (observe/metrics.py); off unless ``listen`` is set."""

    listen: Optional[str] = field(default=None, metadata=_meta("host:port to serve /metrics on"))


@dataclass(frozen=True)
class WebConfig:
    """``[web]``: the read-only status page (observe/web.py); off unless ``listen`` is set."""

    listen: Optional[str] = field(default=None, metadata=_meta("host:port to serve the status page on"))


@dataclass(frozen=True)
class GatewayConfig:
    """A whole gateway.toml, resolved: paths absolute, every default filled in."""

    gateway_id: str = field(default="gw-1", metadata=_meta("this gateway's name"))
    store: str = field(default="var/gateway.db", metadata=_meta("the SQLite store", path=True))
    broker: str = field(default="mqtt://127.0.0.1:1883", metadata=_meta("mqtt:// or mqtts://host:port"))
    sites: list[str] = field(default_factory=lambda: ["+"],
                             metadata=_meta("the sites this gateway owns; \"+\" for all", nonempty=True))
    durability: str = field(default="power_loss", metadata=_meta("what an acknowledged commit survives",
                                                                 choices=tuple(DURABILITY)))
    synchronous: Optional[str] = field(default=None, metadata=_meta(
        "older spelling of durability (FULL or NORMAL)", choices=tuple(DURABILITY.values()), legacy=True))
    client_id: Optional[str] = field(default=None, metadata=_meta(
        "MQTT client id (default %s<gateway_id>)" % GATEWAY_CLIENT_PREFIX))
    max_message_bytes: int = field(default=DEFAULT_MAX_MESSAGE_BYTES, metadata=_meta("largest message", minimum=1))
    clock_skew_s: float = field(default=DEFAULT_CLOCK_SKEW_S, metadata=_meta("oldest record time", minimum=0.0))
    deployment_hash: str = field(default="sha256", metadata=_meta(
        "the hash of Merkle trees and device chains (devices set the same chain_hash)", choices=DEPLOYMENT_HASHES))
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    quarantine: QuarantineConfig = field(default_factory=QuarantineConfig)
    upkeep: UpkeepConfig = field(default_factory=UpkeepConfig)
    log: LogConfig = field(default_factory=LogConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    web: WebConfig = field(default_factory=WebConfig)

    @property
    def mqtt_client_id(self) -> str:
        return self.client_id or GATEWAY_CLIENT_PREFIX + self.gateway_id

    @property
    def hash_alg(self) -> int:
        """The id of ``deployment_hash`` (protocols/hashes.py; the batch header's tree-hash byte)."""
        return hashes.by_name(self.deployment_hash)

    @property
    def sqlite_synchronous(self) -> str:
        """SQLite's synchronous pragma for ``durability``."""
        return DURABILITY[self.durability]


# The sections of gateway.toml, by name.
SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(GatewayConfig)  # type: ignore[misc]
                             if dataclasses.is_dataclass(f.type)}

"""``edgeledger demo``: a whole site in one process, from signed reading to light-client check.

::

    N simulated devices ──MQTT (QoS 1)──► broker ──► gateway ingest ──► store ──► batcher ──► ledger
    (meters + sensors,                   (amqtt     (verify, chain      (SQLite)   (Merkle     (py-evm
     EdDSA + ES256,                       in-process  rules, ack after             batches,    in-process,
     agent core + paho)                   or --broker) commit)                     anchors)    or --ledger)
                                                                                       │
                 proof bundle per sampled reading ◄────────────────────────────────────┘
                 checked offline (signature, Merkle path) and on chain (EIP-1186 storage
                 proof against the block's state root, confirmations, device key registry)

What runs (all in this process unless ``--broker``/``--ledger`` name real services):

* the broker: amqtt on a free loopback port (demo/broker.py);
* the ledger: py-evm through eth-tester with the anchor contract deployed, and a transport
  that answers ``eth_getProof`` from py-evm's tries (anchor/embedded_rpc.py); or any JSON-RPC
  node (``--ledger URL``): a funded key (``--ledger-key`` or ``EDGELEDGER_LEDGER_KEY``)
  deploys the contract, funds a fresh gateway key and authorizes it;
* the gateway: the ingest service (ack after commit) and the batcher thread, exactly as
  ``edgeledger gateway run`` wires them;
* the devices: demo/fleet.py. Every device key is registered in the gateway's
  registry and in the contract's key registry.

When every device has its readings acknowledged end to end and every stored reading is in
an anchored batch, the demo writes the proof bundles of sampled readings (first, last and
evenly spaced between, per device), verifies each one offline and as a light client, and
checks that a copy with one flipped byte is refused.

Counts: ``sent`` distinct messages the devices signed and published; ``stored`` distinct
(device, seq) in the store; ``anchored`` stored readings in anchored batches; ``lost`` =
expected − distinct stored; ``duplicated`` = stored rows − distinct (device, seq);
``rejected`` messages the gateway refused; ``checked``/``verified`` bundles checked and
passed. Exit 0 when nothing is lost or duplicated, everything stored is anchored and every
bundle verifies; 1 otherwise (also on timeout); 2 for configuration errors.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any, Callable

# Only light imports here: `edgeledger --help` imports this module to list the command.
# web3, py-evm, paho and amqtt are imported when the demo runs.
from edgeledger.gateway.anchor.lifecycle import ANCHORED
from edgeledger.gateway.config.schema import MAX_BATCH_SIZE
from edgeledger.gateway.errors import ConfigError, GatewayError
from edgeledger.protocols.errors import ProtocolError

if TYPE_CHECKING:
    from edgeledger.gateway.demo.fleet import Device
    from edgeledger.gateway.ingest.pipeline import Pipeline
    from edgeledger.gateway.registry import Registry
    from edgeledger.gateway.store import Store

log = logging.getLogger("edgeledger.demo")

# Demo.run's progress callback: (sent, stored, anchored, expected, rates (a _Rates)).
ProgressFn = Callable[[int, int, int, int, Any], None]

DEFAULT_DEVICES = 10
DEFAULT_READINGS = 50
# One message per device every 20 ms: 50 readings take a second of sampling.
DEFAULT_INTERVAL_S = 0.02
# Bundles verified per device: first, last and evenly spaced between.
DEFAULT_SAMPLES = 3
# Small batches so a demo run anchors several, and a short age so the last one closes soon.
DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_AGE_S = 0.5
CONFIRMATIONS = 2
# Whole run (devices done and everything anchored), not counting setup.
DEFAULT_TIMEOUT_S = 120.0
# Bounds of the options: the demo is a demonstration, not a load test.
MAX_DEVICES = 1000
MAX_READINGS = 100000
# Waiting for the gateway's MQTT session before devices start.
CONNECT_TIMEOUT_S = 15.0
# Progress refresh and the window the per-second rates are measured over.
REFRESH_S = 0.25
RATE_WINDOW_S = 1.0
# What the funded key gives the demo's fresh gateway account on a JSON-RPC ledger: an
# anchor costs ~80k gas, so 0.1 ether pays ~1000 anchors at 1 gwei (anvil's base fee).
GATEWAY_FUNDING_WEI = 10**17
LEDGER_KEY_ENV = "EDGELEDGER_LEDGER_KEY"
# ``--alg``: every device signs with one of these (default: the fleet's mix of EdDSA and ES256).
DEVICE_ALGS = ("EdDSA", "ES256", "SM2")
# Flipped in the tamper check: inside the signed message of any bundle (its first bytes
# are the CBOR map header and the message's byte-string header).
TAMPER_OFFSET = 40


class DemoOptions:
    def __init__(self, devices: int = DEFAULT_DEVICES, readings: int = DEFAULT_READINGS, out: str | None = None,
                 broker: str | None = None, ledger: str | None = None, ledger_key: str | None = None,
                 interval_s: float = DEFAULT_INTERVAL_S, samples: int = DEFAULT_SAMPLES,
                 batch_size: int = DEFAULT_BATCH_SIZE, batch_age_s: float = DEFAULT_BATCH_AGE_S,
                 timeout_s: float = DEFAULT_TIMEOUT_S, alg: str | None = None) -> None:
        if not 1 <= devices <= MAX_DEVICES:
            raise ConfigError("--devices must be 1..%d, got %d" % (MAX_DEVICES, devices))
        if not 1 <= readings <= MAX_READINGS:
            raise ConfigError("--readings must be 1..%d, got %d" % (MAX_READINGS, readings))
        if not interval_s > 0:
            raise ConfigError("--interval must be > 0, got %r" % (interval_s,))
        if samples < 1:
            raise ConfigError("--samples must be >= 1, got %d" % samples)
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ConfigError("--batch-size must be 1..%d, got %d" % (MAX_BATCH_SIZE, batch_size))
        if not timeout_s > 0:
            raise ConfigError("--timeout must be > 0, got %r" % (timeout_s,))
        if alg is not None and alg not in DEVICE_ALGS:
            raise ConfigError("--alg must be one of %s, got %r" % (", ".join(DEVICE_ALGS), alg))
        self.devices, self.readings, self.out = devices, readings, out
        self.broker, self.ledger, self.ledger_key = broker, ledger, ledger_key
        self.interval_s, self.samples = interval_s, samples
        self.batch_size, self.batch_age_s, self.timeout_s = batch_size, batch_age_s, timeout_s
        self.alg = alg


# ---------------------------------------------------------------------------------- ledger

def _open_embedded_ledger(site: str) -> tuple[Any, Any, None]:
    from edgeledger.gateway.anchor.ledger import EmbeddedLedger

    ledger = EmbeddedLedger()
    ledger.deploy(owner_key=ledger.key)
    ledger.authorize_gateway(site, ledger.account)
    return ledger, ledger, None


def _open_jsonrpc_ledger(url: str, funded_key: str, site: str) -> tuple[Any, Any, str]:
    """(gateway ledger, owner ledger, gateway key): the funded key deploys and owns the
    contract and funds a fresh gateway account, which it then authorizes for ``site``."""
    from eth_account import Account

    from edgeledger.gateway.anchor.ledger import JsonRpcLedger

    owner = JsonRpcLedger(url, key=funded_key)
    gw_key = "0x" + os.urandom(32).hex()
    gw_address = Account.from_key(gw_key).address
    owner.transfer(gw_address, GATEWAY_FUNDING_WEI)
    owner.deploy(owner_key=funded_key)
    owner.authorize_gateway(site, gw_address)
    gateway = JsonRpcLedger(url, key=gw_key)
    gateway.attach(owner.address)
    # anvil without --block-time mines only when a transaction arrives: the batcher mines
    # empty blocks while a batch waits for confirmations (otherwise the last never gets them)
    gateway.mines_on_demand = gateway.mines_only_on_transactions()
    return gateway, owner, gw_key


def _register_on_chain(owner: Any, registry: Registry, site: str, devices: list[Device]) -> None:
    """Register every device key in the contract: all sent first, then all awaited (one
    block for the lot on a chain with a block time); the chain's registration block and time
    go into the gateway registry (they open each key's window)."""
    hashes = [owner.register_key(site, d.name, d.signer.alg, d.signer.public_key, 1, wait=False) for d in devices]
    for h in hashes:
        owner.wait_for_receipt(h)
    for d in devices:
        reg = owner.registration(site, d.signer.kid)
        registry.record_chain_registration(d.signer.kid, reg["block_number"], reg["timestamp"], reg["first_seq"])


# ---------------------------------------------------------------------------------- files

def _write_gateway_toml(path: str, broker_url: str, site: str, opts: DemoOptions, ledger: Any,
                        gw_key: str | None) -> None:
    lines = [
        "# Written by `edgeledger demo`. `edgeledger proof DEVICE SEQ -o b.cbor --config %s`" % os.path.basename(path),
        "# writes the bundle of any stored reading; `edgeledger verify b.cbor` checks it.",
        'gateway_id = "demo"',
        'store = "gateway.db"',
        'broker = "%s"' % broker_url,
        'sites = ["%s"]' % site,
        "",
        "[batch]",
        "max_size = %d" % opts.batch_size,
        "max_age_s = %r" % opts.batch_age_s,
        "",
        "[ledger]",
    ]
    if gw_key is None:
        lines += [
            "# The embedded chain lived in the demo's process and is gone; \"embedded\" here would",
            "# start a new chain and re-anchor every batch. The store keeps the batches, their",
            "# transactions and the contract address, so bundles still verify offline.",
            'backend = "none"',
        ]
    else:
        key_path = os.path.join(os.path.dirname(path), "gateway.ethkey")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(gw_key + "\n")
        lines += [
            'backend = "jsonrpc"',
            'url = "%s"' % ledger.url,
            'contract = "%s"' % ledger.address,
            'key_file = "gateway.ethkey"   # the demo gateway\'s own account (mode 0600)',
        ]
    lines.append("confirmations = %d" % CONFIRMATIONS)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _sample_seqs(readings: int, k: int) -> list[int]:
    """Up to ``k`` seqs in 1..readings: first, last and evenly spaced between."""
    if k == 1 or readings == 1:
        return [readings]
    return sorted(set(1 + (readings - 1) * i // (k - 1) for i in range(k)))


# ---------------------------------------------------------------------------------- counts

def _per_device(store: Store, name: str, readings: int) -> tuple[int, int, int]:
    rows, distinct = store.seq_counts(name, readings)
    return rows, distinct, store.device_messages_in_batches(name, ANCHORED)


class _Rates:
    """Counts per second over the last RATE_WINDOW_S."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, tuple[int, ...]]] = []

    def add(self, now: float, values: tuple[int, ...]) -> None:
        self.samples.append((now, values))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.pop(0)

    def rate(self, i: int) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        return (v1[i] - v0[i]) / (t1 - t0) if t1 > t0 else 0.0


# ---------------------------------------------------------------------------------- the run

class _Parts:
    """What a demo run has started, so that ``close`` stops exactly that, in order, whatever
    step failed."""

    def __init__(self) -> None:
        self.tmp: str | None = None
        self.broker: Any = None
        self.fleet: Any = None
        self.service: Any = None
        self.batcher: Any = None
        self.store: Any = None
        self.monitor: Any = None

    def close(self) -> None:
        for thing in (self.fleet, self.service, self.batcher):
            if thing is not None:
                try:
                    thing.stop()
                except Exception as e:  # already stopped, or stopping after a failure
                    log.debug("stopping %s: %s", thing, e)
        for st in (self.monitor, self.store):
            if st is not None:
                st.close()
        if self.broker is not None:
            self.broker.stop()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Demo:
    """One demo run; ``run(progress)`` returns the result dict (see ``edgeledger demo --json``)."""

    def __init__(self, opts: DemoOptions, say: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.say: Callable[[str], None] = say or (lambda text: None)
        self.site = "demo-" + os.urandom(3).hex()
        self.result: dict[str, Any] | None = None

    def run(self, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Run the whole site, check sampled bundles and return the result dict.

        Raises ConfigError (no ledger key, a used ``--out``, the broker does not grant the
        gateway's subscriptions in time), LedgerError (the ledger cannot be set up) and what a
        device thread raised."""
        from edgeledger.gateway.demo.fleet import Fleet
        from edgeledger.gateway.store import Store

        opts = self.opts
        t_start = time.monotonic()
        ledger_key = self._ledger_key()
        parts = _Parts()
        try:
            root = self._root(parts)
            broker_url = self._start_broker(parts)
            ledger, owner, gw_key = self._open_ledger(ledger_key)
            registry, devices = self._set_up_gateway(parts, root, broker_url, ledger, owner, gw_key)
            pipeline, client_id = self._start_gateway(parts, root, broker_url, registry, ledger)
            parts.fleet = Fleet(devices)
            parts.fleet.start()
            t_run = time.monotonic()
            parts.monitor = Store(os.path.join(root, "gateway.db"))
            timed_out = self._watch(parts, progress, t_run)
            run = {"t_start": t_start, "run_s": round(time.monotonic() - t_run, 3), "sent": parts.fleet.sent(),
                   "resends": parts.fleet.resends(), "timed_out": timed_out}
            ledger_error = parts.batcher.error
            parts.fleet.stop()
            parts.service.stop()
            parts.batcher.stop()  # the embedded chain is not thread-safe: no anchoring while verifying
            parts.fleet = parts.service = parts.batcher = None
            with parts.store.lock:  # the service saves counters at most once a second: save the last ones
                parts.store.save_counters(pipeline.counters)
            counters = dict(pipeline.counters)
            if parts.broker is None:
                _tidy_broker(broker_url, client_id, self.site, devices)

            result = self._check(parts.monitor, ledger, devices, root if opts.out else None)
            if timed_out and ledger_error is not None:
                result["failures"].append("ledger: %s" % ledger_error)
            self._summarise(result, parts, devices, counters, run, ledger, broker_url, root)
            self.result = result
            return result
        finally:
            parts.close()

    def _ledger_key(self) -> str | None:
        """The funded key a ``--ledger`` run needs (option or environment); None for the
        embedded ledger."""
        if self.opts.ledger is None:
            return None
        ledger_key = self.opts.ledger_key or os.environ.get(LEDGER_KEY_ENV)
        if not ledger_key:
            raise ConfigError("--ledger %s needs a funded account key: --ledger-key or %s"
                              % (self.opts.ledger, LEDGER_KEY_ENV))
        return ledger_key

    def _root(self, parts: _Parts) -> str:
        """The run's folder: ``--out`` (which must not hold a store yet) or a temporary one."""
        if self.opts.out:
            root = os.path.abspath(self.opts.out)
            os.makedirs(root, exist_ok=True)
            if os.path.exists(os.path.join(root, "gateway.db")):
                raise ConfigError("--out %s already holds a gateway store: choose a new or empty folder" % root)
            return root
        parts.tmp = tempfile.mkdtemp(prefix="edgeledger-demo-")
        return parts.tmp

    def _start_broker(self, parts: _Parts) -> str:
        """The broker's URL: ``--broker``, or an embedded amqtt started here."""
        if self.opts.broker is not None:
            self.say("broker   %s" % self.opts.broker)
            return self.opts.broker
        from edgeledger.gateway.demo.broker import EmbeddedBroker

        parts.broker = EmbeddedBroker().start()
        self.say("broker   embedded amqtt on %s" % parts.broker.url)
        return str(parts.broker.url)

    def _open_ledger(self, ledger_key: str | None) -> tuple[Any, Any, str | None]:
        """(gateway ledger, owner ledger, gateway key) with the contract deployed and the
        gateway authorized for this site."""
        if self.opts.ledger is None:
            ledger, owner, gw_key = _open_embedded_ledger(self.site)
            self.say("ledger   embedded py-evm, chain id %d, contract %s" % (ledger.chain_id, ledger.address))
            return ledger, owner, gw_key
        assert ledger_key is not None  # _ledger_key refused a --ledger without one
        ledger, owner, gw_key = _open_jsonrpc_ledger(self.opts.ledger, ledger_key, self.site)
        self.say("ledger   %s, chain id %d, contract %s%s" % (
            self.opts.ledger, ledger.chain_id, ledger.address,
            " (mines only on transactions: the gateway mines a block while a batch waits for confirmations)"
            if ledger.mines_on_demand else ""))
        return ledger, owner, gw_key

    def _set_up_gateway(self, parts: _Parts, root: str, broker_url: str, ledger: Any, owner: Any,
                        gw_key: str | None) -> tuple[Registry, list[Device]]:
        """The gateway's store (into ``parts`` at once, so a failed step closes it) and
        registry, the devices with their keys registered in both the registry and the
        contract, and the gateway.toml describing the run."""
        from edgeledger.gateway.demo.fleet import Device, device_names
        from edgeledger.gateway.registry import Registry
        from edgeledger.gateway.store import Store

        opts = self.opts
        store = parts.store = Store(os.path.join(root, "gateway.db"))
        store.set_ledger_meta({"backend": ledger.name, "chain_id": ledger.chain_id,
                               "contract": ledger.address, "gateway": ledger.account})
        registry = Registry(store)
        devices = [Device(name, kind, alg, self.site, broker_url, os.path.join(root, "devices", name),
                          opts.readings, opts.interval_s)
                   for name, kind, alg in device_names(opts.devices, opts.alg)]
        for d in devices:
            registry.register(d.name, self.site, d.signer.alg, d.signer.public_key, d.signer.kid)
        _register_on_chain(owner, registry, self.site, devices)
        self.say("devices  %d on site %s (%s), keys registered in the gateway and on chain" % (
            len(devices), self.site, ", ".join(sorted(set("%s %s" % (d.kind, d.alg) for d in devices)))))
        _write_gateway_toml(os.path.join(root, "gateway.toml"), broker_url, self.site, opts, ledger, gw_key)
        return registry, devices

    def _start_gateway(self, parts: _Parts, root: str, broker_url: str, registry: Registry,
                       ledger: Any) -> tuple[Pipeline, str]:
        """Start the ingest service (and wait for its SUBACK) and the batcher thread. Returns
        the pipeline (its counters) and the gateway's MQTT client id."""
        from edgeledger.gateway.anchor.thread import BatcherThread
        from edgeledger.gateway.config import BatchConfig
        from edgeledger.gateway.ingest.pipeline import Pipeline
        from edgeledger.gateway.ingest.service import IngestService

        pipeline = Pipeline(parts.store, registry)
        client_id = "el-gw-" + self.site
        parts.service = IngestService(pipeline, broker_url, client_id, sites=[self.site])
        # Devices start once the broker has granted the gateway's subscriptions (SUBACK):
        # on a broker without the gateway's session yet, earlier readings would have no
        # subscriber (they would come again after resend_after_s, but a demo should not wait).
        parts.service.start()
        if not parts.service.subscribed.wait(CONNECT_TIMEOUT_S):
            raise ConfigError("the gateway could not subscribe at the broker %s within %.0f s"
                              % (broker_url, CONNECT_TIMEOUT_S))
        parts.batcher = BatcherThread(os.path.join(root, "gateway.db"), ledger,
                                      BatchConfig(self.opts.batch_size, self.opts.batch_age_s), CONFIRMATIONS)
        parts.batcher.start()
        return pipeline, client_id

    def _watch(self, parts: _Parts, progress: ProgressFn | None, t_run: float) -> bool:
        """Report progress until every device is done and everything stored is anchored;
        True if the run timed out first. Raises what the device thread raised."""
        expected = self.opts.devices * self.opts.readings
        rates = _Rates()
        while True:
            stored = parts.monitor.count_messages()
            anchored = parts.monitor.messages_in_batches(ANCHORED)
            sent = parts.fleet.sent()
            now = time.monotonic()
            rates.add(now, (sent, stored, anchored))
            if progress is not None:
                progress(sent, stored, anchored, expected, rates)
            if parts.fleet.done() and stored >= expected and anchored >= stored:
                return False
            if parts.fleet.error is not None:
                raise parts.fleet.error
            if now - t_run > self.opts.timeout_s:
                return True
            time.sleep(REFRESH_S)

    def _summarise(self, result: dict[str, Any], parts: _Parts, devices: list[Device], counters: dict[str, int],
                   run: dict[str, Any], ledger: Any, broker_url: str, root: str) -> None:
        """Add the counts (per device and in total) and the verdict to ``result``."""
        opts = self.opts
        monitor = parts.monitor
        expected = opts.devices * opts.readings
        per_device = result.pop("per_device")
        rows = distinct = anchored = 0
        for d in devices:
            r, n, a = _per_device(monitor, d.name, opts.readings)
            rows, distinct, anchored = rows + r, distinct + n, anchored + a
            per_device[d.name].update({"kind": d.kind, "alg": d.alg, "sent": d.sent, "stored": n, "anchored": a})
        batches = monitor.batch_summary().by_state.get(ANCHORED, 0)
        timed_out = run["timed_out"]
        result.update({
            "sent": run["sent"], "stored": distinct, "anchored": anchored,
            "lost": expected - distinct, "duplicated": rows - distinct,
            "rejected": counters.get("rejected", 0), "redelivered": counters.get("duplicates", 0),
            "resends": run["resends"], "devices": opts.devices, "readings": opts.readings, "expected": expected,
            "batches": batches, "timed_out": timed_out, "run_s": run["run_s"],
            "elapsed_s": round(time.monotonic() - run["t_start"], 3),
            "broker": "embedded" if parts.broker is not None else broker_url,
            "ledger": "embedded" if opts.ledger is None else opts.ledger,
            "chain_id": ledger.chain_id, "contract": ledger.address, "site": self.site,
            "algs": sorted(set(d.alg for d in devices)),
            "out": root if opts.out else None,
        })
        result["ok"] = (not timed_out and result["lost"] == 0 and result["duplicated"] == 0
                        and anchored == distinct and result["verified"] == result["checked"]
                        and result["checked"] > 0 and result["tamper_rejected"])
        result["per_device"] = per_device

    def _check(self, store: Store, ledger: Any, devices: list[Device], out_root: str | None) -> dict[str, Any]:
        """Write and verify the bundles of sampled readings; try one tampered copy."""
        from edgeledger.gateway import proofs
        from edgeledger.gateway.proofs import verifier

        meta = store.ledger_meta()
        chain_id, contract = int(meta["chain_id"]), meta["contract"]
        rpc = ledger if self.opts.ledger is None else self.opts.ledger
        trust = verifier.TrustRoot(chain_id, contract)  # the contract this demo deployed itself
        bundle_dir = os.path.join(out_root, "bundles") if out_root else None
        if bundle_dir:
            os.makedirs(bundle_dir, exist_ok=True)
        checked = verified = 0
        failures = []
        per_device = {}
        first = None
        for d in devices:
            ok = 0
            for seq in _sample_seqs(self.opts.readings, self.opts.samples):
                checked += 1
                try:
                    data = proofs.bundle_for(store, d.name, seq, chain_id, contract).encode()
                    if bundle_dir:
                        with open(os.path.join(bundle_dir, "%s-%d.cbor" % (d.name, seq)), "wb") as f:
                            f.write(data)
                    report = verifier.verify_bundle(data, rpc=rpc, min_confirmations=CONFIRMATIONS, trust=trust)
                    if report.get("storage_proof") != "ok":
                        raise verifier.BundleCheckFailed("expected a storage proof check, none was made")
                    verified += 1
                    ok += 1
                    if first is None:
                        first = data
                except (GatewayError, ProtocolError) as e:  # NotYetProvable, BundleCheckFailed,
                    failures.append("%s seq %d: %s" % (d.name, seq, e))  # BundleError, LedgerError
            per_device[d.name] = {"verified": ok}
        tamper_rejected = False
        if first is not None:
            bad = bytearray(first)
            bad[TAMPER_OFFSET] ^= 0x01
            try:
                verifier.verify_bundle(bytes(bad))
            except (GatewayError, ProtocolError):  # BundleError (offline checks), typed
                tamper_rejected = True
        return {"checked": checked, "verified": verified, "failures": failures,
                "tamper_rejected": tamper_rejected, "per_device": per_device}


def _tidy_broker(url: str, client_id: str, site: str, devices: list[Device]) -> None:
    """On a real broker, leave nothing behind: clear the retained birth/ack/death topics of
    the demo's devices and end the gateway's persistent session (a clean-session connect
    with its client id discards it, MQTT-3.1.2-6)."""
    import paho.mqtt.client as mqtt

    from edgeledger.protocols import broker_url, topics

    _tls, host, port = broker_url.parse(url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                    protocol=mqtt.MQTTv311)
    try:
        c.connect(host, port, keepalive=10)
        c.loop_start()
        infos = [c.publish(topics.topic(site, d.name, kind), b"", qos=1, retain=True)
                 for d in devices for kind in ("birth", "ack", "death")]
        for info in infos:
            info.wait_for_publish(timeout=5)
        c.disconnect()
        c.loop_stop()
    except (OSError, RuntimeError, ValueError) as e:
        log.warning("could not tidy the broker %s: %s", url, e)

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
import logging
import os
import shutil
import tempfile
import time

# Only light imports here: `edgeledger --help` imports this module to list the command.
# web3, py-evm, paho and amqtt are imported when the demo runs.
from edgeledger.gateway.anchor.lifecycle import ANCHORED
from edgeledger.gateway.config.schema import MAX_BATCH_SIZE
from edgeledger.gateway.errors import ConfigError, GatewayError
from edgeledger.protocols.errors import ProtocolError

log = logging.getLogger("edgeledger.demo")

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
# Flipped in the tamper check: inside the signed message of any bundle (its first bytes
# are the CBOR map header and the message's byte-string header).
TAMPER_OFFSET = 40


class DemoOptions:
    def __init__(self, devices=DEFAULT_DEVICES, readings=DEFAULT_READINGS, out=None, broker=None, ledger=None,
                 ledger_key=None, interval_s=DEFAULT_INTERVAL_S, samples=DEFAULT_SAMPLES,
                 batch_size=DEFAULT_BATCH_SIZE, batch_age_s=DEFAULT_BATCH_AGE_S, timeout_s=DEFAULT_TIMEOUT_S):
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
        self.devices, self.readings, self.out = devices, readings, out
        self.broker, self.ledger, self.ledger_key = broker, ledger, ledger_key
        self.interval_s, self.samples = interval_s, samples
        self.batch_size, self.batch_age_s, self.timeout_s = batch_size, batch_age_s, timeout_s


# ---------------------------------------------------------------------------------- ledger

def _open_embedded_ledger(site):
    from edgeledger.gateway.anchor.ledger import EmbeddedLedger

    ledger = EmbeddedLedger()
    ledger.deploy(owner_key=ledger.key)
    ledger.authorize_gateway(site, ledger.account)
    return ledger, ledger, None


def _open_jsonrpc_ledger(url, funded_key, site):
    """(gateway ledger, owner ledger, gateway key): the funded key deploys and owns the
    contract and funds a fresh gateway account, which it then authorizes for ``site``."""
    from eth_account import Account

    from edgeledger.gateway.anchor.ledger import TRANSFER_GAS, JsonRpcLedger

    owner = JsonRpcLedger(url, key=funded_key)
    gw_key = "0x" + os.urandom(32).hex()
    gw_address = Account.from_key(gw_key).address
    fund = owner._sign("fund", [gw_address], owner._account_for(None), gw_address, b"", TRANSFER_GAS,
                       value=GATEWAY_FUNDING_WEI)
    owner.wait_for_receipt(owner.send(fund))
    owner.deploy(owner_key=funded_key)
    owner.authorize_gateway(site, gw_address)
    gateway = JsonRpcLedger(url, key=gw_key)
    gateway.attach(owner.address)
    # anvil without --block-time mines only when a transaction arrives: the batcher mines
    # empty blocks while a batch waits for confirmations (otherwise the last never gets them)
    gateway.mines_on_demand = gateway.mines_only_on_transactions()
    return gateway, owner, gw_key


def _register_on_chain(owner, registry, site, devices):
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

def _write_gateway_toml(path, broker_url, site, opts, ledger, gw_key):
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


def _sample_seqs(readings, k):
    """Up to ``k`` seqs in 1..readings: first, last and evenly spaced between."""
    if k == 1 or readings == 1:
        return [readings]
    return sorted(set(1 + (readings - 1) * i // (k - 1) for i in range(k)))


# ---------------------------------------------------------------------------------- counts

def _per_device(store, name, readings):
    rows, distinct = store.seq_counts(name, readings)
    return rows, distinct, store.device_messages_in_batches(name, ANCHORED)


class _Rates:
    """Counts per second over the last RATE_WINDOW_S."""

    def __init__(self):
        self.samples = []

    def add(self, now, values):
        self.samples.append((now, values))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.pop(0)

    def rate(self, i):
        if len(self.samples) < 2:
            return 0.0
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        return (v1[i] - v0[i]) / (t1 - t0) if t1 > t0 else 0.0


# ---------------------------------------------------------------------------------- the run

class Demo:
    """One demo run; ``run(progress)`` returns the result dict (see ``edgeledger demo --json``)."""

    def __init__(self, opts, say=None):
        self.opts = opts
        self.say = say or (lambda text: None)
        self.site = "demo-" + os.urandom(3).hex()
        self.result = None

    def run(self, progress=None):
        from edgeledger.gateway.anchor.thread import BatcherThread
        from edgeledger.gateway.config import BatchConfig
        from edgeledger.gateway.demo.fleet import Device, Fleet, device_names
        from edgeledger.gateway.ingest.pipeline import Pipeline
        from edgeledger.gateway.ingest.service import IngestService
        from edgeledger.gateway.registry import Registry
        from edgeledger.gateway.store import Store

        opts = self.opts
        t_start = time.monotonic()
        ledger_key = None
        if opts.ledger is not None:
            ledger_key = opts.ledger_key or os.environ.get(LEDGER_KEY_ENV)
            if not ledger_key:
                raise ConfigError("--ledger %s needs a funded account key: --ledger-key or %s"
                                  % (opts.ledger, LEDGER_KEY_ENV))
        tmp = None
        if opts.out:
            root = os.path.abspath(opts.out)
            os.makedirs(root, exist_ok=True)
            if os.path.exists(os.path.join(root, "gateway.db")):
                raise ConfigError("--out %s already holds a gateway store: choose a new or empty folder" % root)
        else:
            root = tmp = tempfile.mkdtemp(prefix="edgeledger-demo-")
        broker = fleet = service = batcher = store = monitor = None
        try:
            broker_url = opts.broker
            if broker_url is None:
                from edgeledger.gateway.demo.broker import EmbeddedBroker

                broker = EmbeddedBroker().start()
                broker_url = broker.url
                self.say("broker   embedded amqtt on %s" % broker_url)
            else:
                self.say("broker   %s" % broker_url)

            if opts.ledger is None:
                ledger, owner, gw_key = _open_embedded_ledger(self.site)
                self.say("ledger   embedded py-evm, chain id %d, contract %s" % (ledger.chain_id, ledger.address))
            else:
                ledger, owner, gw_key = _open_jsonrpc_ledger(opts.ledger, ledger_key, self.site)
                self.say("ledger   %s, chain id %d, contract %s%s" % (
                    opts.ledger, ledger.chain_id, ledger.address,
                    " (mines only on transactions: the gateway mines a block while a batch waits for confirmations)"
                    if ledger.mines_on_demand else ""))

            store_path = os.path.join(root, "gateway.db")
            store = Store(store_path)
            store.set_ledger_meta({"backend": ledger.name, "chain_id": ledger.chain_id,
                                   "contract": ledger.address, "gateway": ledger.account})
            registry = Registry(store)
            devices = [Device(name, kind, alg, self.site, broker_url, os.path.join(root, "devices", name),
                              opts.readings, opts.interval_s)
                       for name, kind, alg in device_names(opts.devices)]
            for d in devices:
                registry.register(d.name, self.site, d.signer.alg, d.signer.public_key, d.signer.kid)
            _register_on_chain(owner, registry, self.site, devices)
            self.say("devices  %d on site %s (%s), keys registered in the gateway and on chain" % (
                len(devices), self.site, ", ".join(sorted(set("%s %s" % (d.kind, d.alg) for d in devices)))))
            _write_gateway_toml(os.path.join(root, "gateway.toml"), broker_url, self.site, opts, ledger, gw_key)

            pipeline = Pipeline(store, registry)
            client_id = "el-gw-" + self.site
            service = IngestService(pipeline, broker_url, client_id, sites=[self.site])
            # Devices start once the broker has granted the gateway's subscriptions (SUBACK):
            # on a broker without the gateway's session yet, earlier readings would have no
            # subscriber (they would come again after resend_after_s, but a demo should not wait).
            service.start()
            if not service.subscribed.wait(CONNECT_TIMEOUT_S):
                raise ConfigError("the gateway could not subscribe at the broker %s within %.0f s"
                                  % (broker_url, CONNECT_TIMEOUT_S))
            batcher = BatcherThread(store_path, ledger, BatchConfig(opts.batch_size, opts.batch_age_s), CONFIRMATIONS)
            batcher.start()
            fleet = Fleet(devices)
            fleet.start()
            t_run = time.monotonic()

            monitor = Store(store_path)
            expected = opts.devices * opts.readings
            rates = _Rates()
            timed_out = False
            while True:
                stored = monitor.count_messages()
                anchored = monitor.messages_in_batches(ANCHORED)
                sent = fleet.sent()
                now = time.monotonic()
                rates.add(now, (sent, stored, anchored))
                if progress is not None:
                    progress(sent, stored, anchored, expected, rates)
                if fleet.done() and stored >= expected and anchored >= stored:
                    break
                if fleet.error is not None:
                    raise fleet.error
                if now - t_run > opts.timeout_s:
                    timed_out = True
                    break
                time.sleep(REFRESH_S)
            run_s = time.monotonic() - t_run
            fleet_sent, resends = fleet.sent(), fleet.resends()
            ledger_error = batcher.error
            fleet.stop()
            service.stop()
            batcher.stop()  # the embedded chain is not thread-safe: no anchoring while verifying
            fleet = service = batcher = None
            with store.lock:  # the service saves counters at most once a second: save the last ones
                store.save_counters(pipeline.counters)
            counters = dict(pipeline.counters)
            if broker is None:
                _tidy_broker(broker_url, client_id, self.site, devices)

            result = self._check(monitor, ledger, devices, root if opts.out else None)
            if timed_out and ledger_error is not None:
                result["failures"].append("ledger: %s" % ledger_error)
            per_device = result.pop("per_device")
            rows = distinct = anchored = 0
            for d in devices:
                r, n, a = _per_device(monitor, d.name, opts.readings)
                rows, distinct, anchored = rows + r, distinct + n, anchored + a
                per_device[d.name].update({"kind": d.kind, "alg": d.alg, "sent": d.sent, "stored": n, "anchored": a})
            batches = monitor.batch_summary().by_state.get(ANCHORED, 0)
            result.update({
                "sent": fleet_sent, "stored": distinct, "anchored": anchored,
                "lost": expected - distinct, "duplicated": rows - distinct,
                "rejected": counters.get("rejected", 0), "redelivered": counters.get("duplicates", 0),
                "resends": resends, "devices": opts.devices, "readings": opts.readings, "expected": expected,
                "batches": batches, "timed_out": timed_out, "run_s": round(run_s, 3),
                "elapsed_s": round(time.monotonic() - t_start, 3),
                "broker": "embedded" if broker is not None else broker_url,
                "ledger": "embedded" if opts.ledger is None else opts.ledger,
                "chain_id": ledger.chain_id, "contract": ledger.address, "site": self.site,
                "out": root if opts.out else None,
            })
            result["ok"] = (not timed_out and result["lost"] == 0 and result["duplicated"] == 0
                            and anchored == distinct and result["verified"] == result["checked"]
                            and result["checked"] > 0 and result["tamper_rejected"])
            result["per_device"] = per_device
            self.result = result
            return result
        finally:
            for thing in (fleet, service, batcher):
                if thing is not None:
                    try:
                        thing.stop()
                    except Exception as e:  # already stopped, or stopping after a failure
                        log.debug("stopping %s: %s", thing, e)
            for st in (monitor, store):
                if st is not None:
                    st.close()
            if broker is not None:
                broker.stop()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _check(self, store, ledger, devices, out_root):
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


def _tidy_broker(url, client_id, site, devices):
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

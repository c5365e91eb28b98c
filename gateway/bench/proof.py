"""``edgeledger bench proof``: proof bundle size, offline verify time, on-chain verify gas.

* For each ``--sizes`` (1k, 100k, 1M leaves): a tree built with the batcher's own code
  (protocols/merkle.py ``levels``, read back with ``path_from_levels`` from the stored form,
  gateway/store ``PackedTree``) over one real signed reading
  and synthetic leaves; the reading's bundle (protocols/bundle.py) is encoded and
  ``bundle_bytes`` reported; ``verify_ms`` is ``edgeledger verify``'s offline check
  (gateway/verifier.py ``verify_bundle``: decode, key binding, Ed25519 signature, audit
  path), median of ``--repeat`` runs. Baselines: the message alone (bytes) and one
  Ed25519 verification (ms), the floor of any offline check.
* ``verify_gas_by_depth``: execution gas of the contract's ``verify`` view (RFC 9162
  inclusion with the sha256 precompile) for paths of depth 1..20, from
  ``ledger.execution_gas`` on anvil (london): eth_estimateGas minus the intrinsic cost.
* ``light_client_verify_ms``: ``edgeledger verify --rpc`` of one real anchored bundle against
  anvil on this machine (one block header and one eth_getProof of five storage words, each
  checked up to the state root), median; ``key_registry_gas``: gas used by authorizeGateway,
  registerKey (an Ed25519 key, and an SM2 key), rotateKey (open, then sealing the last seq) and
  revokeKey.
* ``sm3_gas_per_block``, ``sm3_gas_depth20`` (and ``sha256_gas_depth20`` beside it): what
  checking an SM3 tree on chain would cost, SM3 being EVM code where SHA-256 has a precompile
  (bench/sm3gas.py, contracts/SM3Gas.sol): one 64-byte SM3 block, and one reading's inclusion
  at depth 20 (its leaf hash over a 200-byte message, then 20 node hashes).

Targets: bundle <= 1.2 KB at 1M leaves; offline verify < 2 ms; verify < 30k gas at depth 20.
"""
import argparse
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from edgeledger.gateway.bench import report

if TYPE_CHECKING:
    from edgeledger.gateway.anchor.ledger import JsonRpcLedger
    from edgeledger.gateway.bench.anvil import Anvil
    from edgeledger.protocols.batch import BatchHeader

Log = Callable[[str], object]

DEPTHS = (1, 2, 4, 8, 12, 16, 20)
BUNDLE_TARGET_BYTES = 1200


def _bundle(size: int, message: bytes, index: int) -> tuple[list[bytes], "BatchHeader", float]:
    from edgeledger.gateway.store import PackedTree
    from edgeledger.protocols import merkle
    from edgeledger.protocols.batch import BatchHeader

    leaves = [merkle.leaf_hash(b"synthetic %d" % i) for i in range(size)]
    leaves[index] = merkle.leaf_hash(message)
    t0 = time.perf_counter()
    levels = merkle.levels(leaves)
    build_s = time.perf_counter() - t0
    blob = PackedTree.pack(levels)
    path = merkle.path_from_levels(PackedTree(blob, size), index)
    root = levels[-1][0]
    now = int(time.time())  # the message was signed a moment ago: inside the header's time range
    header = BatchHeader(os.urandom(20), 7, os.urandom(32), root, size, now - 60, now + 60)
    return path, header, build_s


def bundle_figures(sizes: Sequence[int], repeat: int, log: Log) -> tuple[dict[str, dict[str, Any]], int]:
    from edgeledger.gateway.proofs import verifier
    from edgeledger.gateway.bench import loadgen
    from edgeledger.protocols.bundle import Bundle
    from edgeledger.protocols.cose import EDDSA

    name, seed = loadgen.device_specs(1, "proof")[0]
    dev = loadgen.DeviceChain(name, seed)
    message = dev.next()
    out: dict[str, dict[str, Any]] = {}
    for size in sizes:
        log("tree of %d leaves..." % size)
        index = size // 2 + 1 if size > 2 else 0
        path, header, build_s = _bundle(size, message, index)
        b = Bundle(message, index, path, header, 31337, os.urandom(20), os.urandom(32), 123456, os.urandom(32),
                   EDDSA, dev.public_key, loadgen.SITE, 100, int(time.time()) - 3600, 1)
        data = b.encode()
        verifier.verify_bundle(data)  # must pass before it is timed
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            verifier.verify_bundle(data)
            times.append(time.perf_counter() - t0)
        out[str(size)] = {"bundle_bytes": len(data), "path_length": len(path),
                          "verify_ms": statistics.median(times) * 1e3,
                          "verify_p99_ms": sorted(times)[int(0.99 * (len(times) - 1))] * 1e3, "tree_build_s": build_s}
    return out, len(message)


def ed25519_verify_ms(repeat: int = 2000) -> float:
    from nacl.signing import SigningKey

    sk = SigningKey.generate()
    vk = sk.verify_key
    sm = sk.sign(os.urandom(150))
    t0 = time.perf_counter()
    for _ in range(repeat):
        vk.verify(sm)
    return (time.perf_counter() - t0) / repeat * 1e3


def verify_gas(node: "Anvil", depths: Sequence[int] = DEPTHS) -> dict[str, int]:
    from edgeledger.protocols import merkle

    out: dict[str, int] = {}
    ledger = node.ledger()
    for d in depths:
        size = 1 << d
        index = size - 1
        leaf = merkle.leaf_hash(b"reading at depth %d" % d)
        path = [os.urandom(32) for _ in range(d)]
        root = merkle.root_from_inclusion_proof(leaf, index, size, path)
        if not ledger.verify(leaf, index, size, path, root):
            raise RuntimeError("the contract refused a valid path of depth %d" % d)
        out[str(d)] = ledger.execution_gas("verify", leaf, index, size, path, root)
    return out


def chain_figures(node: "Anvil", repeat: int, log: Log = print) -> dict[str, Any]:
    """Gas of the key-registry calls (each sent once, gas used from its receipt) and the time
    of one light-client verification (``edgeledger verify --rpc`` on a real anchored bundle:
    one block header and one eth_getProof of five words, checked to the state root), median of
    ``repeat`` runs against this anvil."""
    from edgeledger.gateway.anchor.ledger import JsonRpcLedger
    from edgeledger.agent import signer as signers
    from edgeledger.gateway.bench import loadgen
    from edgeledger.gateway.proofs import verifier
    from edgeledger.protocols.cose import EDDSA, SM2

    key = node.new_funded_key()
    ledger = JsonRpcLedger(node.url, key=key)
    ledger.deploy(owner_key=key)

    def gas(tx: bytes) -> int:
        used: int = ledger.wait_for_receipt(tx)["gasUsed"]
        return used

    out = {"authorize_gateway": gas(ledger.authorize_gateway(loadgen.SITE, ledger.account))}
    pub = os.urandom(32)
    out["register_key"] = gas(ledger.register_key(loadgen.SITE, "bench-gas", EDDSA, pub))
    sm2 = signers.generate(SM2, "bench-gas-sm2")  # a 65-byte key: one word more than Ed25519's
    out["register_key_sm2"] = gas(ledger.register_key(loadgen.SITE, "bench-gas-sm2", SM2, sm2.public_key))
    kid = hashlib.sha256(pub).digest()[:16]
    out["rotate_key"] = gas(ledger.rotate_key(loadgen.SITE, kid, int(time.time()) + 3600))
    out["seal_last_seq"] = gas(ledger.rotate_key(loadgen.SITE, kid, int(time.time()) + 3600, 10))
    out["revoke_key"] = gas(ledger.revoke_key(loadgen.SITE, kid, int(time.time()), 5))

    log("one bundle anchored on anvil, verified as a light client...")
    data = _anchored_bundle(node, ledger)
    trust = verifier.TrustRoot(ledger.chain_id, ledger.address)
    verifier.verify_bundle(data, rpc=node.url, min_confirmations=1, trust=trust)  # must pass before it is timed
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        verifier.verify_bundle(data, rpc=node.url, min_confirmations=1, trust=trust)
        times.append(time.perf_counter() - t0)
    return {"key_registry_gas": out, "light_client_verify_ms": statistics.median(times) * 1e3,
            "light_client_bundle_bytes": len(data)}


def _anchored_bundle(node: "Anvil", ledger: "JsonRpcLedger") -> bytes:
    """The encoded bundle of one reading that the real Pipeline stored and the Batcher
    anchored through ``ledger`` on ``node``. Raises RuntimeError if it is not anchored in 60 s."""
    import tempfile

    from edgeledger.gateway import proofs
    from edgeledger.gateway.anchor import keysync
    from edgeledger.gateway.anchor.batcher import Batcher
    from edgeledger.gateway.bench import loadgen
    from edgeledger.gateway.ingest.pipeline import Pipeline
    from edgeledger.gateway.registry import Registry
    from edgeledger.gateway.store import Store
    from edgeledger.protocols.cose import EDDSA

    with tempfile.TemporaryDirectory(prefix="el-bench-proof-") as root:
        st = Store(os.path.join(root, "gw.db"))
        reg = Registry(st)
        (name, seed), = loadgen.device_specs(1, "lc")
        dev = loadgen.DeviceChain(name, seed)
        reg.register(name, loadgen.SITE, EDDSA, loadgen.public_key(seed), dev.kid)
        keysync.sync_chain(reg, ledger)
        pipe = Pipeline(st, reg)
        for _ in range(8):
            pipe.process(dev.topic, dev.next())
        pipe.commit()
        st.set_ledger_meta({"chain_id": ledger.chain_id, "contract": ledger.address, "gateway": ledger.account})
        batcher = Batcher(st, ledger, max_size=1000, max_age_s=0, confirmations=1)
        deadline = time.monotonic() + 60
        while batcher.anchored_messages() < 8:
            if time.monotonic() > deadline:
                raise RuntimeError("the bench batch was not anchored within 60 s")
            batcher.step()
            node.mine(1)
        data: bytes = proofs.bundle_for(st, name, 5, ledger.chain_id, ledger.address).encode()
        st.close()
    return data


def run(sizes: Sequence[int] = (1000, 100000, 1000000), repeat: int = 200,
        log: Log | None = print) -> dict[str, Any]:
    log = log or (lambda *a: None)
    out: dict[str, Any] = {"sizes": list(sizes), **report.context()}
    by, msg_len = bundle_figures(sizes, repeat, log)
    out["by_size"] = by
    out["message_bytes"] = msg_len
    out["ed25519_verify_ms"] = ed25519_verify_ms()
    top = str(max(sizes))
    out["bundle_bytes"] = by[top]["bundle_bytes"]
    out["verify_ms"] = max(v["verify_ms"] for v in by.values())
    out["verify_ratio"] = out["verify_ms"] / out["ed25519_verify_ms"]
    from edgeledger.gateway.bench.anvil import Anvil

    with Anvil() as node:
        log("on-chain verify gas by depth (anvil)...")
        out["verify_gas_by_depth"] = verify_gas(node)
        out["verify_gas_depth20"] = out["verify_gas_by_depth"].get("20")
        out.update(chain_figures(node, max(3, repeat // 10), log))
        log("SM3 tree verification on chain (SM3Gas.sol, anvil)...")
        from edgeledger.gateway.bench import sm3gas

        out.update(sm3gas.measure(node))
    return out


def print_table(r: dict[str, Any], out: Log = print) -> None:
    rows: list[tuple[object, object, object]] = [("signed message alone (bytes)", r["message_bytes"], "baseline for bundle size"),
            ("one Ed25519 verification (ms)", r["ed25519_verify_ms"], "baseline for verify time")]
    for size in r["sizes"]:
        s = r["by_size"][str(size)]
        rows.append(("%d leaves: bundle bytes" % size, s["bundle_bytes"], "path of %d hashes" % s["path_length"]))
        rows.append(("%d leaves: offline verify (ms)" % size, s["verify_ms"],
                     "%.1fx one Ed25519 verify; p99 %.2f ms"
                     % (s["verify_ms"] / r["ed25519_verify_ms"], s["verify_p99_ms"])))
    for d, gas in sorted(r["verify_gas_by_depth"].items(), key=lambda kv: int(kv[0])):
        rows.append(("on-chain verify, depth %s (execution gas)" % d, gas, ""))
    rows.append(("light-client verify of one bundle (ms)", r["light_client_verify_ms"],
                 "edgeledger verify --rpc, anvil on this machine"))
    rows.append(("SM3 in EVM code, one 64-byte block (execution gas)", r["sm3_gas_per_block"],
                 "no SM3 precompile: contracts/SM3Gas.sol"))
    rows.append(("SM3 tree: one reading's inclusion, depth 20 (execution gas)", r["sm3_gas_depth20"],
                 "%.0fx the same check with the sha256 precompile (%d)"
                 % (r["sm3_gas_depth20"] / r["sha256_gas_depth20"], r["sha256_gas_depth20"])))
    for name, gas in sorted(r["key_registry_gas"].items()):
        rows.append(("%s (gas used)" % name, gas, "key registry, once per key or gateway"))
    report.table("proof: bundles and verification", rows, out)
    report.print_context(r, out)


def main(args: argparse.Namespace) -> int:
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    r = run(sizes, args.repeat, log=None if args.json else print)
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print_table(r)
    return 0

"""What verifying an SM3 Merkle tree on chain would cost: SM3Gas.sol on anvil.

The EVM has a SHA-256 precompile and no SM3, so an SM3 tree could only be checked on chain by
SM3 written in EVM code. ``gateway/anchor/contracts/SM3Gas.sol`` is such an implementation (GB/T
32905 over 32-bit words, compiled with solcjs by ``tools/compile_contract.py SM3Gas``, the
artifact committed beside its source). Its code is placed on anvil (``anvil_setCode``: no
deployment transaction) and each figure is eth_estimateGas of one view call minus the intrinsic
cost (21000 + calldata), as ``edgeledger bench proof`` measures the anchor's ``verify``:

* ``sm3_gas_per_block``: the cost of one more 64-byte block (SM3 of 1..4 blocks, the slope);
* ``sm3_gas_depth20`` / ``sha256_gas_depth20``: RFC 9162 inclusion of one reading (its leaf
  hash over the message bytes, then 20 node hashes: a batch of up to 2**20 readings) with SM3
  in EVM code / with the sha256 precompile, in the same contract and the same loop.

Every call's answer is checked first: the contract's SM3 equals OpenSSL's for each input, and
the path it is given verifies (and a wrong root does not). Raises RuntimeError otherwise.
"""
import hashlib
import json
import os
from typing import Any

# Where the measurement contract's code is placed on the test chain (any free address).
SM3GAS_ADDRESS = "0x00000000000000000000000000000000005e3a55"
DEPTH = 20
# A signed reading of one record is ~200 bytes (docs/wire-format.md vector 1: 194): four SM3
# blocks for its leaf hash.
ENTRY_BYTES = 200


def load_artifact() -> dict[str, Any]:
    """The committed SM3Gas compiler output (abi, deployedBytecode, ...)."""
    from edgeledger.gateway import anchor

    path = os.path.join(os.path.dirname(anchor.__file__), "contracts", "SM3Gas.json")
    with open(path, encoding="utf-8") as f:
        art: dict[str, Any] = json.load(f)
    return art


class SM3Gas:
    """The SM3Gas code on an anvil ``node`` (gateway/bench/anvil.py or tests/support/anvil.py)."""

    def __init__(self, node: Any) -> None:
        from web3 import Web3

        art = load_artifact()
        self.node = node
        node.rpc("anvil_setCode", SM3GAS_ADDRESS, art["deployedBytecode"])
        self.contract = Web3().eth.contract(abi=art["abi"])

    def _data(self, fn: str, *args: Any) -> str:
        data: str = self.contract.encode_abi(fn, list(args))
        return data

    def call(self, fn: str, *args: Any) -> bytes:
        """The raw return data of a view call."""
        out = self.node.rpc("eth_call", {"to": SM3GAS_ADDRESS, "data": self._data(fn, *args)}, "latest")
        return bytes.fromhex(out[2:])

    def gas(self, fn: str, *args: Any) -> int:
        """Execution gas of a view call: eth_estimateGas minus the intrinsic cost."""
        from edgeledger.gateway.anchor.ledger.contract import intrinsic_gas

        data = self._data(fn, *args)
        estimate = int(self.node.rpc("eth_estimateGas", {"to": SM3GAS_ADDRESS, "data": data}), 16)
        return estimate - intrinsic_gas(bytes.fromhex(data[2:]))

    def sm3(self, data: bytes) -> bytes:
        return self.call("sm3", data)[:32]

    def verifies(self, fn: str, entry: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
        return self.call(fn, entry, index, size, path, root)[31] == 1


def _path(digest: Any, entry: bytes, depth: int) -> tuple[int, int, list[bytes], bytes]:
    from edgeledger.protocols import merkle

    size = 1 << depth
    index = size - 1
    path = [hashlib.sha256(b"sibling %d" % i).digest() for i in range(depth)]
    root = merkle.root_from_inclusion_proof(merkle.leaf_hash(entry, digest), index, size, path, digest)
    return index, size, path, root


def measure(node: Any, depth: int = DEPTH, entry_bytes: int = ENTRY_BYTES) -> dict[str, Any]:
    """The figures of the module docstring, each call's answer checked first."""
    from edgeledger.protocols import hashes

    sm3 = hashes.function(hashes.SM3)
    c = SM3Gas(node)
    by_blocks = {}
    for blocks in (1, 2, 3, 4):
        data = bytes(range(256))[:64 * blocks - 9]  # padding adds 9 bytes at least
        if c.sm3(data) != sm3(data):
            raise RuntimeError("SM3Gas.sm3 of %d bytes is %s, OpenSSL says %s" % (len(data), c.sm3(data).hex(),
                                                                                  sm3(data).hex()))
        by_blocks[blocks] = c.gas("sm3", data)
    entry = bytes(range(256))[:entry_bytes]
    out: dict[str, Any] = {"sm3_gas_by_blocks": by_blocks, "sm3_gas_per_block": (by_blocks[4] - by_blocks[1]) // 3,
                           "sm3gas_entry_bytes": entry_bytes, "sm3gas_depth": depth}
    for fn, digest, key in (("verifyEntry", sm3, "sm3_gas_depth20"),
                            ("verifyEntrySha256", hashes.function(hashes.SHA256), "sha256_gas_depth20")):
        index, size, path, root = _path(digest, entry, depth)
        if not c.verifies(fn, entry, index, size, path, root) or c.verifies(fn, entry, index, size, path, bytes(32)):
            raise RuntimeError("SM3Gas.%s does not tell a valid path of depth %d from a wrong root" % (fn, depth))
        out[key] = c.gas(fn, entry, index, size, path, root)
    return out

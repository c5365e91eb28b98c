"""The compiled EdgeLedgerAnchor (contracts/EdgeLedgerAnchor.json, committed and checked
against its source by tests/gateway/anchor/ledger/test_artifact.py) and decoding the contract's reverts."""
import ast
import json
import os
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3 import exceptions as w3exc

from edgeledger.gateway.anchor.ledger.errors import ArtifactError

ARTIFACT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "contracts",
                             "EdgeLedgerAnchor.json")
# The contract version this module's ABI speaks (EdgeLedgerAnchor.VERSION).
CONTRACT_VERSION = 2
# Revert payloads that are not custom errors (Solidity ABI spec, "Errors").
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

# -- ABI values ---------------------------------------------------------------------------

def word32(v: str | bytes | bytearray) -> bytes:
    v = raw_bytes(v)
    if len(v) != 32:
        raise ValueError("expected 32 bytes, found %d" % len(v))
    return v


def raw_bytes(v: str | bytes | bytearray) -> bytes:
    if isinstance(v, str):
        return bytes.fromhex(v[2:] if v.startswith("0x") else v)
    return bytes(v)


def hex0x(b: bytes | bytearray) -> str:
    return "0x" + bytes(b).hex()


# -- the artifact -------------------------------------------------------------------------

_ARTIFACT: dict[str, Any] | None = None


def load_artifact() -> dict[str, Any]:
    """The committed compiler output. Raises ArtifactError if it is missing or broken."""
    global _ARTIFACT
    if _ARTIFACT is None:
        try:
            with open(ARTIFACT_PATH, "r", encoding="utf-8") as f:
                art = json.load(f)
            art["abi"], art["bytecode"]
        except (OSError, ValueError, KeyError) as e:
            raise ArtifactError("expected the contract artifact at %s: %s" % (ARTIFACT_PATH, e)) from e
        _ARTIFACT = art
    return _ARTIFACT


def error_table(abi: list[dict[str, Any]]) -> dict[bytes, tuple[str, list[str], list[str]]]:
    """selector -> (name, [arg names], [arg types]) for every custom error in the ABI."""
    table = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        sig = "%s(%s)" % (item["name"], ",".join(types))
        table[keccak(text=sig)[:4]] = (item["name"], [i["name"] for i in item["inputs"]], types)
    table[_ERROR_STRING_SELECTOR] = ("Error", ["message"], ["string"])
    table[_PANIC_SELECTOR] = ("Panic", ["code"], ["uint256"])
    return table


def decode_revert(data: bytes | None, table: dict[bytes, tuple[str, list[str], list[str]]] | None = None
                  ) -> tuple[str, dict[str, Any]]:
    """(name, {arg: value}) for revert data; ("UnknownRevert", {"data": bytes}) if not in the ABI."""
    if table is None:
        table = error_table(load_artifact()["abi"])
    data = bytes(data or b"")
    entry = table.get(data[:4])
    if entry is None:
        return "UnknownRevert", {"data": data}
    name, names, types = entry
    try:
        values = abi_decode(types, data[4:])
    except Exception:
        return "UnknownRevert", {"data": data}
    checked = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, values)]
    return name, dict(zip(names, checked))


def revert_data(exc: BaseException) -> bytes | None:
    """Revert payload carried by a web3 / eth-tester exception, or None."""
    if isinstance(exc, w3exc.ContractLogicError) and exc.data:
        d = exc.data
        return raw_bytes(d) if isinstance(d, str) else bytes(cast(Any, d))  # web3 types data as str | dict
    msg = str(exc.args[0]) if getattr(exc, "args", None) else ""
    # eth-tester: TransactionFailed("execution reverted: b'\x0b\x1c...'")
    marker = "execution reverted: "
    if type(exc).__name__ == "TransactionFailed" and msg.startswith(marker):
        rest = msg[len(marker):]
        if rest[:2] in ("b'", 'b"'):
            try:
                return ast.literal_eval(rest)
            except (ValueError, SyntaxError):
                return None
        return b""
    return None


_KNOWN_CODE: dict[bytes, int] | None = None


def known_code_hashes() -> dict[bytes, int]:
    """{keccak256(runtime code): contract version} of the EdgeLedgerAnchor builds this release
    verifies against. ``owner`` is in storage, so every deployment of a build has its hash."""
    global _KNOWN_CODE
    if _KNOWN_CODE is None:
        art = load_artifact()
        _KNOWN_CODE = {keccak(bytes.fromhex(art["deployedBytecode"][2:])): CONTRACT_VERSION}
    return _KNOWN_CODE

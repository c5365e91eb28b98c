"""The committed artifact is what the source compiles to (DESIGN.md §6)."""
import importlib.util
import json
import os

from edgeledger.gateway.anchor import ledger

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def _compile_tool():
    tool = os.path.join(ROOT, "tools", "compile_contract.py")
    spec = importlib.util.spec_from_file_location("compile_contract", tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_artifact_matches_fresh_compile():
    tool = _compile_tool()
    fresh = tool.compile_source()
    committed = ledger.load_artifact()
    # Bytecode includes the CBOR metadata (source keccak, compiler, settings): a byte-exact
    # match proves the artifact comes from this source with these settings.
    assert fresh["bytecode"] == committed["bytecode"]
    assert fresh["deployedBytecode"] == committed["deployedBytecode"]
    assert fresh["abi"] == committed["abi"]
    assert fresh["compiler"] == committed["compiler"]
    assert fresh["settings"] == committed["settings"]
    assert committed["settings"]["evmVersion"] == "london"
    assert committed["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert tool.dump_artifact(fresh) == open(tool.ARTIFACT_PATH, encoding="utf-8").read()


def _opcodes(code):
    """Opcodes of EVM bytecode, skipping PUSH1..PUSH32 immediates."""
    i = 0
    while i < len(code):
        op = code[i]
        yield op
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)


def test_runtime_has_no_post_london_opcodes():
    code = bytes.fromhex(ledger.load_artifact()["deployedBytecode"][2:])
    meta_len = int.from_bytes(code[-2:], "big")  # solc appends CBOR metadata + 2-byte length
    body = code[: -(meta_len + 2)]
    ops = set(_opcodes(body))
    # PUSH0 (Shanghai, EIP-3855), TLOAD/TSTORE/MCOPY (Cancun), BLOBHASH/BLOBBASEFEE.
    assert not ops & {0x5F, 0x5C, 0x5D, 0x5E, 0x49, 0x4A}


def test_committed_artifact_is_json_with_expected_fields():
    with open(ledger.ARTIFACT_PATH, encoding="utf-8") as f:
        art = json.load(f)
    for field in ("abi", "bytecode", "deployedBytecode", "compiler", "settings", "sourceName"):
        assert field in art
    assert art["sourceName"] == "gateway/contracts/EdgeLedgerAnchor.sol"

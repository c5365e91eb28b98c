"""Compile the anchor contract with solcjs and write its committed artifact.

    .venv/bin/python tools/compile_contract.py            # write gateway/anchor/contracts/EdgeLedgerAnchor.json
    .venv/bin/python tools/compile_contract.py --check    # exit 1 if the artifact is stale
    .venv/bin/python tools/compile_contract.py SM3Gas     # the SM3 gas-measurement contract (SM3Gas.json)

The same settings serve every contract of ``CONTRACTS``: the anchor, and ``SM3Gas``, which
``edgeledger bench proof`` runs to measure what SM3 trees would cost to verify on chain.

solcjs comes from npm (`npm ci` at the repository root installs the version pinned in
package.json into node_modules/). The build is reproducible: the standard-JSON input is
fixed (same source unit name, same settings, every option spelled out), so the metadata
hash appended to the bytecode — which covers the source's keccak256, its unit name, the
compiler version and the settings — comes out the same on every machine. A source checked
out with CRLF line endings would change that hash.

Raises (from ``compile_source``/``load_artifact``): ``CompileError`` when solcjs is missing,
fails, or reports an error.
"""
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRACT_NAME = "EdgeLedgerAnchor"
# The source unit name is part of the metadata hash, so it stays the path the contract was first
# compiled at (gateway/contracts/) wherever the file lives: the bytecode, and with it every
# deployment's code hash, does not change when the repository is reorganised.
SOURCE_UNIT = "gateway/contracts/EdgeLedgerAnchor.sol"
SOURCE_PATH = os.path.join(ROOT, "gateway", "anchor", "contracts", CONTRACT_NAME + ".sol")
ARTIFACT_PATH = os.path.join(ROOT, "gateway", "anchor", "contracts", CONTRACT_NAME + ".json")
# contract name -> (its source unit name (see SOURCE_UNIT), settings that differ from SETTINGS);
# each lives in gateway/anchor/contracts/. SM3Gas keeps the eight SM3 state words and the round
# temporaries on the stack, which only the IR pipeline fits into the EVM's 16 reachable slots.
CONTRACTS: dict[str, tuple[str, dict[str, Any]]] = {
    CONTRACT_NAME: (SOURCE_UNIT, {}),
    "SM3Gas": ("gateway/anchor/contracts/SM3Gas.sol", {"viaIR": True}),
}
SOLCJS = os.path.join(ROOT, "node_modules", ".bin", "solcjs")
# The oldest target chains (Besu/FISCO BCOS/Energy Web deployments) lack PUSH0 (Shanghai)
# and the Cancun opcodes; london bytecode runs on all of them.
OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]
SETTINGS = {
    "evmVersion": "london",
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": False,
    "metadata": {"bytecodeHash": "ipfs", "useLiteralContent": False, "appendCBOR": True},
    "remappings": [],
    "libraries": {},
    "outputSelection": {SOURCE_UNIT: {CONTRACT_NAME: OUTPUTS}},
}
# solcjs loads a ~10 MB emscripten build; compiling takes a few seconds.
COMPILE_TIMEOUT_S = 120


class CompileError(RuntimeError):
    """solcjs is missing, failed, or reported an error for the contract."""


def standard_json_input(source_text: str, name: str = CONTRACT_NAME) -> dict[str, Any]:
    return {"language": "Solidity", "sources": {CONTRACTS[name][0]: {"content": source_text}}, "settings": settings(name)}


def settings(name: str = CONTRACT_NAME) -> dict[str, Any]:
    """The standard-JSON settings of contract ``name``."""
    unit, own = CONTRACTS[name]
    return dict(SETTINGS, **own, outputSelection={unit: {name: OUTPUTS}})


def paths(name: str = CONTRACT_NAME) -> tuple[str, str]:
    """(source path, artifact path) of contract ``name``."""
    folder = os.path.join(ROOT, "gateway", "anchor", "contracts")
    return os.path.join(folder, name + ".sol"), os.path.join(folder, name + ".json")


def _parse_stdout(out: str) -> dict[str, Any]:
    """solcjs may print a non-JSON line (e.g. a warning) before the JSON document."""
    for i, line in enumerate(out.splitlines()):
        if line.lstrip().startswith("{"):
            doc: dict[str, Any] = json.loads("\n".join(out.splitlines()[i:]))
            return doc
    raise CompileError("expected a JSON document on solcjs stdout, found: %r" % out[:500])


def solc_version() -> str:
    if not os.path.exists(SOLCJS):
        raise CompileError("expected solcjs at %s; run `npm ci` in %s (make test does)" % (SOLCJS, ROOT))
    res = subprocess.run([SOLCJS, "--version"], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    return res.stdout.strip().splitlines()[-1]


def compile_source(source_text: str | None = None, name: str = CONTRACT_NAME) -> dict[str, Any]:
    """Compile contract ``name``; return the artifact dict (abi, bytecode, deployedBytecode, ...)."""
    if source_text is None:
        with open(paths(name)[0], "rb") as f:
            source_text = f.read().decode("utf-8")
    if not os.path.exists(SOLCJS):
        raise CompileError("expected solcjs at %s; run `npm ci` in %s (make test does)" % (SOLCJS, ROOT))
    # stdout goes to a file, not a pipe: node exits before it has flushed a pipe, and solcjs's
    # answer for this contract (~65 KB with its NatSpec) came back cut off at 64 KB.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stdout:
        res = subprocess.run(
            [SOLCJS, "--standard-json"],
            input=json.dumps(standard_json_input(source_text, name)),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=COMPILE_TIMEOUT_S,
        )
        stdout.seek(0)
        text = stdout.read()
    if res.returncode != 0:
        raise CompileError("solcjs exited with %d: %s" % (res.returncode, res.stderr[:2000]))
    out = _parse_stdout(text)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("solc errors:\n" + "\n".join(e.get("formattedMessage", str(e)) for e in errors))
    warnings = [e.get("formattedMessage", "") for e in out.get("errors", []) if e.get("severity") != "error"]
    unit = CONTRACTS[name][0]
    c = out["contracts"][unit][name]
    metadata = json.loads(c["metadata"])
    return {
        "contractName": name,
        "sourceName": unit,
        "compiler": {"name": "solcjs", "version": metadata["compiler"]["version"]},
        "settings": {k: v for k, v in settings(name).items() if k != "outputSelection"},
        "abi": c["abi"],
        "bytecode": "0x" + c["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
        "sourceKeccak256": metadata["sources"][unit]["keccak256"],
        "warnings": warnings,
    }


def dump_artifact(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def load_artifact() -> dict[str, Any]:
    with open(ARTIFACT_PATH, "r", encoding="utf-8") as f:
        artifact: dict[str, Any] = json.load(f)
    return artifact


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = [a for a in argv if not a.startswith("-")] or [CONTRACT_NAME]
    for name in names:
        code = _build(name, "--check" in argv)
        if code:
            return code
    return 0


def _build(name: str, check: bool) -> int:
    artifact_path = paths(name)[1]
    artifact = compile_source(name=name)
    text = dump_artifact(artifact)
    if check:
        with open(artifact_path, "r", encoding="utf-8") as f:
            if f.read() != text:
                print("%s is stale: run tools/compile_contract.py %s" % (artifact_path, name), file=sys.stderr)
                return 1
        print("artifact up to date (%s)" % artifact["compiler"]["version"])
        return 0
    with open(artifact_path, "w", encoding="utf-8") as f:
        f.write(text)
    for w in artifact["warnings"]:
        print(w, file=sys.stderr)
    print("wrote %s (%s, %d bytes deployed)" % (
        os.path.relpath(artifact_path, ROOT), artifact["compiler"]["version"],
        len(artifact["deployedBytecode"]) // 2 - 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

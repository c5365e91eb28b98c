"""SM3Gas.sol, the contract that measures what SM3 trees would cost to verify on chain: its
committed artifact is its source's, its SM3 gives the standard's answers, and its RFC 9162
checks accept the documented vectors and nothing altered."""
import pytest

from edgeledger.gateway.bench import sm3gas
from tests.agent.crypto import vectors
from tests.gateway.anchor.ledger.test_artifact import _compile_tool
from tests.protocols import wire_vectors
from tests.support.anvil import running_anvil

V = wire_vectors.load()
pytestmark = pytest.mark.ledger


def test_sm3gas_artifact_matches_fresh_compile():
    tool = _compile_tool()
    fresh = tool.compile_source(name="SM3Gas")
    committed = sm3gas.load_artifact()
    assert fresh["deployedBytecode"] == committed["deployedBytecode"] and fresh["abi"] == committed["abi"]
    assert committed["settings"]["evmVersion"] == "london" and committed["settings"]["viaIR"] is True
    assert tool.dump_artifact(fresh) == open(tool.paths("SM3Gas")[1], encoding="utf-8").read()


@pytest.fixture(scope="module")
def contract():
    with running_anvil(hardfork="london") as node:
        yield sm3gas.SM3Gas(node)


def test_sm3_in_evm_code_gives_the_standards_answers(contract):
    for message, digest in vectors.SM3:  # GB/T 32905 annex A, examples 1 and 2
        assert contract.sm3(message).hex() == digest
    assert contract.sm3(b"") == V["sm3-empty-root"]
    assert contract.sm3(b"\x00" + V["sm3-message-2"]) == V["sm3-leaf-1"]


def test_rfc9162_checks_accept_the_vectors_and_refuse_alterations(contract):
    path = [V["sm3-leaf-0"], V["sm3-leaf-2"]]
    entry, root = V["sm3-message-2"], V["sm3-root-123"]
    assert contract.verifies("verifyEntry", entry, 1, 3, path, root)
    bad_entry = bytearray(entry)
    bad_entry[50] ^= 1
    for args in ((bytes(bad_entry), 1, 3, path, root), (entry, 0, 3, path, root), (entry, 1, 3, path[::-1], root),
                 (entry, 1, 3, path, V["root-12"]), (entry, 3, 3, path, root)):
        assert not contract.verifies("verifyEntry", *args)
    # the SHA-256 loop beside it takes vector 3's SHA-256 tree, and not the SM3 one
    assert contract.verifies("verifyEntrySha256", V["message-2"], 1, 2, [V["leaf-1"]], V["root-12"])
    assert not contract.verifies("verifyEntrySha256", entry, 1, 3, path, root)

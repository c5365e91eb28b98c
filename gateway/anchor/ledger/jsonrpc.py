"""``JsonRpcLedger``: any Ethereum JSON-RPC endpoint over HTTP(S) (anvil in the tests; Besu,
Energy Web Chain, ... in production)."""
from typing import Any

from web3 import Web3

from edgeledger.gateway.anchor.ledger.contract import Ledger
from edgeledger.gateway.anchor.ledger.errors import LedgerUnavailable
from edgeledger.gateway.anchor.ledger.transport import RPC_TIMEOUT_S
from edgeledger.gateway.errors import LedgerError


class JsonRpcLedger(Ledger):
    """Any Ethereum JSON-RPC endpoint over HTTP(S)."""

    name = "jsonrpc"

    def __init__(self, url: str, key: str | bytes | None = None, fees: dict[str, Any] | None = None,
                 timeout: float = RPC_TIMEOUT_S) -> None:
        self.url = url
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        Ledger.__init__(self, w3, key=key, fees=fees)
        self.key = key
        self.proof_rpc = url  # the light client talks to the node directly

    def mines_only_on_transactions(self) -> bool:
        """True if the node is a development node (anvil, Hardhat) that mines a block only
        when a transaction arrives (automine, no interval mining): confirmations of the last
        batch would never come. False for any other node (the question is not understood).
        Raises LedgerUnavailable."""
        for prefix in ("anvil", "hardhat"):
            try:
                automine = self.raw_request(prefix + "_getAutomine", [])
            except LedgerUnavailable:
                raise
            except LedgerError:
                continue
            if not automine:
                return False
            try:
                interval = self.raw_request("anvil_getIntervalMining", []) if prefix == "anvil" else None
            except LedgerUnavailable:
                raise
            except LedgerError:
                interval = None
            return not interval
        return False

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks on a development node (``evm_mine``)."""
        for _ in range(blocks):
            self.raw_request("evm_mine", [])

    def raw_request(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC request as sent (no web3 parameter formatting); returns ``result``.
        Raises LedgerUnavailable or LedgerError (the node's error object)."""
        resp = self._rpc(self.w3.provider.make_request, method, params)
        if "error" in resp:
            raise LedgerError("%s %s: node answered error %s" % (self.name, method, resp["error"]))
        return resp.get("result")

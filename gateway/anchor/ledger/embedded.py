"""``EmbeddedLedger``: py-evm through eth-tester, in-process (the demo, unit tests). Every
transaction is mined at once."""
import os
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from web3 import Web3

from edgeledger.gateway.anchor.ledger.contract import Ledger
from edgeledger.gateway.anchor.ledger.transport import TRANSFER_GAS


class EmbeddedLedger(Ledger):
    """py-evm in-process via eth-tester (automine: every transaction is its own block).

    With no ``key``, a fresh funded key is generated. ``fund`` and ``new_funded_key`` draw
    on the tester's prefunded accounts.
    """

    name = "embedded"
    mines_on_demand = True  # eth-tester mines only on transactions
    FUND_WEI = 10**20

    def __init__(self, key: str | bytes | None = None, fees: dict[str, Any] | None = None) -> None:
        from web3 import EthereumTesterProvider

        provider = EthereumTesterProvider()
        tester: Any = provider.ethereum_tester
        self.tester = tester
        w3 = Web3(provider)
        self._bank = Account.from_key(tester.backend.account_keys[0].to_bytes())
        Ledger.__init__(self, w3, key=None, fees=fees)
        if key is None:
            key = self.new_funded_key()
        else:
            self.fund(Account.from_key(key).address)
        self._account = Account.from_key(key)
        self.key = key
        self._proof_rpc: Any = None

    @property
    def proof_rpc(self) -> Any:
        """The light client's transport for this chain. eth-tester has no ``eth_getProof``;
        gateway/embedded_rpc.py answers it from py-evm's state and storage tries."""
        if self._proof_rpc is None:
            from edgeledger.gateway.anchor.embedded_rpc import EmbeddedRpc

            self._proof_rpc = EmbeddedRpc(self)
        return self._proof_rpc

    def fund(self, address: str, wei: int = FUND_WEI) -> None:
        prepared = self._sign("fund", [address], self._bank, to_checksum_address(address), b"", TRANSFER_GAS,
                              value=wei)
        self.wait_for_receipt(self.send(prepared))

    def new_funded_key(self, wei: int = FUND_WEI) -> str:
        key = "0x" + os.urandom(32).hex()
        self.fund(Account.from_key(key).address, wei)
        return key

    def mine(self, blocks: int = 1) -> None:
        """Add empty blocks (to build up confirmations)."""
        self.tester.mine_blocks(blocks)

    def head_time(self) -> int:
        """The latest block's timestamp: py-evm stamps max(parent + 1, now), so a chain that
        makes blocks faster than one a second runs ahead of the wall clock."""
        return int(self.tester.get_block_by_number("latest")["timestamp"])

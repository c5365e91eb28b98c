"""anvil stop/restart on the same port keeps the chain (for the lead's fault tests)."""
import hashlib

import pytest

from edgeledger.gateway.anchor.ledger import JsonRpcLedger, LedgerUnavailable
from edgeledger.protocols.batch import BatchHeader
from tests.support.anvil import Anvil

pytestmark = pytest.mark.ledger
ZERO = bytes(32)


def test_chain_state_survives_restart_and_outage_is_typed():
    node = Anvil(hardfork="london")
    try:
        node.start()
        led = JsonRpcLedger(node.url, key=node.new_funded_key())
        led.deploy(node.new_funded_key())
        led.authorize_gateway("plant-a", led.account)
        root = hashlib.sha256(b"r1").digest()
        led.wait_for_receipt(led.anchor(1, ZERO, root, 1, 1, 2))
        hh = BatchHeader(bytes.fromhex(led.account[2:]), 1, ZERO, root, 1, 1, 2).hash()
        height = node.block_number()
        node.stop()
        with pytest.raises(LedgerUnavailable):
            led.last_batch(led.account)
        with pytest.raises(LedgerUnavailable):
            led.anchor(2, hh, root, 1, 1, 2)
        node.start()
        assert node.url == led.url
        assert node.block_number() == height
        assert led.last_batch(led.account) == (1, hh)
        assert led.find_anchor(led.account, 1)["root"] == root
        led.wait_for_receipt(led.anchor(2, hh, root, 1, 1, 2))
        assert led.last_batch(led.account)[0] == 2
    finally:
        node.close()

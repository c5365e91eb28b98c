"""anvil for the tests: the implementation is installed with the benchmarks."""
from edgeledger.gateway.bench.anvil import Anvil, AnvilMissing, anvil_binary, rpc, running_anvil  # noqa: F401


def deploy(node, site="plant-a"):
    """A fresh EdgeLedgerAnchor on ``node``: (owner JsonRpcLedger, key of a funded gateway
    account the owner authorized for ``site``)."""
    from edgeledger.gateway.anchor.ledger import JsonRpcLedger

    owner = JsonRpcLedger(node.url, key=node.new_funded_key())
    owner.deploy(owner_key=owner.key)
    gw_key = node.new_funded_key()
    owner.authorize_gateway(site, JsonRpcLedger(node.url, key=gw_key).account)
    return owner, gw_key

"""Fixtures for the ledger tests: an embedded ledger and an anvil node (london rules, the
EVM version the contract is compiled for). The ledger's own account is the gateway of SITE."""
import pytest

from edgeledger.gateway.anchor.ledger import EmbeddedLedger, JsonRpcLedger
from tests.support.anvil import running_anvil

SITE = "plant-a"


@pytest.fixture(scope="module")
def anvil_node():
    with running_anvil(hardfork="london") as node:
        yield node


def _deploy_embedded():
    led = EmbeddedLedger()
    led.deploy(led.new_funded_key())
    led.authorize_gateway(SITE, led.account)
    return led


def _deploy_anvil(node):
    led = JsonRpcLedger(node.url, key=node.new_funded_key())
    led.deploy(node.new_funded_key())
    led.authorize_gateway(SITE, led.account)
    return led


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.ledger)])
def ledger(request):
    """A freshly deployed contract with the ledger's own account authorized as gateway."""
    if request.param == "embedded":
        return _deploy_embedded()
    return _deploy_anvil(request.getfixturevalue("anvil_node"))


@pytest.fixture(scope="module")
def embedded():
    return _deploy_embedded()


@pytest.fixture
def anvil_ledger(anvil_node):
    return _deploy_anvil(anvil_node)

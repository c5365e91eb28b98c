"""anvil for the tests: the implementation is installed with the benchmarks."""
from edgeledger.gateway.bench.anvil import Anvil, AnvilMissing, anvil_binary, rpc, running_anvil  # noqa: F401

"""``edgeledger demo``'s site in one process: simulated devices (fleet.py), an embedded broker
(broker.py) and the gateway wired as ``gateway run`` wires it, on an embedded or external chain
(site.py). The command itself is gateway/cli/demo.py."""
from edgeledger.gateway.demo.site import TAMPER_OFFSET, Demo, DemoOptions

__all__ = ["TAMPER_OFFSET", "Demo", "DemoOptions"]

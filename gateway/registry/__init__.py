"""Which key may speak for which device, since when and until when.

``registry.py``    the device registry: keys by kid (cached), registration, revocation,
                   rotation overlaps and sealed last seqs, over the store's ``devices`` and
                   ``device_keys`` tables;
``signatures.py``  verifying a COSE signature with a registered key (Ed25519, P-256, SM2),
                   and refusing a public key that is not a valid point before it is
                   registered: used by ingest, the verifier and enrolment alike;
``gaps.py``        ``edgeledger device accept-gap``: an operator gives up seqs a device can
                   never deliver, so its chain goes on.
"""
from edgeledger.gateway.registry.gaps import accept_gap, operator_name
from edgeledger.gateway.registry.registry import Key, Registry

__all__ = ["Key", "Registry", "accept_gap", "operator_name"]

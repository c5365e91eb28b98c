"""Proving a reading: the bundle the gateway writes, and everything a verifier checks.

``bundles.py``     the proof bundle of a stored, anchored reading (``edgeledger proof``);
``verifier.py``    ``edgeledger verify``: the offline checks (signature, key binding, Merkle
                   path, record times) and, with a node, the on-chain ones, against trust
                   roots the verifier brings (``TrustRoot``);
``lightclient.py`` EIP-1186 storage proofs of the anchor contract's slots, checked up to a
                   block's state root: no RPC answer is trusted;
``deployment.py``  the deployment file a verifier pins by its SHA-256 (``edgeledger
                   deployment export``).
"""
from edgeledger.gateway.proofs.bundles import NotYetProvable, bundle_for
from edgeledger.gateway.proofs.verifier import BundleCheckFailed, TrustError, TrustRoot, verify_bundle

__all__ = ["BundleCheckFailed", "NotYetProvable", "TrustError", "TrustRoot", "bundle_for", "verify_bundle"]

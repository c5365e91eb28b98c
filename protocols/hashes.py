# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""Which hash each part of edgeledger computes: the one table, and the deployment's choice.

A deployment chooses one hash for its Merkle trees and its device chains: SHA-256 (FIPS 180-4,
the default) or SM3 (GB/T 32905, for deployments that must use the GM/T national algorithms).
Everything else is SHA-256 on every deployment, for the reason the table gives::

    part     hashed with    what it is
    tree     deployment     RFC 9162 leaf and node hashes (merkle.py); the batch header's
                            byte 1 names it (batch.py), so a verifier knows
    chain    deployment     a reading's ``prev`` and the gateway's digest of each stored
                            message (chain.py): device config ``chain_hash``, gateway config
                            ``deployment_hash``; they must agree
    header   SHA-256        the batch header hash: the anchor contract recomputes it from
                            its call arguments with the sha256 precompile
    kid      SHA-256        a key's id, the name the contract registers it under

The ids are the batch header's tree-hash byte (0x01 SHA-256, 0x02 SM3); the names are what
configs and reports say. ``function(alg)`` returns the digest function: SHA-256 from
``hashlib`` on both runtimes; SM3 from CPython's ``hashlib`` (OpenSSL 1.1.1 or later has
it). A board that hashes its chain with SM3 takes ``agent.crypto.sm3`` (the pure code)
instead: this module never imports it, so a SHA-256 board does not pay for it.

Errors: ``UnknownHash`` (a ``ProtocolError``, so a ``ValueError``) for an id or name not in
the table, or an SM3 this runtime does not have.
"""
import hashlib

from edgeledger.protocols.errors import ProtocolError

SHA256 = 1
SM3 = 2
# id -> name, in configs, reports and the deployment file.
NAMES = {SHA256: "sha256", SM3: "sm3"}
# id -> what it is, for messages and docs.
LABELS = {SHA256: "SHA-256 (FIPS 180-4)", SM3: "SM3 (GB/T 32905)"}
DEFAULT = SHA256

DEPLOYMENT = "deployment"
# part -> DEPLOYMENT (the deployment's choice) or the one id it always uses (see above).
PARTS = {"tree": DEPLOYMENT, "chain": DEPLOYMENT, "header": SHA256, "kid": SHA256}


class UnknownHash(ProtocolError):
    """A hash id or name that is not in the table, or that this runtime cannot compute."""


def by_name(name):
    """The id of a hash name ("sha256", "sm3"). Raises UnknownHash."""
    for alg in NAMES:
        if NAMES[alg] == name:
            return alg
    raise UnknownHash("hash: expected one of %s, found %r" % (", ".join(sorted(NAMES.values())), name))


def name(alg):
    """The name of a hash id. Raises UnknownHash."""
    if alg not in NAMES:
        raise UnknownHash("hash id: expected one of %s, found %r" % (sorted(NAMES), alg))
    return NAMES[alg]


def alg_for(part, deployment):
    """The id that ``part`` of a deployment whose hash is ``deployment`` (an id) uses."""
    use = PARTS[part]
    return deployment if use == DEPLOYMENT else use


def _sha256(data):
    return hashlib.sha256(data).digest()


def _sm3(data):
    return hashlib.new("sm3", data).digest()


_FUNCTIONS = {SHA256: _sha256, SM3: _sm3}


def available(alg):
    """True if this runtime can compute hash id ``alg`` (``function`` would not raise)."""
    try:
        function(alg)
    except UnknownHash:
        return False
    return True


def function(alg):
    """The digest function (bytes -> 32 bytes) of hash id ``alg``. Raises UnknownHash if
    ``alg`` is not in the table or this runtime's hashlib cannot compute it."""
    name(alg)
    if alg == SM3:
        try:
            _sm3(b"")
        except (AttributeError, ValueError):  # MicroPython: no hashlib.new; an OpenSSL without SM3
            raise UnknownHash("SM3: this Python's hashlib has no sm3 (it needs OpenSSL 1.1.1 or later "
                              "built with SM3)")
    return _FUNCTIONS[alg]

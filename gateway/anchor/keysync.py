"""Keep the chain's key registry in step with the gateway's (registry/registry.py).

A device key lives in the gateway registry and in the contract's registry; the chain copy is
what verifiers prove against. ``register_on_chain`` registers a key (the chain's block time
opens its window), ``end_on_chain`` carries its end (a revocation, or a rotation's overlap
end and sealed last seq) there; both are idempotent: the contract keeps the earlier of what
it has and what is sent. ``sync_chain`` pushes the whole registry (an operator after a chain
step failed, the gateway on its own embedded chain); ``push_key_ends`` is the batcher
thread's periodic step.

Times are whole seconds, because the contract stores ``uint64`` seconds: an end is rounded
*up*, so a reading the gateway accepted before the cut is never judged invalid by a verifier
reading the chain.

Raises KeySyncError when the chain holds a different key under a kid, or a key is not on
chain when its end is carried; LedgerError (and its subclasses) from the ledger.
"""
import math

from edgeledger.gateway.anchor.ledger import OPEN_SEQ, Ledger
from edgeledger.gateway.errors import LedgerError
from edgeledger.gateway.registry import Key, Registry


class KeySyncError(LedgerError):
    """The chain's key registry disagrees with the gateway's (another key under a kid, or a key
    not registered on chain)."""


def register_on_chain(ledger: Ledger, site: str, device: str, alg: int, public_key: bytes, kid: bytes,
                    first_seq: int) -> tuple[dict, bool]:
    """registerKey for (site, kid), idempotent: a registration already on chain for the same
    device and key is adopted. Returns (the chain's registration dict, whether a transaction was
    sent); see ``Ledger.registration``."""
    sent = False
    reg = ledger.registration(site, kid)
    if reg is None:
        ledger.register_key(site, device, alg, public_key, first_seq)
        reg = ledger.registration(site, kid)
        sent = True
    if reg is None or reg["device_id"] != device or reg["public_key"] != bytes(public_key):
        raise KeySyncError("kid %s is on chain for site %r under %r with another key" % (
            bytes(kid).hex(), site, reg and reg["device_id"]))
    return reg, sent


def end_on_chain(ledger: Ledger, site: str, key: Key) -> bool:
    """Carry a key's end (time and last seq) to the chain, idempotent: the contract keeps the
    earlier of what it has and what is sent. Returns True if a transaction was sent."""
    end_at, last_seq = key.end_at, key.revoked_after_seq
    if end_at is None and last_seq is None:
        return False
    entry = ledger.key_entry(site, key.kid)
    if entry is None:
        raise KeySyncError("kid %s is not on chain for site %r: run sync_chain (or provision) first"
                             % (key.kid.hex(), site))
    end = math.ceil(end_at) if end_at is not None else None
    if end is None:  # a sealed last seq without an end time cannot happen in the registry
        return False
    time_done = entry["end_time"] is not None and entry["end_time"] <= end
    seq_done = last_seq is None or (entry["last_seq"] is not None and entry["last_seq"] <= last_seq)
    if time_done and seq_done:
        return False
    seq = last_seq if last_seq is not None else OPEN_SEQ
    if key.revoked_at is not None:
        ledger.revoke_key(site, key.kid, end, seq)
    else:
        ledger.rotate_key(site, key.kid, end, seq)
    return True


def sync_chain(registry: Registry, ledger: Ledger, now: float | None = None,
               known: set[bytes] | None = None) -> dict[str, int]:
    """Push every key of the gateway registry, with its window's end, to the chain.

    Seals rotations whose overlap has ended first (``Registry.seal_expired``). Idempotent; the
    gateway runs it at start on the embedded chain (new on every start) and an operator after
    a provisioning step whose chain half failed (``device sync-chain``). ``known``, a set of
    kids, skips those keys and gains the ones pushed (the gateway's periodic step on its own
    embedded chain). Returns {"registered": n, "ended": m}.
    """
    registry.seal_expired(now)
    registered = ended = 0
    keys = [k for k in registry.keys() if known is None or k.kid not in known]
    for k in keys:
        reg, sent = register_on_chain(ledger, registry.require_site(k.device), k.device, k.alg, k.public_key,
                                      k.kid, k.first_seq)
        registry.record_chain_registration(k.kid, reg["block_number"], reg["timestamp"], reg["first_seq"])
        registered += sent
    for k in keys:  # re-read: the registration moved the window's start
        ended += end_on_chain(ledger, registry.require_site(k.device), registry.require_key(k.kid))
        if known is not None:
            known.add(k.kid)
    return {"registered": registered, "ended": ended}


def push_key_ends(registry: Registry, ledger: Ledger, pushed: dict[bytes, tuple[float | None, int | None]],
                  now: float | None = None) -> int:
    """The gateway's periodic step: seal rotations whose overlap has ended, then carry every key
    end that changed since the last call to the chain. ``pushed`` ({kid: (end, last seq)}) is
    the caller's memory of what it sent. Returns the number of transactions sent."""
    registry.seal_expired(now)
    sent = 0
    for k in registry.keys():
        state = (k.end_at, k.revoked_after_seq)
        if state == (None, None) or pushed.get(k.kid) == state or k.chain_block is None:
            continue  # nothing to end, already sent, or not on this chain (``sync_chain`` first)
        sent += end_on_chain(ledger, registry.require_site(k.device), k)
        pushed[k.kid] = state
    return sent

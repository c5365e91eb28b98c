"""The device registry: which key may speak for which device, and since when.

A device has one or more keys (rotation keeps an overlap window). Each key has a window
(protocols/keywindow.py, the one rule the gateway and every verifier apply): it opens at
``valid_from`` (the chain's block time of its registration when the gateway has a ledger, the
gateway's clock otherwise) and ``first_seq``, and it closes at the earlier of ``revoked_at`` and
``valid_until`` (the end of a rotation overlap) and at ``revoked_after_seq``: the last seq it may
sign, the device's contiguous mark at revocation, or after a rotation the seq just before the
device's first message under its new key (``seal``). So a leaked key can neither speak for the
future nor backdate new messages, and a new key cannot speak for the past.

``chain_block``/``chain_time`` record the key's registration on the gateway's chain (None
without one): a proof bundle carries them, and a verifier recomputes the on-chain commitment.
"""
import time
from typing import Any, cast

from edgeledger.gateway.errors import RegistryError
from edgeledger.gateway.registry import signatures
from edgeledger.gateway.store import KeyRow, Store
from edgeledger.protocols import keywindow, topics
from edgeledger.protocols.cose.verify import ALGORITHMS

# protocols/cose.py's table with the value types it holds (that module is untyped: it also runs on boards).
_ALGORITHMS = cast(dict[int, dict[str, Any]], ALGORITHMS)


class Key:
    """A registered key as the registry holds it (a store KeyRow; ``revoked_after_seq`` may be
    sealed in memory before the store has it, see ``Registry.seals_due``)."""

    __slots__ = ("kid", "device", "alg", "public_key", "valid_from", "valid_until",
                 "revoked_at", "revoked_after_seq", "first_seq", "chain_block", "chain_time")

    def __init__(self, row: KeyRow) -> None:
        self.kid = bytes(row.kid)
        self.device = row.device
        self.alg = row.alg
        self.public_key = bytes(row.public_key)
        self.valid_from = row.valid_from
        self.valid_until = row.valid_until
        self.revoked_at = row.revoked_at
        self.revoked_after_seq = row.revoked_after_seq
        self.first_seq = row.first_seq
        self.chain_block = row.chain_block
        self.chain_time = row.chain_time

    @property
    def end_at(self) -> float | None:
        """The earliest time from which the key signs nothing valid, or None."""
        ends = [t for t in (self.revoked_at, self.valid_until) if t is not None]
        return min(ends) if ends else None

    def window(self) -> keywindow.KeyWindow:
        return keywindow.KeyWindow(self.valid_from, self.first_seq, self.end_at, self.revoked_after_seq)

    def refusal(self, seq: int, t_first: float | None, t_last: float | None,
                signed_before: float | None = None) -> keywindow.Refusal | None:
        """None if the key may sign this message, else the keywindow ``Refusal`` (its ``str``
        is a sentence naming the rule). Times None for an encrypted reading, with
        ``signed_before`` the receive time."""
        return keywindow.refusal(self.window(), seq, t_first, t_last, signed_before)


class Registry:
    """Keys by kid, cached in memory; changes go to the store first."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._keys: dict[bytes, Key] = {}
        self._data_version: int | None = None
        self._sites: dict[str, str] = {}
        self._pending_seals: dict[bytes, int] = {}  # kid -> last seq: seals the pipeline staged (``seals_due``)
        self._unsealed: dict[bytes, list[Key]] = {}
        self.reload()

    def reload_if_changed(self) -> bool:
        """Reload when another connection (the operator CLI) committed since the last look.
        Returns True if it reloaded."""
        if self.store.data_version() != self._data_version:
            self.reload()
            return True
        return False

    def reload(self) -> None:
        self._data_version = self.store.data_version()
        self._keys = dict((bytes(r.kid), Key(r)) for r in self.store.keys())
        self._sites = self.store.sites()
        for kid, last in self._pending_seals.items():  # staged by the pipeline, not committed yet
            self._seal_cached(kid, last)
        # kid -> the device's rotated keys registered before it whose last seq is not sealed yet
        # (see ``seals_due``); empty for almost every key, so the pipeline's look-up is cheap.
        self._unsealed = {}
        for k in self._keys.values():
            if k.valid_until is None or k.revoked_after_seq is not None:
                continue
            for newer in self.keys_of(k.device):
                if (newer.valid_from, newer.first_seq) > (k.valid_from, k.first_seq):
                    self._unsealed.setdefault(newer.kid, []).append(k)

    def key(self, kid: bytes) -> Key | None:
        return self._keys.get(bytes(kid))

    def require_key(self, kid: bytes) -> Key:
        """The registered key ``kid``. Raises RegistryError if there is none."""
        key = self.key(kid)
        if key is None:
            raise RegistryError("expected a registered key %s, found none" % bytes(kid).hex())
        return key

    def keys(self) -> list[Key]:
        return list(self._keys.values())

    def keys_of(self, device: str) -> list[Key]:
        return [k for k in self._keys.values() if k.device == device]

    def devices(self) -> list[str]:
        return self.store.devices()

    def site_of(self, device: str) -> str | None:
        return self._sites.get(device)

    def require_site(self, device: str) -> str:
        """The site of registered ``device``. Raises RegistryError for an unknown device."""
        site = self.site_of(device)
        if site is None:
            raise RegistryError("unknown device %r" % (device,))
        return site

    def register(self, device: str, site: str, alg: int, public_key: bytes, kid: bytes,
                 valid_from: float | None = None, first_seq: int = 1, chain_block: int | None = None,
                 chain_time: int | None = None) -> Key:
        """Add a device (if new) and a key. Raises RegistryError on conflicts and for a key
        that is not a valid point of its curve, or of an algorithm no installed library
        verifies (signatures.check_public_key): such a key would verify nothing, or, of
        small order, too much. TopicError for a bad id."""
        now = time.time()
        existing, row = self._checked(device, site, alg, public_key, kid)
        if existing is not None:
            return existing
        row = row._replace(valid_from=valid_from if valid_from is not None else now, first_seq=int(first_seq),
                           chain_block=chain_block, chain_time=chain_time)
        with self.store.lock:
            self._check_site(device, site, self.store.device_site(device))
            self.store.add_keys(site, [row], now)
        self.reload()
        return self._keys[bytes(kid)]

    def register_many(self, site: str, devices: list[tuple[str, int, bytes, bytes]]) -> int:
        """Register many devices of ``site`` at once, each (device, alg, public key, kid) with
        ``register``'s defaults (valid from now, first seq 1), in one store transaction and one
        reload: ``register`` reloads every key, so n calls cost n² (a site of 100,000 devices;
        ``edgeledger bench curves``). Keys already registered are skipped. Returns how many
        were added. Raises as ``register``; nothing is added if one entry is refused."""
        now = time.time()
        rows: list[KeyRow] = []
        seen: set[bytes] = set()
        for device, alg, public_key, kid in devices:
            existing, row = self._checked(device, site, alg, public_key, kid)
            if existing is None and bytes(kid) not in seen:
                seen.add(bytes(kid))
                rows.append(row._replace(valid_from=now))
        with self.store.lock:
            sites = self.store.sites()
            for row in rows:
                self._check_site(row.device, site, sites.get(row.device))
            self.store.add_keys(site, rows, now)
        self.reload()
        return len(rows)

    def _checked(self, device: str, site: str, alg: int, public_key: bytes, kid: bytes) -> tuple[Key | None, KeyRow]:
        """(the key already registered under ``kid`` or None, the new key's row; the caller
        sets its window and checks the device's site under the store lock). Raises
        RegistryError, TopicError (see ``register``)."""
        topics.check_id(device, "device id")
        topics.check_id(site, "site")
        if alg not in ALGORITHMS:
            raise RegistryError("unsupported algorithm %r; supported: %s" % (alg, sorted(ALGORITHMS)))
        if len(public_key) != _ALGORITHMS[alg]["pub_len"]:
            raise RegistryError("%s public key must be %d bytes, got %d" % (
                _ALGORITHMS[alg]["name"], _ALGORITHMS[alg]["pub_len"], len(public_key)))
        try:
            signatures.check_public_key(alg, public_key)
        except ValueError as e:
            raise RegistryError("%s key for %r refused: %s" % (ALGORITHMS[alg]["name"], device, e)) from e
        existing = self.key(kid)
        if existing is not None and (existing.device != device or existing.public_key != bytes(public_key)):
            raise RegistryError("kid %s is already registered for device %r" % (kid.hex(), existing.device))
        return existing, KeyRow(bytes(kid), device, alg, bytes(public_key), 0.0)

    @staticmethod
    def _check_site(device: str, site: str, registered: str | None) -> None:
        if registered is not None and registered != site:
            raise RegistryError("device %r is registered on site %r, not %r" % (device, registered, site))

    def revoke(self, device: str, at: float | None = None, kid: bytes | None = None) -> int:
        """Revoke a device's key(s) from time ``at`` (default now). Returns the count revoked."""
        at = time.time() if at is None else at
        marks = self.store.marks_of(device)
        if marks is None:
            raise RegistryError("unknown device %r" % (device,))
        n = self.store.revoke_keys(device, at, marks.contig, kid)
        self.reload()
        return n

    def expire(self, kid: bytes, until: float) -> None:
        """End a key's validity at ``until`` (rotation overlap); never later than it is."""
        self.store.expire_key(kid, until)
        self.reload()

    def seal(self, kid: bytes, last_seq: int) -> bool:
        """Close a key's sequence window at ``last_seq``; never later than it is. Returns True if
        it changed."""
        changed = self.store.seal_key(kid, last_seq)
        if changed:
            self.reload()
        return changed

    def record_chain_registration(self, kid: bytes, block_number: int, timestamp: int, first_seq: int) -> None:
        """Note the key's registration on the gateway's chain. A key first registered on chain
        here takes the chain's window start (``valid_from``, ``first_seq``), so the gateway
        accepts exactly what a verifier will; re-registering on a new chain (the embedded one,
        after a restart) keeps the gateway's start, so readings still in a device's outbox are
        not refused."""
        self.store.record_chain_registration(kid, block_number, timestamp, first_seq)
        self.reload()

    def seals_due(self, kid: bytes, seq: int) -> list[tuple[bytes, int]]:
        """The pipeline is about to store ``seq`` under ``kid``: the device has switched to this
        key, so its rotated predecessors signed nothing from ``seq`` on. Returns the
        ``(old kid, last seq)`` seals to write with that commit (``Store.seal_keys``; almost
        always none: a dict look-up). They hold in this registry at once, so the next message
        of the same group is judged by them, and until ``seals_written`` across reloads.
        Writes nothing to the store, raises nothing."""
        seals = [(old.kid, max(old.first_seq - 1, seq - 1)) for old in self._unsealed.pop(bytes(kid), ())]
        for old_kid, last in seals:
            self._pending_seals[old_kid] = min(last, self._pending_seals.get(old_kid, last))
            self._seal_cached(old_kid, last)
        return seals

    def seals_written(self, seals: list[tuple[bytes, int]]) -> None:
        """The commit that carried ``seals`` succeeded: the store holds them now."""
        for kid, _last in seals:
            self._pending_seals.pop(kid, None)
        self.reload()

    def _seal_cached(self, kid: bytes, last: int) -> None:
        k = self._keys.get(kid)
        if k is not None and (k.revoked_after_seq is None or k.revoked_after_seq > last):
            k.revoked_after_seq = last

    def seal_expired(self, now: float | None = None) -> list[bytes]:
        """Seal every rotated key whose overlap has ended without the device switching: its last
        seq is the highest it signed that the store holds (none: ``first_seq - 1``). Returns the
        kids sealed. Call it now and then (the batcher thread does)."""
        now = time.time() if now is None else now
        sealed = []
        for k in self.keys():
            if k.valid_until is None or k.revoked_after_seq is not None or k.valid_until > now:
                continue
            last = self.store.last_seq_signed_by(k.device, k.kid)
            if self.seal(k.kid, last if last is not None else k.first_seq - 1):
                sealed.append(k.kid)
        return sealed

"""The EdgeLedgerAnchor contract's calls over a Transport: sites and gateways, anchors,
the device key registry, inclusion proofs and gas helpers.

Crash safety of an anchor: ``sign_anchor`` returns a ``PreparedTx`` whose ``to_dict()`` the
gateway persists *before* ``send``. Signing is deterministic (RFC 6979), so ``sign_anchor``
with the persisted nonce and fees re-derives the very same raw transaction; re-sending it is
the safe retry (``send`` treats "already known"/"nonce too low" for a transaction the node
knows as success). On restart the gateway reads ``last_batch``: if the chain's last batch is
>= its number the batch is anchored and ``find_anchor`` finds its transaction in the event
log. The contract's ordering rule (``OutOfOrder``) is the backstop: a batch can never be
anchored twice.
"""
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from edgeledger.gateway.anchor.ledger.artifact import CONTRACT_VERSION, hex0x, known_code_hashes, raw_bytes, word32
from edgeledger.gateway.anchor.ledger.errors import AnchorRejected, ContractReverted, KeyRejected, LedgerUnavailable
from edgeledger.gateway.anchor.ledger.transport import TRANSFER_GAS, PreparedTx, Transport
from edgeledger.gateway.errors import LedgerError
from edgeledger.protocols.batch import TREE_SHA256, BatchHeader
from edgeledger.protocols.keywindow import ALG_MAX, ALG_MIN, key_commitment, site_hash

# rotateKey's lastSeq for "not known yet" (EdgeLedgerAnchor.OPEN_SEQ).
OPEN_SEQ = 2**64 - 1

# Explicit gas limits, from gas used on anvil --hardfork london (contract v2, each call sent once
# and its receipt read): anchor 78.9k for batch 1 and 81.6k after (two fresh slots, the gateway
# slot, a cold read of the previous header, sha256, LOG3); authorizeGateway 73.3k (57.3k for a
# gateway's second site); registerKey 58.4k (Ed25519, short ids), 59.9k (SM2) to 64.7k (133-byte
# key, 64-byte ids; measured with the int16 alg, 2 bytes less to hash); rotateKey 53.7k (first
# end), 36.9k (sealing the last seq); revokeKey 37.3k; deauthorizeGateway 39.2k. Unused gas is
# not charged.
ANCHOR_GAS = 120_000
AUTHORIZE_GAS = 100_000
REGISTER_KEY_GAS = 120_000
END_KEY_GAS = 80_000
# KeyEntry flags (EdgeLedgerAnchor.sol).
KEY_FLAG_LAST_SEQ = 1
KEY_FLAG_REVOKED = 2
KEY_FLAG_ROTATED = 4


class Ledger(Transport):
    """The anchor contract on one chain. ``key`` is the default signing key (hex string or 32
    bytes), normally the gateway's; every sending method accepts ``key=`` to sign with another
    account (e.g. the owner)."""

    # ---------------------------------------------------------------- sites and gateways

    def authorize_gateway(self, site: str, gateway: str, key: str | bytes | None = None, wait: bool = True) -> bytes:
        """Owner authorizes ``gateway`` to anchor and manage keys for ``site`` from the next block
        on. ``key`` defaults to the deploy owner key. Raises ContractReverted (NotOwner,
        ZeroAddress, AlreadyAuthorized, BadSiteLength)."""
        key = key if key is not None else self.owner_key
        fn = self._require_contract().functions.authorizeGateway(site, to_checksum_address(gateway))
        return self._transact("authorizeGateway", fn, AUTHORIZE_GAS, key, ContractReverted, wait)

    def deauthorize_gateway(self, site: str, gateway: str, key: str | bytes | None = None,
                            wait: bool = True) -> bytes:
        """Owner closes ``gateway``'s window for ``site`` at the next block. Raises
        ContractReverted (NotOwner, NotAuthorizedForSite)."""
        key = key if key is not None else self.owner_key
        fn = self._require_contract().functions.deauthorizeGateway(site, to_checksum_address(gateway))
        return self._transact("deauthorizeGateway", fn, AUTHORIZE_GAS, key, ContractReverted, wait)

    def authorization(self, site: str, gateway: str, block: int | str = "latest") -> tuple[int, int]:
        """(from block, until block or 0) of ``gateway``'s window for ``site``; (0, 0) if none."""
        return tuple(self._view("authorization", site, to_checksum_address(gateway), block=block))

    def is_gateway_for(self, site: str, gateway: str) -> bool:
        return self._view("isGatewayFor", site, to_checksum_address(gateway))

    def contract_version(self) -> int:
        return self._view("VERSION")

    def deployed_block(self) -> int:
        return self._view("deployedBlock")

    def owner(self) -> str:
        """The contract owner's address (who authorizes gateways)."""
        return to_checksum_address(self._view("owner"))

    def check_anchor_contract(self) -> int:
        """VERSION() of the attached contract, after checking that its code is a build of
        EdgeLedgerAnchor this release knows (the committed artifact). Raises LedgerError naming
        what was found, LedgerUnavailable."""
        code = bytes(self._rpc(self.w3.eth.get_code, self._require_contract().address))
        try:
            version = int(self.contract_version())
        except LedgerUnavailable:
            raise
        except LedgerError as e:
            raise LedgerError("expected EdgeLedgerAnchor at %s, found a contract without VERSION() (%s)"
                              % (self.address, e)) from e
        known = known_code_hashes().get(keccak(code))
        if known is None or known != version:
            raise LedgerError("expected the code of EdgeLedgerAnchor v%d at %s, found other code (%d bytes, "
                              "VERSION() %d)" % (CONTRACT_VERSION, self.address, len(code), version))
        return version

    # ---------------------------------------------------------------- anchors

    def sign_anchor(self, number: int, prev_header_hash: bytes, root: bytes, tree_size: int, first_time: int,
                    last_time: int, nonce: int | None = None, fees: dict[str, Any] | None = None,
                    key: str | bytes | None = None, tree_alg: int = TREE_SHA256) -> PreparedTx:
        """Build and sign the anchor transaction. With the ``nonce`` and ``fees`` of a
        persisted PreparedTx this re-derives the identical raw transaction (RFC 6979 signing).
        Without ``nonce`` it takes the next local nonce."""
        acct = self._account_for(key)
        args = (int(number), word32(prev_header_hash), word32(root), int(tree_size), int(first_time), int(last_time),
                int(tree_alg))
        fn = self._require_contract().functions.anchor(*args)
        return self._sign("anchor", args, acct, self.address, fn._encode_transaction_data(), ANCHOR_GAS,
                          nonce=nonce, fees=fees)

    prepare_anchor = sign_anchor

    def sign_cancel(self, nonce: int, fees: dict[str, Any] | None, key: str | bytes | None = None) -> PreparedTx:
        """A 0-value transfer to the sender itself at ``nonce``: with higher ``fees`` it
        replaces (cancels) whatever waits in the pool with that nonce."""
        acct = self._account_for(key)
        return self._sign("cancel", [nonce], acct, acct.address, b"", TRANSFER_GAS, nonce=nonce, fees=fees)

    def anchor(self, number: int, prev_header_hash: bytes, root: bytes, tree_size: int, first_time: int,
               last_time: int, key: str | bytes | None = None, preflight: bool = True, wait: bool = False,
               tree_alg: int = TREE_SHA256) -> bytes:
        """Anchor a batch header; return the transaction hash (not waiting for it by default).

        ``preflight`` first simulates the call against the pending state, so an OutOfOrder or
        PrevMismatch raises AnchorRejected before a nonce is spent; pass False to pipeline
        several anchors before the earlier ones are mined. Raises AnchorRejected (OutOfOrder,
        PrevMismatch, NotGateway, BadTimeRange, BadTreeAlg), LedgerUnavailable, NonceConflict,
        LedgerError.
        """
        if preflight:
            acct = self._account_for(key)
            fn = self._require_contract().functions.anchor(
                int(number), word32(prev_header_hash), word32(root), int(tree_size), int(first_time), int(last_time),
                int(tree_alg))
            self._preflight(acct.address, fn._encode_transaction_data(), "anchor", AnchorRejected)
        prepared = self.sign_anchor(number, prev_header_hash, root, tree_size, first_time, last_time, key=key,
                                    tree_alg=tree_alg)
        h = self.send(prepared)
        if wait:
            self.wait_for_receipt(h, error_cls=AnchorRejected)
        return h

    def last_batch(self, gateway: str, block: int | str = "latest") -> tuple[int, bytes]:
        """(last anchored batch number, its header hash) of ``gateway``; (0, zero hash) if none."""
        number, head = self._view("head", to_checksum_address(gateway), block=block)
        return number, bytes(head)

    def anchor_of(self, gateway: str, number: int, block: int | str = "latest") -> dict | None:
        """{"header_hash", "block_number", "timestamp"} stored for batch ``number``, or None."""
        hh, bn, ts = self._view("anchorOf", to_checksum_address(gateway), int(number), block=block)
        if bytes(hh) == bytes(32):
            return None
        return {"header_hash": bytes(hh), "block_number": bn, "timestamp": ts}

    def header_of(self, gateway: str, number: int, block: int | str = "latest") -> bytes | None:
        a = self.anchor_of(gateway, number, block=block)
        return None if a is None else a["header_hash"]

    def find_anchor(self, gateway: str, number: int, from_block: int | str = 0,
                    to_block: int | str = "latest") -> dict[str, Any] | None:
        """The Anchored event of (gateway, number) as a dict, or None. Both are indexed topics."""
        c = self._require_contract()
        topic0 = keccak(text="Anchored(address,uint64,bytes32,bytes32,uint64)")
        topics = [hex0x(topic0), hex0x(bytes(12) + raw_bytes(to_checksum_address(gateway))),
                  hex0x(int(number).to_bytes(32, "big"))]
        logs = self._rpc(self.w3.eth.get_logs, {"address": c.address, "fromBlock": from_block,
                                                 "toBlock": to_block, "topics": topics})
        if not logs:
            return None
        log = logs[-1]
        root, hh, size = abi_decode(["bytes32", "bytes32", "uint64"], bytes(log["data"]))
        return {"tx_hash": bytes(log["transactionHash"]), "block_number": log["blockNumber"],
                "block_hash": bytes(log["blockHash"]), "number": int(number), "root": root,
                "header_hash": hh, "tree_size": size, "gateway": to_checksum_address(gateway)}

    # ---------------------------------------------------------------- key registry

    def register_key(self, site: str, device_id: str, alg: int, public_key: bytes, first_seq: int = 1,
                     key: str | bytes | None = None, wait: bool = True) -> bytes:
        """Register a device key for ``site`` (kid = SHA-256(key)[:16], computed on chain); the
        chain records its own block number and time. Returns the transaction hash; read the
        registration back with ``registration``. Raises KeyRejected (KeyExists, NotAuthorized,
        BadPublicKeyLength, BadDeviceIdLength, BadSiteLength, ZeroFirstSeq), LedgerError for an
        alg outside the contract's int32 (web3 would refuse to encode it)."""
        if isinstance(alg, bool) or not ALG_MIN <= int(alg) <= ALG_MAX:
            raise LedgerError("registerKey: expected a COSE algorithm id in the contract's int32 range, found %r"
                              % (alg,))
        fn = self._require_contract().functions.registerKey(site, device_id, int(alg), bytes(public_key),
                                                            int(first_seq))
        return self._transact("registerKey", fn, REGISTER_KEY_GAS, key, KeyRejected, wait)

    def revoke_key(self, site: str, kid: bytes, end_time: int, last_seq: int, key: str | bytes | None = None,
                   wait: bool = True) -> bytes:
        """Readings of ``kid`` timed at or after ``end_time`` or with a seq above ``last_seq`` are
        invalid; both only move earlier. Raises KeyRejected (UnknownKey, ZeroEndTime,
        NotAuthorized)."""
        fn = self._require_contract().functions.revokeKey(site, _kid(kid), int(end_time), int(last_seq))
        return self._transact("revokeKey", fn, END_KEY_GAS, key, KeyRejected, wait)

    def rotate_key(self, site: str, kid: bytes, overlap_end: int, last_seq: int = OPEN_SEQ,
                   key: str | bytes | None = None, wait: bool = True) -> bytes:
        """End ``kid``'s window at ``overlap_end`` (and ``last_seq``; OPEN_SEQ until known). Only
        earlier. Raises KeyRejected (UnknownKey, ZeroEndTime, NotAuthorized)."""
        fn = self._require_contract().functions.rotateKey(site, _kid(kid), int(overlap_end), int(last_seq))
        return self._transact("rotateKey", fn, END_KEY_GAS, key, KeyRejected, wait)

    def key_entry(self, site: str, kid: bytes, block: int | str = "latest") -> dict | None:
        """dict(commitment, end_time, last_seq, end_block, flags) of (site, kid), or None if not
        registered. ``end_time``/``last_seq`` are None while open."""
        commitment, end_time, last_seq, end_block, flags = self._view("keyEntry", site, _kid(kid), block=block)
        if bytes(commitment) == bytes(32):
            return None
        return {"commitment": bytes(commitment), "end_time": end_time or None,
                "last_seq": last_seq if flags & KEY_FLAG_LAST_SEQ else None, "end_block": end_block,
                "revoked": bool(flags & KEY_FLAG_REVOKED), "rotated": bool(flags & KEY_FLAG_ROTATED)}

    def registration(self, site: str, kid: bytes) -> dict | None:
        """What the chain recorded when (site, kid) was registered, read from its KeyRegistered
        event and checked against the stored commitment: dict(site, device_id, alg, public_key,
        first_seq, block_number, timestamp, kid), or None if not registered. Raises LedgerError if
        the event and the commitment disagree."""
        entry = self.key_entry(site, kid)
        if entry is None:
            return None
        c = self._require_contract()
        topic0 = keccak(text="KeyRegistered(bytes32,bytes16,string,string,int32,bytes,uint64)")
        logs = self._rpc(self.w3.eth.get_logs, {
            "address": c.address, "fromBlock": self.deployed_block(), "toBlock": "latest",
            "topics": [hex0x(topic0), hex0x(site_hash(site)), hex0x(_kid(kid) + bytes(16))]})
        for log in logs:
            try:
                site_s, dev, alg, pub, first_seq = abi_decode(["string", "string", "int32", "bytes", "uint64"],
                                                              bytes(log["data"]))
            except DecodingError as e:
                raise LedgerError("KeyRegistered log of (site %r, kid %s) does not decode: %s"
                                  % (site, _kid(kid).hex(), e)) from e
            block = self._rpc(self.w3.eth.get_block, log["blockNumber"])
            reg = {"site": site_s, "device_id": dev, "alg": alg, "public_key": bytes(pub), "first_seq": first_seq,
                   "block_number": log["blockNumber"], "timestamp": block["timestamp"], "kid": _kid(kid)}
            if key_commitment(site_s, dev, alg, reg["public_key"], reg["block_number"], reg["timestamp"],
                              first_seq) == entry["commitment"]:
                return reg
        raise LedgerError("(site %r, kid %s) is registered, but no KeyRegistered event matches its commitment"
                          % (site, _kid(kid).hex()))

    # ---------------------------------------------------------------- inclusion proofs

    def verify(self, leaf_hash: bytes, index: int, tree_size: int, path: list[bytes], root: bytes) -> bool:
        """The contract's RFC 9162 inclusion check over a leaf hash (a view call)."""
        return self._view("verify", word32(leaf_hash), int(index), int(tree_size), [word32(p) for p in path],
                          word32(root))

    def verify_anchored(self, header: BatchHeader, entry: bytes, index: int, path: list[bytes]) -> bool:
        """The contract's check that ``entry`` (message bytes) is leaf ``index`` of the batch
        whose header (a protocols BatchHeader) is the one anchored (a view call)."""
        h = (int(header.tree_alg), to_checksum_address("0x" + header.gateway.hex()), int(header.number),
             word32(header.prev), word32(header.root), int(header.tree_size), int(header.first_time),
             int(header.last_time))
        return self._view("verifyAnchored", h, bytes(entry), int(index), [word32(p) for p in path])

    # ---------------------------------------------------------------- gas helpers

    def calldata(self, fn_name: str, *args: Any) -> bytes:
        return raw_bytes(getattr(self._require_contract().functions, fn_name)(*args)._encode_transaction_data())

    def estimate_gas(self, fn_name: str, *args: Any, **kwargs: Any) -> int:
        """eth_estimateGas of calling ``fn_name`` from ``key``'s account (default ledger key).
        Raises ContractReverted when the call would revert, LedgerUnavailable, LedgerError."""
        acct = self._account_for(kwargs.get("key"))
        data = self.calldata(fn_name, *args)
        try:
            return self._rpc(self.w3.eth.estimate_gas, {"from": acct.address, "to": self.address, "data": data})
        except Exception as e:
            err = self._revert_error(e, fn_name, ContractReverted)
            if err is not None:
                raise err from e
            raise

    def execution_gas(self, fn_name: str, *args: Any, **kwargs: Any) -> int:
        """estimate_gas minus the intrinsic cost (21000 + calldata, EIP-2028). Exact on chains
        before Prague; under EIP-7623 the calldata floor can dominate small executions."""
        return self.estimate_gas(fn_name, *args, **kwargs) - intrinsic_gas(self.calldata(fn_name, *args))


def intrinsic_gas(data: bytes) -> int:
    """21000 + 4 per zero byte + 16 per non-zero byte of calldata (EIP-2028)."""
    zeros = sum(1 for b in data if b == 0)
    return 21000 + 4 * zeros + 16 * (len(data) - zeros)


def _kid(kid: str | bytes) -> bytes:
    kid = raw_bytes(kid)
    if len(kid) != 16:
        raise ValueError("expected a 16-byte kid, found %d bytes" % len(kid))
    return kid



"""The exception root of ``edgeledger.gateway``.

``GatewayError`` is the root. Errors about input that came from a device or a
peer (``RejectedMessage`` and its subclasses) are kept apart from local
failures (configuration, storage, ledger). Every rejected message has a
``reason``: a short stable name used for counters and quarantine rows.
"""


class GatewayError(Exception):
    """Root of every error raised in ``edgeledger.gateway``."""


class ConfigError(GatewayError):
    """A configuration file or option is missing or invalid."""


class StoreError(GatewayError):
    """The gateway store cannot be opened or written."""


class StoreFull(StoreError):
    """The disk holding the store is full: nothing can be committed (or acknowledged)
    until space returns."""


class StoreBusy(StoreError):
    """Another connection held the store's write lock past the busy timeout."""


class RegistryError(GatewayError):
    """A device registry operation failed (unknown device, duplicate key, ...)."""


class LedgerError(GatewayError):
    """A ledger backend operation failed."""


class AnchorConflict(LedgerError):
    """The chain holds batches of this gateway's account that this store did not anchor:
    another gateway anchors with the same key, or the store belongs elsewhere. Anchoring
    stops until an operator gives each gateway its own account."""


class RejectedMessage(GatewayError):
    """A message from a device was refused; ``reason`` names why.

    The raw bytes are quarantined by the caller; the gateway keeps running.
    """

    reason = "rejected"

    def __init__(self, detail: str, device: str | None = None, seq: int | None = None) -> None:
        GatewayError.__init__(self, "%s: %s" % (self.reason, detail))
        self.detail = detail
        self.device = device
        self.seq = seq


def _reject(name: str, reason: str, doc: str) -> type[RejectedMessage]:
    cls = type(name, (RejectedMessage,), {"reason": reason, "__doc__": doc})
    return cls


# One class per reason; the table is the list of reasons operators see.
Oversized = _reject("Oversized", "oversized", "The message is larger than the configured maximum.")
MalformedCbor = _reject("MalformedCbor", "malformed_cbor", "The bytes are not well-formed CBOR.")
TruncatedCose = _reject("TruncatedCose", "truncated_cose", "The CBOR ends before the COSE_Sign1 is complete.")
NotCoseSign1 = _reject("NotCoseSign1", "not_cose_sign1", "Well-formed CBOR, but not a COSE_Sign1 (tag 18) structure.")
BadPayload = _reject("BadPayload", "bad_payload", "The signed payload is not a version 1 reading.")
NonCanonical = _reject("NonCanonical", "non_canonical",
                       "Not the one accepted encoding of its content (a re-encoded copy, a high-S twin, ...).")
UnknownDevice = _reject("UnknownDevice", "unknown_device", "No registered key has this kid.")
RevokedDevice = _reject("RevokedDevice", "revoked_device", "The key was revoked or is outside its validity window.")
BadSignature = _reject("BadSignature", "bad_signature", "The signature does not verify with the registered key.")
TopicMismatch = _reject("TopicMismatch", "topic_mismatch", "The topic, the payload and the key name different devices.")
Replay = _reject("Replay", "replay", "A seq that this device already used, from outside its chain.")
Fork = _reject("Fork", "fork", "Same seq and same predecessor as a stored message, different bytes.")
ChainBreak = _reject("ChainBreak", "chain_break", "The prev hash does not link to the stored neighbour.")
WrongChainHash = _reject("WrongChainHash", "chain_hash",
                         "The prev hash links to the stored neighbour only under another hash than the deployment's.")
ClockSkew = _reject("ClockSkew", "clock_skew", "Record times are too far from the gateway clock.")
RateLimited = _reject("RateLimited", "rate_limited", "The device sends faster than its configured rate limit.")
OutOfRange = _reject("OutOfRange", "out_of_range",
                     "A number in the payload is not finite or outside its bounds (protocols/reading/validate.py).")
Internal = _reject("Internal", "internal",
                   "Checking the message raised an unexpected error: a gateway bug, logged once per kind.")

REJECT_CLASSES = (
    Oversized, MalformedCbor, TruncatedCose, NotCoseSign1, BadPayload, NonCanonical, UnknownDevice,
    RevokedDevice, BadSignature, TopicMismatch, Replay, Fork, ChainBreak, WrongChainHash, ClockSkew, RateLimited,
    OutOfRange, Internal,
)
REASONS = tuple(cls.reason for cls in REJECT_CLASSES)

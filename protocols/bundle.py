# ruff: noqa: B904  -- no "raise ... from" here: MicroPython's native emitter cannot compile it
"""The proof bundle: everything needed to check one reading, in one CBOR map.

::

    {
      1: 2,                 ; bundle format version (2: batch header v2, contract v2)
      2: bstr,              ; the COSE_Sign1 message, exactly as the device signed it
      3: uint,              ; leaf index in the batch's Merkle tree
      4: [* bstr(32)],      ; RFC 9162 audit path, leaf to root
      5: {header},          ; batch header map (protocols/batch.py); its tree size is the one that counts
      6: uint,              ; chain id
      7: bstr(20),          ; anchor contract address
      8: bstr(32),          ; transaction hash of the anchor
      9: uint,              ; block number of the anchor
      10: bstr(32),         ; block hash of the anchor
      11: {                 ; the device key the message names (kid = SHA-256(key)[:16]) and
        1: alg, 2: bstr,    ;   its registration on chain: the site it is registered for, the
        3: tstr,            ;   block number and time of the registering transaction and the
        4: uint, 5: uint,   ;   first seq it may sign (protocols/keywindow.py key_commitment)
        6: uint
      }
      ? 12: {               ; optional EIP-1186 proof of the anchor's storage word at the
          1: bstr,          ;   anchoring block, for archives: RLP block header (its keccak256
          2: [* bstr],      ;   is the block hash above), account proof nodes, storage proof
          3: [* bstr]       ;   nodes. `edgeledger verify` does not use it: it proves at the
        },                  ;   latest block (gateway/verifier.py)
      ? 13: [* {            ; gaps the gateway recorded in this device's chain before this
          1: uint,          ;   reading (protocols/chain.py G1-G3), oldest first: seqs
          2: uint,          ;   1 + 1 .. 2 - 1 are not in the chain, it goes on at 2;
          3: tstr,          ;   "restart" or "lost" (declared by the device) or "operator";
          4: tstr,          ;   the reason given;
          ? 5: uint         ;   when it was accepted (unix seconds)
        }]
    }

Fields 6..10 and the registration in 11 are claims: a verifier compares them with its own trust
roots and with what it proves on chain, never takes them on faith. Field 13 is the gateway's
statement, not proven by anything in the bundle: a verifier shows it as such. (A restart
message itself is signed by the device: seq > 1 with a zero ``prev``; so is an
``agent/outbox_lost`` declaration.)

``check_offline`` does every check that needs no network: the message is in its
one canonical form (as the gateway requires, protocols/cose/verify.py), the signature with
the key in the bundle (and that the key is the one the message's kid names),
the Merkle path from the message to the header's root, hashed with the tree hash the
header names (its byte 1 / map key 9: SHA-256 or SM3, protocols/hashes.py). Each failure
is its own exception class with a message that says what was expected and what was found.
"""
import hashlib

from edgeledger.protocols import cbor, hashes, merkle
from edgeledger.protocols.batch import BatchHeader, HeaderError
from edgeledger.protocols.cbor import decoder as cbor_decoder
from edgeledger.protocols.cose import verify as cose_verify
from edgeledger.protocols.cose.verify import NonCanonicalMessage
from edgeledger.protocols.errors import DecodeError, ProtocolError
from edgeledger.protocols.reading import validate as reading_validate
from edgeledger.protocols.reading.validate import PayloadRangeError

VERSION = 2
KID_LEN = 16
# A bundle is one message (<= 64 KB), a path of <= 32 hashes and a storage proof of a
# few trie nodes (<= 532 bytes each).
MAX_BUNDLE_BYTES = 256 * 1024
# How far around a wrong leaf index the diagnosis looks for the index the path proves.
INDEX_SEARCH = 4096
# Gaps carried in one bundle (the latest ones): a device with more breaks than this has
# a problem an operator sees in ``gateway status`` long before.
MAX_BUNDLE_GAPS = 16


class BundleError(ProtocolError):
    """Root of the ways a bundle can fail to check out."""


class MalformedBundle(BundleError, DecodeError):
    pass


class ReadingOutOfRange(BundleError):
    """The device signed a number the wire format refuses (not finite, out of bounds): the
    gateway refuses it too (``out_of_range``), so no honest gateway anchored it."""


class TamperedMessage(BundleError):
    pass


class NonCanonical(BundleError):
    """The message is not the one accepted encoding of a reading (cose_verify.parse_canonical):
    a re-encoded copy or a high-S twin, which no gateway stores."""


class WrongKey(BundleError):
    pass


class WrongIndex(BundleError):
    pass


class WrongPath(BundleError):
    pass


class TreeHashUnavailable(BundleError):
    """The header names a tree hash this runtime cannot compute (SM3 on a Python whose
    hashlib lacks it): the path cannot be checked here."""


class Bundle:
    __slots__ = ("message", "index", "path", "header", "chain_id", "contract", "tx_hash",
                 "block_number", "block_hash", "alg", "public_key", "site", "key_block", "key_time",
                 "first_seq", "storage_proof", "gaps")

    def __init__(self, message, index, path, header, chain_id, contract, tx_hash, block_number,
                 block_hash, alg, public_key, site, key_block, key_time, first_seq, storage_proof=None, gaps=()):
        self.message = bytes(message)
        self.index = index
        self.path = [bytes(p) for p in path]
        self.header = header
        self.chain_id = chain_id
        self.contract = bytes(contract)
        self.tx_hash = bytes(tx_hash)
        self.block_number = block_number
        self.block_hash = bytes(block_hash)
        self.alg = alg
        self.public_key = bytes(public_key)
        self.site = site  # the registration's claims (see the module docstring)
        self.key_block = key_block
        self.key_time = key_time
        self.first_seq = first_seq
        self.storage_proof = storage_proof  # None or (header_rlp, account_nodes, storage_nodes)
        # [(after, resume, kind, reason, accepted_at or None)], at most MAX_BUNDLE_GAPS
        self.gaps = list(gaps)[-MAX_BUNDLE_GAPS:]

    def encode(self):
        m = {1: VERSION, 2: self.message, 3: self.index, 4: self.path, 5: self.header.to_map(),
             6: self.chain_id, 7: self.contract, 8: self.tx_hash, 9: self.block_number,
             10: self.block_hash, 11: {1: self.alg, 2: self.public_key, 3: self.site, 4: self.key_block,
                                       5: self.key_time, 6: self.first_seq}}
        if self.storage_proof is not None:
            header_rlp, account, storage = self.storage_proof
            m[12] = {1: header_rlp, 2: list(account), 3: list(storage)}
        if self.gaps:
            m[13] = [_gap_map(g) for g in self.gaps]
        return cbor.encode(m)

    @classmethod
    def decode(cls, data, decode=cbor_decoder.decode):
        """Parse bundle bytes. Raises MalformedBundle (a DecodeError), nothing else: every
        field's type and size is checked before it is used (``bytes(n)`` of an integer
        field would allocate n bytes)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MalformedBundle("bundle must be bytes, found %s" % type(data).__name__)
        if len(data) > MAX_BUNDLE_BYTES:
            raise MalformedBundle("bundle of %d bytes exceeds %d" % (len(data), MAX_BUNDLE_BYTES))
        try:
            m = decode(data)
        except ValueError as e:
            raise MalformedBundle("bundle is not CBOR: %s" % e)
        if not hasattr(m, "get") or m.get(1) != VERSION:
            raise MalformedBundle("expected a version %d bundle map, found %s" % (
                VERSION, "version %r" % (m.get(1),) if hasattr(m, "get") else type(m).__name__))
        key = m.get(11)
        if not hasattr(key, "get"):
            raise MalformedBundle("bundle field 11 (device key) must be a map {1: alg, 2: key, 3: site, ...}")
        site = key.get(3)
        if not isinstance(site, str):
            raise MalformedBundle("bundle key site must be text, found %s" % type(site).__name__)
        sp = m.get(12)
        storage = None
        if sp is not None:
            if not hasattr(sp, "get"):
                raise MalformedBundle("bundle field 12 (storage proof) must be a map")
            storage = (_bstr(sp.get(1), "storage proof header"), _bstr_list(sp.get(2), "account proof"),
                       _bstr_list(sp.get(3), "storage proof"))
        try:
            header = BatchHeader.from_map(m.get(5))
        except HeaderError as e:
            raise MalformedBundle(str(e))
        return cls(_bstr(m.get(2), "message"), _uint(m.get(3), "leaf index"),
                   _bstr_list(m.get(4), "audit path", 32), header, _uint(m.get(6), "chain id"),
                   _bstr(m.get(7), "contract", 20), _bstr(m.get(8), "tx_hash", 32),
                   _uint(m.get(9), "block number"), _bstr(m.get(10), "block_hash", 32),
                   _int(key.get(1), "key alg"), _bstr(key.get(2), "device key"), site,
                   _uint(key.get(4), "key registration block"), _uint(key.get(5), "key registration time"),
                   _uint(key.get(6), "key first seq"), storage, _gaps_from(m.get(13)))


# Integer fields of a bundle are unsigned 64-bit on chain (chain id, block number) or
# bounded by the tree size (leaf index).
_MAX_UINT = 2 ** 64 - 1


def _bstr(v, what, size=None):
    if not isinstance(v, bytes):
        raise MalformedBundle("bundle %s must be a byte string, found %s" % (what, type(v).__name__))
    if size is not None and len(v) != size:
        raise MalformedBundle("bundle %s must be %d bytes, found %d" % (what, size, len(v)))
    return v


def _bstr_list(v, what, size=None):
    if not isinstance(v, list):
        raise MalformedBundle("bundle %s must be an array of byte strings, found %s" % (what, type(v).__name__))
    return [_bstr(x, what + " entry", size) for x in v]


def _int(v, what):
    if not isinstance(v, int) or isinstance(v, bool):
        raise MalformedBundle("bundle %s must be an integer, found %s" % (what, type(v).__name__))
    return v


def _uint(v, what):
    if not 0 <= _int(v, what) <= _MAX_UINT:
        raise MalformedBundle("bundle %s must be 0..2**64-1, found %d" % (what, v))
    return v


def _gap_map(g):
    after, resume, kind, reason, accepted = g
    m = {1: after, 2: resume, 3: kind, 4: reason}
    if accepted is not None:
        m[5] = int(accepted)
    return m


def _gaps_from(items):
    """Field 13 (optional): [(after, resume, kind, reason, accepted or None)]."""
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > MAX_BUNDLE_GAPS:
        raise MalformedBundle("bundle field 13 must be an array of at most %d gaps" % MAX_BUNDLE_GAPS)
    out = []
    for m in items:
        g = (m.get(1), m.get(2), m.get(3), m.get(4), m.get(5)) if hasattr(m, "get") else None
        if g is None or not (isinstance(g[0], int) and isinstance(g[1], int) and isinstance(g[2], str)
                             and isinstance(g[3], str) and (g[4] is None or isinstance(g[4], int))):
            raise MalformedBundle("bundle field 13: expected {1: after, 2: resume, 3: kind, 4: reason, ? 5: time}, "
                                  "found %r" % (m,))
        out.append(g)
    return out


def check_offline(b, verify, decode=cbor_decoder.decode):
    """Check signature, key binding and Merkle path of a Bundle.

    ``verify(alg, public_key, to_be_signed, signature) -> bool``. Returns the decoded
    payload (``reading_validate.Payload``). Raises NonCanonical, TamperedMessage, WrongKey,
    WrongIndex, WrongPath.
    """
    try:
        msg = cose_verify.parse_canonical(b.message, decode)
        body = reading_validate.decode_payload(msg.payload, decode)
    except NonCanonicalMessage as e:
        raise NonCanonical("non-canonical message: %s" % e)
    except PayloadRangeError as e:
        raise ReadingOutOfRange("reading out of range: %s" % e)
    except ValueError as e:
        raise TamperedMessage("tampered message: it no longer decodes as a signed reading (%s)" % e)
    if hashlib.sha256(b.public_key).digest()[:KID_LEN] != msg.kid:
        raise WrongKey("wrong device key: the message names kid %s, the bundle's key has kid %s"
                       % (_hex(msg.kid), _hex(hashlib.sha256(b.public_key).digest()[:KID_LEN])))
    if b.alg != msg.alg:
        raise WrongKey("wrong device key: the message is signed with alg %r, the bundle's key is %r"
                       % (msg.alg, b.alg))
    if not verify(msg.alg, b.public_key, msg.to_be_signed(), msg.signature):
        raise TamperedMessage("tampered message: the %s signature of %s seq %d does not verify"
                              % (cose_verify.ALGORITHMS[msg.alg]["name"], body.device, body.seq))
    check_path(b)
    return body


def check_path(b):
    """The Merkle path leads from the message to the header's root at the bundle's index,
    hashed with the header's tree hash. Raises WrongIndex, WrongPath, TreeHashUnavailable."""
    size = b.header.tree_size
    try:
        digest = hashes.function(hashes.alg_for("tree", b.header.tree_alg))
    except hashes.UnknownHash as e:
        raise TreeHashUnavailable("cannot check the audit path: %s" % e)
    leaf = merkle.leaf_hash(b.message, digest)
    if not 0 <= b.index < size:
        raise WrongIndex("wrong leaf index: %d is outside the batch of %d messages" % (b.index, size))
    if merkle.is_included(leaf, b.index, size, b.path, b.header.root, digest):
        return
    other = _other_tree_hash(b)
    if other is not None:
        raise WrongPath("wrong audit path: the header names tree hash %s, but the path leads to the batch root "
                        "only when hashed with %s" % (hashes.NAMES[b.header.tree_alg], hashes.NAMES[other]))
    proved = _index_the_path_proves(leaf, b.index, size, b.path, b.header.root, digest)
    if proved is not None:
        raise WrongIndex("wrong leaf index: the bundle says %d, the audit path proves index %d"
                         % (b.index, proved))
    raise WrongPath("wrong audit path: from leaf %d of %d it does not lead to the batch root %s (tree hash %s)"
                    % (b.index, size, _hex(b.header.root), hashes.NAMES[b.header.tree_alg]))


def _other_tree_hash(b):
    """Another tree hash of the table under which the path does verify (diagnosis only)."""
    for alg in hashes.NAMES:
        if alg != b.header.tree_alg and hashes.available(alg):
            digest = hashes.function(alg)
            if merkle.is_included(merkle.leaf_hash(b.message, digest), b.index, b.header.tree_size, b.path,
                                  b.header.root, digest):
                return alg
    return None


def _index_the_path_proves(leaf, index, size, path, root, digest=None):
    """Look for another index at which the path does verify (diagnosis only)."""
    candidates = set()
    for bit in range(64):
        candidates.add(index ^ (1 << bit))
    lo = max(0, index - INDEX_SEARCH)
    for i in range(lo, min(size, index + INDEX_SEARCH + 1)):
        candidates.add(i)
    for i in sorted(candidates):
        if i != index and 0 <= i < size and merkle.is_included(leaf, i, size, path, root, digest):
            return i
    return None


def _hex(b):
    return "".join("%02x" % x for x in b)

"""The proof bundle: everything needed to check one reading, in one CBOR map.

::

    {
      1: 1,                 ; bundle format version
      2: bstr,              ; the COSE_Sign1 message, exactly as the device signed it
      3: uint,              ; leaf index in the batch's Merkle tree
      4: [* bstr(32)],      ; RFC 9162 audit path, leaf to root
      5: {header},          ; batch header map (protocols/batch.py); its tree size is the one that counts
      6: uint,              ; chain id
      7: bstr(20),          ; anchor contract address
      8: bstr(32),          ; transaction hash of the anchor
      9: uint,              ; block number of the anchor
      10: bstr(32),         ; block hash of the anchor
      11: {1: alg, 2: bstr} ; the device key the message names (kid = SHA-256(key)[:16])
      ? 12: {               ; EIP-1186 proof that headers[gateway][number] = header hash
          1: bstr,          ;   RLP block header (its keccak256 is the block hash above)
          2: [* bstr],      ;   account proof nodes
          3: [* bstr]       ;   storage proof nodes
        },
      ? 13: [* {            ; gaps the gateway recorded in this device's chain before this
          1: uint,          ;   reading (protocols/chain.py G1-G3), oldest first: seqs
          2: uint,          ;   1 + 1 .. 2 - 1 are not in the chain, it goes on at 2;
          3: tstr,          ;   "restart" (declared by the device) or "operator";
          4: tstr,          ;   the reason given;
          ? 5: uint         ;   when it was accepted (unix seconds)
        }]
    }

Field 13 is the gateway's statement, not proven by anything in the bundle: a verifier
shows it as such. (A restart message itself is signed by the device: seq > 1 with a
zero ``prev``.)

``check_offline`` does every check that needs no network: the signature with
the key in the bundle (and that the key is the one the message's kid names),
the Merkle path from the message to the header's root. Each failure is its own
exception class with a message that says what was expected and what was found.
"""
import hashlib

from edgeledger.protocols import cbor, cose, merkle, reading
from edgeledger.protocols.batch import BatchHeader, HeaderError
from edgeledger.protocols.errors import DecodeError, ProtocolError

VERSION = 1
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


class TamperedMessage(BundleError):
    pass


class WrongKey(BundleError):
    pass


class WrongIndex(BundleError):
    pass


class WrongPath(BundleError):
    pass


class Bundle:
    __slots__ = ("message", "index", "path", "header", "chain_id", "contract", "tx_hash",
                 "block_number", "block_hash", "alg", "public_key", "storage_proof", "gaps")

    def __init__(self, message, index, path, header, chain_id, contract, tx_hash, block_number,
                 block_hash, alg, public_key, storage_proof=None, gaps=()):
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
        self.storage_proof = storage_proof  # None or (header_rlp, account_nodes, storage_nodes)
        # [(after, resume, kind, reason, accepted_at or None)], at most MAX_BUNDLE_GAPS
        self.gaps = list(gaps)[-MAX_BUNDLE_GAPS:]

    def encode(self):
        m = {1: VERSION, 2: self.message, 3: self.index, 4: self.path, 5: self.header.to_map(),
             6: self.chain_id, 7: self.contract, 8: self.tx_hash, 9: self.block_number,
             10: self.block_hash, 11: {1: self.alg, 2: self.public_key}}
        if self.storage_proof is not None:
            header_rlp, account, storage = self.storage_proof
            m[12] = {1: header_rlp, 2: list(account), 3: list(storage)}
        if self.gaps:
            m[13] = [_gap_map(g) for g in self.gaps]
        return cbor.encode(m)

    @classmethod
    def decode(cls, data, decode=cbor.decode):
        """Parse bundle bytes; raises MalformedBundle."""
        if len(data) > MAX_BUNDLE_BYTES:
            raise MalformedBundle("bundle of %d bytes exceeds %d" % (len(data), MAX_BUNDLE_BYTES))
        try:
            m = decode(data)
        except ValueError as e:
            raise MalformedBundle("bundle is not CBOR: %s" % e)
        if not hasattr(m, "get") or m.get(1) != VERSION:
            raise MalformedBundle("expected a version %d bundle map" % VERSION)
        try:
            key = m[11]
            sp = m.get(12)
            storage = (bytes(sp[1]), [bytes(x) for x in sp[2]], [bytes(x) for x in sp[3]]) if sp else None
            b = cls(m[2], m[3], list(m[4]), BatchHeader.from_map(m[5]), m[6], m[7], m[8], m[9], m[10],
                    key[1], key[2], storage, _gaps_from(m.get(13) or []))
        except (KeyError, TypeError, IndexError) as e:
            raise MalformedBundle("bundle is missing or mistypes field %s" % (e,))
        except HeaderError as e:
            raise MalformedBundle(str(e))
        for name, size in (("contract", 20), ("tx_hash", 32), ("block_hash", 32)):
            if len(getattr(b, name)) != size:
                raise MalformedBundle("bundle %s must be %d bytes" % (name, size))
        if not isinstance(b.index, int) or any(len(p) != 32 for p in b.path):
            raise MalformedBundle("bundle leaf index must be an integer and path entries 32 bytes")
        return b


def _gap_map(g):
    after, resume, kind, reason, accepted = g
    m = {1: after, 2: resume, 3: kind, 4: reason}
    if accepted is not None:
        m[5] = int(accepted)
    return m


def _gaps_from(items):
    if len(items) > MAX_BUNDLE_GAPS:
        raise MalformedBundle("bundle field 13 holds %d gaps, at most %d expected" % (len(items), MAX_BUNDLE_GAPS))
    out = []
    for m in items:
        g = (m[1], m[2], m[3], m[4], m.get(5))
        if not (isinstance(g[0], int) and isinstance(g[1], int) and isinstance(g[2], str)
                and isinstance(g[3], str) and (g[4] is None or isinstance(g[4], int))):
            raise MalformedBundle("bundle field 13: expected {1: after, 2: resume, 3: kind, 4: reason, ? 5: time}, "
                                  "found %r" % (m,))
        out.append(g)
    return out


def check_offline(b, verify, decode=cbor.decode):
    """Check signature, key binding and Merkle path of a Bundle.

    ``verify(alg, public_key, to_be_signed, signature) -> bool``. Returns the decoded
    payload (``reading.Payload``). Raises TamperedMessage, WrongKey, WrongIndex, WrongPath.
    """
    try:
        msg = cose.parse_sign1(b.message, decode)
        body = reading.decode_payload(msg.payload, decode)
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
                              % (cose.ALGORITHMS[msg.alg]["name"], body.device, body.seq))
    check_path(b)
    return body


def check_path(b):
    """The Merkle path leads from the message to the header's root at the bundle's index."""
    size = b.header.tree_size
    leaf = merkle.leaf_hash(b.message)
    if not 0 <= b.index < size:
        raise WrongIndex("wrong leaf index: %d is outside the batch of %d messages" % (b.index, size))
    if merkle.is_included(leaf, b.index, size, b.path, b.header.root):
        return
    proved = _index_the_path_proves(leaf, b.index, size, b.path, b.header.root)
    if proved is not None:
        raise WrongIndex("wrong leaf index: the bundle says %d, the audit path proves index %d"
                         % (b.index, proved))
    raise WrongPath("wrong audit path: from leaf %d of %d it does not lead to the batch root %s"
                    % (b.index, size, _hex(b.header.root)))


def _index_the_path_proves(leaf, index, size, path, root):
    """Look for another index at which the path does verify (diagnosis only)."""
    candidates = set()
    for bit in range(64):
        candidates.add(index ^ (1 << bit))
    lo = max(0, index - INDEX_SEARCH)
    for i in range(lo, min(size, index + INDEX_SEARCH + 1)):
        candidates.add(i)
    for i in sorted(candidates):
        if i != index and 0 <= i < size and merkle.is_included(leaf, i, size, path, root):
            return i
    return None


def _hex(b):
    return "".join("%02x" % x for x in b)

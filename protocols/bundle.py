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
        }                   ;   latest block (gateway/verifier.py)
    }

Fields 6..10 and the registration in 11 are claims: a verifier compares them with its own trust
roots and with what it proves on chain, never takes them on faith.

``check_offline`` does every check that needs no network: the signature with
the key in the bundle (and that the key is the one the message's kid names),
the Merkle path from the message to the header's root. Each failure is its own
exception class with a message that says what was expected and what was found.
"""
import hashlib

from edgeledger.protocols import cbor, cose, merkle, reading
from edgeledger.protocols.batch import BatchHeader, HeaderError
from edgeledger.protocols.errors import DecodeError, ProtocolError

VERSION = 2
KID_LEN = 16
# A bundle is one message (<= 64 KB), a path of <= 32 hashes and a storage proof of a
# few trie nodes (<= 532 bytes each).
MAX_BUNDLE_BYTES = 256 * 1024
# How far around a wrong leaf index the diagnosis looks for the index the path proves.
INDEX_SEARCH = 4096


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
                 "block_number", "block_hash", "alg", "public_key", "site", "key_block", "key_time",
                 "first_seq", "storage_proof")

    def __init__(self, message, index, path, header, chain_id, contract, tx_hash, block_number,
                 block_hash, alg, public_key, site, key_block, key_time, first_seq, storage_proof=None):
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

    def encode(self):
        m = {1: VERSION, 2: self.message, 3: self.index, 4: self.path, 5: self.header.to_map(),
             6: self.chain_id, 7: self.contract, 8: self.tx_hash, 9: self.block_number,
             10: self.block_hash, 11: {1: self.alg, 2: self.public_key, 3: self.site, 4: self.key_block,
                                       5: self.key_time, 6: self.first_seq}}
        if self.storage_proof is not None:
            header_rlp, account, storage = self.storage_proof
            m[12] = {1: header_rlp, 2: list(account), 3: list(storage)}
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
            raise MalformedBundle("expected a version %d bundle map, found %s" % (
                VERSION, "version %r" % (m.get(1),) if hasattr(m, "get") else type(m).__name__))
        try:
            key = m[11]
            sp = m.get(12)
            storage = (bytes(sp[1]), [bytes(x) for x in sp[2]], [bytes(x) for x in sp[3]]) if sp else None
            b = cls(m[2], m[3], list(m[4]), BatchHeader.from_map(m[5]), m[6], m[7], m[8], m[9], m[10],
                    key[1], key[2], key[3], key[4], key[5], key[6], storage)
        except (KeyError, TypeError, IndexError) as e:
            raise MalformedBundle("bundle is missing or mistypes field %s" % (e,))
        except HeaderError as e:
            raise MalformedBundle(str(e))
        for name, size in (("contract", 20), ("tx_hash", 32), ("block_hash", 32)):
            if len(getattr(b, name)) != size:
                raise MalformedBundle("bundle %s must be %d bytes" % (name, size))
        if not isinstance(b.index, int) or any(len(p) != 32 for p in b.path):
            raise MalformedBundle("bundle leaf index must be an integer and path entries 32 bytes")
        if not isinstance(b.site, str) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for v in (b.chain_id, b.block_number, b.key_block, b.key_time, b.first_seq)):
            raise MalformedBundle("bundle key site must be text; chain id, block number and the key's"
                                  " registration block, time and first seq unsigned integers")
        return b


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

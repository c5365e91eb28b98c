// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title EdgeLedgerAnchor v2: sites and their gateways, per-gateway ordered batch anchors, a
///        device key registry keyed by (site, kid), and an RFC 9162 inclusion check.
///
/// Batch header v2 (docs/wire-format.md; protocols/batch.py builds the same bytes). The header
/// hash is SHA-256 over a fixed 118-byte layout, so it needs no CBOR on chain:
///
///     offset  size  field
///          0     1  version          = 0x02
///          1     1  treeAlg          0x01 = SHA-256 RFC 9162 (the only one `verifyAnchored` checks)
///          2    20  gateway          = msg.sender of `anchor`
///         22     8  number           big-endian uint64, first batch is 1
///         30    32  prevHeaderHash   zero for batch 1
///         62    32  root             Merkle tree head
///         94     8  treeSize         big-endian uint64, leaf count
///        102     8  firstTime        big-endian uint64, unix seconds
///        110     8  lastTime         big-endian uint64, unix seconds
///        118        (end)
///
/// Key commitment (protocols/keywindow.py computes the same bytes): SHA-256 over
///
///     0x02 | u8 len(site) | site | u8 len(deviceId) | deviceId | int32 alg (big-endian)
///          | u8 len(publicKey) | publicKey | uint64 block.number | uint64 block.timestamp
///          | uint64 firstSeq
///
/// where block.number/block.timestamp are those of the registering transaction: the chain's own
/// clock, which no caller chooses, and alg is the key's COSE algorithm id: an int32 holds every
/// id the IANA registry assigns and the private-use ids below -65536, such as SM2's -65537
/// (docs/wire-format.md), which an int16 did not.
///
/// Storage layout (the light client proves these slots with eth_getProof against a state root;
/// solc assigns slots in declaration order and packs a struct's small fields into one word from
/// the low-order bits up):
///
///     slot 0  owner (address, bits 0..159) | deployedBlock (uint64, bits 160..223)
///     slot 1  mapping(address => GatewayState) _gateways
///             keccak256(abi.encode(gw, 1)): lastBatch (bits 0..63) | activeSites (bits 64..95)
///     slot 2  mapping(bytes32 siteHash => mapping(address => Authorization)) _authorizations
///             keccak256(abi.encode(gw, keccak256(abi.encode(siteHash, 2)))):
///             fromBlock (bits 0..63) | untilBlock (bits 64..127, 0 = still authorized)
///     slot 3  mapping(address => mapping(uint64 => Anchor)) _anchors
///             base = keccak256(abi.encode(number, keccak256(abi.encode(gw, 3))))
///             base+0 headerHash; base+1 blockNumber (bits 0..63) | timestamp (bits 64..127)
///     slot 4  mapping(bytes32 siteHash => mapping(bytes16 => KeyEntry)) _keys
///             base = keccak256(abi.encode(kid, keccak256(abi.encode(siteHash, 4))))
///             (bytes16 is left-aligned in its 32-byte word)
///             base+0 commitment; base+1 endTime (bits 0..63) | lastSeq (bits 64..127) |
///             endBlock (bits 128..191) | flags (bits 192..199: 1 lastSeq set, 2 revoked, 4 rotated)
///
/// siteHash = sha256(UTF-8 site id). Everything is append-only: an anchor is written once; an
/// authorization window is opened once and closed once; a key entry is written once and its end
/// (time, last sequence number) can only move earlier. So any full node proves them at its
/// latest block, years later: no archive node is needed. `owner` lives in storage, not in the
/// code, so every deployment of this artifact has the same code hash: a verifier recognises the
/// contract version from the account proof's codeHash.
contract EdgeLedgerAnchor {
    /// Contract (and wire-format) version; also readable as `VERSION()`.
    uint16 public constant VERSION = 2;
    /// Version byte at offset 0 of the batch header layout.
    uint8 public constant HEADER_VERSION = 2;
    /// Tree-hash algorithm 0x01: SHA-256 with RFC 9162 leaf/node prefixes.
    uint8 public constant TREE_SHA256 = 1;
    /// Commitment layout version (first byte of the committed bytes).
    uint8 public constant KEY_COMMITMENT_VERSION = 2;
    /// Bound on a registered public key: 133 bytes is an uncompressed P-521 point, the largest
    /// COSE EC2 key (RFC 9053 §7.1.1); Ed25519 needs 32, P-256/SM2 uncompressed 65.
    uint256 public constant MAX_PUBLIC_KEY_BYTES = 133;
    /// Bound on a device id and a site id, in bytes (UTF-8): the MQTT topic segment limit the
    /// gateway applies to both (protocols/topics.py).
    uint256 public constant MAX_ID_BYTES = 64;
    /// An RFC 9162 audit path in a tree of at most 2^64 leaves has at most 64 entries.
    uint256 public constant MAX_PATH_LENGTH = 64;
    /// `rotateKey` with this lastSeq leaves the old key's last sequence number open (to be
    /// sealed by a later call once the gateway has seen the device switch keys).
    uint64 public constant OPEN_SEQ = type(uint64).max;

    uint8 private constant FLAG_LAST_SEQ = 1;
    uint8 private constant FLAG_REVOKED = 2;
    uint8 private constant FLAG_ROTATED = 4;

    struct GatewayState {
        uint64 lastBatch;
        uint32 activeSites;
    }

    struct Authorization {
        uint64 fromBlock;
        uint64 untilBlock; // 0 = still authorized
    }

    struct Anchor {
        bytes32 headerHash;
        uint64 blockNumber;
        uint64 timestamp;
    }

    struct KeyEntry {
        bytes32 commitment;
        uint64 endTime; // 0 = no end yet
        uint64 lastSeq; // meaningful when FLAG_LAST_SEQ is set
        uint64 endBlock; // block of the last change to the end
        uint8 flags;
    }

    /// The fields of a batch header, as `verifyAnchored` takes them.
    struct Header {
        uint8 treeAlg;
        address gateway;
        uint64 number;
        bytes32 prevHeaderHash;
        bytes32 root;
        uint64 treeSize;
        uint64 firstTime;
        uint64 lastTime;
    }

    address public owner; // slot 0
    uint64 public deployedBlock; // slot 0
    mapping(address => GatewayState) private _gateways; // slot 1
    mapping(bytes32 => mapping(address => Authorization)) private _authorizations; // slot 2
    mapping(address => mapping(uint64 => Anchor)) private _anchors; // slot 3
    mapping(bytes32 => mapping(bytes16 => KeyEntry)) private _keys; // slot 4

    event GatewayAuthorized(bytes32 indexed siteHash, address indexed gateway, string site, uint64 fromBlock);
    event GatewayDeauthorized(bytes32 indexed siteHash, address indexed gateway, string site, uint64 untilBlock);
    event Anchored(address indexed gateway, uint64 indexed number, bytes32 root, bytes32 headerHash, uint64 treeSize);
    /// The registration's block number and time are the log's own block's.
    event KeyRegistered(
        bytes32 indexed siteHash, bytes16 indexed kid, string site, string deviceId, int32 alg, bytes publicKey, uint64 firstSeq
    );
    event KeyEnded(bytes32 indexed siteHash, bytes16 indexed kid, uint64 endTime, uint64 lastSeq, uint8 flags, address by);

    error NotOwner(address caller);
    error NotGateway(address caller);
    error NotAuthorized(address caller);
    error ZeroAddress();
    error AlreadyAuthorized(address gateway);
    error NotAuthorizedForSite(address gateway);
    error OutOfOrder(uint64 expected, uint64 got);
    error PrevMismatch(bytes32 expected, bytes32 got);
    error BadTimeRange(uint64 firstTime, uint64 lastTime);
    error BadTreeAlg(uint8 treeAlg);
    error KeyExists(bytes16 kid);
    error UnknownKey(bytes16 kid);
    error BadPublicKeyLength(uint256 max, uint256 got);
    error BadDeviceIdLength(uint256 max, uint256 got);
    error BadSiteLength(uint256 max, uint256 got);
    error ZeroFirstSeq();
    error ZeroEndTime();

    constructor() {
        owner = msg.sender;
        deployedBlock = uint64(block.number);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    // ------------------------------------------------------------------ sites and gateways

    function siteHash(string calldata site) public pure returns (bytes32) {
        return sha256(bytes(site));
    }

    function _siteHash(string calldata site) private pure returns (bytes32 h) {
        uint256 n = bytes(site).length;
        if (n == 0 || n > MAX_ID_BYTES) revert BadSiteLength(MAX_ID_BYTES, n);
        h = sha256(bytes(site));
    }

    function _active(bytes32 sh, address gw) private view returns (bool) {
        Authorization memory a = _authorizations[sh][gw];
        return a.fromBlock != 0 && a.untilBlock == 0;
    }

    /// The owner lets `gw` anchor batches and manage device keys for `site`, from this block on.
    /// A window is opened once: a de-authorized gateway is not authorized again (use a new
    /// account), so no anchor can fall back into a window after the fact.
    function authorizeGateway(string calldata site, address gw) external onlyOwner {
        if (gw == address(0)) revert ZeroAddress();
        bytes32 sh = _siteHash(site);
        if (_authorizations[sh][gw].fromBlock != 0) revert AlreadyAuthorized(gw);
        _authorizations[sh][gw] = Authorization({fromBlock: uint64(block.number), untilBlock: 0});
        _gateways[gw].activeSites += 1;
        emit GatewayAuthorized(sh, gw, site, uint64(block.number));
    }

    /// Close `gw`'s window for `site` at this block: its anchors from this block on do not count
    /// for the site, and it can no longer manage the site's keys.
    function deauthorizeGateway(string calldata site, address gw) external onlyOwner {
        bytes32 sh = _siteHash(site);
        if (!_active(sh, gw)) revert NotAuthorizedForSite(gw);
        _authorizations[sh][gw].untilBlock = uint64(block.number);
        _gateways[gw].activeSites -= 1;
        emit GatewayDeauthorized(sh, gw, site, uint64(block.number));
    }

    function authorization(string calldata site, address gw) external view returns (uint64 fromBlock, uint64 untilBlock) {
        Authorization memory a = _authorizations[sha256(bytes(site))][gw];
        return (a.fromBlock, a.untilBlock);
    }

    function isGatewayFor(string calldata site, address gw) external view returns (bool) {
        return _active(sha256(bytes(site)), gw);
    }

    function lastBatch(address gw) external view returns (uint64) {
        return _gateways[gw].lastBatch;
    }

    /// Reconciliation read for a restarted gateway: last anchored number and its header hash.
    function head(address gw) external view returns (uint64 number, bytes32 headerHash) {
        number = _gateways[gw].lastBatch;
        headerHash = number == 0 ? bytes32(0) : _anchors[gw][number].headerHash;
    }

    /// What is stored for batch `number` of `gw`: zeros if it is not anchored.
    function anchorOf(address gw, uint64 number)
        external
        view
        returns (bytes32 headerHash, uint64 blockNumber, uint64 timestamp)
    {
        Anchor memory a = _anchors[gw][number];
        return (a.headerHash, a.blockNumber, a.timestamp);
    }

    // ------------------------------------------------------------------ batches

    /// Anchor the next batch of the calling gateway, which must be authorized for at least one
    /// site. Reverts with OutOfOrder unless number == lastBatch + 1, with PrevMismatch unless
    /// prevHeaderHash is the stored head. Stores the header hash with this block's number and
    /// time.
    function anchor(
        uint64 number,
        bytes32 prevHeaderHash,
        bytes32 root,
        uint64 treeSize,
        uint64 firstTime,
        uint64 lastTime,
        uint8 treeAlg
    ) external returns (bytes32 headerHash) {
        GatewayState memory st = _gateways[msg.sender];
        if (st.activeSites == 0) revert NotGateway(msg.sender);
        uint64 expected = st.lastBatch + 1;
        if (number != expected) revert OutOfOrder(expected, number);
        bytes32 prev = st.lastBatch == 0 ? bytes32(0) : _anchors[msg.sender][st.lastBatch].headerHash;
        if (prevHeaderHash != prev) revert PrevMismatch(prev, prevHeaderHash);
        if (firstTime > lastTime) revert BadTimeRange(firstTime, lastTime);
        if (treeAlg == 0) revert BadTreeAlg(treeAlg);

        headerHash = _headerHash(
            Header({
                treeAlg: treeAlg,
                gateway: msg.sender,
                number: number,
                prevHeaderHash: prevHeaderHash,
                root: root,
                treeSize: treeSize,
                firstTime: firstTime,
                lastTime: lastTime
            })
        );
        _anchors[msg.sender][number] =
            Anchor({headerHash: headerHash, blockNumber: uint64(block.number), timestamp: uint64(block.timestamp)});
        _gateways[msg.sender].lastBatch = number;
        emit Anchored(msg.sender, number, root, headerHash, treeSize);
    }

    /// SHA-256 of the 118-byte header layout. Two packed halves keep the stack shallow.
    function _headerHash(Header memory h) private pure returns (bytes32) {
        return sha256(
            abi.encodePacked(
                abi.encodePacked(HEADER_VERSION, h.treeAlg, h.gateway, h.number, h.prevHeaderHash),
                abi.encodePacked(h.root, h.treeSize, h.firstTime, h.lastTime)
            )
        );
    }

    // ------------------------------------------------------------------ device key registry

    modifier onlySiteManager(bytes32 sh) {
        if (msg.sender != owner && !_active(sh, msg.sender)) revert NotAuthorized(msg.sender);
        _;
    }

    /// Register a device key for `site`. Its kid is sha256(publicKey)[:16], computed here; the
    /// entry is keyed by (site, kid), so a kid registered first under another site neither
    /// blocks nor changes this site's registration. Records this block's number and time and
    /// the first sequence number the key may sign. Only the owner and the site's gateways.
    function registerKey(
        string calldata site,
        string calldata deviceId,
        int32 alg,
        bytes calldata publicKey,
        uint64 firstSeq
    ) external onlySiteManager(_siteHash(site)) returns (bytes16 kid) {
        if (publicKey.length == 0 || publicKey.length > MAX_PUBLIC_KEY_BYTES) {
            revert BadPublicKeyLength(MAX_PUBLIC_KEY_BYTES, publicKey.length);
        }
        if (bytes(deviceId).length == 0 || bytes(deviceId).length > MAX_ID_BYTES) {
            revert BadDeviceIdLength(MAX_ID_BYTES, bytes(deviceId).length);
        }
        if (firstSeq == 0) revert ZeroFirstSeq();
        kid = bytes16(sha256(publicKey));
        KeyEntry storage k = _keys[sha256(bytes(site))][kid];
        if (k.commitment != bytes32(0)) revert KeyExists(kid);
        k.commitment = _commitment(site, deviceId, alg, publicKey, firstSeq);
        emit KeyRegistered(sha256(bytes(site)), kid, site, deviceId, alg, publicKey, firstSeq);
    }

    /// SHA-256 of the key commitment layout (see the header comment), with this block's number
    /// and time. Two packed halves keep the stack shallow.
    function _commitment(
        string calldata site,
        string calldata deviceId,
        int32 alg,
        bytes calldata publicKey,
        uint64 firstSeq
    ) private view returns (bytes32) {
        bytes memory ids = abi.encodePacked(
            KEY_COMMITMENT_VERSION, uint8(bytes(site).length), site, uint8(bytes(deviceId).length), deviceId
        );
        return sha256(
            abi.encodePacked(
                ids,
                abi.encodePacked(
                    alg, uint8(publicKey.length), publicKey, uint64(block.number), uint64(block.timestamp), firstSeq
                )
            )
        );
    }

    /// Revoke: readings timed at or after `endTime`, and readings with a sequence number above
    /// `lastSeq`, are not valid under this key. Both only ever move earlier.
    function revokeKey(string calldata site, bytes16 kid, uint64 endTime, uint64 lastSeq) external {
        _end(_siteHash(site), kid, endTime, lastSeq, FLAG_REVOKED);
    }

    /// Rotation: the key's window ends at `overlapEnd` (and at `lastSeq`, or OPEN_SEQ when the
    /// device's switch to its new key is not known yet; a later call seals it). Only earlier.
    function rotateKey(string calldata site, bytes16 kid, uint64 overlapEnd, uint64 lastSeq) external {
        _end(_siteHash(site), kid, overlapEnd, lastSeq, FLAG_ROTATED);
    }

    function _end(bytes32 sh, bytes16 kid, uint64 endTime, uint64 lastSeq, uint8 kind) private onlySiteManager(sh) {
        KeyEntry storage k = _keys[sh][kid];
        if (k.commitment == bytes32(0)) revert UnknownKey(kid);
        if (endTime == 0) revert ZeroEndTime();
        if (k.endTime == 0 || endTime < k.endTime) k.endTime = endTime;
        uint8 flags = k.flags | kind;
        if (lastSeq != OPEN_SEQ) {
            if ((k.flags & FLAG_LAST_SEQ) == 0 || lastSeq < k.lastSeq) k.lastSeq = lastSeq;
            flags |= FLAG_LAST_SEQ;
        }
        k.flags = flags;
        k.endBlock = uint64(block.number);
        emit KeyEnded(sh, kid, k.endTime, k.lastSeq, flags, msg.sender);
    }

    function keyEntry(string calldata site, bytes16 kid)
        external
        view
        returns (bytes32 commitment, uint64 endTime, uint64 lastSeq, uint64 endBlock, uint8 flags)
    {
        KeyEntry memory k = _keys[sha256(bytes(site))][kid];
        return (k.commitment, k.endTime, k.lastSeq, k.endBlock, k.flags);
    }

    // ------------------------------------------------------------------ RFC 9162 inclusion

    /// RFC 9162 §2.1.3.2: verify that `leafHash` is at `index` in the tree of `treeSize` leaves
    /// whose head is `root`, given the audit path. Node hashes are SHA-256(0x01 || left || right)
    /// (§2.1.1), computed with the sha256 precompile. A low-level check: it cannot tell a leaf
    /// hash from an inner node; `verifyAnchored` hashes the entry itself.
    function verify(bytes32 leafHash, uint256 index, uint256 treeSize, bytes32[] calldata path, bytes32 root)
        public
        pure
        returns (bool)
    {
        // Step 1: leaf_index < tree_size.
        if (index >= treeSize || path.length > MAX_PATH_LENGTH) return false;
        // Steps 2-3.
        uint256 fn = index;
        uint256 sn = treeSize - 1;
        bytes32 r = leafHash;
        // Step 4.
        for (uint256 i = 0; i < path.length; ++i) {
            // 4a: a path longer than the tree is deep fails.
            if (sn == 0) return false;
            bytes32 p = path[i];
            if (fn & 1 == 1 || fn == sn) {
                // 4b.i: r = HASH(0x01 || p || r)
                r = _node(p, r);
                // 4b.ii: shift until LSB(fn) is set or fn is 0.
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                // 4b "otherwise": r = HASH(0x01 || r || p)
                r = _node(r, p);
            }
            // 4c.
            fn >>= 1;
            sn >>= 1;
        }
        // Step 5.
        return sn == 0 && r == root;
    }

    /// True if `entry` (the message bytes) is leaf `index` of the batch whose header fields are
    /// `h`, and that header is the one anchored as batch `h.number` of `h.gateway`. The header
    /// hash is recomputed from the fields, so the tree size and root are the anchored ones; the
    /// leaf hash is SHA-256(0x00 || entry), computed here, so no inner node passes as a leaf.
    /// Only SHA-256 trees (treeAlg 0x01) are checked on chain; others return false.
    function verifyAnchored(Header calldata h, bytes calldata entry, uint256 index, bytes32[] calldata path)
        external
        view
        returns (bool)
    {
        if (h.treeAlg != TREE_SHA256) return false;
        bytes32 stored = _anchors[h.gateway][h.number].headerHash;
        if (stored == bytes32(0)) return false;
        if (_headerHash(h) != stored) return false;
        return verify(sha256(abi.encodePacked(bytes1(0x00), entry)), index, h.treeSize, path, h.root);
    }

    /// SHA-256(0x01 || left || right) with the sha256 precompile (address 2). The 65-byte
    /// preimage is written past the free memory pointer and the pointer is put back afterwards,
    /// so a 64-step path does not grow memory by 64 x 97 bytes.
    function _node(bytes32 left, bytes32 right) private pure returns (bytes32 h) {
        uint256 fmp;
        assembly ("memory-safe") {
            fmp := mload(0x40)
        }
        h = sha256(abi.encodePacked(bytes1(0x01), left, right));
        assembly ("memory-safe") {
            mstore(0x40, fmp)
        }
    }
}

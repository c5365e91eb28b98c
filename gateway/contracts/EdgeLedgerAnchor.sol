// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title EdgeLedgerAnchor: per-gateway ordered batch anchors, a device key registry and an
///        RFC 9162 inclusion check.
///
/// Batch header (wire format v1, DESIGN.md §3). The header hash is SHA-256 over a fixed
/// 117-byte layout, so it needs no CBOR on chain and `protocols/` reproduces it byte for byte:
///
///     offset  size  field
///          0     1  version          = 0x01
///          1    20  gateway          = msg.sender of `anchor`
///         21     8  number           big-endian uint64, first batch is 1
///         29    32  prevHeaderHash   zero for batch 1
///         61    32  root             RFC 9162 Merkle tree head
///         93     8  treeSize         big-endian uint64, leaf count
///        101     8  firstTime        big-endian uint64, unix seconds
///        109     8  lastTime         big-endian uint64, unix seconds
///        117        (end)
///
/// Storage layout (the light client proves these slots with eth_getProof; solc assigns the
/// slots in declaration order, `owner` is immutable and lives in the code, not in storage):
///
///     slot 0  mapping(address => GatewayState) _gateways
///             value slot = keccak256(abi.encode(gw, uint256(0)))
///             packed: bits 0..63 lastBatch (uint64), bits 64..71 allowed (bool)
///     slot 1  mapping(address => mapping(uint64 => bytes32)) roots
///             value slot = keccak256(abi.encode(uint256(number), keccak256(abi.encode(gw, uint256(1)))))
///     slot 2  mapping(address => mapping(uint64 => bytes32)) headers
///             value slot = keccak256(abi.encode(uint256(number), keccak256(abi.encode(gw, uint256(2)))))
///     slot 3  mapping(bytes16 => Key) _keys
///             base = keccak256(abi.encode(kid, uint256(3)))  (bytes16 is left-aligned in its word)
///             base+0: packed validFrom (bits 0..63), revokedAt (bits 64..127), alg (bits 128..143)
///             base+1: deviceId (string), base+2: publicKey (bytes)
///
/// The head hash of a gateway is `headers[gw][lastBatch]`; it is not stored twice (one fewer
/// SSTORE per anchor).
contract EdgeLedgerAnchor {
    /// Version byte at offset 0 of the batch header layout.
    uint8 public constant HEADER_VERSION = 1;
    /// Bound on a registered public key: 133 bytes is an uncompressed P-521 point, the largest
    /// COSE EC2 key (RFC 9053 §7.1.1); Ed25519 needs 32, P-256/SM2 uncompressed 65.
    uint256 public constant MAX_PUBLIC_KEY_BYTES = 133;
    /// Bound on a device id string, in bytes (UTF-8). Matches the MQTT topic segment limit the
    /// gateway applies to device ids.
    uint256 public constant MAX_DEVICE_ID_BYTES = 64;
    /// An RFC 9162 audit path in a tree of at most 2^64 leaves has at most 64 entries.
    uint256 public constant MAX_PATH_LENGTH = 64;

    struct GatewayState {
        uint64 lastBatch;
        bool allowed;
    }

    struct Key {
        uint64 validFrom;
        uint64 revokedAt; // 0 = not revoked
        int16 alg; // COSE algorithm id: -8 EdDSA, -7 ES256, ...
        string deviceId;
        bytes publicKey;
    }

    address public immutable owner;

    mapping(address => GatewayState) private _gateways; // slot 0
    mapping(address => mapping(uint64 => bytes32)) public roots; // slot 1
    mapping(address => mapping(uint64 => bytes32)) public headers; // slot 2
    mapping(bytes16 => Key) private _keys; // slot 3

    event GatewaySet(address indexed gateway, bool allowed);
    event Anchored(address indexed gateway, uint64 indexed number, bytes32 root, bytes32 headerHash, uint64 treeSize);
    event KeyRegistered(bytes16 indexed kid, string deviceId, int16 alg, uint64 validFrom, address by);
    event KeyRevoked(bytes16 indexed kid, uint64 revokedAt, address by);

    error NotOwner(address caller);
    error NotGateway(address caller);
    error NotAuthorized(address caller);
    error ZeroAddress();
    error OutOfOrder(uint64 expected, uint64 got);
    error PrevMismatch(bytes32 expected, bytes32 got);
    error BadTimeRange(uint64 firstTime, uint64 lastTime);
    error ZeroKid();
    error KeyExists(bytes16 kid);
    error UnknownKey(bytes16 kid);
    error BadPublicKeyLength(uint256 max, uint256 got);
    error BadDeviceIdLength(uint256 max, uint256 got);
    error ZeroRevocationTime();
    error RevocationNotEarlier(uint64 current, uint64 got);

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyOwnerOrGateway() {
        if (msg.sender != owner && !_gateways[msg.sender].allowed) revert NotAuthorized(msg.sender);
        _;
    }

    // ------------------------------------------------------------------ gateways and batches

    /// Authorize or de-authorize a gateway address. Its batch counter is kept either way.
    function setGateway(address gw, bool allowed) external onlyOwner {
        if (gw == address(0)) revert ZeroAddress();
        _gateways[gw].allowed = allowed;
        emit GatewaySet(gw, allowed);
    }

    function isGateway(address gw) external view returns (bool) {
        return _gateways[gw].allowed;
    }

    function lastBatch(address gw) external view returns (uint64) {
        return _gateways[gw].lastBatch;
    }

    function headHash(address gw) public view returns (bytes32) {
        uint64 last = _gateways[gw].lastBatch;
        return last == 0 ? bytes32(0) : headers[gw][last];
    }

    /// Reconciliation read for a restarted gateway: last anchored number and its header hash.
    function head(address gw) external view returns (uint64 number, bytes32 headerHash) {
        number = _gateways[gw].lastBatch;
        headerHash = number == 0 ? bytes32(0) : headers[gw][number];
    }

    /// Anchor the next batch of the calling gateway. Reverts with OutOfOrder unless
    /// number == lastBatch + 1, with PrevMismatch unless prevHeaderHash is the stored head.
    function anchor(
        uint64 number,
        bytes32 prevHeaderHash,
        bytes32 root,
        uint64 treeSize,
        uint64 firstTime,
        uint64 lastTime
    ) external returns (bytes32 headerHash) {
        GatewayState memory st = _gateways[msg.sender];
        if (!st.allowed) revert NotGateway(msg.sender);
        uint64 expected = st.lastBatch + 1;
        if (number != expected) revert OutOfOrder(expected, number);
        bytes32 prev = st.lastBatch == 0 ? bytes32(0) : headers[msg.sender][st.lastBatch];
        if (prevHeaderHash != prev) revert PrevMismatch(prev, prevHeaderHash);
        if (firstTime > lastTime) revert BadTimeRange(firstTime, lastTime);

        headerHash = sha256(
            abi.encodePacked(HEADER_VERSION, msg.sender, number, prevHeaderHash, root, treeSize, firstTime, lastTime)
        );
        roots[msg.sender][number] = root;
        headers[msg.sender][number] = headerHash;
        _gateways[msg.sender] = GatewayState({lastBatch: number, allowed: true});
        emit Anchored(msg.sender, number, root, headerHash, treeSize);
    }

    // ------------------------------------------------------------------ device key registry

    function registerKey(
        bytes16 kid,
        string calldata deviceId,
        int16 alg,
        bytes calldata publicKey,
        uint64 validFrom
    ) external onlyOwnerOrGateway {
        if (kid == bytes16(0)) revert ZeroKid();
        Key storage k = _keys[kid];
        if (k.publicKey.length != 0) revert KeyExists(kid);
        if (publicKey.length == 0 || publicKey.length > MAX_PUBLIC_KEY_BYTES) {
            revert BadPublicKeyLength(MAX_PUBLIC_KEY_BYTES, publicKey.length);
        }
        if (bytes(deviceId).length == 0 || bytes(deviceId).length > MAX_DEVICE_ID_BYTES) {
            revert BadDeviceIdLength(MAX_DEVICE_ID_BYTES, bytes(deviceId).length);
        }
        k.validFrom = validFrom;
        k.alg = alg;
        k.deviceId = deviceId;
        k.publicKey = publicKey;
        emit KeyRegistered(kid, deviceId, alg, validFrom, msg.sender);
    }

    /// From unix time `revokedAt` on, readings signed with `kid` are invalid. A revocation can
    /// be moved earlier (a compromise found to be older) but never later or undone.
    function revokeKey(bytes16 kid, uint64 revokedAt) external onlyOwnerOrGateway {
        Key storage k = _keys[kid];
        if (k.publicKey.length == 0) revert UnknownKey(kid);
        if (revokedAt == 0) revert ZeroRevocationTime();
        uint64 current = k.revokedAt;
        if (current != 0 && revokedAt >= current) revert RevocationNotEarlier(current, revokedAt);
        k.revokedAt = revokedAt;
        emit KeyRevoked(kid, revokedAt, msg.sender);
    }

    function getKey(bytes16 kid)
        external
        view
        returns (string memory deviceId, int16 alg, bytes memory publicKey, uint64 validFrom, uint64 revokedAt)
    {
        Key storage k = _keys[kid];
        if (k.publicKey.length == 0) revert UnknownKey(kid);
        return (k.deviceId, k.alg, k.publicKey, k.validFrom, k.revokedAt);
    }

    // ------------------------------------------------------------------ RFC 9162 inclusion

    /// RFC 9162 §2.1.3.2: verify that `leafHash` (= SHA-256(0x00 || entry)) is at `index` in the
    /// tree of `treeSize` leaves whose head is `root`, given the audit path. Node hashes are
    /// SHA-256(0x01 || left || right) (§2.1.1), computed with the sha256 precompile.
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

    /// `verify` against the root anchored by `gw` as batch `number`; false if not anchored.
    function verifyAnchored(
        address gw,
        uint64 number,
        bytes32 leafHash,
        uint256 index,
        uint256 treeSize,
        bytes32[] calldata path
    ) external view returns (bool) {
        bytes32 root = roots[gw][number];
        if (root == bytes32(0)) return false;
        return verify(leafHash, index, treeSize, path, root);
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

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title SM3Gas: what verifying an SM3 Merkle tree on chain would cost (issue 18, item 4)
/// @notice A measurement contract, not part of the anchor: `edgeledger bench proof` places its
/// code on anvil and asks eth_estimateGas what its views cost (gateway/bench/sm3gas.py). The EVM
/// has a SHA-256 precompile (address 2) but no SM3, so SM3 runs here as EVM code: the
/// compression function of GB/T 32905-2016 §5.3 over 32-bit words held in uint256.
///
/// `verifyEntry` is RFC 9162 §2.1.3.2 inclusion with SM3 (leaf = SM3(0x00 || entry),
/// node = SM3(0x01 || left || right)), the check `EdgeLedgerAnchor.verifyAnchored` makes with
/// SHA-256; `verifyEntrySha256` is the same loop over the precompile, for comparison in the
/// same contract and the same call shape.
contract SM3Gas {
    uint256 private constant MASK = 0xffffffff;

    /// SM3 (GB/T 32905-2016) of `data`.
    function sm3(bytes memory data) public pure returns (bytes32) {
        bytes memory m = _pad(data);
        uint256[8] memory v = [
            uint256(0x7380166f), 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e
        ];
        for (uint256 off = 0; off < m.length; off += 64) {
            _compress(v, m, off);
        }
        uint256 out;
        for (uint256 i = 0; i < 8; i++) {
            out = (out << 32) | v[i];
        }
        return bytes32(out);
    }

    /// RFC 9162 §2.1.3.2 with SM3: true if `path` leads from the leaf of `entry` at `index` in a
    /// tree of `size` leaves to `root`.
    function verifyEntry(bytes calldata entry, uint256 index, uint256 size, bytes32[] calldata path, bytes32 root)
        external
        pure
        returns (bool)
    {
        return _verify(sm3(abi.encodePacked(bytes1(0x00), entry)), index, size, path, root, false);
    }

    /// The same check with SHA-256 through the precompile.
    function verifyEntrySha256(bytes calldata entry, uint256 index, uint256 size, bytes32[] calldata path, bytes32 root)
        external
        pure
        returns (bool)
    {
        return _verify(sha256(abi.encodePacked(bytes1(0x00), entry)), index, size, path, root, true);
    }

    function _node(bytes32 left, bytes32 right, bool useSha256) private pure returns (bytes32) {
        bytes memory pre = abi.encodePacked(bytes1(0x01), left, right);
        return useSha256 ? sha256(pre) : sm3(pre);
    }

    function _verify(bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata path, bytes32 root, bool useSha256)
        private
        pure
        returns (bool)
    {
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leaf;
        for (uint256 i = 0; i < path.length; i++) {
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                r = _node(path[i], r, useSha256);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                r = _node(r, path[i], useSha256);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
    }

    /// GB/T 32905 §5.2: data || 0x80 || zeros || bit length (64-bit big-endian), a multiple of 64 bytes.
    function _pad(bytes memory data) private pure returns (bytes memory m) {
        uint256 n = data.length;
        uint256 total = ((n + 8) / 64 + 1) * 64;
        m = new bytes(total);
        for (uint256 i = 0; i < n; i++) {
            m[i] = data[i];
        }
        m[n] = 0x80;
        uint256 bits = n * 8;
        for (uint256 i = 0; i < 8; i++) {
            m[total - 1 - i] = bytes1(uint8(bits >> (8 * i)));
        }
    }

    function _rotl(uint256 x, uint256 n) private pure returns (uint256) {
        n %= 32;
        return ((x << n) | (x >> (32 - n))) & MASK;
    }

    /// GB/T 32905 §5.3.2 message expansion and §5.3.3 compression of the block at `off`.
    function _compress(uint256[8] memory v, bytes memory m, uint256 off) private pure {
        uint256[68] memory w;
        unchecked {
            for (uint256 j = 0; j < 16; j++) {
                uint256 p = off + 4 * j;
                w[j] = (uint256(uint8(m[p])) << 24) | (uint256(uint8(m[p + 1])) << 16)
                    | (uint256(uint8(m[p + 2])) << 8) | uint256(uint8(m[p + 3]));
            }
            for (uint256 j = 16; j < 68; j++) {
                uint256 x = w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15);
                w[j] = (x ^ _rotl(x, 15) ^ _rotl(x, 23)) ^ _rotl(w[j - 13], 7) ^ w[j - 6];
            }
            uint256 a = v[0];
            uint256 b = v[1];
            uint256 c = v[2];
            uint256 d = v[3];
            uint256 e = v[4];
            uint256 f = v[5];
            uint256 g = v[6];
            uint256 h = v[7];
            for (uint256 j = 0; j < 64; j++) {
                uint256 a12 = _rotl(a, 12);
                uint256 ss1 = _rotl((a12 + e + _rotl(j < 16 ? 0x79cc4519 : 0x7a879d8a, j)) & MASK, 7);
                uint256 ss2 = ss1 ^ a12;
                uint256 ff = j < 16 ? a ^ b ^ c : (a & b) | (a & c) | (b & c);
                uint256 gg = j < 16 ? e ^ f ^ g : (e & f) | ((~e & MASK) & g);
                uint256 tt1 = (ff + d + ss2 + (w[j] ^ w[j + 4])) & MASK;
                uint256 tt2 = (gg + h + ss1 + w[j]) & MASK;
                d = c;
                c = _rotl(b, 9);
                b = a;
                a = tt1;
                h = g;
                g = _rotl(f, 19);
                f = e;
                e = tt2 ^ _rotl(tt2, 9) ^ _rotl(tt2, 17);
            }
            v[0] ^= a;
            v[1] ^= b;
            v[2] ^= c;
            v[3] ^= d;
            v[4] ^= e;
            v[5] ^= f;
            v[6] ^= g;
            v[7] ^= h;
        }
    }
}

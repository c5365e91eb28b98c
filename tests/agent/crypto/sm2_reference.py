"""A textbook SM2 (GB/T 32918.2 §6.1, §7.1) over any prime curve, for the tests only.

Affine coordinates, double-and-add, Fermat inverses: as plain as the standard's text, so
that it can be checked against the GB/T 32918.2 annex A example (a curve the optimised
agent/crypto/pure/sm2 does not support) and then used as a second opinion on sm2p256v1.
"""
from edgeledger.agent.crypto.pure.sm3 import sm3


class Curve:
    def __init__(self, p, a, b, gx, gy, n):
        self.p, self.a, self.b, self.n, self.g = p, a, b, n, (gx, gy)

    @classmethod
    def from_hex(cls, v):
        return cls(*(int(v[k], 16) for k in ("p", "a", "b", "gx", "gy", "n")))

    def add(self, P, Q):
        p = self.p
        if P is None:
            return Q
        if Q is None:
            return P
        if P[0] == Q[0]:
            if (P[1] + Q[1]) % p == 0:
                return None
            lam = (3 * P[0] * P[0] + self.a) * pow(2 * P[1], p - 2, p) % p
        else:
            lam = (Q[1] - P[1]) * pow(Q[0] - P[0], p - 2, p) % p
        x = (lam * lam - P[0] - Q[0]) % p
        return (x, (lam * (P[0] - x) - P[1]) % p)

    def mul(self, k, P):
        R = None
        while k:
            if k & 1:
                R = self.add(R, P)
            P = self.add(P, P)
            k >>= 1
        return R

    def curve_bytes(self):
        """a ‖ b ‖ x_G ‖ y_G, the curve's part of Z_A (§5.5)."""
        return b"".join(v.to_bytes(32, "big") for v in (self.a, self.b) + self.g)

    def public_key(self, d):
        x, y = self.mul(d, self.g)
        return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")

    def z_a(self, pub, uid):
        entl = 8 * len(uid)
        return sm3(bytes((entl >> 8, entl & 255)) + uid + self.curve_bytes() + pub[1:])

    def sign(self, d, e, k):
        """§6.1 A4-A6 with the given k: (r, s), or None for a k the standard rejects."""
        n = self.n
        r = (e + self.mul(k, self.g)[0]) % n
        if r == 0 or r + k == n:
            return None
        s = pow(1 + d, n - 2, n) * (k - r * d) % n
        return (r, s) if s else None

    def verify(self, pub, e, r, s):
        """§7.1 B1-B7."""
        n = self.n
        if not (1 <= r < n and 1 <= s < n):
            return False
        t = (r + s) % n
        if t == 0:
            return False
        q = (int.from_bytes(pub[1:33], "big"), int.from_bytes(pub[33:], "big"))
        pt = self.add(self.mul(s, self.g), self.mul(t, q))
        return pt is not None and (e + pt[0]) % n == r


# GB/T 32918.5 §3: the recommended curve sm2p256v1.
SM2P256V1 = Curve(
    0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)

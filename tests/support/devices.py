"""Craft signed messages in tests, good ones and deliberately bad ones."""
import hashlib
import time

from edgeledger.agent.signer import generate
from edgeledger.protocols import chain, cose, topics
from edgeledger.protocols.reading import validate as reading_validate

# A data owner's content key for tests of encrypted readings (agent/content_key.py).
OWNER_KEY = bytes(range(16))


def encrypted_pack(device="d1", seq=1, t=1764093000, alg="AES-CCM-16-64-128", key=OWNER_KEY):
    """A real COSE_Encrypt0 of a one-record pack, as a device with a content key seals it."""
    from edgeledger.agent.content_key import ContentKey
    from edgeledger.protocols.cbor import encode

    return ContentKey(alg, key).seal(device, seq, encode([{0: device + "/x", 2: 1.0, 6: t}]))


class FakeDevice:
    def __init__(self, name, site="plant-a", alg="EdDSA", signer=None):
        self.name = name
        self.site = site
        self.signer = signer or generate(alg, name)
        self.seq = 0
        self.prev = chain.GENESIS
        self.sent = {}

    @property
    def topic(self):
        return topics.readings(self.site, self.name)

    def register(self, registry, valid_from=0):
        """Register the key in the gateway registry. Its window opens at ``valid_from`` (default:
        long ago, so tests about other things can time readings freely; registering it on a
        chain moves the start to the chain's registration time)."""
        registry.register(self.name, self.site, self.signer.alg, self.signer.public_key, self.signer.kid,
                          valid_from=valid_from)

    def make(self, seq, prev, value=1.0, t=None, device=None, records=1):
        t = time.time() if t is None else t
        pack = [{0: "%s/v%d" % (self.name, i), 1: "W", 2: value + i, 6: t} for i in range(records)]
        payload = reading_validate.encode_payload(device or self.name, seq, prev, 1, pack)
        return cose.sign1(payload, self.signer)

    def next(self, **kw):
        """The next message in this device's chain."""
        msg = self.make(self.seq + 1, self.prev, **kw)
        self.seq += 1
        self.prev = hashlib.sha256(msg).digest()
        self.sent[self.seq] = msg
        return msg

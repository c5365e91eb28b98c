"""AES-128 (FIPS 197) and AES-CCM (RFC 3610) for the crypto shim (``crypto.py``).

Reached as ``crypto.AesEcb``, ``crypto.aes_ccm_encrypt``, ... (loaded on first
access, so a board that only signs never holds this code). Same backends and
contracts as the rest of the shim.
"""
from edgeledger.firmware.crypto import AES_BLOCK, AES_KEY_LEN, _cp, _cryptolib, _load, _need
from edgeledger.firmware.crypto_errors import CcmAuthError  # noqa: F401  (re-exported)


class AesEcb:
    """AES-128 forward block cipher (FIPS 197) with the key schedule kept.

    Raises ValueError for a key that is not 16 bytes or a block that is not 16. The
    other 128-bit cipher with a 128-bit key, SM4 (crypto_sm4.Sm4Ecb), is this class with
    its own ``NAME`` and ``_backend``.
    """

    NAME = "AES"

    def __init__(self, key):
        _need(self.NAME + " key", key, AES_KEY_LEN)
        self._enc = self._backend(key)

    def _backend(self, key):
        if _cp:
            return _cp.Aes(key).encrypt_block
        if _cryptolib:
            return _cryptolib.aes(bytes(key), 1).encrypt  # mode 1 = ECB
        return _load("edgeledger.firmware.aes").Aes(key).encrypt_block

    def encrypt_block(self, block):
        _need(self.NAME + " block", block, AES_BLOCK)
        return self._enc(block)


def aes_ecb_encrypt_block(key, block):
    """One AES-128 block encryption. Raises ValueError on key/block length."""
    return AesEcb(key).encrypt_block(block)


def aes_ccm_encrypt(key, nonce, plaintext, aad=b"", tag_len=8):
    """AES-CCM (RFC 3610) -> ciphertext ‖ tag. Defaults: COSE alg 10 (RFC 9053 §4.2).

    Raises ValueError on bad key/nonce/tag lengths.
    """
    _need("AES key", key, AES_KEY_LEN)
    if _cp:
        return _cp.aes_ccm_encrypt(key, nonce, plaintext, aad, tag_len)
    return _load("edgeledger.firmware.aesccm").ccm_encrypt(AesEcb(key).encrypt_block, nonce, plaintext, aad,
                                       tag_len)


def aes_ccm_decrypt(key, nonce, data, aad=b"", tag_len=8):
    """AES-CCM (RFC 3610) -> plaintext of ``ciphertext ‖ tag``.

    Raises CcmAuthError on a tag mismatch, ValueError on bad lengths.
    """
    _need("AES key", key, AES_KEY_LEN)
    if len(data) < tag_len:
        raise ValueError("CCM input: expected at least the %d-byte tag, found %d bytes"
                         % (tag_len, len(data)))
    if _cp:
        return _cp.aes_ccm_decrypt(key, nonce, data, aad, tag_len)
    return _load("edgeledger.firmware.aesccm").ccm_decrypt(AesEcb(key).encrypt_block, nonce, data, aad, tag_len)

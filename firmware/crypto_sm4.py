"""SM4 (GB/T 32907-2016) and SM4-CCM (RFC 3610 over SM4, as RFC 8998 §3.2 uses it) for the
crypto shim (``crypto.py``).

Reached as ``crypto.Sm4Ecb``, ``crypto.sm4_ccm_encrypt``, ... (loaded on first access, so a
board that only signs never holds this code). SM4 comes from ``cryptography`` on CPython,
from the pure ``sm4.py`` elsewhere (MicroPython's cryptolib has AES only); CCM is always
``aesccm.py``, the same construction the AES path uses, over the SM4 block. Contracts as
the AES functions (crypto_aes.py); the CCM defaults are RFC 8998's SM4_CCM: a 12-byte
nonce and a 16-byte tag.
"""
from edgeledger.firmware.crypto import _cp
from edgeledger.firmware.crypto_aes import AesEcb
from edgeledger.firmware.crypto_errors import CcmAuthError  # noqa: F401  (re-exported)
from edgeledger.firmware.crypto_more import _load

SM4_KEY_LEN = 16
SM4_BLOCK = 16
NONCE_LEN = 12  # RFC 8998 §3.2: SM4_CCM uses a 12-byte nonce (L = 3) ...
TAG_LEN = 16  # ... and a 16-byte tag


class Sm4Ecb(AesEcb):
    """SM4 forward block cipher (GB/T 32907 §6) with the key schedule kept.

    Raises ValueError for a key that is not 16 bytes or a block that is not 16.
    """

    NAME = "SM4"

    def _backend(self, key):
        if _cp:
            return _cp.sm4(key).encrypt_block
        return _load("edgeledger.firmware.sm4").Sm4(key).encrypt_block


def sm4_ecb_encrypt_block(key, block):
    """One SM4 block encryption. Raises ValueError on key/block length."""
    return Sm4Ecb(key).encrypt_block(block)


def sm4_ccm_encrypt(key, nonce, plaintext, aad=b"", tag_len=TAG_LEN):
    """SM4-CCM -> ciphertext ‖ tag. Raises ValueError on bad key/nonce/tag lengths."""
    return _load("edgeledger.firmware.aesccm").ccm_encrypt(Sm4Ecb(key).encrypt_block, nonce,
                                                           plaintext, aad, tag_len)


def sm4_ccm_decrypt(key, nonce, data, aad=b"", tag_len=TAG_LEN):
    """SM4-CCM -> plaintext of ``ciphertext ‖ tag``.

    Raises CcmAuthError on a tag mismatch, ValueError on bad lengths.
    """
    return _load("edgeledger.firmware.aesccm").ccm_decrypt(Sm4Ecb(key).encrypt_block, nonce,
                                                           data, aad, tag_len)

"""Block ciphers and CCM: AES-128 (FIPS 197), SM4 (GB/T 32907-2016), and CCM (RFC 3610)
over either, bytes in, bytes out.

  AesEcb, aes_ecb_encrypt_block, aes_ccm_encrypt, aes_ccm_decrypt
  Sm4Ecb, sm4_ecb_encrypt_block, sm4_ccm_encrypt, sm4_ccm_decrypt

Backends (the probe in ``__init__.py``): ``cryptography`` on CPython; on MicroPython ``cryptolib``'s
AES-ECB where the port has it, else the pure ``pure/aes.py``, and the pure ``pure/sm4.py``
(cryptolib has AES only). CCM is ``cryptography``'s AESCCM for AES on CPython, else the
project's own ``pure/ccm.py`` over the block cipher; SM4-CCM is always ``pure/ccm.py``,
with RFC 8998 §3.2's defaults (a 12-byte nonce and a 16-byte tag). AES-CCM's defaults are
COSE algorithm 10, AES-CCM-16-64-128 (RFC 9053 §4.2).

Raises ValueError for a key, block, nonce or tag of the wrong length; decryption raises
``errors.CcmAuthError`` on a tag mismatch (RFC 3610 §2.5: nothing of the plaintext is
released).
"""
from edgeledger.agent.crypto import CPYTHON, CRYPTOLIB, need
from edgeledger.agent.crypto.errors import CcmAuthError  # noqa: F401  (raised by the decrypts)

AES_KEY_LEN = 16
AES_BLOCK = 16
SM4_KEY_LEN = 16
SM4_BLOCK = 16
SM4_NONCE_LEN = 12  # RFC 8998 §3.2: SM4_CCM uses a 12-byte nonce (L = 3) ...
SM4_TAG_LEN = 16  # ... and a 16-byte tag


class AesEcb:
    """AES-128 forward block cipher (FIPS 197) with the key schedule kept.

    Raises ValueError for a key that is not 16 bytes or a block that is not 16. The
    other 128-bit cipher with a 128-bit key, SM4 (``Sm4Ecb``), is this class with
    its own ``NAME`` and ``_backend``.
    """

    NAME = "AES"

    def __init__(self, key):
        need(self.NAME + " key", key, AES_KEY_LEN)
        self._enc = self._backend(key)

    def _backend(self, key):
        if CPYTHON:
            return CPYTHON.Aes(key).encrypt_block
        if CRYPTOLIB:
            return CRYPTOLIB.aes(bytes(key), 1).encrypt  # mode 1 = ECB
        from edgeledger.agent.crypto.pure import aes as pure

        return pure.Aes(key).encrypt_block

    def encrypt_block(self, block):
        need(self.NAME + " block", block, AES_BLOCK)
        return self._enc(block)


class Sm4Ecb(AesEcb):
    """SM4 forward block cipher (GB/T 32907 §6) with the key schedule kept.

    Raises ValueError for a key that is not 16 bytes or a block that is not 16.
    """

    NAME = "SM4"

    def _backend(self, key):
        if CPYTHON:
            return CPYTHON.sm4(key).encrypt_block
        from edgeledger.agent.crypto.pure import sm4 as pure

        return pure.Sm4(key).encrypt_block


def aes_ecb_encrypt_block(key, block):
    """One AES-128 block encryption. Raises ValueError on key/block length."""
    return AesEcb(key).encrypt_block(block)


def sm4_ecb_encrypt_block(key, block):
    """One SM4 block encryption. Raises ValueError on key/block length."""
    return Sm4Ecb(key).encrypt_block(block)


def aes_ccm_encrypt(key, nonce, plaintext, aad=b"", tag_len=8):
    """AES-CCM (RFC 3610) -> ciphertext ‖ tag. Raises ValueError on bad key/nonce/tag lengths."""
    need("AES key", key, AES_KEY_LEN)
    if CPYTHON:
        return CPYTHON.aes_ccm_encrypt(key, nonce, plaintext, aad, tag_len)
    from edgeledger.agent.crypto.pure import ccm

    return ccm.ccm_encrypt(AesEcb(key).encrypt_block, nonce, plaintext, aad, tag_len)


def aes_ccm_decrypt(key, nonce, data, aad=b"", tag_len=8):
    """AES-CCM (RFC 3610) -> plaintext of ``ciphertext ‖ tag``.

    Raises CcmAuthError on a tag mismatch, ValueError on bad lengths.
    """
    need("AES key", key, AES_KEY_LEN)
    if len(data) < tag_len:
        raise ValueError("CCM input: expected at least the %d-byte tag, found %d bytes"
                         % (tag_len, len(data)))
    if CPYTHON:
        return CPYTHON.aes_ccm_decrypt(key, nonce, data, aad, tag_len)
    from edgeledger.agent.crypto.pure import ccm

    return ccm.ccm_decrypt(AesEcb(key).encrypt_block, nonce, data, aad, tag_len)


def sm4_ccm_encrypt(key, nonce, plaintext, aad=b"", tag_len=SM4_TAG_LEN):
    """SM4-CCM -> ciphertext ‖ tag. Raises ValueError on bad key/nonce/tag lengths."""
    from edgeledger.agent.crypto.pure import ccm

    return ccm.ccm_encrypt(Sm4Ecb(key).encrypt_block, nonce, plaintext, aad, tag_len)


def sm4_ccm_decrypt(key, nonce, data, aad=b"", tag_len=SM4_TAG_LEN):
    """SM4-CCM -> plaintext of ``ciphertext ‖ tag``.

    Raises CcmAuthError on a tag mismatch, ValueError on bad lengths.
    """
    from edgeledger.agent.crypto.pure import ccm

    return ccm.ccm_decrypt(Sm4Ecb(key).encrypt_block, nonce, data, aad, tag_len)

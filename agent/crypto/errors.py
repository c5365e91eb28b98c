"""Errors of the crypto package beyond ValueError (kept apart so that raising one never
loads the code that can raise it)."""
from edgeledger.protocols.errors import SignatureError


class CcmAuthError(SignatureError):
    """The CCM tag does not match: ciphertext, AAD, nonce or key is wrong."""

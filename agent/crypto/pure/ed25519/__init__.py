"""Ed25519 (RFC 8032): ``sign.py`` holds the curve and signs, ``verify.py`` verifies."""

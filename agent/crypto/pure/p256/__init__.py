"""ECDSA over P-256 (FIPS 186-4, SEC 1): ``sign.py`` holds the curve and signs, ``verify.py`` verifies."""

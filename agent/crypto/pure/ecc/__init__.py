"""Short Weierstrass curves with a = -3 (P-256, sm2p256v1): ``curve.py`` signs, ``verify.py`` verifies."""

"""SM2 signatures (GB/T 32918.2) with SM3: ``sign.py`` holds the curve and signs, ``verify.py`` verifies."""

"""Pure-Python cryptography for MicroPython (which has hashlib.sha256, os.urandom and, on
some ports, cryptolib AES-ECB, and nothing else). Reached through the modules of
``edgeledger.agent.crypto``, which prefer a native backend when there is one."""

"""Fixtures for the crypto shim tests (nothing shared beyond this folder)."""
import os

import pytest


@pytest.fixture
def random_seed32():
    """A fresh 32-byte secret for tests that need a key nobody published."""
    return os.urandom(32)

"""Fixtures for the CBOR tests. Shared data lives in vectors.py (golden
vectors as tables), strategies.py (Hypothesis) and helpers.py."""
import pytest

from tests.protocols.cbor.helpers import cbor2_strict_loads


@pytest.fixture
def cbor2_strict():
    """cbor2 set to refuse indefinite lengths, duplicate keys and trailing bytes."""
    return cbor2_strict_loads

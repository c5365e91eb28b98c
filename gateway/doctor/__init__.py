"""``edgeledger doctor``: one OK/FAIL line per thing a site needs (checks.py)."""
from edgeledger.gateway.doctor.checks import CHECKS, DEFAULT_MAX_SKEW_S, DEFAULT_MIN_BATCHES, Check, Inputs, run

__all__ = ["CHECKS", "DEFAULT_MAX_SKEW_S", "DEFAULT_MIN_BATCHES", "Check", "Inputs", "run"]

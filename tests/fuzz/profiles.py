"""Hypothesis settings for the fuzz tests: short in the suite, long with ``make fuzz``.

``EDGELEDGER_FUZZ=1`` (what ``make fuzz`` sets) selects the ``fuzz`` profile; the suite runs
the ``suite`` profile, sized so that all fuzz tests together add seconds, not minutes, to
``make test``. ``EDGELEDGER_FUZZ_EXAMPLES`` overrides the example count of either.
"""
import os

from hypothesis import HealthCheck, settings

SUITE_EXAMPLES = 150
FUZZ_EXAMPLES = 20000
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture]

settings.register_profile("edgeledger-suite", max_examples=SUITE_EXAMPLES, deadline=None,
                          suppress_health_check=_HEALTH, derandomize=False)
settings.register_profile("edgeledger-fuzz", max_examples=FUZZ_EXAMPLES, deadline=None,
                          suppress_health_check=_HEALTH)

LONG = os.environ.get("EDGELEDGER_FUZZ", "") not in ("", "0")
PROFILE = settings.get_profile("edgeledger-fuzz" if LONG else "edgeledger-suite")
if os.environ.get("EDGELEDGER_FUZZ_EXAMPLES"):
    PROFILE = settings(PROFILE, max_examples=int(os.environ["EDGELEDGER_FUZZ_EXAMPLES"]))


def fuzz(scale=1.0):
    """The settings decorator for one fuzz test; ``scale`` shrinks (or grows) the example count
    of a test whose examples are expensive (a SQLite commit, a signature)."""
    return settings(PROFILE, max_examples=max(10, int(PROFILE.max_examples * scale)))

"""protocols/repeats.py: a failure that keeps happening is said at once, then at doubling
gaps with the count of repeats in between, on CPython and under MicroPython."""
import pytest

from edgeledger.protocols.repeats import FIRST_GAP_S, MAX_GAP_S, Repeats, repeated
from tests.support.mpy import run_micropython


def said_at(attempts, r=None):
    """(time, unsaid) of the lines said for one failure repeated at ``attempts`` times."""
    r = r or Repeats()
    return [(t, n) for t in attempts for n in [r.say("refused", t)] if n is not None]


def test_first_failure_at_once_then_doubling_gaps_with_counts():
    # a reconnect loop failing every 0.2 s for 100 s: 500 attempts
    attempts = [i * 0.2 for i in range(500)]
    r = Repeats()
    lines = said_at(attempts, r)
    assert lines[0] == (0.0, 0)
    gaps = [b[0] - a[0] for a, b in zip(lines, lines[1:])]
    assert [round(g) for g in gaps] == [10, 20, 40]  # 0, 10, 30, 70: FIRST_GAP_S doubling
    # every attempt is said, or counted in a later line (those after the last one: in the next)
    assert sum(n for _t, n in lines) + len(lines) + r.unsaid == len(attempts) == r.total


def test_gaps_stop_growing_at_the_maximum():
    lines = said_at([float(t) for t in range(0, 20000, 5)])
    gaps = [b[0] - a[0] for a, b in zip(lines, lines[1:])]
    assert max(gaps) <= MAX_GAP_S + 5 and gaps[-1] >= MAX_GAP_S


def test_another_failure_is_said_at_once_and_clear_ends_the_outage():
    r = Repeats()
    assert r.say("refused", 0.0) == 0
    assert r.say("refused", 1.0) is None
    assert r.say("timeout", 2.0) == 0  # a different failure: at once
    assert r.say("timeout", 3.0) is None
    assert r.clear() == 2
    assert r.clear() == 0
    assert r.say("timeout", 4.0) == 0  # a new outage: at once again


def test_the_repeat_text():
    assert repeated(0) == ""
    assert repeated(7) == " (7 more times since the last line)"
    assert FIRST_GAP_S < MAX_GAP_S


@pytest.mark.micropython
def test_the_same_lines_under_micropython():
    script = (
        "from edgeledger.protocols.repeats import Repeats\n"
        "r = Repeats()\n"
        "out = [(i, n) for i in range(500) for n in [r.say('refused', i * 0.2)] if n is not None]\n"
        "print('lines', [(i, n) for i, n in out])\n")
    expected = [(round(t / 0.2), n) for t, n in said_at([i * 0.2 for i in range(500)])]
    assert "lines %s" % expected in run_micropython(script).stdout

"""Each key-window rule of protocols/keywindow.py, by name, on CPython and under MicroPython."""
import pytest

from edgeledger.protocols import keywindow
from edgeledger.protocols.keywindow import CLOCK_SLACK_S, KeyWindow, refusal
from tests.support.mpy import run_micropython

T0 = 1_800_000_000  # registration (chain time)
END = T0 + 3600
NAN = float("nan")
INF = float("inf")

OPEN = KeyWindow(T0, first_seq=10)
REVOKED = KeyWindow(T0, first_seq=10, end_at=END, last_seq=50)
ROTATING = KeyWindow(T0, first_seq=10, end_at=END, last_seq=None)  # overlap set, last seq not sealed

# (window, seq, t_first, t_last, signed_before, expected rule or None for W7)
CASES = [
    # W1: a time that is not a finite number is refused, whatever the window
    (OPEN, 20, NAN, T0 + 5, None, "W1"),
    (OPEN, 20, T0 + 5, INF, None, "W1"),
    (OPEN, 20, -INF, T0 + 5, None, "W1"),
    (OPEN, 20, None, None, NAN, "W1"),
    (OPEN, 20, "1800000005", "1800000005", None, "W1"),
    (OPEN, 20, True, True, None, "W1"),
    # W2: below the first seq
    (OPEN, 9, T0 + 5, T0 + 5, None, "W2"),
    (OPEN, 9, None, None, T0 + 5, "W2"),  # encrypted: the seq still counts
    # W3: timed before the registration (beyond the clock slack)
    (OPEN, 20, T0 - CLOCK_SLACK_S - 0.001, T0 + 5, None, "W3"),
    (OPEN, 20, T0 - 86400, T0 - 86400, None, "W3"),
    # W4: timed at or after the end
    (REVOKED, 20, T0 + 5, END, None, "W4"),
    (REVOKED, 20, END + 1, END + 1, None, "W4"),
    (ROTATING, 20, T0 + 5, END + 0.5, None, "W4"),
    # W5: a seq above the last seq, even when timed inside the window (back-dated)
    (REVOKED, 51, T0 + 5, T0 + 5, None, "W5"),
    (REVOKED, 51, None, None, T0 + 5, "W5"),
    # W6: encrypted, rotation overlap ended, last seq open: only known-early signing counts
    (ROTATING, 20, None, None, END, "W6"),
    (ROTATING, 20, None, None, None, "W6"),
    # W7: inside
    (OPEN, 10, T0 + 5, T0 + 5, None, None),
    (OPEN, 10, T0 - CLOCK_SLACK_S, T0, None, None),  # within the clock slack
    (OPEN, 10 ** 12, T0 + 10 ** 6, T0 + 10 ** 6, None, None),  # no end: the future is open
    (OPEN, 20, None, None, None, None),  # encrypted, open key
    (REVOKED, 50, T0 + 5, END - 0.001, None, None),  # last instant, last seq
    (REVOKED, 11, None, None, END + 10 ** 6, None),  # encrypted, sealed: judged by seq
    (ROTATING, 20, T0 + 5, END - 1, None, None),  # during the overlap, seq open
    (ROTATING, 20, None, None, END - 1, None),  # encrypted, known signed before the end
]


@pytest.mark.parametrize("window, seq, t_first, t_last, signed_before, rule", CASES)
def test_rule_table(window, seq, t_first, t_last, signed_before, rule):
    got = refusal(window, seq, t_first, t_last, signed_before)
    assert (got.rule if got else None) == rule, got


def _rule_cases(rule):
    return [c for c in CASES if c[-1] == rule]


def _check(rule):
    cases = _rule_cases(rule)
    assert cases
    for window, seq, t_first, t_last, signed_before, want in cases:
        got = refusal(window, seq, t_first, t_last, signed_before)
        assert got is not None and got.rule == want, (window, seq, t_first, t_last, got)
    return refusal(*cases[0][:5])


def test_w1_not_finite_time_is_refused():
    r = _check("W1")
    assert r.code == keywindow.NOT_FINITE and "finite" in r.text


def test_w2_seq_before_the_first_seq_is_refused():
    r = _check("W2")
    assert r.code == keywindow.BEFORE_SEQ and "seq 10 and later" in r.text and "seq 9" in r.text


def test_w3_reading_timed_before_registration_is_refused():
    r = _check("W3")
    assert r.code == keywindow.BEFORE_START and "registered at 1800000000" in r.text


def test_w4_reading_timed_at_or_after_the_end_is_refused():
    r = _check("W4")
    assert r.code == keywindow.AFTER_END and "ended at %d" % END in r.text


def test_w5_seq_after_the_last_seq_is_refused_even_backdated():
    r = _check("W5")
    assert r.code == keywindow.AFTER_SEQ and "last seq is 50" in r.text and "seq 51" in r.text


def test_w6_untimed_reading_after_an_unsealed_end_is_refused():
    r = _check("W6")
    assert r.code == keywindow.UNTIMED_END and "not sealed" in r.text


def test_w7_inside_the_window_is_valid():
    for window, seq, t_first, t_last, signed_before, _want in _rule_cases(None):
        assert refusal(window, seq, t_first, t_last, signed_before) is None


def test_rules_are_checked_in_table_order():
    # NaN and a seq below the first: W1 wins; below the first seq and before registration: W2
    assert refusal(REVOKED, 1, NAN, NAN).rule == "W1"
    assert refusal(REVOKED, 1, T0 - 86400, END + 1).rule == "W2"
    assert [r[0] for r in keywindow.RULES] == ["W1", "W2", "W3", "W4", "W5", "W6"]


def test_commitment_layout_refuses_what_the_contract_refuses():
    pub = bytes(32)
    for args in (("", "dev", -8, pub, 1, 1, 1), ("s" * 65, "dev", -8, pub, 1, 1, 1),
                 ("site", "", -8, pub, 1, 1, 1), ("site", "dev", -8, b"", 1, 1, 1),
                 ("site", "dev", -8, bytes(134), 1, 1, 1), ("site", "dev", 2 ** 31, pub, 1, 1, 1),
                 ("site", "dev", -2 ** 31 - 1, pub, 1, 1, 1), ("site", "dev", True, pub, 1, 1, 1),
                 ("site", "dev", -8, pub, -1, 1, 1), ("site", "dev", -8, pub, 1, 1, 2 ** 64)):
        with pytest.raises(ValueError):
            keywindow.commitment_layout(*args)


def test_commitment_layout_holds_sm2s_private_use_alg_as_int32():
    # the contract's int32 alg (big-endian two's complement): SM2's -65537 did not fit an int16
    for alg, word in ((-65537, "fffeffff"), (-8, "fffffff8"), (-7, "fffffff9"), (2 ** 31 - 1, "7fffffff"),
                      (-2 ** 31, "80000000")):
        layout = keywindow.commitment_layout("s", "d", alg, b"\x04", 1, 1, 1)
        assert layout[5:9].hex() == word, alg


@pytest.mark.micropython
def test_rule_table_under_micropython():
    rows = [(w.valid_from, w.first_seq, w.end_at, w.last_seq, seq, tf, tl, sb, rule)
            for w, seq, tf, tl, sb, rule in CASES if not isinstance(tf, (str, bool))]
    script = """
from edgeledger.protocols.keywindow import KeyWindow, refusal
nan = float("nan"); inf = float("inf")
ROWS = %s
bad = []
for vf, fs, end, last, seq, tf, tl, sb, rule in ROWS:
    r = refusal(KeyWindow(vf, fs, end, last), seq, tf, tl, sb)
    if (r.rule if r else None) != rule:
        bad.append((seq, tf, tl, sb, rule, r and r.rule))
print("keywindow ok" if not bad else "keywindow BAD %%r" %% (bad,))
""" % repr(rows)  # repr writes nan and inf as names the script defines
    out = run_micropython(script, heapsize="256K", timeout=300)
    assert "keywindow ok" in out.stdout, out.stdout + out.stderr

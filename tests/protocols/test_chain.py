"""Each chain rule of protocols/chain.py, by name."""
import hashlib

import pytest

from edgeledger.protocols import chain


def h(x):
    return hashlib.sha256(x).digest()


class Store:
    def __init__(self):
        self.links = {}

    def put(self, seq, digest, prev):
        self.links[seq] = (digest, prev)

    def lookup(self, seq):
        return self.links.get(seq)


@pytest.fixture
def chain3():
    s = Store()
    prev = chain.GENESIS
    for seq in (1, 2, 3):
        d = h(b"m%d" % seq)
        s.put(seq, d, prev)
        prev = d
    return s


def test_c1_seq_below_one_is_replay(chain3):
    assert chain.classify(0, chain.GENESIS, h(b"x"), chain3.lookup) == ("C1", chain.REPLAY)


def test_c2_same_bytes_is_duplicate(chain3):
    assert chain.classify(2, h(b"m1"), h(b"m2"), chain3.lookup) == ("C2", chain.DUPLICATE)


def test_c3_same_position_other_bytes_is_fork(chain3):
    assert chain.classify(2, h(b"m1"), h(b"other"), chain3.lookup) == ("C3", chain.FORK)


def test_c4_used_seq_from_elsewhere_is_replay(chain3):
    assert chain.classify(2, h(b"m3"), h(b"other"), chain3.lookup) == ("C4", chain.REPLAY)


def test_c5_wrong_prev_is_chain_break(chain3):
    assert chain.classify(4, h(b"m2"), h(b"m4"), chain3.lookup) == ("C5", chain.CHAIN_BREAK)
    assert chain.classify(1, h(b"x"), h(b"m1'"), Store().lookup) == ("C5", chain.CHAIN_BREAK)


def test_c6_successor_names_other_prev_is_chain_break():
    s = Store()
    s.put(5, h(b"m5"), h(b"m4"))
    assert chain.classify(4, h(b"m3"), h(b"not-m4"), s.lookup) == ("C6", chain.CHAIN_BREAK)


def test_c7_linked_is_next(chain3):
    assert chain.classify(4, h(b"m3"), h(b"m4"), chain3.lookup) == ("C7", chain.NEXT)
    assert chain.classify(1, chain.GENESIS, h(b"m1"), Store().lookup) == ("C7", chain.NEXT)


def test_c8_gap_is_ahead_and_filling_it_links_both_ways(chain3):
    assert chain.classify(6, h(b"m5"), h(b"m6"), chain3.lookup) == ("C8", chain.AHEAD)
    chain3.put(6, h(b"m6"), h(b"m5"))
    assert chain.classify(5, h(b"m4"), h(b"m5"), chain3.lookup) == ("C8", chain.AHEAD)
    chain3.put(4, h(b"m4"), h(b"m3"))
    assert chain.classify(5, h(b"m4"), h(b"m5"), chain3.lookup) == ("C7", chain.NEXT)


def test_every_verdict_has_an_outcome():
    assert set(v for _, _, v in chain.RULES) <= set(chain.OUTCOMES)


def test_contiguous_after():
    have = {1, 2, 3, 5}
    assert chain.contiguous_after(0, have.__contains__) == 3
    assert chain.contiguous_after(4, have.__contains__) == 5


def test_r1_zero_prev_after_seq_one_is_a_declared_restart(chain3):
    assert chain.classify(9, chain.GENESIS, h(b"m9"), chain3.lookup) == ("R1", chain.RESTART)
    assert chain.classify(4, chain.GENESIS, h(b"m4"), chain3.lookup) == ("R1", chain.RESTART)  # no seq missing
    assert chain.OUTCOMES[chain.RESTART] == (True, None)


def test_r1_restart_that_a_stored_successor_contradicts_is_a_chain_break(chain3):
    chain3.put(10, h(b"m10"), h(b"m9"))
    assert chain.classify(9, chain.GENESIS, h(b"other-9"), chain3.lookup) == ("C6", chain.CHAIN_BREAK)


def test_r1_a_used_seq_cannot_restart(chain3):
    assert chain.classify(2, chain.GENESIS, h(b"other"), chain3.lookup) == ("C4", chain.REPLAY)


def test_g2_the_mark_steps_over_accepted_gaps():
    have = {1, 2, 3, 9, 10, 20}
    assert chain.contiguous_after(0, have.__contains__, [(3, 9)]) == 10
    assert chain.contiguous_after(0, have.__contains__, [(3, 9), (10, 20)]) == 20
    assert chain.contiguous_after(5, have.__contains__, [(3, 9)]) == 10  # a mark inside the gap jumps too
    assert chain.contiguous_after(0, have.__contains__) == 3  # no gap accepted: the mark waits


def test_g3_a_waiting_restart_is_a_barrier():
    have = {1, 2, 3, 9, 10}
    waiting = {9}
    assert chain.contiguous_after(0, lambda s: s in have and s not in waiting, [(3, 9)]) == 8

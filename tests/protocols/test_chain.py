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


def test_g1_a_declared_lost_range_is_a_gap_the_mark_steps_over_once_accepted():
    stored = {1, 2, 3, 5, 6}
    has = stored.__contains__
    assert chain.lost_gaps([(4, 4, "damaged")]) == [(3, 5)]
    assert chain.contiguous_after(0, has) == 3  # without the declaration: waits for 4 forever
    assert chain.contiguous_after(0, has, chain.lost_gaps([(4, 4, "damaged")])) == 6


def test_g2_stored_seqs_inside_a_declared_gap_still_count():
    has = {1, 2, 3, 4}.__contains__
    assert chain.contiguous_after(0, has, chain.lost_gaps([(2, 3, "damaged")])) == 4
    assert chain.contiguous_after(0, has, chain.lost_gaps([(9, 12, "head")])) == 4  # not reached: no jump


def test_c8_after_a_lost_head_prev_names_the_last_intact_record(chain3):
    # the device lost its head (seqs 4..6 may have been sent) and goes on at 7 with
    # prev = digest of 3, its last intact record: stored, and the mark moves past the range
    rule, verdict = chain.classify(7, h(b"m3"), h(b"m7"), chain3.lookup)
    assert (rule, verdict) == ("C8", chain.AHEAD)
    chain3.put(7, h(b"m7"), h(b"m3"))
    has = lambda s: chain3.lookup(s) is not None  # noqa: E731
    assert chain.contiguous_after(3, has, chain.lost_gaps(chain.parse_lost("4-6:head"))) == 7


@pytest.mark.parametrize("text", ["", "4-6", "4-6:lost", "6-4:head", "0-1:damaged", "a-b:head",
                                  "4:head", " ".join(["1-1:damaged"] * 65)])
def test_lost_declaration_that_is_malformed_is_a_payload_error(text):
    with pytest.raises(ValueError, match="agent/outbox_lost"):
        chain.parse_lost(text)


def test_lost_declaration_parses_every_range():
    assert chain.parse_lost("5-5:damaged 9-12:head") == [(5, 5, "damaged"), (9, 12, "head")]

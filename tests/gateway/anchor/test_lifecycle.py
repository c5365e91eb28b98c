"""The batch lifecycle table (gateway/anchor/lifecycle.py), one test per rule: each rule moves a
batch from exactly the states it names to its target, and from no other state."""
import pytest

from edgeledger.gateway.anchor import lifecycle
from edgeledger.gateway.anchor.lifecycle import ANCHORED, BUILT, MINED, SENT, SIGNED, STATES, LifecycleError
from edgeledger.gateway.errors import GatewayError


def moves(event, sources, target):
    """``event`` takes every state in ``sources`` to ``target`` and is refused from the rest."""
    for state in sources:
        assert lifecycle.next_state(state, event)[1] == target
    for state in set(STATES) - set(sources):
        with pytest.raises(LifecycleError, match="not from %s" % state):
            lifecycle.next_state(state, event)


def test_L0_closed_starts_a_batch_built_and_from_no_state():
    assert lifecycle.transition("closed").target == BUILT
    moves("closed", (), BUILT)


def test_L1_sign_moves_built_to_signed():
    moves("sign", (BUILT,), SIGNED)


def test_L2_send_moves_signed_to_sent():
    moves("send", (SIGNED,), SENT)


def test_L3_nonce_taken_moves_signed_back_to_built():
    moves("nonce_taken", (SIGNED,), BUILT)


def test_L4_resign_moves_signed_or_sent_to_signed():
    moves("resign", (SIGNED, SENT), SIGNED)


def test_L5_mined_moves_sent_to_mined():
    moves("mined", (SENT,), MINED)


def test_L6_confirmed_moves_sent_or_mined_to_anchored():
    moves("confirmed", (SENT, MINED), ANCHORED)


def test_L7_lost_moves_sent_or_mined_back_to_signed():
    moves("lost", (SENT, MINED), SIGNED)


def test_L8_reverted_moves_sent_or_mined_back_to_built():
    moves("reverted", (SENT, MINED), BUILT)


def test_L9_adopted_moves_built_signed_or_sent_to_mined():
    moves("adopted", (BUILT, SIGNED, SENT), MINED)


def test_L10_reorg_moves_mined_or_anchored_back_to_signed():
    moves("reorg", (MINED, ANCHORED), SIGNED)


def test_L11_final_keeps_an_anchored_batch_anchored():
    moves("final", (ANCHORED,), ANCHORED)


def test_L12_moved_keeps_an_anchored_batch_anchored():
    moves("moved", (ANCHORED,), ANCHORED)


def test_L13_dropped_moves_an_anchored_batch_back_to_mined():
    moves("dropped", (ANCHORED,), MINED)


def test_the_table_has_one_rule_per_event_and_names_only_known_states():
    rules = [t.rule for t in lifecycle.TRANSITIONS]
    assert rules == ["L%d" % i for i in range(len(rules))]
    assert len(lifecycle.BY_EVENT) == len(lifecycle.TRANSITIONS)
    for t in lifecycle.TRANSITIONS:
        assert t.target in STATES and set(t.sources) <= set(STATES), t


def test_an_unknown_event_is_a_typed_error_naming_the_events():
    with pytest.raises(LifecycleError, match="expected a batch event of closed, sign") as e:
        lifecycle.transition("teleported")
    assert isinstance(e.value, GatewayError)

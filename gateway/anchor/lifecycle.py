"""The batch lifecycle: every state a batch can be in and every move between them, in one table.

A batch is a contiguous range of stored messages with its Merkle tree (one row of the
store's ``batches``). It is anchored by one transaction of the anchor contract and then
followed until its block is final::

    built ──L1──► signed ──L2──► sent ──L5──► mined ──L6──► anchored ──L11──► (final)

    and back: L3 signed -> built, L4 in flight -> signed, L7 sent/mined -> signed,
    L8 sent/mined -> built, L9 built/signed/sent -> mined, L10 mined/anchored -> signed,
    L12 anchored -> anchored, L13 anchored -> mined

"Final" is no state of its own: a final batch is ``anchored`` with ``final_at`` set (L11).
Proofs are served from ``anchored`` on. Rules, each a row of ``TRANSITIONS``:

L0  closed     -> built     the batch's messages and every level of its tree are stored
                            before anything is signed.
L1  sign       built -> signed     the anchor transaction is signed and stored (nonce, fees,
                            hash) *before* it is sent: a crash at any point re-sends the
                            very same transaction (the node answers "already known").
L2  send       signed -> sent      the node took it (the first send, and the re-send of a
                            batch signed before a crash or a reorg).
L3  nonce_taken  signed -> built   the nonce went to another transaction and the chain does
                            not hold the batch: sign it again.
L4  resign     signed, sent -> signed    a nonce gap (the account's next nonce is below the
                            first waiting anchor's, twice in a row): the waiting anchors are
                            signed again from that nonce, with higher fees.
L5  mined      sent -> mined       its receipt is in a block.
L6  confirmed  sent, mined -> anchored   ``confirmations`` blocks (the mined one counts 1).
L7  lost       sent, mined -> signed     no receipt, and the node does not know the
                            transaction (or it was mined and its block is gone): the same
                            transaction again.
L8  reverted   sent, mined -> built      the receipt says reverted and the chain does not hold
                            the batch: sign it again.
L9  adopted    built, signed, sent -> mined   on (re)start the chain holds it, and its Anchored
                            event has this store's header hash: adopt that transaction.
L10 reorg      mined, anchored -> signed  the contract's head for this gateway is below it: a
                            reorg took it away; the same transaction again (``reanchors`` + 1).
L11 final      anchored -> anchored   its block is ``finality`` deep and still canonical:
                            ``final_at`` is set.
L12 moved      anchored -> anchored   at finality depth its block is gone but the transaction
                            is mined in another: the new block is recorded, finality awaited.
L13 dropped    anchored -> mined      at finality depth its block is gone and no successful
                            receipt is found: receipts and the head check take it from here.

The store applies a move only from the states a rule starts from (``Store.move_batch``);
tests/gateway/anchor/test_lifecycle.py checks each rule by name.
"""
from typing import NamedTuple

from edgeledger.gateway.errors import GatewayError

BUILT = "built"
SIGNED = "signed"
SENT = "sent"
MINED = "mined"
ANCHORED = "anchored"
STATES = (BUILT, SIGNED, SENT, MINED, ANCHORED)
# Batches sent and waiting for their receipts, each holding a nonce.
IN_FLIGHT = (SIGNED, SENT)
# Batches whose transaction the store holds as mined.
ON_CHAIN = (MINED, ANCHORED)


class Transition(NamedTuple):
    rule: str
    event: str
    sources: tuple[str, ...]
    target: str


TRANSITIONS = (
    Transition("L0", "closed", (), BUILT),
    Transition("L1", "sign", (BUILT,), SIGNED),
    Transition("L2", "send", (SIGNED,), SENT),
    Transition("L3", "nonce_taken", (SIGNED,), BUILT),
    Transition("L4", "resign", IN_FLIGHT, SIGNED),
    Transition("L5", "mined", (SENT,), MINED),
    Transition("L6", "confirmed", (SENT, MINED), ANCHORED),
    Transition("L7", "lost", (SENT, MINED), SIGNED),
    Transition("L8", "reverted", (SENT, MINED), BUILT),
    Transition("L9", "adopted", (BUILT, SIGNED, SENT), MINED),
    Transition("L10", "reorg", ON_CHAIN, SIGNED),
    Transition("L11", "final", (ANCHORED,), ANCHORED),
    Transition("L12", "moved", (ANCHORED,), ANCHORED),
    Transition("L13", "dropped", (ANCHORED,), MINED),
)
BY_EVENT = dict((t.event, t) for t in TRANSITIONS)


class LifecycleError(GatewayError):
    """A batch event that no rule allows from the batch's state (a batcher bug)."""


def transition(event: str) -> Transition:
    """The rule of ``event``. Raises LifecycleError for an event the table does not have."""
    t = BY_EVENT.get(event)
    if t is None:
        raise LifecycleError("expected a batch event of %s, found %r" % (", ".join(BY_EVENT), event))
    return t


def next_state(state: str, event: str) -> tuple[str, str]:
    """(rule, new state) when a batch in ``state`` meets ``event``. Raises LifecycleError if
    no rule moves a batch in that state on that event."""
    t = transition(event)
    if state not in t.sources:
        raise LifecycleError("rule %s (%s) moves a batch from %s, not from %s"
                             % (t.rule, event, " or ".join(t.sources) or "nothing (it closes a new one)", state))
    return t.rule, t.target

"""``edgeledger device accept-gap``: the operator's way out of a broken device chain.

A device's contiguous mark (and so its end-to-end ack) stops at the first seq the
gateway does not hold. Normally that seq comes (the device resends it). When it can
never come — it was signed with a key revoked meanwhile and sits in quarantine, or the
device lost it — the device would resend from the mark forever and its outbox would
fill. ``accept_gap`` records the gap (protocols/chain.py G2): seqs after the mark up to
the next stored seq (or up to ``through``) are given up, with the operator's reason,
and the mark moves on; the running gateway picks it up within a second
(``Pipeline.reload_gaps``) and acknowledges, so the device frees its outbox.

A gap a device declared itself (a chain restart, G1) that waits because the gateway
does not accept restarts on its own (``[chain] accept_restarts = false``) is accepted
the same way.

Recorded gaps are listed by ``gateway status`` and travel in every proof bundle of a
later reading of the device (bundle field 13); ``edgeledger verify`` prints them.
"""
import getpass
import time
from typing import Optional

from edgeledger.gateway.errors import RegistryError
from edgeledger.gateway.store import ChainGap, Store


def operator_name() -> str:
    try:
        return "operator %s" % getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def accept_gap(st: Store, device: str, reason: str, through: Optional[int] = None, by: Optional[str] = None,
               now: Optional[float] = None) -> ChainGap:
    """Accept the gap at ``device``'s contiguous mark; returns the ChainGap recorded.

    Raises RegistryError if the device is unknown, has no gap to accept, or ``through``
    is not beyond the mark.
    """
    now = time.time() if now is None else now
    by = by or operator_name()
    if not reason.strip():
        raise RegistryError("accept-gap: expected a reason (it is kept with the gap and shown to verifiers)")
    marks = st.device_marks()
    if device not in marks:
        raise RegistryError("unknown device %r" % (device,))
    contig, max_seq = marks[device]
    waiting = [g for g in st.chain_gaps(device) if g.accepted_at is None]
    if waiting and through is None:
        g = waiting[0]
        st.accept_gap(device, g.resume_seq, "%s: %s" % (by, reason), now)
        return g._replace(accepted_at=now, accepted_by="%s: %s" % (by, reason))
    if through is not None:
        if through <= contig:
            raise RegistryError("accept-gap: --through %d is not beyond %s's contiguous mark %d"
                                % (through, device, contig))
        resume = through + 1
    else:
        nxt = st.next_stored_seq(device, contig)
        if nxt is None:
            raise RegistryError(
                "accept-gap: %s has no stored message after its contiguous mark %d: the gateway sees no gap yet. If "
                "the device can never deliver the seqs after %d, give --through SEQ (the last seq to give up; the "
                "device's birth message names its head seq)" % (device, contig, contig))
        resume = nxt
        if resume == contig + 1:
            raise RegistryError("accept-gap: %s has no gap at its contiguous mark %d" % (device, contig))
    gap = ChainGap(device, contig, resume, "operator", reason, now, now, by)
    with st.transaction("recording the accepted gap of %s" % device):
        st.insert_gap(gap)
    return gap

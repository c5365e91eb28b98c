"""``edgeledger gateway status``: what the store says about the site, as text lines.

Read-only. Sections, each printed only when it has something to say:

* messages stored, the durability of acks (from gateway.toml), every non-zero counter
  (workers' ``name@wK`` counters summed) and the quarantine summary by reason;
* batches by state, how many are final, and the anchoring state the batcher left
  (``ok``, ``unreachable`` or ``halted`` with its sentence);
* chain gaps: breaks in a device's chain that a device declared or an operator
  accepted, and devices whose contiguous mark waits at a gap (with the command that
  accepts it);
* rejects by device: the devices with the most rejects (rejected, quarantined, only
  counted past their quarantine share, last reject);
* recent events: store full and writable again, reorgs, nonce gaps, anchoring stopped,
  threads and workers restarted;
* the broker's certificate revocation list: when it expires, a warning well before.

``snapshot`` is the same for machines (``gateway status --json``), plus a line per device:
its contiguous and highest stored seq, ``stuck`` when it waits at a gap (its acks cannot
move until the missing seqs arrive or an operator accepts the gap), its session (birth /
death) and when its newest message arrived; the anchoring backlog (batches not yet anchored,
messages not yet in a batch) and the last anchored batch and block.
"""
import datetime
import time
from typing import Any, List

from edgeledger.gateway.anchor.lifecycle import ANCHORED
from edgeledger.gateway.cli.common import site_broker
from edgeledger.gateway.config import GatewayConfig
from edgeledger.gateway.ingest.runner import total_counters
from edgeledger.gateway.store import Store

DURABILITY_TEXT = {
    "FULL": "power_loss (each commit is fsync'd before its messages are acknowledged)",
    "NORMAL": "process_crash_only (NOT durable: a power cut can lose acknowledged readings)",
}
# Events shown by default: enough for a day of faults, short enough to read.
RECENT_EVENTS = 20
# Devices listed under "rejects by device".
STATUS_DEVICES = 10


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def report(cfg: GatewayConfig, st: Store, config_path: str = "gateway.toml", events: int = RECENT_EVENTS) -> List[str]:
    """The status text, line by line."""
    lines = ["messages stored: %d" % st.count_messages(),
             "durability: %s" % DURABILITY_TEXT[cfg.sqlite_synchronous]]
    counters = total_counters(st.load_counters())
    for name in sorted(counters):
        if counters[name]:
            lines.append("%-28s %d" % (name, counters[name]))
    for reason, n in sorted(st.quarantine_reasons().items()):
        lines.append("quarantine %-17s %d" % (reason, n))
    lines += _batches(st)
    lines += _gaps(st, config_path)
    lines += _rejects_by_device(st)
    recent = st.recent_events(events)
    if recent:
        lines.append("recent events:")
        lines += ["  %s %-22s %s" % (_when(e.at), e.kind, e.detail) for e in recent]
    lines += crl_status(cfg)
    return lines


def _rejects_by_device(st: Store) -> List[str]:
    noisy = st.device_rejects(STATUS_DEVICES)
    if not noisy:
        return []
    lines = ["rejects by device (most first): rejected, quarantined, only counted, last"]
    for r in noisy:
        lines.append("  %-26s %9d %9d %9d  %s" % (r.device or "(no device)", r.rejected, r.quarantined, r.dropped,
                                                 time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.last_at or 0))))
    return lines


def _batches(st: Store) -> List[str]:
    summary = st.batch_summary()
    lines = []
    if summary.total:
        states = ", ".join("%s %d" % (state, n) for state, n in sorted(summary.by_state.items()))
        lines.append("batches: %d (%s; final %d)" % (summary.total, states, summary.final))
    meta = st.ledger_meta()
    state = meta.get("anchor_state")
    if state:
        lines.append("anchoring: %s%s (since %s)" % ("HALTED: " if state == "halted" else "",
                                                      meta.get("anchor_note", state),
                                                      _when(float(meta.get("anchor_state_at", 0)))))
    return lines


def _gaps(st: Store, config_path: str) -> List[str]:
    lines = []
    gaps = st.chain_gaps()
    if gaps:
        lines.append("chain gaps:")
        for g in gaps:
            state = ("accepted %s by %s" % (_when(g.accepted_at), g.accepted_by) if g.accepted_at is not None
                     else "WAITING for an operator")
            span = ("seqs %d..%d not in the chain" % (g.after_seq + 1, g.resume_seq - 1)
                    if g.resume_seq > g.after_seq + 1 else "no seq missing, the link is broken")
            lines.append("  %s: %s, chain goes on at seq %d (%s: %s; %s)"
                         % (g.device, span, g.resume_seq, g.kind, g.reason, state))
    waiting = []
    for device, (contig, max_seq) in sorted(st.device_marks().items()):
        if max_seq <= contig:
            continue
        nxt = st.next_stored_seq(device, contig)
        if nxt is None or nxt == contig + 1:
            continue
        rejected = st.quarantined_seqs(device, contig + 1, nxt - 1)
        waiting.append("  %s: contiguous up to seq %d, next stored seq %d (%d missing%s): if they cannot come any "
                       "more, `edgeledger device accept-gap --config %s --device %s --reason TEXT`"
                       % (device, contig, nxt, nxt - contig - 1,
                          "; quarantined among them: " + ", ".join("%s %d" % kv for kv in sorted(rejected.items()))
                          if rejected else "", config_path, device))
    if waiting:
        lines.append("devices waiting at a gap:")
        lines += waiting
    return lines


def snapshot(cfg: GatewayConfig, st: Store, events: int = RECENT_EVENTS) -> dict[str, Any]:
    """What ``report`` says, as one JSON-ready dict (``gateway status --json``)."""
    summary = st.batch_summary()
    meta = st.ledger_meta()
    anchored = st.newest_batch_in(ANCHORED)
    last = st.last_batch()
    return {
        "messages": st.count_messages(),
        "durability": DURABILITY_TEXT[cfg.sqlite_synchronous].split(" ")[0],
        "counters": dict((k, v) for k, v in sorted(total_counters(st.load_counters()).items()) if v),
        "quarantine": dict(sorted(st.quarantine_reasons().items())),
        "batches": {"total": summary.total, "by_state": dict(sorted(summary.by_state.items())),
                    "final": summary.final},
        "anchoring": {"state": meta.get("anchor_state"), "note": meta.get("anchor_note"),
                      "since": float(meta["anchor_state_at"]) if meta.get("anchor_state_at") else None},
        "last_anchored": {"batch": anchored.number, "block": anchored.block_number} if anchored else None,
        "backlog": {"batches_not_anchored": summary.total - summary.by_state.get(ANCHORED, 0),
                    "messages_not_batched": st.last_message_id() - (last.last_id if last else 0)},
        "devices": [{"device": d.device, "site": d.site, "contiguous_seq": d.contig, "max_seq": d.max_seq,
                     "stuck": d.max_seq > d.contig, "online": d.online, "last_seen": d.last_seen}
                    for d in st.device_states()],
        "chain_gaps": [g._asdict() for g in st.chain_gaps()],
        "events": [{"at": e.at, "kind": e.kind, "detail": e.detail} for e in st.recent_events(events)],
        "crl": crl_status(cfg),
    }


def crl_status(cfg: GatewayConfig, now: datetime.datetime | None = None) -> List[str]:
    """Lines about the broker CRL of gateway.toml's site (mutual TLS only): when it expires, and
    a warning when that is less than CRL_WARN_DAYS away. Raises BrokerConfigError for a broker
    directory that is not one."""
    from edgeledger.gateway.enrol.pki import CRL_WARN_DAYS, PkiError

    broker = site_broker(cfg)
    if broker is None or broker.auth != "mtls":
        return []
    try:
        until = broker.pki.crl_next_update()
    except PkiError as e:
        return ["WARNING: %s" % e]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    days = (until - now).total_seconds() / 86400.0
    lines = ["broker CRL %s valid until %s (%.0f days)" % (broker.pki.crl_path, until.strftime("%Y-%m-%d %H:%M"),
                                                         days)]
    if days <= 0:
        lines.append("ERROR: the broker CRL has expired: every device certificate is refused. Run "
                     "`edgeledger broker renew-crl --dir %s` and reload the broker" % broker.dir)
    elif days < CRL_WARN_DAYS:
        lines.append("WARNING: the broker CRL expires in %.0f days; when it does every device certificate is "
                     "refused. Run `edgeledger broker renew-crl --dir %s` (monthly) and reload the broker"
                     % (days, broker.dir))
    return lines

"""Load generator: pre-signed readings published at QoS 1 from a few processes.

Every message is signed *before* the clock starts (Ed25519 with PyNaCl, or SM2 with the
device signer, tongsuopy; CBOR with cbor2's canonical mode, held byte for byte to the
project's own deterministic encoder on the first message of each device), so during a run a
generator only writes prepared PUBLISH bytes and reads PUBACKs and end-to-end acks, over a plain
socket with the project's sans-IO MQTT codec (``protocols/mqtt.py``): paho-mqtt costs ~150 µs of
Python per QoS 1 publish, so a paho publisher would be slower than the gateway it is meant
to saturate.
One generator process costs a few microseconds per message; ``generator_alone``
measures that it outruns the gateway by a wide margin.

Stock: a phase whose receiver verifies (the gateway) needs every message to be new, so
it presigns a stock sized by the caller. A phase whose receiver only counts (the bare
subscriber, the generator alone) runs with ``cycle=True``: a small stock is published
round and round, so the window can never run out of messages whatever the machine.

Pacing: a generator keeps ``sum(sent) - progress <= max_backlog``, where
``progress`` is a shared counter of messages the receiver has *committed* (the
gateway store's row count, or a bare subscriber's count). The broker therefore
never holds more than ``max_backlog`` messages for the receiver, as with real
devices whose outboxes wait for acks. ``max_backlog = None`` publishes flat out.
``rate`` (messages/s over all generators) offers a steady load instead: each of the K
generators sends ``rate / K`` messages/s on a schedule kept from its start, so a slow turn
is made up by the next one (``bench curves`` measures latency so).

Latency (``latency=True``): a generator notes the wall-clock time at which it writes each
message to its socket and, when an end-to-end ack covering that seq arrives (an ack names the
device's highest contiguous stored seq), the time from one to the other. Both clocks are this
machine's, read in one process.
"""
import hashlib
import multiprocessing
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import cbor2
from nacl.signing import SigningKey

from edgeledger.protocols import chain, cose, mqtt, reading, topics
from edgeledger.protocols.reading import validate as reading_validate

SITE = "bench"
# Bytes a session's framer holds: many PUBACKs (4 bytes each) and acks per system call.
RECV_BYTES = 1 << 18
# Messages written per sendall; keeps the socket busy without starving ack reading.
SEND_CHUNK = 500
# A generator's in-flight window must stay under the 16-bit packet id space (MQTT §2.3.1).
MAX_PACKET_IDS = 65535
# How long a generator waits, after stopping, for the last end-to-end acks.
DRAIN_TIMEOUT_S = 120.0


def device_specs(n: int, prefix: str = "dev", alg: int = cose.EDDSA) -> list[tuple[str, bytes]]:
    """n devices: (name, 32-byte secret of ``alg``: an Ed25519 seed, an SM2 private key). The
    secret is random per run."""
    if alg == cose.EDDSA:
        return [("%s-%04d" % (prefix, i), os.urandom(32)) for i in range(n)]
    from edgeledger.agent import signer

    return [("%s-%04d" % (prefix, i), signer.generate(alg).private_bytes()) for i in range(n)]


def _ed25519(seed: bytes) -> tuple[bytes, Callable[[bytes], bytes]]:
    sk = SigningKey(seed)
    return bytes(sk.verify_key), lambda data: sk.sign(data).signature


def _device_signer(alg: int, secret: bytes) -> tuple[bytes, Callable[[bytes], bytes]]:
    """The signer the project's agent uses for ``alg`` (SM2: tongsuopy on CPython)."""
    from edgeledger.agent import signer

    s = signer.KeySigner(alg, secret)
    return s.public_key, s.sign


# COSE alg -> (secret -> (public key, sign)): PyNaCl for Ed25519 (fast presigning), the
# device signer for SM2, whose 64-byte r || s has Ed25519's signature length.
SIGNERS: dict[int, Callable[[bytes], tuple[bytes, Callable[[bytes], bytes]]]] = {
    cose.EDDSA: _ed25519, cose.SM2: lambda secret: _device_signer(cose.SM2, secret)}


def public_key(seed: bytes, alg: int = cose.EDDSA) -> bytes:
    return SIGNERS[alg](seed)[0]


def _canonical(obj: object) -> bytes:
    return cbor2.dumps(obj, canonical=True)


def _bstr(b: bytes) -> bytes:
    """CBOR byte string head + bytes (RFC 8949 §3.1, major type 2, shortest length)."""
    n = len(b)
    if n < 24:
        return bytes([0x40 + n]) + b
    if n < 256:
        return bytes([0x58, n]) + b
    return b"\x59" + struct.pack("!H", n) + b


class DeviceChain:
    """Signs one device's chained messages (seq 1, 2, ...) fast: cbor2 canonical payloads,
    the COSE_Sign1 and Sig_structure (RFC 9052 §4.2, §4.4) assembled from parts, both held
    to the project's encoders on the first message."""

    def __init__(self, name: str, seed: bytes, site: str = SITE, alg: int = cose.EDDSA) -> None:
        self.name = name
        self.public_key, self.sign = SIGNERS[alg](seed)
        self.kid = hashlib.sha256(self.public_key).digest()[:16]
        self.protected = _canonical({cose.HDR_ALG: alg, cose.HDR_KID: self.kid})
        self.topic = topics.readings(site, name)
        self.sig_head = b"\x84" + _canonical(cose.SIG_CONTEXT) + _bstr(self.protected) + b"\x40"
        self.msg_head = b"\xd2\x84" + _bstr(self.protected) + b"\xa0"
        self.seq = 0
        self.prev = chain.GENESIS

    def next(self, records: int = 1, t: float | None = None) -> bytes:
        """The next message's bytes; record times ``t`` (default now)."""
        t = time.time() if t is None else t
        seq, name, prev = self.seq + 1, self.name, self.prev
        pack = [{0: "%s/v%d" % (name, i), 1: "W", 2: float(seq) + i, 6: t} for i in range(records)]
        payload = _canonical({1: reading.VERSION, 2: name, 3: seq, 4: prev, 5: 1, 6: pack})
        pl = _bstr(payload)
        sig = self.sign(self.sig_head + pl)
        msg: bytes = self.msg_head + pl + b"\x58\x40" + sig
        if seq == 1:
            # The fast path must produce the project's own deterministic CBOR (DESIGN §3).
            assert payload == reading_validate.encode_payload(name, seq, prev, 1, pack), "cbor2 canonical differs"
            assert msg == _canonical(cbor2.CBORTag(18, [self.protected, {}, payload, sig])), "COSE layout differs"
        self.seq, self.prev = seq, hashlib.sha256(msg).digest()
        return msg


def presign(name: str, seed: bytes, count: int, records: int = 1, t: float | None = None,
            site: str = SITE, alg: int = cose.EDDSA) -> list[tuple[bytes, bytes]]:
    """``count`` chained messages of device ``name``: [(head, message)], where head is the
    PUBLISH fixed header and topic of a QoS 1 publish of that message (the packet id goes
    between them at send time)."""
    dev = DeviceChain(name, seed, site, alg)
    tbytes = dev.topic.encode()
    t = time.time() if t is None else t
    out = []
    for _ in range(count):
        msg = dev.next(records, t)
        # the packet id, the header's last two bytes, goes in at send time
        out.append((mqtt.publish_header(tbytes, len(msg), 1, qos=1)[:-2], msg))
    return out


class SessionError(RuntimeError):
    """The broker refused a bench session or closed it."""


def open_session(host: str, port: int, client_id: str, clean_session: bool = True,
                 timeout: float = 10.0) -> tuple[socket.socket, Any]:
    """A connected socket (CONNACK accepted) and its ``mqtt.Framer``. Raises SessionError,
    OSError."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(mqtt.connect(client_id, 60, clean_session))
    framer = mqtt.Framer(RECV_BYTES)
    while True:
        n = s.recv_into(framer.space())
        if not n:
            raise SessionError("broker closed the connection before CONNACK")
        framer.received(n)
        packet = framer.next_packet()
        if packet is not None and packet[0] == mqtt.CONNACK:
            if len(packet[2]) != 2 or packet[2][1] != 0:
                raise SessionError("CONNACK refused: return code %r" % (packet[2][1:2],))
            return s, framer


_PIDS = [struct.pack("!H", i) for i in range(MAX_PACKET_IDS + 1)]


def _generator(idx: int, devices: Sequence[tuple[str, bytes]], per_device: int, records: int, host: str, port: int,
               sent: Any, progress: Any, max_backlog: int | None, ready: Any, go: Any, stop: Any,
               results: Any, cycle: bool = False, rate: float | None = None, latency: bool = False,
               alg: int = cose.EDDSA) -> None:
    """One generator process: presign, connect, wait for ``go``, publish until ``stop`` or
    out of messages (never, with ``cycle``: the stock is published round and round), then
    wait for the end-to-end acks of everything sent."""
    t0 = time.time()
    stock = dict((name, presign(name, seed, per_device, records, alg=alg)) for name, seed in devices)
    presign_s = time.time() - t0
    pub = _Publisher(idx, stock, per_device, host, port, cycle, latency)
    ready.set()
    go.wait()
    pub.go_wall = time.time()
    pub.started = time.monotonic()
    while not stop.is_set():
        pub.send_pending()
        room = SEND_CHUNK
        if max_backlog is not None:
            room = min(room, max_backlog - (sum(sent) - progress.value))
        if rate is not None:
            room = min(room, int((time.monotonic() - pub.started) * rate) - pub.my_sent)
        if not pub.pending_out and room > 0 and pub.my_sent < pub.total:
            pub.fill(room)
            sent[idx] = pub.my_sent
            pub.read_some(0)
        else:
            pub.read_some(0.001)
    stopped_at = time.monotonic() - pub.started
    pub.drain(results is not None and results[1])
    results[0].put(dict(pub.report(), presign_s=presign_s, stopped_at=stopped_at))


class _Publisher:
    """A generator's session and its bookkeeping: which message of each device goes next,
    what was sent, PUBACKs and end-to-end acks read, and (with ``latency``) when each seq
    was written and how long its ack took."""

    def __init__(self, idx: int, stock: dict[str, list[tuple[bytes, bytes]]], per_device: int, host: str,
                 port: int, cycle: bool, latency: bool) -> None:
        self.idx, self.stock, self.per_device, self.cycle = idx, stock, per_device, cycle
        self.names = list(stock)
        self.sock, self.framer = open_session(host, port, "el-bench-gen-%d-%d" % (os.getpid(), idx))
        self.sock.sendall(mqtt.subscribe(1, [(topics.ack(SITE, n), 0) for n in self.names]))
        self.sock.setblocking(False)
        self.pos = dict((n, 0) for n in self.names)
        self.acked = dict((n, 0) for n in self.names)
        # wall time each seq was written, with ``latency``
        self.sent_at: dict[str, list[float]] | None = dict((n, []) for n in self.names) if latency else None
        self.ack_s: list[tuple[float, float]] = []  # (sent at, ack latency) of each message, with ``latency``
        self.pubacks = 0
        self.ack_msgs = 0  # end-to-end acks received (one per device per gateway commit that moved it)
        self.pid = 0
        self.my_sent = 0
        # with cycle the stock repeats: no end (the receiver must not check chains)
        self.total = per_device * len(self.names) if not cycle else float("inf")
        self.started = time.monotonic()
        self.go_wall = time.time()
        self.exhausted_at: float | None = None
        self.rr = 0
        self.pending_out = b""

    def send_pending(self) -> None:
        """Write what the socket took none of last time, as much as it takes now."""
        if self.pending_out:
            try:
                n = self.sock.send(self.pending_out)
                self.pending_out = self.pending_out[n:]
            except BlockingIOError:
                pass

    def fill(self, room: int) -> None:
        """Up to ``room`` more messages, round robin over the devices, into ``pending_out``."""
        names, nd, pos, stock, per_device = self.names, len(self.names), self.pos, self.stock, self.per_device
        sent_at, cycle, total = self.sent_at, self.cycle, self.total
        rr, pid, my_sent = self.rr, self.pid, self.my_sent
        parts = []
        k = 0
        now = time.time()
        while k < room and my_sent < total:
            name = names[rr % nd]
            rr += 1
            i = pos[name]
            if i >= per_device and not cycle:
                continue
            pos[name] = i + 1
            head, msg = stock[name][i % per_device]
            pid = pid % MAX_PACKET_IDS + 1
            parts.append(head)
            parts.append(_PIDS[pid])
            parts.append(msg)
            if sent_at is not None:
                sent_at[name].append(now)
            k += 1
            my_sent += 1
        self.rr, self.pid, self.my_sent = rr, pid, my_sent
        self.pending_out = b"".join(parts)
        if my_sent >= total and self.exhausted_at is None:
            self.exhausted_at = time.monotonic() - self.started

    def read_some(self, timeout: float) -> None:
        """Read what the broker sent within ``timeout``: PUBACKs, end-to-end acks."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return
        try:
            n = self.sock.recv_into(self.framer.space())
        except BlockingIOError:
            return
        if not n:
            raise SessionError("broker closed the generator's connection")
        self.framer.received(n)
        for ptype, flags, body in iter(self.framer.next_packet, None):
            if ptype == mqtt.PUBACK:
                self.pubacks += 1
            elif ptype == mqtt.PUBLISH:
                self.ack_msgs += 1
                self._ack(*mqtt.publish_fields(flags, body))

    def _ack(self, topic: str, _pid: int | None, payload: bytes) -> None:
        device = topic.split("/")[3]
        seq = cbor2.loads(payload).get(1, 0)
        before = self.acked.get(device, -1)
        if seq > before:
            self.acked[device] = seq
            times = self.sent_at.get(device) if self.sent_at is not None else None
            if times is not None:
                now = time.time()
                self.ack_s.extend((t, now - t) for t in times[max(before, 0):seq])

    def drain(self, want_acks: bool) -> None:
        """Wait (up to DRAIN_TIMEOUT_S) for the broker's PUBACKs of all sent and, with
        ``want_acks`` (a gateway runs), its end-to-end acks; then close."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        self.sock.setblocking(True)
        if self.pending_out:
            self.sock.sendall(self.pending_out)
        self.sock.setblocking(False)
        while time.monotonic() < deadline:
            done = self.pubacks >= self.my_sent
            if want_acks:
                done = done and all(self.acked[n] >= self.pos[n] for n in self.names)
            if done:
                break
            self.read_some(0.05)
        self.sock.close()

    def report(self) -> dict[str, Any]:
        return {"idx": self.idx, "sent": self.my_sent, "pubacks": self.pubacks, "ack_msgs": self.ack_msgs,
                "exhausted_at": self.exhausted_at, "go_wall": self.go_wall, "last_seq": self.pos,
                "acked": self.acked, "sent_at": self.sent_at, "ack_s": self.ack_s}


class Generators:
    """K generator processes sharing the devices; start() returns once all are presigned."""

    def __init__(self, broker_port: int, devices: Sequence[tuple[str, bytes]], per_device: int, records: int = 1,
                 processes: int = 2, max_backlog: int | None = 20000, want_acks: bool = True, cycle: bool = False,
                 rate: float | None = None, latency: bool = False, alg: int = cose.EDDSA) -> None:
        ctx = multiprocessing.get_context("fork")
        self.k = max(1, min(processes, len(devices)))
        self.stock: float = per_device * len(devices) if not cycle else float("inf")
        self.sent = ctx.Array("q", self.k, lock=False)
        self.progress = ctx.Value("q", 0, lock=False)
        self.go = ctx.Event()
        self.stop_ev = ctx.Event()
        self.results = ctx.Queue()
        if max_backlog is not None:
            # each generator's own window stays within its packet id space
            max_backlog = min(max_backlog, MAX_PACKET_IDS - SEND_CHUNK)
        self.readies: list[Any] = []
        self.procs: list[Any] = []
        for i in range(self.k):
            ready = ctx.Event()
            p = ctx.Process(target=_generator, args=(
                i, devices[i::self.k], per_device, records, "127.0.0.1", broker_port, self.sent, self.progress,
                max_backlog, ready, self.go, self.stop_ev, (self.results, want_acks), cycle,
                None if rate is None else rate / float(self.k), latency, alg), daemon=True)
            self.readies.append(ready)
            self.procs.append(p)

    def start(self, timeout: float = 600.0) -> "Generators":
        for p in self.procs:
            p.start()
        deadline = time.monotonic() + timeout
        for r, p in zip(self.readies, self.procs):
            while not r.wait(0.2):
                if not p.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("load generator %d did not get ready (exit code %s)" % (p.pid, p.exitcode))
        self.go.set()
        self.t0 = time.monotonic()
        return self

    def total_sent(self) -> int:
        return sum(self.sent)

    def stop(self, timeout: float = DRAIN_TIMEOUT_S + 30) -> dict[str, Any]:
        """Stop publishing; wait for the drain; return the merged report."""
        self.stop_ev.set()
        reports = []
        for _ in self.procs:
            reports.append(self.results.get(timeout=timeout))
        for p in self.procs:
            p.join(timeout=10)
        last: dict[str, int] = {}
        acked: dict[str, int] = {}
        sent_at: dict[str, list[float]] = {}
        for r in reports:
            last.update(r["last_seq"])
            acked.update(r["acked"])
            sent_at.update(r["sent_at"] or {})
        ex = [r["exhausted_at"] for r in reports if r["exhausted_at"] is not None]
        return {"sent": sum(r["sent"] for r in reports), "pubacks": sum(r["pubacks"] for r in reports),
                "ack_msgs": sum(r["ack_msgs"] for r in reports),
                "presign_s": max(r["presign_s"] for r in reports), "exhausted_at": min(ex) if ex else None,
                "last_seq": last, "acked": acked, "go_wall": min(r["go_wall"] for r in reports),
                "sent_at": sent_at, "ack_s": [x for r in reports for x in r["ack_s"]]}

    def kill(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5)

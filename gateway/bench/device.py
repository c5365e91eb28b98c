"""``edgeledger bench device``: what the agent costs on a MicroPython device.

Figures (all measured on this host, with the commands named in docs/firmware.md):

* heap floor on the 64-bit unix port: the smallest ``-X heapsize`` (1 KB resolution) at
  which the built unix image's loop still connects, publishes ``heap_readings`` readings
  and exits after the end-to-end ack (a local Mosquitto and a minimal acker stand in for
  the site), per signer, for three deployments: the plain image (native code in ``lib/``),
  the ROMFS image (``firmware build --romfs``: bytecode run in place from ``romfs.img``,
  mapped outside the GC heap by ``boards/unix_port.py``), and the ROMFS image over TLS
  (``mqtts://``; the unix port's mbedTLS keeps its buffers outside the GC heap);
* the ROMFS saving on the 64-bit port, measured (the loop's modules imported from
  bytecode files and from the mapped image) and as ``device32.romfs_saving`` counts it
  from the ``.mpy`` files: the check of the count the 32-bit ROMFS estimate rests on;
* per reading: sample + encode + sign + persist (one ``AgentCore.tick`` sealing a
  one-record pack into the real outbox), and the signature alone, per signer;
* image size per board (``firmware build``, plain and ``--romfs``);
* wire bytes: one signed single-value reading, and one signed pack of 10 (the first 10
  values of an SDM630 poll, SenML base fields), each against the same content as JSON
  (records written out in full, signature, hash and key id in base64), bare and inside
  an MQTT PUBLISH;
* per real configuration (simulated, Modbus SDM630, DSMR 5, IEC 62056-21) and signer,
  on a 32-bit MicroPython (``device32.py``): live heap, code, what one turn allocates,
  CPU per signed message, and the heap with the code in ROMFS (an estimate: that port
  has no ROMFS); and, under ``flash``, the outbox's flash wear with that configuration's
  workload on littlefs (``flash.configuration_wear``: erases per reading, projected
  flash life);
* flash wear of the outbox on littlefs and FAT for the reference workloads: erases and
  bytes programmed per reading and projected flash life (``flash.py``, also
  ``edgeledger bench flash``);
* the issue's targets, each with the figure it is judged on and whether it is met.

The unix port is 64-bit: every object and pointer is twice the size it is on an ESP32
or RP2040; its floors are labelled as such. The 32-bit figures come from the
WebAssembly port, never from scaling a 64-bit one.
"""
import argparse
import base64
import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from edgeledger.gateway.bench import device32, report
from edgeledger.gateway.boards import image
from edgeledger.gateway.boards.unix_port import device_command, micropython_binary

# Where bench output goes: print, or None for silence.
Log = Callable[[str], object] | None

HEAP_STEPS_KB = (256, 192, 160, 128, 112, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16)
SIGNERS = device32.SIGNERS  # the 64-bit and the 32-bit figures cover the same signers
RUN_TIMEOUT_S = 60


# -- wire size ----------------------------------------------------------------------------

# The first 10 values of an SDM630 poll (registermaps/sdm630.py: names, units), as the
# Modbus source reads them: float32 values, one time for the whole poll.
PACK10_VALUES = (230.1, 229.8, 231.0, 1.23, 0.98, 1.05, 283.1, 225.2, 242.6, 750.9)


def _f32(x: float) -> float:
    value: float = struct.unpack(">f", struct.pack(">f", x))[0]
    return value


def _json_number(x: float) -> float:
    """The shortest decimal that reads back as the same float32 (kind to the JSON side)."""
    for digits in range(1, 18):
        text = "%.*g" % (digits, x)
        if _f32(float(text)) == x:
            return float(text)
    return x


def pack10(device: str = "meter-01", t: float = 1767225600.25) -> list:
    """The 10 records of one SDM630 poll (full names, units, float32 values, one time)."""
    from edgeledger.agent.registermaps import sdm630

    entries: Any = sdm630.MAP["entries"]
    return [{0: "%s/m1/%s" % (device, e[5]), 1: e[4], 2: _f32(v), 6: t} for e, v in zip(entries, PACK10_VALUES)]


def _sizes(s: Any, pack: list, prev: bytes, topic: bytes) -> dict:
    """COSE (as the device signs it: base fields for a multi-record pack) vs JSON bytes."""
    from edgeledger.protocols import cose, mqtt
    from edgeledger.protocols.reading import with_base_fields
    from edgeledger.protocols.reading.validate import encode_payload, resolve

    msg = cose.sign1(encode_payload("meter-01", 4711, prev, 3, with_base_fields(pack)), s)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    body = {"v": 1, "device": "meter-01", "seq": 4711, "prev": b64(prev), "epoch": 3,
            "pack": [{"n": r["n"], "u": r["u"], "v": _json_number(r["v"]), "t": r["t"]}
                     for r in resolve(pack)]}
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    sig = s.sign(text.encode())
    as_json = json.dumps({"alg": s.alg_name, "kid": b64(s.kid), "payload": body, "sig": b64(sig)},
                         separators=(",", ":"), sort_keys=True).encode()

    def publish_len(n: int) -> int:  # a QoS 1 PUBLISH of an n-byte message
        return len(mqtt.publish_header(topic, n, 1, qos=1)) + n

    return {"cose": len(msg), "json_base64": len(as_json), "cose_publish": publish_len(len(msg)),
            "json_publish": publish_len(len(as_json)), "ratio": round(len(msg) / len(as_json), 2)}


def wire_sizes(alg: str) -> dict:
    """Bytes of one signed single-value reading and of one signed pack of 10, COSE vs JSON,
    bare and in a PUBLISH: {"single": {...}, "pack10": {...}}."""
    from edgeledger.agent import signer
    from edgeledger.agent.crypto import sha256
    from edgeledger.protocols import topics

    s = signer.KeySigner(alg, bytes(range(1, 33)), "meter-01")
    prev = sha256(b"previous message")
    topic = topics.readings("plant-a", "meter-01").encode()
    single = [{0: "meter-01/energy_import", 1: "kWh", 2: 1234.567, 6: 1767225600.25}]
    return {"single": _sizes(s, single, prev, topic), "pack10": _sizes(s, pack10(), prev, topic)}


# -- per-reading cost under MicroPython ---------------------------------------------------

TIMING_SCRIPT = """
import sys, time, gc
sys.path.append("lib")
from edgeledger.agent.core import AgentCore
from edgeledger.agent.outbox import Outbox
from edgeledger.agent.simulated import SimulatedSource
from edgeledger.agent.signer import KeySigner
from edgeledger.agent.crypto import sha256
N = %(n)d
for alg in %(algs)r:
    s = KeySigner(alg, bytes(range(1, 33)), "meter-01")
    box = Outbox("state-" + alg, max_bytes=1 << 20, segment_bytes=1 << 16, hash_fn=sha256)
    src = SimulatedSource("meter-01", "meter", interval_s=0.001, channels=1)
    core = AgentCore("meter-01", s, box, [src], sha256, pack_size=1)
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


def reading_cost(image_dir: str, n: int) -> dict[str, dict[str, float]]:
    work = tempfile.mkdtemp(prefix="el-bench-")
    try:
        shutil.copytree(os.path.join(image_dir, "lib"), os.path.join(work, "lib"))
        with open(os.path.join(work, "t.py"), "w") as f:
            f.write(TIMING_SCRIPT % {"n": n, "algs": SIGNERS})
        proc = subprocess.run([micropython_binary(), "-X", "heapsize=256K", "t.py"], cwd=work,
                              capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, MICROPYPATH=".frozen"))
        if proc.returncode != 0:
            raise RuntimeError("timing run failed:\n" + proc.stdout + proc.stderr)
        out: dict[str, dict[str, float]] = {}
        for line in proc.stdout.split():
            alg, per, sig = line.split("|")
            out[alg] = {"reading_ms": float(per) / 1000, "sign_ms": float(sig) / 1000}
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- heap floor ---------------------------------------------------------------------------

def _tls_files(work: str) -> dict:
    """A self-signed certificate for localhost / 127.0.0.1 (PEM for Mosquitto, DER for the
    board) in ``work``: {"cert", "key", "ca_der"} paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    files = {"cert": os.path.join(work, "broker.pem"), "key": os.path.join(work, "broker.key"),
             "ca_der": os.path.join(work, "ca.der")}
    with open(files["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(files["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(files["ca_der"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))
    for path in (work,) + tuple(files.values()):  # Mosquitto drops root for its own user
        os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
    return files


class _Site:
    """A Mosquitto on a free port (TLS with ``tls``) and a minimal acker (acks every seq it
    sees, no checks)."""

    def __init__(self, work: str, tls: bool = False) -> None:
        from edgeledger.gateway.bench.mosquitto import Mosquitto

        self.tls = _tls_files(work) if tls else None
        extra = ["certfile " + self.tls["cert"], "keyfile " + self.tls["key"]] if self.tls else []
        self.broker = Mosquitto(extra=extra, workdir=os.path.join(work, "mosquitto"))
        self.broker.start()
        self.port = self.broker.port
        import paho.mqtt.client as paho

        from edgeledger.protocols import session, topics
        from edgeledger.protocols.cose import verify as cose_verify
        from edgeledger.protocols.reading import validate as reading_validate

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            site, device, _kind = topics.parse(msg.topic)
            seq = reading_validate.decode_payload(cose_verify.parse_sign1(msg.payload).payload).seq
            client.publish(topics.ack(site, device), session.encode_ack(seq), qos=1, retain=True)

        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="el-bench-acker")
        if self.tls:
            c.tls_set(ca_certs=self.tls["cert"])
        c.on_message = on_message
        c.on_connect = lambda client, *a: client.subscribe(topics.subscription("r"), qos=1)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        self.acker = c

    def stop(self) -> None:
        self.acker.loop_stop()
        self.broker.stop()


def _device_dir(image_dir: str, work: str, alg: str, site: _Site, readings: int) -> str:
    from edgeledger.agent import signer
    from edgeledger.agent.key_file import key_file_content

    d = os.path.join(work, "dev-" + alg)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(image_dir, d)
    s = signer.generate(alg, "bench-" + alg)
    with open(os.path.join(d, "dev.key"), "w") as f:
        f.write(key_file_content("bench-" + alg, alg, s.private_bytes()))
    cfg = {"device": "bench-" + alg, "site": "bench", "key_file": "dev.key",
           "broker": "mqtt://127.0.0.1:%d" % site.port, "until_seq": readings,
           "drain_timeout_s": 20, "sources": [{"type": "simulated", "name": "bench",
                                               "interval_s": 0.01, "channels": 1}]}
    if site.tls:
        shutil.copy(site.tls["ca_der"], os.path.join(d, "ca.der"))
        cfg["broker"] = "mqtts://127.0.0.1:%d" % site.port
        cfg["tls"] = {"ca_file": "ca.der", "server_hostname": "localhost"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return d


def runs_at(image_dir: str, work: str, alg: str, site: _Site, readings: int, heap_kb: int) -> tuple:
    """Whether the loop of ``image_dir`` runs ``readings`` end to end at ``-X heapsize=<heap_kb>K``;
    (ok, last log line)."""
    d = _device_dir(image_dir, work, alg, site, readings)
    try:
        proc = subprocess.run(device_command(d, "%dK" % heap_kb), cwd=d, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT_S, env=dict(os.environ, MICROPYPATH=".frozen"))
    except subprocess.TimeoutExpired:
        return False, "timeout"
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip().splitlines()[-1:]


def heap_floor(image_dir: str, readings: int, log: Log = None, tls: bool = False) -> dict:
    """Per signer, the smallest heap (1 KB resolution) at which the loop still runs: step
    down through HEAP_STEPS_KB, then bisect between the last size that ran and the first
    that failed."""
    work = tempfile.mkdtemp(prefix="el-bench-")
    site = _Site(work, tls)
    out = {}

    def runs(alg: str, kb: int) -> bool:
        ok, detail = runs_at(image_dir, work, alg, site, readings, kb)
        if log:
            log("  %s heap %3d K: %s" % (alg, kb, "runs" if ok else "fails (%s)" % (detail,)))
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


# -- the ROMFS saving on the 64-bit port ----------------------------------------------------

# The loop's long-lived modules (simulated source, EdDSA) and what imports them pulls in.
LOOP_MODULES = ("edgeledger.firmware.main", "edgeledger.agent.core", "edgeledger.agent.outbox",
                "edgeledger.firmware.mqtt", "edgeledger.agent.signer", "edgeledger.agent.crypto.pure.ed25519.sign",
                "edgeledger.protocols.session", "edgeledger.agent.simulated")

IMPORT_PROBE = """
import gc, os, sys
if %(rom)r:
    import uctypes, vfs
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(*[int(x) for x in os.getenv(%(env)r).split(":")])), "/rom")
    sys.path.insert(0, "/rom")
else:
    sys.path.insert(0, "lib")
gc.collect()
before = gc.mem_alloc()
for name in %(modules)r:
    __import__(name)
gc.collect()
print("HEAP|%%d" %% (gc.mem_alloc() - before))
print("MODULES|" + ",".join(sorted(m for m in sys.modules if m.startswith("edgeledger"))))
"""


def import_heap(folder: str, modules: Sequence[str] = LOOP_MODULES, rom: bool = False) -> tuple:
    """(heap bytes, modules loaded) of importing ``modules`` under the unix port, from
    ``folder``/lib (bytecode files) or, with ``rom``, from ``folder``/romfs.img mapped as
    a ROM partition. Writes ``folder``/main.py. Raises RuntimeError."""
    modules = tuple(image.board_name(m) or m for m in modules)  # as the image names them
    with open(os.path.join(folder, "main.py"), "w") as f:
        f.write(IMPORT_PROBE % {"rom": rom, "env": image.ROMFS_ENV, "modules": modules})
    cmd = (device_command(folder, "256K") if rom
           else [micropython_binary(), "-X", "heapsize=256K", "main.py"])
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MICROPYPATH=".frozen"))
    lines = dict(x.split("|", 1) for x in proc.stdout.splitlines() if "|" in x)
    if proc.returncode != 0 or "HEAP" not in lines:
        raise RuntimeError("import probe failed:\n" + proc.stdout + proc.stderr)
    return int(lines["HEAP"]), lines["MODULES"].split(",")


def romfs_check(work: str) -> dict:
    """The ROMFS saving on the 64-bit unix port, measured and as ``device32.romfs_saving``
    counts it (32-byte blocks), for the loop's modules (bytes)."""

    rom = os.path.join(work, "romfs-check")
    image.build_image("unix", rom, romfs=True)
    lib = os.path.join(rom, "lib")
    image.compile_modules(image.board_modules("unix"), lib)  # what romfs.img was packed from
    in_files, loaded = import_heap(rom)
    in_rom, _ = import_heap(rom, rom=True)
    counted = device32.romfs_saving(lib, loaded, block=32)
    return {"files_bytes": in_files, "romfs_bytes": in_rom, "measured_saving": in_files - in_rom,
            "counted_saving": sum(counted.values()), "counted": counted}


def _kb(n: float) -> float:
    return round(n / 1024.0, 1)


def targets(per_config: dict, floors: dict, wire: dict) -> dict:
    """The issue's targets, each with the figure it is judged on and whether it is met."""
    tls_kb = {alg: floors["romfs_tls"][alg] - floors["romfs"][alg] for alg in SIGNERS
              if floors["romfs_tls"].get(alg) and floors["romfs"].get(alg)}
    out = {}
    sim = min(per_config["simulated"][alg]["romfs_estimate_kb"] for alg in SIGNERS)
    out["simulated_within_32kb"] = {
        "limit_kb": 32, "figure_kb": sim, "met": sim <= 32,
        "basis": "32-bit heap with the code in ROMFS (estimate), cheaper signer"}
    for alg in SIGNERS:
        est = per_config["modbus-sdm630"][alg]["romfs_estimate_kb"]
        add = tls_kb.get(alg)
        fig = None if add is None else round(est + add, 1)
        out["modbus_sdm630_tls_within_64kb_" + alg] = {
            "limit_kb": 64, "figure_kb": fig, "met": None if fig is None else fig <= 64,
            "scope": "boards whose mbedTLS allocates outside the MicroPython heap (ESP32); on an "
                     "RP2040 mbedTLS's buffers come from that heap on top of this: not measured",
            "basis": "32-bit heap with the code in ROMFS (estimate) %.1f KB + what TLS adds to "
                     "the GC heap floor on the 64-bit port (%s KB, an upper bound for 32-bit)"
                     % (est, add)}
    for alg in SIGNERS:
        r = wire[alg]["pack10"]["ratio"]
        out["pack10_at_most_half_json_" + alg] = {"limit": 0.5, "figure": r, "met": r <= 0.5,
                                                  "basis": "COSE bytes / JSON bytes of one pack of 10"}
    return out


def _image_sizes(work: str, say: Callable[[str], object]) -> dict:
    """Every board's image built into ``work`` (plain and ``--romfs``): its sizes."""
    sizes = {}
    for board in image.boards():
        m = image.build_image(board, os.path.join(work, board))
        r = image.build_image(board, os.path.join(work, board + "-romfs"), romfs=True)
        sizes[board] = {"image_bytes": m["image_bytes"], "lib_bytes": m["lib_bytes"],
                        "modules": len(m["modules"]), "romfs_bytes": r["romfs_bytes"]}
        say("image %-7s %6d bytes (%d modules, lib %d bytes); --romfs: romfs.img %d bytes"
            % (board, m["image_bytes"], len(m["modules"]), m["lib_bytes"], r["romfs_bytes"]))
    return sizes


def _wire(say: Callable[[str], object]) -> dict:
    """``wire_sizes`` of every signer."""
    wire = dict((alg, wire_sizes(alg)) for alg in SIGNERS)
    for alg in SIGNERS:
        for kind, label in (("single", "one reading"), ("pack10", "pack of 10 ")):
            w = wire[alg][kind]
            say("wire %-5s %s COSE %4d B (PUBLISH %4d B) vs JSON+base64 %4d B (PUBLISH %4d B): %.2fx"
                % (alg, label, w["cose"], w["cose_publish"], w["json_base64"], w["json_publish"], w["ratio"]))
    return wire


def _heap_floors(work: str, heap_readings: int, say: Callable[[str], object], log: Log) -> dict:
    """``heap_floor`` of the unix image built in ``work``: plain, ROMFS, ROMFS over TLS."""
    floors = {}
    for kind, folder, tls, label in (
            ("plain", os.path.join(work, "unix"), False, "plain image (native code in lib/)"),
            ("romfs", os.path.join(work, "unix-romfs"), False, "ROMFS image (bytecode in place)"),
            ("romfs_tls", os.path.join(work, "unix-romfs"), True, "ROMFS image over TLS")):
        say("heap floor, %s, %d readings end to end:" % (label, heap_readings))
        floors[kind] = heap_floor(folder, heap_readings, say if log else None, tls=tls)
        say("heap floor %-33s %s (64-bit unix port)"
            % (label, ", ".join("%s %s KB" % (alg, floors[kind][alg]) for alg in SIGNERS)))
    return floors


def _per_configuration(readings: int, say: Callable[[str], object], log: Log) -> dict:
    """``device32.run``, each figure with its configuration's flash wear (``flash``)."""
    from edgeledger.gateway.bench import flash as flash_wear

    say("on the 32-bit WebAssembly port, bytecode .mpy in RAM, %d messages per run:" % readings)
    per_config = device32.run(readings, say if log else None)
    wear = flash_wear.configuration_wear(device32.CONFIGS, SIGNERS)
    say("flash wear per configuration (its own workload on littlefs, flush every %s s):"
        % flash_wear.board_outbox()["flush_interval_s"])
    for config, by_alg in per_config.items():
        for alg, figures in by_alg.items():
            figures["flash"] = f = wear[config][alg]
            say("32-bit %-14s %-5s heap %5.1f KB, %6.2f ms per message, %.3f flash erases per "
                "message (workload %s, %d messages in %d s), projected flash life %.1f years"
                % (config, alg, figures["heap_kb"], figures["cpu_ms"],
                   f["erases_per_reading_this_workload"], f["workload"], f["messages"],
                   f["seconds"], f["projected_life_years_this_workload"]))
    return per_config


def run(readings: int = 20, heap_readings: int = 10, log: Log = print) -> dict:
    say = log or (lambda *a: None)
    context = report.context()
    work = tempfile.mkdtemp(prefix="el-bench-img-")
    try:
        sizes = _image_sizes(work, say)
        wire = _wire(say)
        from edgeledger.gateway.bench import flash as flash_wear  # its own section: flash wear of the outbox

        flash = flash_wear.measure()
        flash_wear.report(flash, say)
        cost = reading_cost(os.path.join(work, "unix"), readings)
        for alg in SIGNERS:
            say("per reading %-5s %.1f ms (sample+encode+sign+persist), sign alone %.1f ms (64-bit unix port)"
                % (alg, cost[alg]["reading_ms"], cost[alg]["sign_ms"]))
        floors = _heap_floors(work, heap_readings, say, log)
        check = romfs_check(work)
        say("ROMFS saving on the 64-bit port, the loop's modules: measured %.1f KB (%.1f in files, "
            "%.1f in ROMFS), counted from the .mpy files %.1f KB"
            % (_kb(check["measured_saving"]), _kb(check["files_bytes"]), _kb(check["romfs_bytes"]),
               _kb(check["counted_saving"])))
        per_config = _per_configuration(readings, say, log)
        goals = targets(per_config, floors, wire)
        for name, t in goals.items():
            say("target %-36s %s: %s (%s%s)" % (
                name, "met" if t["met"] else "NOT met" if t["met"] is False else "not measured",
                t.get("figure_kb", t.get("figure")), t["basis"],
                "; for " + t["scope"] if "scope" in t else ""))
        report.print_context(context, say)
        return {**context, "configurations_32bit": per_config, "heap_floor_kb": floors, "romfs_check": check,
                "per_reading": cost, "image": sizes, "wire_bytes": wire, "targets": goals, "flash": flash,
                "runtime": "micropython unix port (64-bit); 32-bit: micropython WebAssembly port"}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    """``edgeledger bench device [--json]``."""
    result = run(readings=args.readings, heap_readings=args.heap_readings, log=None if args.json else print)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0

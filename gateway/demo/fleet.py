"""The demo's simulated devices: one AgentCore + PahoLink per device, one driver thread.

Each device is the real Linux agent minus its process: a fresh key (EdDSA or ES256; every
device SM2 or one other algorithm with ``demo --alg``), a
durable outbox in its own folder, a simulated source (``meter`` or ``sensor``), the agent
core and a paho link of its own. One thread runs every core's loop step, the one the Linux
agent and the board run (``AgentCore.step``: tick, apply acks, publish within the window),
so the demo costs one thread plus paho's network thread per device instead of one process
per device.

A device signs one message per poll of its source (``pack_size`` far above the three
records a poll yields, ``pack_age_s = 0``: the pack is sealed at the end of the tick) and
stops sealing after ``readings`` messages (``max_seq``); it is done when the gateway has
acknowledged every one of them end to end.
"""
import os
import threading
import time

from edgeledger.agent import signer as signers
from edgeledger.agent.core import AgentCore
from edgeledger.agent.crypto import sha256
from edgeledger.agent.mqtt_paho import PahoLink
from edgeledger.agent.outbox import Outbox
from edgeledger.agent.simulated import SimulatedSource

VERSION = "edgeledger-agent/0.1 (demo)"
# The device mix, cycled: every combination of profile and algorithm within four devices
# (and both algorithms within two).
MIX = (("meter", "EdDSA"), ("sensor", "ES256"), ("meter", "ES256"), ("sensor", "EdDSA"))
# Records per signed message at most; a poll yields three, so a message is one poll.
PACK_SIZE = 1000
# In-flight messages beyond the last end-to-end ack, per device (agent default).
WINDOW = 256
# Resend from the last ack when it has not moved for this long (faster than the agent's
# 5 s default: a demo should show recovery within its own run).
RESEND_AFTER_S = 2.0
# Outbox bound per device: 500 messages of ~300 bytes need 150 KB; 8 MiB is ample and
# still bounded (policy drop_new: a refused pack is counted, never silently lost).
OUTBOX_MAX_BYTES = 8 * 1024 * 1024
OUTBOX_SEGMENT_BYTES = 256 * 1024
# Loop sleep when nothing is due (agent/linux.py's IDLE_SLEEP_S).
IDLE_SLEEP_S = 0.005


def device_names(n: int, alg: str | None = None) -> list[tuple[str, str, str]]:
    """[(name, kind, alg)] for ``n`` devices, e.g. meter-01 (EdDSA), sensor-02 (ES256), ...;
    every device signing with ``alg`` when it is given (``demo --alg SM2``)."""
    out = []
    for i in range(n):
        kind, mixed = MIX[i % len(MIX)]
        out.append(("%s-%02d" % (kind, i + 1), kind, alg or mixed))
    return out


class Device:
    def __init__(self, name: str, kind: str, alg: str, site: str, broker_url: str, state_dir: str, readings: int,
                 interval_s: float, epoch: int = 1) -> None:
        self.name, self.kind, self.site = name, kind, site
        self.signer = signers.generate(alg, name)
        self.alg = self.signer.alg_name
        os.makedirs(state_dir, exist_ok=True)
        self.outbox = Outbox(os.path.join(state_dir, "outbox"), max_bytes=OUTBOX_MAX_BYTES,
                             segment_bytes=OUTBOX_SEGMENT_BYTES, policy="drop_new", hash_fn=sha256)
        self.source = SimulatedSource(name=name, kind=kind, interval_s=interval_s)
        self.core = AgentCore(name, self.signer, self.outbox, [self.source], sha256, epoch=epoch,
                              pack_size=PACK_SIZE, pack_age_s=0.0, window=WINDOW,
                              resend_after_s=RESEND_AFTER_S, max_seq=readings)
        self.link = PahoLink(broker_url, site, name, epoch, lambda: self.core.birth(VERSION))

    def step(self, now: float, wall: float) -> None:
        """One round of the agent loop (``AgentCore.step``)."""
        self.core.step(now, wall, self.link)

    def done(self) -> bool:
        return bool(self.core.done_sealing() and self.core.drained())

    @property
    def sent(self) -> int:
        """Distinct messages signed and handed to the link (resends not counted)."""
        return int(self.core.counters["sealed"])

    @property
    def acked(self) -> int:
        return int(self.outbox.acked)


class Fleet:
    """Every device and the thread that drives them. ``start``/``stop``; ``done()``."""

    def __init__(self, devices: list[Device]) -> None:
        self.devices = list(devices)
        self._stop = threading.Event()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="demo-devices", daemon=True)

    def start(self) -> None:
        for d in self.devices:
            d.link.start()
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now, wall = time.monotonic(), time.time()
                for d in self.devices:
                    d.step(now, wall)
                if self.done():
                    return
                self._stop.wait(IDLE_SLEEP_S)
        except Exception as e:  # reported by the demo, which then fails instead of hanging
            self.error = e

    def done(self) -> bool:
        return all(d.done() for d in self.devices)

    def sent(self) -> int:
        return sum(d.sent for d in self.devices)

    def resends(self) -> int:
        return sum(int(d.core.counters["resends"]) for d in self.devices)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for d in self.devices:
            d.link.stop()
            d.outbox.close()

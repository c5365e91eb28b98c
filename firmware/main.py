"""The agent on a MicroPython board: the counterpart of ``agent/linux.py``.

The image's top-level ``main.py`` calls ``start()``. Start-up (``startup.py``:
read ``config.json``, ``board.json`` and the key file, recover the outbox,
build the agent core and the MQTT client) runs once and is then dropped from
the heap; this module keeps only the loop::

    tick      sample due sources, seal and sign packs, persist them (outbox)
    link      reconnect when due (bounded by max_block_ms), else read acks, keepalive
    ack       the gateway's end-to-end ack frees outbox records
    publish   records from the outbox, QoS 1, within the in-flight windows
    sleep     until the next source is due (at most IDLE_SLEEP_S)

The link never stalls sampling for longer than ``max_block_ms``: every socket
operation has that timeout, and while the broker is away the loop keeps
sampling into the outbox and retries with exponential backoff.

config.json::

    {"device": "meter-01", "site": "plant-a", "key_file": "meter-01.key",
     "broker": "mqtt://192.168.1.10:1883",        (mqtts:// for TLS)
     "tls": {"ca_file": "ca.pem", "cert_file": "dev.crt", "key_file": "dev.key",
             "server_hostname": "broker.plant-a"},   (all optional)
     "username": "meter-01", "password": "...",    (optional)
     "wifi": {"ssid": "...", "password": "..."},   (boards with "network": wlan)
     "state_dir": "state", "outbox": {"max_bytes": 262144, "segment_bytes": 16384,
                                     "flush_interval_s": 30},
     "sources": [{"type": "simulated", "kind": "meter", "interval_s": 1.0},
                 {"type": "modbus", "bus": "rs485", "devices": [...]}],
     "pack_size": 1, "pack_age_s": 0.0, "window": 64, "resend_after_s": 5.0,
     "keepalive": 30, "max_block_ms": 500, "max_backoff_s": 10.0,
     "until_seq": null, "drain_timeout_s": 120}
"""
import gc
import sys

from edgeledger.agent import port
from edgeledger.agent import errors
from edgeledger.firmware import board as boards

VERSION = "edgeledger-agent/0.1 (micropython)"
# Loop sleep when nothing is due: bounds ack and publish latency at a few ms.
IDLE_SLEEP_S = 0.005
# Records read from the outbox per loop turn: each is in RAM until written to the socket.
SEND_BATCH = 4
# Reconnect backoff: doubles from MIN_BACKOFF_S to max_backoff_s after every failed attempt.
MIN_BACKOFF_S = 0.2


def run(board, core, client, names, max_backoff_s=10.0, drain_timeout_s=120.0, log=print):
    """Run the loop; returns an exit code (only bounded runs with until_seq return).

    ``names`` are the readings, ack and birth topics. Raises what the core raises
    (OSError from the outbox's flash).
    """
    # imported here, not at the top: start-up runs before these are needed (see startup.py)
    from edgeledger.firmware.mqtt import MqttError
    from edgeledger.protocols import session

    readings, ack_topic, birth_topic = names
    device = core.device_id
    outbox = core.outbox
    counters = {"connects": 0, "connect_failures": 0, "link_drops": 0}
    ack = [None]  # highest end-to-end ack received and not yet applied

    def on_message(topic, payload, retained):
        if topic == ack_topic:
            try:
                seq = session.decode_ack(payload)
            except ValueError:
                return  # not our gateway's format; its next ack will do
            if ack[0] is None or seq > ack[0]:
                ack[0] = seq

    client.on_message = on_message
    backoff_s = MIN_BACKOFF_S
    retry_at = 0.0
    drain_deadline = None
    log("agent %s on %s: epoch %d, outbox head %d, acked %d"
        % (device, board.name, core.epoch, outbox.head_seq, outbox.acked))
    while True:
        now = port.monotonic()
        if board.clock_valid(now):
            core.tick(now, board.wall_time())
        busy = False
        lost = None
        if client.sock is None:
            if now >= retry_at and board.network_ready():
                try:
                    client.connect()
                    client.subscribe(ack_topic, 1)
                    birth = dict(core.counters)
                    birth.update(outbox.counters)
                    birth.update(counters)
                    client.publish(birth_topic, session.encode_birth(
                        VERSION, core.signer.kid, outbox.head_seq, core.epoch, birth),
                        retain=True, qos=1)
                    birth = None
                    counters["connects"] += 1
                    backoff_s = MIN_BACKOFF_S
                    core.on_connect(now)
                    log("link: connected to %s:%d" % (client.server, client.port))
                except (MqttError, OSError) as e:
                    n = counters["connect_failures"] + 1
                    counters["connect_failures"] = n
                    lost = e
                    if n & (n - 1) == 0:  # logs 1, 2, 4, 8, ... failures
                        log("link: connect failed %d times (%s)" % (n, e))
        else:
            try:
                client.poll()
                if ack[0] is not None:
                    core.on_ack(ack[0], now)
                    ack[0] = None
                room = client.max_inflight - client.inflight()
                if room > 0:
                    for seq, data in core.to_send(now, min(room, SEND_BATCH)):
                        client.publish(readings, data, qos=1)
                        core.sent(seq)
                        busy = True
            except (MqttError, OSError) as e:
                counters["link_drops"] += 1
                lost = e
                log("link: lost (%s)" % (e,))
        if lost is not None:
            client.close()
            retry_at = now + backoff_s
            backoff_s = min(backoff_s * 2, max_backoff_s)
            lost = None
        if core.done_sealing():
            if core.drained():
                log("agent %s: sealed and acked up to seq %d (connects %d)"
                    % (device, outbox.head_seq, counters["connects"]))
                client.disconnect()
                outbox.close()
                return 0
            if drain_deadline is None:
                drain_deadline = now + drain_timeout_s
            elif now > drain_deadline:
                log("agent %s: %d records still unacked after %d s"
                    % (device, outbox.pending_count(), drain_timeout_s))
                outbox.close()
                return 3
        gc.collect()
        if not busy:
            due = core.next_due()
            wait = IDLE_SLEEP_S if due is None else min(IDLE_SLEEP_S, due - port.monotonic())
            if wait > 0:
                port.sleep(wait)


def start():
    """Entry point of the image's main.py: start up, drop start-up code, loop; exits."""
    board = None
    try:
        board = boards.load()
        from edgeledger.firmware import startup

        core, args, will, names, limits = startup.prepare("config.json", board)
        startup = None  # prepare() dropped its modules from sys.modules: let the GC free them
        gc.collect()
        from edgeledger.firmware.mqtt import MQTTClient

        client = MQTTClient(*args)
        client.set_last_will(*will)
        args = will = None
        code = run(board, core, client, names, *limits)
    except errors.ConfigError as e:
        print("edgeledger: %s" % (e,))
        code = 2
    except Exception as e:  # a crash must not leave a field device dead: reset it
        if hasattr(sys, "print_exception"):
            sys.print_exception(e)
        else:
            print(repr(e))
        code = 1
        if board is not None:
            board.restart()
    sys.exit(code)

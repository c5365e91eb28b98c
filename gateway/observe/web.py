"""The gateway's read-only status page (gateway.toml ``[web] listen``).

One page, ``/``, rendered on the server from the store (facts.Facts): the devices (their
contiguous and highest seq, online, stuck), the anchoring state and backlog, the newest
batches with their blocks, quarantine by reason, and a plot of one device's recent readings
as inline SVG (``?device=ID&name=RECORD`` chooses; by default the first device and its first
numeric record). No JavaScript, no external CSS or fonts: it works on an air-gapped plant
network and in a browser that allows nothing.

Read-only: GET and HEAD only, nothing on the page changes anything. Device ids and record
names are chosen by whoever holds a device key (or, in quarantine, by anyone who can
publish), so every text is escaped (``html.escape``), every query value is quoted, and the
page is served with a Content-Security-Policy that forbids scripts: a device id like
``<script>`` is shown as text and never runs.
"""
import html
import http.server
import logging
import threading
import time
import urllib.parse
from typing import Any

from edgeledger.gateway import export
from edgeledger.gateway.errors import ConfigError, GatewayError
from edgeledger.gateway.observe.facts import Facts, listen_address
from edgeledger.gateway.observe.logs import anchoring_text

log = logging.getLogger("edgeledger.gateway")

# Batches listed: a screenful.
RECENT_BATCHES = 20
# The plot shows the device's readings of this long before its newest message (ten minutes:
# 600 points of a device that signs every second, a few of a meter read every 15 minutes).
PLOT_WINDOW_S = 600.0
# Messages read for the plot at most (a 1 kHz sensor's pack per second: 600 in the window).
PLOT_MESSAGES = 2000
# Points drawn at most: the SVG stays under ~100 KB whatever the device sends.
PLOT_POINTS = 1000
PLOT_W, PLOT_H, PLOT_PAD = 900, 260, 50
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors 'none'"
STYLE = ("body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}"
         "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}th{background:#e8eef5}"
         ".bad{color:#b00;font-weight:bold}.ok{color:#070}svg{background:#fafcff;border:1px solid #bbb}")


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _link(device: str, name: str | None = None) -> str:
    q = {"device": device}
    if name is not None:
        q["name"] = name
    return "/?" + urllib.parse.urlencode(q)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def render(facts: Facts, query: dict[str, list[str]], now: float | None = None) -> str:
    """The page for a parsed query string. Raises StoreError."""
    snap = facts.snapshot()
    devices = snap["devices"]
    chosen = (query.get("device") or [devices[0]["device"] if devices else ""])[0]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>edgeledger gateway %s</title>"
             "<style>%s</style></head><body>" % (_e(facts.cfg.gateway_id), STYLE)]
    parts.append("<h1>edgeledger gateway %s</h1>" % _e(facts.cfg.gateway_id))
    parts += _overview(snap, facts.cfg.ledger.backend != "none")
    parts += _devices(devices, chosen)
    parts += _batches(facts)
    parts += _quarantine(snap)
    wanted = query.get("name")
    parts += _plot(facts, devices, chosen, wanted[0] if wanted else None)
    parts.append("<p>Read-only; generated %s. <code>edgeledger gateway status</code> says the same and more.</p>"
                 % _e(_when(now or time.time())))
    parts.append("</body></html>")
    return "".join(parts)


def _overview(snap: dict[str, Any], ledger: bool) -> list[str]:
    a, b, last = snap["anchoring"], snap["backlog"], snap["last_anchored"]
    state = anchoring_text(a["state"], ledger)
    cls = "bad" if state in ("unreachable", "HALTED") else "ok"
    return ["<h2>Anchoring</h2><table>",
            "<tr><th>messages stored</th><td>%d</td></tr>" % snap["messages"],
            "<tr><th>anchoring</th><td class='%s'>%s %s</td></tr>" % (cls, _e(state), _e(a["note"] or "")),
            "<tr><th>backlog</th><td>%d batches not anchored, %d messages not in a batch</td></tr>"
            % (b["batches_not_anchored"], b["messages_not_batched"]),
            "<tr><th>last anchored</th><td>%s</td></tr>" % (
                "batch %d in block %s" % (last["batch"], _e(last["block"])) if last else "none yet"),
            "</table>"]


def _devices(devices: list[dict[str, Any]], chosen: str) -> list[str]:
    out = ["<h2>Devices (%d)</h2>" % len(devices), "<table id='devices'><tr><th>device</th><th>site</th>"
           "<th>contiguous seq</th><th>highest seq</th><th>online</th><th>stuck at a gap</th><th>last seen</th></tr>"]
    for d in devices:
        mark = " (plotted)" if d["device"] == chosen else ""
        out.append("<tr><td><a href='%s'>%s</a>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%s</td>"
                   "<td class='%s'>%s</td><td>%s</td></tr>"
                   % (_e(_link(d["device"])), _e(d["device"]), mark, _e(d["site"]), d["contiguous_seq"], d["max_seq"],
                      "yes" if d["online"] else "no", "bad" if d["stuck"] else "ok", "STUCK" if d["stuck"] else "no",
                      _e(_when(d["last_seen"]))))
    out.append("</table>")
    return out


def _batches(facts: Facts) -> list[str]:
    batches = facts.recent_batches(RECENT_BATCHES)
    out = ["<h2>Batches (newest %d)</h2>" % RECENT_BATCHES,
           "<table id='batches'><tr><th>batch</th><th>messages</th><th>state</th><th>block</th><th>final</th>"
           "<th>root</th></tr>"]
    for b in batches:
        out.append("<tr><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td><code>%s</code></td></tr>"
                   % (b.number, b.tree_size, _e(b.state), _e(b.block_number if b.block_number is not None else "-"),
                      "yes" if b.final_at is not None else "no", _e(b.root.hex()[:16])))
    out.append("</table>")
    return out


def _quarantine(snap: dict[str, Any]) -> list[str]:
    out = ["<h2>Quarantine by reason</h2><table id='quarantine'><tr><th>reason</th><th>messages</th></tr>"]
    for reason, n in sorted(snap["quarantine"].items()):
        out.append("<tr><td>%s</td><td>%d</td></tr>" % (_e(reason), n))
    out.append("</table>")
    return out


def _plot(facts: Facts, devices: list[dict[str, Any]], chosen: str, name: str | None) -> list[str]:
    known = dict((d["device"], d) for d in devices)
    if chosen not in known:
        return ["<h2>Readings</h2><p>No device %s is registered.</p>" % _e(chosen)] if chosen else []
    newest = known[chosen]["last_seen"] or time.time()
    stored = facts.readings(chosen, newest - PLOT_WINDOW_S, newest + PLOT_WINDOW_S, PLOT_MESSAGES)
    series: dict[str, list[tuple[float, float]]] = {}
    for row in export.rows(stored):
        if row.kind == "v" and isinstance(row.value, (int, float)) and not isinstance(row.value, bool):
            series.setdefault(row.name, []).append((row.time, float(row.value)))
    out = ["<h2>Readings of %s</h2>" % _e(chosen)]
    if not series:
        return out + ["<p>No numeric readings in the last %d minutes of this device.</p>" % (PLOT_WINDOW_S // 60)]
    names = sorted(series)
    name = name if name in series else names[0]
    out.append("<p>Record: " + " ".join(
        "<b>%s</b>" % _e(n) if n == name else "<a href='%s'>%s</a>" % (_e(_link(chosen, n)), _e(n))
        for n in names) + "</p>")
    out.append(svg_plot(series[name][-PLOT_POINTS:], "%s %s" % (chosen, name)))
    return out


def svg_plot(points: list[tuple[float, float]], title: str) -> str:
    """An inline SVG line plot of (time, value) points, with its value and time range."""
    ts = [p[0] for p in points]
    vs = [p[1] for p in points]
    t0, t1, v0, v1 = min(ts), max(ts), min(vs), max(vs)
    tspan, vspan = (t1 - t0) or 1.0, (v1 - v0) or 1.0
    w, h, pad = PLOT_W, PLOT_H, PLOT_PAD
    xy = " ".join("%.1f,%.1f" % (pad + (t - t0) / tspan * (w - 2 * pad), h - pad - (v - v0) / vspan * (h - 2 * pad))
                  for t, v in points)
    return ("<svg id='plot' xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' role='img'>"
            "<title>%s</title>"
            "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#555'/><line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#555'/>"
            "<polyline fill='none' stroke='#1f5fbf' stroke-width='2' points='%s'/>"
            "<text x='4' y='%d' font-size='12'>%s</text><text x='4' y='%d' font-size='12'>%s</text>"
            "<text x='%d' y='%d' font-size='12'>%s</text><text x='%d' y='%d' font-size='12' text-anchor='end'>%s</text>"
            "</svg>"
            % (w, h, w, h, _e(title), pad, h - pad, w - pad, h - pad, pad, pad, pad, h - pad, xy,
               pad - 6, _e("%g" % v1), h - pad, _e("%g" % v0), pad, h - pad + 18, _e(_when(t0)),
               w - pad, h - pad + 18, _e("%s (%d points)" % (_when(t1), len(points)))))


class _Handler(http.server.BaseHTTPRequestHandler):
    facts: Facts  # set on the subclass the server makes
    server_version = "edgeledger"

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def _answer(self, body: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/":
            self._send(404, "text/plain; charset=utf-8", b"not found: the status page is /\n", body)
            return
        try:
            page = render(self.facts, urllib.parse.parse_qs(url.query)).encode()
        except GatewayError as e:
            log.warning("status page: %s", e)
            self._send(503, "text/plain; charset=utf-8", ("the store cannot be read: %s\n" % e).encode(), body)
            return
        self._send(200, "text/html; charset=utf-8", page, body)

    def _send(self, code: int, kind: str, data: bytes, body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("status page: " + format, *args)


class WebServer:
    """The status page on ``listen`` (host:port) in a thread. Raises ConfigError for a bad
    address or one that cannot be bound."""

    def __init__(self, facts: Facts, listen: str) -> None:
        host, port = listen_address(listen, "[web] listen")
        handler = type("Handler", (_Handler,), {"facts": facts})
        try:
            self._server = http.server.ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise ConfigError("gateway config: [web] listen = %r: cannot listen there: %s" % (listen, e)) from e
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="status-page", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

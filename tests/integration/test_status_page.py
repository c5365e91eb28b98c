"""The gateway's read-only status page in a real headless Chromium: a real gateway process,
real Mosquitto, signed readings from a test device whose record name is a ``<script>``
(record names are chosen by whoever holds a device key), and a query string that carries
one too. The page must list the devices, plot the readings as inline SVG, render as
something other than a blank page, and run no script.

Chromium is a test dependency (``make system-deps`` installs Debian's ``chromium``): the
test fails, loudly, without it.
"""
import io
import math
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from PIL import Image

from edgeledger.protocols import cose
from edgeledger.protocols.reading import validate as reading_validate
from tests.integration.test_visibility import START_S, _publish, _try, serving_gateway
from tests.support.devices import FakeDevice
from tests.support.net import wait_until

pytestmark = pytest.mark.security

HOSTILE = "<script>document.title='pwned'</script>"
# A headless Chromium start on a loaded 2-core machine: tens of seconds.
CHROMIUM_S = 180


class PlotDevice(FakeDevice):
    """Signs one record per message: a sine wave under a hostile record name."""

    def make(self, seq, prev, value=1.0, t=None, device=None, records=1):
        t = time.time() - 60 + seq if t is None else t
        pack = [{0: "%s/%s" % (self.name, HOSTILE), 1: "W", 2: 1000 + 500 * math.sin(seq / 3.0), 6: t}]
        return cose.sign1(reading_validate.encode_payload(self.name, seq, prev, 1, pack), self.signer)


def chromium(*args, tmp):
    """Run headless Chromium; fails the test when it is not installed."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is missing: `make system-deps` installs Debian's chromium (a test dependency)"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
           "--user-data-dir=%s" % tmp] + list(args)
    proc = subprocess.run(cmd, capture_output=True, timeout=CHROMIUM_S)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-3000:]
    return proc.stdout.decode("utf-8", "replace")


def test_status_page_in_headless_chromium(site, tmp_path):
    meter, other = PlotDevice("meter-w"), FakeDevice("meter-x")
    port = serving_gateway(site, '[web]\nlisten = "127.0.0.1:%(port)d"\n', [meter, other])
    n = 40
    _publish(site.broker_url, [(meter.topic, meter.next()) for _ in range(n)] + [(other.topic, other.next())])
    base = "http://127.0.0.1:%d/" % port

    query = "?" + urllib.parse.urlencode({"device": "meter-w"})

    def page():
        with urllib.request.urlopen(base + query, timeout=30) as r:
            return r.headers, r.read().decode()
    wait_until(lambda: "(%d points)" % n in (_try(page) or ({}, ""))[1], START_S, interval=0.5,
               what="the page plotting the device's %d readings" % n)
    headers, html_text = page()
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in \
        headers["Content-Security-Policy"]
    assert "<script" not in html_text and "&lt;script&gt;" in html_text

    url = base + query
    dom = chromium("--dump-dom", url, tmp=str(tmp_path / "chromium-dom"))
    assert "meter-w" in dom and "meter-x" in dom, dom[:2000]
    assert "<svg" in dom and "<polyline" in dom, dom[:2000]
    assert "<script" not in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert "&lt;script&gt;" in dom  # the hostile name is shown, as text

    # a hostile query value is shown as text, not run
    evil = base + "?" + urllib.parse.urlencode({"device": HOSTILE})
    assert "<script" not in chromium("--dump-dom", evil, tmp=str(tmp_path / "chromium-evil"))

    shot = str(tmp_path / "status.png")
    chromium("--screenshot=%s" % shot, "--window-size=1200,900", url, tmp=str(tmp_path / "chromium-shot"))
    with open(shot, "rb") as f:
        img = Image.open(io.BytesIO(f.read())).convert("RGB")
    assert img.size == (1200, 900)
    counts = dict((colour, k) for k, colour in img.getcolors(maxcolors=1 << 24))
    total = img.size[0] * img.size[1]
    ink = 1 - counts.get((255, 255, 255), 0) / total
    print("status page screenshot: %d colours, %.1f %% not white; %d bytes of DOM" % (len(counts), 100 * ink, len(dom)))
    assert len(counts) >= 16, "the screenshot looks blank"
    assert ink >= 0.02, "the screenshot is nearly all white"
    assert counts.get((0x1F, 0x5F, 0xBF), 0) > 100, "the plot's line is not on the screenshot"
    os.remove(shot)

#!/usr/bin/env python3
"""Opens a page in headless Chromium at an exact viewport (the DevTools protocol over
--remote-debugging-pipe: no WebSocket library needed), waits until a JavaScript
condition holds, then writes the page's layout (JSON), its DOM and a PNG screenshot.

--window-size alone does not give a phone's viewport: headless windows are at
least 500 px wide and lose the height of the browser's frame; device metrics
emulation gives the page exactly WIDTHxHEIGHT, as a phone would.

usage: spectator_cdp.py CHROMIUM URL WIDTH HEIGHT OUT_PREFIX [WAIT_JS] [TIMEOUT_S]
writes OUT_PREFIX.png, OUT_PREFIX.html and OUT_PREFIX.json; exit 1 when the page
does not load or WAIT_JS stays false for TIMEOUT_S seconds (default 30).
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

LAYOUT_JS = """JSON.stringify({
  innerWidth: innerWidth, innerHeight: innerHeight,
  scrollWidth: document.documentElement.scrollWidth,
  tableTop: document.getElementById("table") ? document.getElementById("table").getBoundingClientRect().top + scrollY : null,
  widest: Array.from(document.querySelectorAll("body *")).reduce((m, e) => Math.max(m, e.getBoundingClientRect().right), 0)
})"""


class Browser:
    def __init__(self, chromium, profile, log_path):
        # Chromium reads commands from fd 3 and writes replies to fd 4, each a JSON text ending in NUL.
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"]

        def child_fds():
            # Fresh copies above every open fd first, so that neither target clobbers the other's source.
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)  # inheritable
            os.dup2(w, 4)

        self.proc = subprocess.Popen(args, preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=open(log_path, "w"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe (during %s)" % method)
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    if len(sys.argv) < 6:
        print(__doc__)
        return 2
    chromium, url, width, height, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    wait_js = sys.argv[6] if len(sys.argv) > 6 else "true"
    timeout_s = float(sys.argv[7]) if len(sys.argv) > 7 else 30.0
    profile = tempfile.mkdtemp(prefix="mnemos-cdp-")
    b = Browser(chromium, profile, out + ".chromium.log")
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}, sid)
        b.call("Page.enable", {}, sid)
        b.call("Page.navigate", {"url": url}, sid)
        deadline = time.monotonic() + timeout_s
        ready = False
        while time.monotonic() < deadline:
            r = b.call("Runtime.evaluate", {"expression": "document.readyState === 'complete' && !!(%s)" % wait_js,
                                            "returnByValue": True}, sid)
            if r.get("result", {}).get("value") is True:
                ready = True
                break
            time.sleep(0.2)
        layout = json.loads(b.call("Runtime.evaluate", {"expression": LAYOUT_JS, "returnByValue": True},
                                   sid)["result"]["value"])
        layout["ready"] = ready
        dom = b.call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML", "returnByValue": True},
                     sid)["result"]["value"]
        png = b.call("Page.captureScreenshot", {"format": "png"}, sid)["data"]
        with open(out + ".png", "wb") as f:
            f.write(base64.b64decode(png))
        with open(out + ".html", "w", encoding="utf-8") as f:
            f.write("<!doctype html>\n" + dom)
        with open(out + ".json", "w") as f:
            json.dump(layout, f)
        if not ready:
            print("FAIL: %s at %dx%d: the page did not reach %s in %g s" % (url, width, height, wait_js, timeout_s))
            return 1
        return 0
    finally:
        b.close()
        subprocess.run(["rm", "-rf", profile])


if __name__ == "__main__":
    sys.exit(main())

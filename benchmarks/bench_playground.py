"""Benchmark: is the playground fast enough to feel live, in a real browser?

Two measures, in Debian's Chromium driven by Playwright (the page, the WebSocket and the
server's training all included):

* ``2-16-16-1 play``: a 2-16-16-1 network (tanh, sigmoid output) on the moons, mini-batches of
  16, one update per frame, played for a few seconds: updates drawn per second, each with its
  cost curve, decision boundary and network. Target: at least 30 per second.
* ``64-16-4 step``: the digits 0-3 with a 64-16-4 network (ReLU, softmax), backpropagation shown
  on the drawing: the time from asking for one update to the next animation frame after its
  network and backprop drawing. Target: under 100 ms (the median of the runs).

Usage::

    python benchmarks/bench_playground.py            # about 30 seconds
    python benchmarks/bench_playground.py --seconds 10 --steps 50

The machine's load changes both numbers: quote the load average printed with them. On a
shared machine the work each frame costs says more: the server's CPU time (the update, the
views, the JSON and the WebSocket: the server process's user + system time) and the page's busy
time (the wall
time of the renderer main thread's tasks, from Chromium's performance metrics; a load inflates
it too, so it is an upper bound). With two requests in flight the two overlap, so on two idle
cores a frame takes about the larger of the two: 1000 / max(server, page) frames per second is
printed as the "work-bound estimate".
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

STEP_TIMES = """async (n) => {
  const s = window.playground, times = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise((done) => {
      s.onDrawn = done;
      send({ type: "step", n: 1, views: ["network"] });
    });
    await new Promise((done) => requestAnimationFrame(() => done()));
    times.push(performance.now() - t);
  }
  s.onDrawn = null;
  return times;
}"""


def _configure(page, settings: dict, timeout: float = 120_000) -> None:
    page.evaluate("(s) => { writeSettings(Object.assign(readSettings(), s)); configure(); }",
                  settings)  # fmt: skip
    page.wait_for_function(
        f"window.playground.setup.settings.data === {settings['data']!r}"
        " && window.playground.inflight === 0", timeout=timeout,
    )  # fmt: skip


def _busy(cdp) -> float:
    """Seconds the page's renderer main thread has been busy (Chromium's TaskDuration)."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "TaskDuration")


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to play")
    parser.add_argument("--steps", type=int, default=40, help="single updates of the digits")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("Chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    # The server in its own process, as `descend playground` runs it (in this one, Playwright's
    # own event loop would compete with it for the interpreter).
    server = subprocess.Popen(
        [sys.executable, "-m", "descend", "playground", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = server.stdout.readline().split("open ")[1].split()[0]
    results = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_function("window.playground.setup !== null")
            _configure(page, {"data": "digits:0-3", "hidden": [16], "activation": "relu",
                              "optimizer": "gd", "lr": 0.2, "batch": 32})  # fmt: skip
            page.check("#show-grads")
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.evaluate(STEP_TIMES, 5)  # warm up
            busy, served = _busy(cdp), _cpu_seconds(server.pid)
            times = page.evaluate(STEP_TIMES, args.steps)
            page_ms = 1000 * (_busy(cdp) - busy) / len(times)
            server_ms = 1000 * (_cpu_seconds(server.pid) - served) / len(times)
            median = statistics.median(times)
            results.append(("64-16-4 one update + network/backprop drawing, ms (median)",
                            f"{median:.1f}", "< 100", median < 100,
                            f"p90 {sorted(times)[int(0.9 * len(times))]:.1f} ms over "
                            f"{len(times)} updates"))  # fmt: skip
            total = server_ms + page_ms
            results.append(("64-16-4 one update, work (server CPU + page busy), ms",
                            f"{total:.1f}", "< 100", total < 100, f"server {server_ms:.1f} ms, "
                            f"page {page_ms:.1f} ms"))  # fmt: skip
            _configure(page, {"data": "moons", "hidden": [16, 16], "activation": "tanh",
                              "optimizer": "gd", "lr": 0.3, "batch": 16})  # fmt: skip
            page.uncheck("#show-grads")
            page.select_option("#speed", "1")
            before = page.evaluate("[window.playground.drawn, window.playground.frame.updates]")
            busy, served = _busy(cdp), _cpu_seconds(server.pid)
            page.click("#play")
            page.wait_for_timeout(args.seconds * 1000)
            page.click("#play")
            after = page.evaluate("[window.playground.drawn, window.playground.frame.updates]")
            drawn, updates = after[0] - before[0], after[1] - before[1]
            page_ms = 1000 * (_busy(cdp) - busy) / max(drawn, 1)
            server_ms = 1000 * (_cpu_seconds(server.pid) - served) / max(drawn, 1)
            rate = drawn / args.seconds
            results.append(("2-16-16-1 play, updates drawn per second", f"{rate:.1f}", ">= 30",
                            rate >= 30, f"{updates} updates in {args.seconds:g} s"))  # fmt: skip
            bound = 1000 / max(page_ms, server_ms)
            results.append(("2-16-16-1 play, work-bound estimate (frames/s)", f"{bound:.0f}",
                            ">= 30", bound >= 30, f"server {server_ms:.1f} ms CPU, page "
                            f"{page_ms:.1f} ms busy a frame"))  # fmt: skip

            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"{'measure':58} {'value':>8} {'target':>7}  result  notes")
    for name, value, target, ok, note in results:
        print(f"{name:58} {value:>8} {target:>7}  {'PASS' if ok else 'MISS':6}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

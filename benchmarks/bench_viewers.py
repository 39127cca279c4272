"""The other graph viewers as benchmark columns (issue 12, goal 5): page load to rendered graph.

    python benchmarks/bench_viewers.py [--repeat 3] [--models a.pb,b.pb] [--viewers ...]
                                       [--timeout 120] [--out FILE] [--append]
                                       [--shots DIR]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: selenium, netron,
ai-edge-model-explorer, tensorboard) and Debian's ``chromium`` and ``chromium-driver``. If
Chromium, its driver or Selenium is missing the script says so in one line and exits 0; a
missing viewer is skipped with a one-line note.

The same model files are opened by:

- **ours**: ``surgeon-gui MODEL`` as a whole process (offscreen Qt): spawn to the model's view
  laid out and painted once, then exit (``FIRST_VIEW`` of ``bench_startup.py``, the same code
  path as ``surgeon-gui MODEL --screenshot OUT.png``). Python, Qt and the window start-up are
  included.
- **Model Explorer** (``ai-edge-model-explorer``): its server started without a model; the
  timed page is ``/?data={"models":[{"url": MODEL, "adapterId": "builtin_graphdef"}]}`` (the
  default adapter for ``.pb`` is the SavedModel one, which rejects a GraphDef). The server
  converts the file during the timed page load.
- **Netron** (``netron``): ``netron --host 127.0.0.1 MODEL``; the page parses the file in the
  browser. The "cookie consent" dialog is pre-answered by setting Netron's ``consent`` cookie.
- **TensorBoard** (``tensorboard``): a logdir holding the GraphDef in an event file
  (``Event.graph_def``); the timed page is ``/#graphs&run=.``. Before timing, the script waits
  until the graphs plugin lists the run (TensorBoard reads the logdir in the background).

Theirs is timed from ``driver.get(url)`` (page load) in headless Chromium to the graph being
rendered; server start-up is not counted (it is reported apart). How "rendered" is detected:
a per-viewer *signature* is polled every 0.1 s; the graph counts as rendered when the signature
shows a graph and then stays unchanged for 1.5 s; the time reported is when that final signature
first appeared (the 1.5 s of waiting is not counted).

- Model Explorer (WebGL): a ``webgl-renderer`` element with a ``canvas`` of non-zero size, no
  ``mat-spinner``/progress bar left in the graph panel, and the number of non-white pixels in a
  screenshot of the renderer element (the canvas has been drawn); signature = that pixel count.
- Netron (SVG): ``svg#canvas`` inside ``#target``; signature = number of ``g.node`` elements
  and the rounded bounding box of the canvas's contents (changes once the layout is applied),
  and the body no longer in its ``spinner`` state.
- TensorBoard (SVG inside Polymer shadow DOM): signature = the number of ``g.node`` elements
  found by walking every shadow root, with the scene's ``svg`` present and its bounding box.

Every wait is bounded: each attempt at most ``--timeout`` seconds (120 s; a timeout is a result
and is reported as one), server start-up at most 120 s. Servers listen on 127.0.0.1 only and are
killed by their process-group id at the end (they are started in their own session). Chromium
resolves every host other than 127.0.0.1 to nothing (``--host-resolver-rules``), so no viewer
reaches the network (Netron's telemetry, web fonts). After a timed-out attempt the browser is
restarted (the page may still be computing, or its tab crashed: Netron on the 10.7k graph).

Each browser is warm: one untimed load per viewer and model comes first, so the browser cache
and the viewers' own caches are as a user's second visit would find them (our process likewise
runs with a warm file cache and compiled bytecode). If that load times out, the timeout is the
viewer's result for the model and it is not tried again. Medians over ``--repeat``; one
repetition runs every column one after the other, so the ratios compare the same load.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_startup import FIRST_VIEW, load_average, run_measured

RESULTS = HERE / "results_viewers.md"
DEFAULT_MODELS = [ROOT / "resources/examples/mobilenet_v2_96.pb",
                  ROOT / "resources/examples/tf1_cond_bn_dropout.pb",
                  HERE / "_models/tf1_cond_bn_big.pb",
                  HERE / "_models/nasnet_large.pb"]
VIEWERS = ("model-explorer", "netron", "tensorboard")
VIEWER_NAMES = {"model-explorer": "Model Explorer", "netron": "Netron",
                "tensorboard": "TensorBoard"}
VIEWER_MODULES = {"model-explorer": "model_explorer", "netron": "netron",
                  "tensorboard": "tensorboard"}
POLL = 0.1
STABLE = 1.5
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, deadline: float, ok=lambda body: True) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if ok(r.read()):
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


class Server:
    """A viewer's server in its own session, killed by its process-group id."""

    def __init__(self, argv: list[str], log: Path):
        self.log = open(log, "wb")  # noqa: SIM115 -- closed in stop(), after the server
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self.log.close()


# --- what "rendered" means, per viewer --------------------------------------------------------

NETRON_JS = """
const c = document.getElementById('canvas');
if (!c || document.body.classList.contains('spinner')) return null;
const n = c.querySelectorAll('g.node').length;
if (!n) return null;
let b = null;
try { const r = c.getBBox(); b = [Math.round(r.width), Math.round(r.height)]; } catch (e) {}
return JSON.stringify([n, b]);
"""

TENSORBOARD_JS = """
let nodes = 0, svg = null;
function walk(root) {
  for (const e of root.querySelectorAll('*')) {
    if (e.tagName === 'g' && e.classList.contains('node')) nodes++;
    if (e.tagName === 'svg' && e.id === 'svg') svg = e;
    if (e.shadowRoot) walk(e.shadowRoot);
  }
}
walk(document);
if (!nodes || !svg) return null;
let b = null;
try { const r = svg.querySelector('g').getBBox(); b = [Math.round(r.width), Math.round(r.height)]; }
catch (e) {}
return JSON.stringify([nodes, b]);
"""

MODEL_EXPLORER_JS = """
const r = document.querySelector('webgl-renderer');
if (!r) return null;
const c = r.querySelector('canvas');
if (!c || !c.width || !c.height) return null;
const panel = document.querySelector('graph-panel') || document;
if (panel.querySelector('mat-spinner, mat-progress-spinner, mat-progress-bar')) return null;
return 'ready';
"""


def _nonwhite_pixels(png: bytes) -> int:
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert("L")
    hist = img.histogram()
    return sum(hist[:245])


def signature(driver, viewer: str):
    if viewer == "netron":
        return driver.execute_script(NETRON_JS)
    if viewer == "tensorboard":
        return driver.execute_script(TENSORBOARD_JS)
    if driver.execute_script(MODEL_EXPLORER_JS) is None:
        return None
    from selenium.webdriver.common.by import By
    el = driver.find_element(By.CSS_SELECTOR, "webgl-renderer")
    drawn = _nonwhite_pixels(el.screenshot_as_png)
    return drawn if drawn > 500 else None


def time_render(browser: Browser, url: str, viewer: str,
                timeout: float) -> tuple[str, float, object]:
    """Load url; return ("ok", seconds, signature) or ("timeout", timeout, last signature).
    After a timeout the browser is restarted (the page may still be busy, or its tab crashed)."""
    status, secs, sig = _time_render(browser, url, viewer, timeout)
    if status != "ok":
        browser.restart()
    return status, secs, sig


def _time_render(browser: Browser, url: str, viewer: str, timeout: float):
    from selenium.common.exceptions import WebDriverException
    driver = browser.prepare(viewer, url)
    t0 = time.perf_counter()
    deadline = t0 + timeout
    try:
        driver.set_page_load_timeout(timeout)
        driver.get(url)
    except WebDriverException as e:  # the page load itself timed out
        return "timeout", timeout, type(e).__name__
    last, since = None, None
    while time.perf_counter() < deadline:
        try:
            sig = signature(driver, viewer)
        except WebDriverException:  # the page replaced its DOM under the probe
            sig = None
        now = time.perf_counter()
        if sig != last:
            last, since = sig, now
        elif sig is not None and now - since >= STABLE:
            return "ok", since - t0, sig
        time.sleep(POLL)
    return "timeout", timeout, last


# --- the viewers ------------------------------------------------------------------------------

def start_viewer(viewer: str, model: Path, tmp: Path, deadline: float):
    """Start the viewer's server for model; return (server, url, start-up seconds) or a note."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / f"{viewer}-{model.stem}.log"
    t0 = time.perf_counter()
    if viewer == "netron":
        srv = Server([str(BIN / "netron"), "--host", "127.0.0.1", "-p", str(port),
                      "--verbosity", "quiet", str(model)], log)
        ok = wait_http(base + "/", deadline)
        url = base + "/"
    elif viewer == "model-explorer":
        srv = Server([str(BIN / "model-explorer"), "--host", "127.0.0.1", "--port", str(port),
                      "--no_open_in_browser", "--skip_health_check"], log)
        ok = wait_http(base + "/", deadline)
        data = {"models": [{"url": str(model), "adapterId": "builtin_graphdef"}]}
        url = base + "/?data=" + urllib.parse.quote(json.dumps(data))
    else:
        logdir = tmp / f"tb-{model.stem}"
        logdir.mkdir(exist_ok=True)
        write_graph_event(model, logdir)
        srv = Server([str(BIN / "tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1",
                      "--port", str(port)], log)
        ok = wait_http(base + "/data/plugin/graphs/info", deadline,
                       lambda body: b'"."' in body or b'"run_graph": true' in body)
        url = base + "/#graphs&run=."
    if not ok:
        tail = log.read_bytes()[-300:].decode(errors="replace").strip().splitlines()
        srv.stop()
        return None, f"server did not start: {tail[-1] if tail else 'no output'}", 0.0
    return srv, url, time.perf_counter() - t0


def write_graph_event(model: Path, logdir: Path) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    w = EventFileWriter(str(logdir))
    w.add_event(Event(wall_time=time.time(), step=0, graph_def=model.read_bytes()))
    w.close()


class Browser:
    """Headless Chromium driven by Selenium; restarted after a timed-out attempt."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.d = make_driver(timeout)

    def restart(self) -> None:
        self.quit()
        self.d = make_driver(self.timeout)

    def quit(self) -> None:
        try:
            self.d.quit()
        except Exception as e:  # noqa: BLE001 -- a crashed browser; its driver is gone anyway
            print(f"bench_viewers: browser quit: {type(e).__name__}", file=sys.stderr)

    def prepare(self, viewer: str, url: str):
        """A blank page before the timed load; Netron's consent dialog pre-answered."""
        from selenium.common.exceptions import WebDriverException
        try:
            self.d.get("about:blank")
        except WebDriverException:  # the tab crashed in an earlier attempt
            self.restart()
        if viewer == "netron":
            self.d.get(url + "favicon.ico")
            self.d.add_cookie({"name": "consent", "value": str(int(time.time() * 1000))})
            self.d.get("about:blank")
        return self.d


def make_driver(timeout: float):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    o = Options()
    o.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1400,900", "--no-first-run", "--disable-extensions",
              "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        o.add_argument(a)
    d = webdriver.Chrome(options=o, service=Service(shutil.which("chromedriver")))
    d.set_page_load_timeout(timeout)
    d.set_script_timeout(30)
    return d


def missing_requirements() -> str | None:
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        return ("bench_viewers: Chromium or chromedriver not found "
                "(apt-get install -y chromium chromium-driver); nothing measured.")
    try:
        import PIL  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as e:
        return f"bench_viewers: {e.name} not installed (pip install -e '.[bench]'); nothing measured."
    return None


def viewer_available(viewer: str) -> bool:
    import importlib.util
    exe = {"model-explorer": "model-explorer", "netron": "netron",
           "tensorboard": "tensorboard"}[viewer]
    return (importlib.util.find_spec(VIEWER_MODULES[viewer]) is not None
            and (BIN / exe).exists())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--models", help="comma-separated paths (default: the bundled two, plus "
                    "benchmarks/_models/tf1_cond_bn_big.pb and nasnet_large.pb if made)")
    ap.add_argument("--viewers", default=",".join(VIEWERS))
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--append", action="store_true", help="add this run's table to --out")
    ap.add_argument("--shots", type=Path, help="save a screenshot of each viewer's first timed "
                    "load here (to check by eye that the graph was there)")
    args = ap.parse_args(argv)
    note = missing_requirements()
    if note:
        print(note)
        return 0
    viewers = []
    for v in args.viewers.split(","):
        if viewer_available(v):
            viewers.append(v)
        else:
            print(f"bench_viewers: {VIEWER_NAMES[v]} ({VIEWER_MODULES[v]}) not installed; "
                  "column skipped.")
    if not viewers:
        print("bench_viewers: no viewer installed (pip install -e '.[bench]'); nothing measured.")
        return 0
    if args.models:
        models = [Path(m).resolve() for m in args.models.split(",")]
    else:
        models = [m for m in DEFAULT_MODELS if m.exists()]
    loads = [load_average()]
    results: dict[tuple[str, str], list] = {}
    startup: dict[tuple[str, str], float] = {}
    notes: list[str] = []
    browser = Browser(args.timeout)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_viewers_") as tmpname:
            tmp = Path(tmpname)
            for model in models:
                servers = {}
                try:
                    for v in viewers:
                        srv, url, secs = start_viewer(v, model, tmp,
                                                      time.monotonic() + args.timeout)
                        if srv is None:
                            notes.append(f"{VIEWER_NAMES[v]} on {model.name}: {url}")
                            continue
                        servers[v] = (srv, url)
                        startup[(v, model.name)] = secs
                        # warm-up, untimed
                        st, secs, sig = time_render(browser, url, v, args.timeout)
                        print(f"{model.name} {v} warm-up: {st} {secs:.2f} s {sig}",
                              file=sys.stderr)
                        if st != "ok":  # a timeout is the result; do not wait again
                            results[(v, model.name)] = [(st, secs)]
                            del servers[v]
                            srv.stop()
                    run_measured(["-c", FIRST_VIEW, str(model)], ROOT)  # warm-up
                    for rep in range(args.repeat):
                        r = run_measured(["-c", FIRST_VIEW, str(model)], ROOT)
                        results.setdefault(("ours", model.name), []).append(("ok", r["wall"]))
                        print(f"{model.name} ours: {r['wall']:.2f} s", file=sys.stderr)
                        for v, (srv, url) in servers.items():
                            st, secs, sig = time_render(browser, url, v, args.timeout)
                            results.setdefault((v, model.name), []).append((st, secs))
                            print(f"{model.name} {v}: {st} {secs:.2f} s {sig}", file=sys.stderr)
                            if args.shots and rep == 0 and st == "ok":
                                args.shots.mkdir(parents=True, exist_ok=True)
                                browser.d.save_screenshot(str(args.shots / f"{v}-{model.stem}.png"))
                        loads.append(load_average())
                finally:
                    for srv, _ in servers.values():
                        srv.stop()
    finally:
        browser.quit()
    write(args, models, viewers, results, startup, loads, notes)
    return 0


def _cell(runs: list, ours: float | None) -> str:
    if not runs:
        return "—"
    oks = [s for st, s in runs if st == "ok"]
    timeouts = len(runs) - len(oks)
    if not oks:
        return f"timeout (>{runs[0][1]:.0f} s)"
    med = statistics.median(oks)
    text = f"{med:.2f} s"
    if ours:
        text += f" ({med / ours:.2f}×)"
    if timeouts:
        text += f", {timeouts} of {len(runs)} timed out"
    return text


def write(args, models, viewers, results, startup, loads, notes) -> None:
    import platform
    cols = ["ours (whole process)"] + [f"{VIEWER_NAMES[v]} (page load)" for v in viewers]
    lines = [] if args.append else [
        "# The other viewers: page load to rendered graph (issue 12, goal 5)", ""]
    lines += [
        f"## {', '.join(m.name for m in models)}", "",
        (f"Made by `benchmarks/bench_viewers.py --repeat {args.repeat}`. Machine: "
         f"{platform.machine()}, {os.cpu_count()} cores shared with the rest of the team's "
         f"work; headless Chromium. Load average (1/5/15 min): {loads[0]} at the start, "
         f"then {', '.join(loads[1:])} after each repetition."), "",
        ("Median seconds (in brackets: ratio of the medians to ours; each repetition runs every "
         "column back to back, so they saw the same load). Ours is "
         "the whole process `surgeon-gui MODEL` (spawn to the view painted); theirs is page "
         "load to the rendered graph, without their server's start-up (given below). A "
         "timeout is the attempt hitting the cap. How \"rendered\" is detected: see the "
         "script's docstring (repeated at the end)."), "",
        "| model | nodes | " + " | ".join(cols) + " |",
        "|---|---:|" + "---:|" * len(cols)]
    for m in models:
        ours_runs = [s for st, s in results.get(("ours", m.name), []) if st == "ok"]
        ours = statistics.median(ours_runs) if ours_runs else None
        nodes = _count_nodes(m)
        row = [m.name, str(nodes), _cell(results.get(("ours", m.name), []), None)]
        row += [_cell(results.get((v, m.name), []), ours) for v in viewers]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Server start-up (not counted above):", ""]
    for (v, name), secs in startup.items():
        lines.append(f"- {VIEWER_NAMES[v]}, {name}: {secs:.2f} s")
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    doc = __doc__.split("Theirs is timed", 1)[1].split("Every wait", 1)[0]
    howto = "\n## How \"rendered\" is detected\n\nTheirs is timed" + doc.rstrip() + "\n"
    if args.append and args.out.exists():
        old = args.out.read_text()
        head, _, _ = old.partition(howto.lstrip("\n").split("\n", 1)[0])
        text = head.rstrip("\n") + "\n\n" + text
    args.out.write_text(text + howto)
    print("\n".join(lines))


def _count_nodes(model: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from surgeon_gui.core.model.protos import GraphDef
    gd = GraphDef()
    gd.ParseFromString(model.read_bytes())
    return len(gd.node)


if __name__ == "__main__":
    sys.exit(main())

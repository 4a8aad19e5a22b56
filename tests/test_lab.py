"""The live TrainingDashboard in a real browser: JupyterLab on 127.0.0.1, the fixture notebook run in headless Chromium.

A module-scoped fixture starts JupyterLab (the same Python as pytest, KERAS_BACKEND passed through to the kernel)
on a free port of 127.0.0.1 with a temporary root folder holding a copy of tests/fixtures/lab_dashboard.ipynb and
its own config, data, runtime, settings and workspace folders, so that nothing in ~ is read or written. Debian's
chromium, driven by Playwright, opens the notebook and runs all its cells through `window.jupyterapp`; the fixture
trains a small VAE on the digits for 10 epochs with the dashboard displayed. A MutationObserver records every new
source of the dashboard's images (hashed, so that equal pictures count once) and every text of its status label,
with the time it appeared. The tests then check that the samples and the curves each showed at least 5 different
pictures while training went on (after the first epoch began and before the last one began, by the kernel's
clock, which the fixture prints), that the status changed as often, that no cell failed, that the kernel was pytest's Python on the chosen backend, that not one
request left 127.0.0.1 (every request is routed: others are aborted and counted), and that dragging the replay
slider brings back an earlier frame.
Artefacts go to test-artifacts/lab/: dashboard.png and replay.png (screenshots), server.log, console.log and
executed.ipynb (the notebook as the browser saw it); failures print the tails of the log and the console.
Select these tests with `pytest -m lab`; they skip only where /usr/bin/chromium is missing (.ci/run installs it).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "lab_dashboard.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "lab"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
MIN_FRAMES = 5  # distinct pictures each panel must show during training (the fixture trains 10 epochs)
RUN_TIMEOUT_S = 240  # generous: a loaded 2-core machine; the run takes well under a minute when idle

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does as root)")]


# ------------------------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_json(path: Path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))


def isolated_jupyter(base: Path, port: int) -> dict:
    """Folders and files under `base` for a throw-away JupyterLab on 127.0.0.1:`port`; the environment that uses them.

    The server config binds to 127.0.0.1 with an empty token (xsrf checks off: nothing else can reach it), exposes
    `window.jupyterapp`, and fetches no news and no update notices; the `python3` kernel is pytest's own Python with
    KERAS_BACKEND set; JupyterLab's settings turn off news and attach every notebook cell to the page."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    for name, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                      ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")]:
        (base / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(base / sub)
    # the widget manager's front end lives in the data folder of the prefix that holds jupyterlab_widgets, which a
    # virtual environment made with --system-site-packages does not search by itself
    import jupyterlab_widgets
    widgets_prefix = Path(jupyterlab_widgets.__file__).resolve().parents[4] / "share" / "jupyter"
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(widgets_prefix), os.environ.get("JUPYTER_PATH")]))
    write_json(base / "config" / "jupyter_server_config.json", {
        "ServerApp": {"ip": "127.0.0.1", "port": port, "port_retries": 0, "open_browser": False,
                      "allow_root": True, "root_dir": str(base / "root"), "disable_check_xsrf": True,
                      "terminals_enabled": False},
        "IdentityProvider": {"token": ""},
        "LabApp": {"expose_app_in_browser": True, "news_url": None,
                   "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate"},
    })
    write_json(base / "data" / "kernels" / "python3" / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (pytest's)", "language": "python",
        "env": {"KERAS_BACKEND": BACKEND, "KERAS_HOME": str(base / "keras"), "TF_CPP_MIN_LOG_LEVEL": "2"},
    })
    settings = base / "settings" / "@jupyterlab"
    write_json(settings / "apputils-extension" / "notification.jupyterlab-settings",
               {"fetchNews": "false", "checkForUpdates": False})
    write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})
    return env


@dataclass
class Lab:
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def wait_until_up(lab: Lab, timeout: float = 120):
    "Poll the server's status endpoint until it answers; fail with its log if it dies or does not answer in time."
    start = time.time()
    while time.time() - start < timeout:
        if lab.process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {lab.process.returncode}:\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(lab.url + "api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer within {timeout} s:\n{lab.log_tail()}")


def stop(process: subprocess.Popen):
    "Stop the jupyter-lab process by its own PID (it shuts its kernels down), then anything left in its group."
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group is this server's own (start_new_session): a stray kernel
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "JupyterLab serving a copy of the fixture notebook, isolated from ~, stopped at the end of the module."
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    base, port = tmp_path_factory.mktemp("lab"), free_port()
    env = isolated_jupyter(base, port)
    (base / "root").mkdir()
    shutil.copy(FIXTURE, base / "root" / FIXTURE.name)
    log = ARTIFACTS / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "jupyterlab"], cwd=base / "root", env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}/", process, log)
    try:
        wait_until_up(lab)
        yield lab
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    "Headless Chromium; its crash-report and cache folders in a temporary folder, not in ~."
    from playwright.sync_api import sync_playwright
    home = tmp_path_factory.mktemp("chromium")
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
        yield browser
        browser.close()


# --------------------------------------------------------------------------------------- the browser side
# Installed once the notebook is open: records each new picture (SHA-256 of the image bytes behind its blob: URL)
# of the samples and curves panels and each new status text, with the wall-clock time (ms) at which it appeared.
OBSERVE = """() => {
  const record = window.__mmgen = {events: [], sources: 0, hashErrors: [], done: null, result: null};
  const seen = new Set();
  const now = () => performance.timeOrigin + performance.now();
  const images = selector => [...document.querySelectorAll(selector)]
      .flatMap(el => el.tagName === 'IMG' ? [el] : [...el.querySelectorAll('img')]);
  async function hash(kind, src, t) {
    try {
      const bytes = await (await fetch(src)).arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      const value = [...digest.slice(0, 8)].map(b => b.toString(16).padStart(2, '0')).join('');
      record.events.push({kind, t, value, bytes: bytes.byteLength});
    } catch (error) { record.hashErrors.push(kind + ': ' + error); }
  }
  function scan() {
    const t = now();
    for (const kind of ['samples', 'curves'])
      for (const img of images('.mmgen-' + kind))
        if (img.src && !seen.has(img.src)) { seen.add(img.src); record.sources += 1; hash(kind, img.src, t); }
    for (const el of document.querySelectorAll('.mmgen-status'))
      if (el.textContent !== record.status) {
        record.status = el.textContent;
        record.events.push({kind: 'status', t, value: el.textContent, bytes: el.textContent.length});
      }
  }
  new MutationObserver(scan).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                     attributes: true, attributeFilter: ['src']});
  scan();
}"""

NOTEBOOK_READY = """name => {
  const panel = window.jupyterapp?.shell.currentWidget;
  return panel?.context?.path === name && panel.content.widgets.length > 0
         && panel.sessionContext.session?.kernel?.status === 'idle';
}"""

RUN_ALL = """() => { __mmgen.start = Date.now(); jupyterapp.commands.execute('notebook:run-all-cells').then(
  ok => { __mmgen.result = ok; __mmgen.done = Date.now(); },
  error => { __mmgen.result = String(error); __mmgen.done = Date.now(); }); }"""

SAMPLES_HASH = """async () => {
  const el = document.querySelector('.mmgen-samples');
  const img = el && (el.tagName === 'IMG' ? el : el.querySelector('img'));
  if (!img || !img.src) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await (await fetch(img.src)).arrayBuffer()));
  return [...digest.slice(0, 8)].map(b => b.toString(16).padStart(2, '0')).join('');
}"""


@dataclass
class Run:
    "What the browser saw of one run of the fixture notebook."
    page: object
    lab: Lab
    record: dict = field(default_factory=dict)
    notebook: dict = field(default_factory=dict)
    external: list = field(default_factory=list)
    console: list = field(default_factory=list)

    def outputs(self, output_type: str | None = None) -> list:
        return [o for c in self.notebook.get("cells", []) for o in c.get("outputs", [])
                if output_type in (None, o.get("output_type"))]

    def text(self) -> str:
        "The notebook's text outputs (streams, plain-text results, error tracebacks)."
        parts = []
        for o in self.outputs():
            if o["output_type"] == "stream":
                parts.append("".join(o["text"]) if isinstance(o["text"], list) else o["text"])
            elif o["output_type"] == "error":
                parts.append("\n".join(o["traceback"]))
            else:
                plain = o.get("data", {}).get("text/plain", "")
                parts.append("".join(plain) if isinstance(plain, list) else plain)
        return "\n".join(parts)

    def epoch_starts(self) -> list:
        "The kernel's wall-clock times (ms) at which each epoch began, printed by the fixture's last cell."
        match = re.search(r"epoch starts: (\[.*\])", self.text())
        return [1000 * t for t in json.loads(match.group(1))] if match else []

    def during_training(self, kind: str) -> list:
        """The distinct values of one kind (samples, curves, status) that the browser saw while training went on:
        after the first epoch began and before the last one began, by the machine's clock; in order, empty pictures
        left out. A dashboard that only drew after training would have none."""
        starts = self.epoch_starts()
        values = []
        for e in sorted(self.record.get("events", []), key=lambda e: e["t"]):
            if (e["kind"] == kind and e["bytes"] and starts and starts[0] <= e["t"] < starts[-1]
                    and e["value"] not in values):
                values.append(e["value"])
        return values

    def diagnostics(self) -> str:
        return (f"--- notebook outputs\n{self.text()[-3000:]}\n--- browser console (last 40)\n"
                + "\n".join(self.console[-40:]) + f"\n--- server log\n{self.lab.log_tail()}")


def save_artifacts(run: Run):
    (ARTIFACTS / "console.log").write_text("\n".join(run.console))
    if run.notebook:
        write_json(ARTIFACTS / "executed.ipynb", run.notebook)
    write_json(ARTIFACTS / "events.json", run.record)


def open_page(browser, lab: Lab):
    "A browser context and a page in it whose every request is routed: to the server it goes on, else it is aborted."
    host = urlsplit(lab.url).netloc
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    run = Run(page=None, lab=lab)

    def route(r):
        parts = urlsplit(r.request.url)
        if parts.scheme in ("data", "blob", "about") or parts.netloc == host:
            r.continue_()
        else:
            run.external.append(r.request.url)
            r.abort()
    context.route("**/*", route)
    page = context.new_page()
    page.on("websocket", lambda ws: urlsplit(ws.url).netloc != host and run.external.append(ws.url))
    page.on("console", lambda m: run.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: run.console.append(f"pageerror: {e}"))
    run.page = page
    return context, run


@pytest.fixture(scope="module")
def run(lab, browser):
    "Open the notebook in a fresh workspace, run all cells, wait for the kernel to finish; keep the page open."
    context, run = open_page(browser, lab)
    page, start = run.page, time.time()
    try:
        page.goto(f"{lab.url}lab/tree/{FIXTURE.name}?reset", wait_until="load")
        try:
            page.wait_for_function(NOTEBOOK_READY, arg=FIXTURE.name, timeout=120_000, polling=250)
        except Exception as error:
            dialog = page.evaluate("() => document.querySelector('.jp-Dialog')?.innerText")
            pytest.fail(f"the notebook did not open with an idle kernel ({error.__class__.__name__}); "
                        f"dialog: {dialog!r}\n{run.diagnostics()}")
        opened = time.time() - start
        page.evaluate(OBSERVE)
        page.evaluate(RUN_ALL)
        try:
            page.wait_for_function("() => __mmgen.done !== null", timeout=RUN_TIMEOUT_S * 1000, polling=500)
        except Exception as error:
            run.notebook = page.evaluate("() => jupyterapp.shell.currentWidget.content.model.toJSON()")
            pytest.fail(f"run-all did not finish in {RUN_TIMEOUT_S} s ({error.__class__.__name__})\n"
                        f"{run.diagnostics()}")
        page.wait_for_timeout(500)  # let the last hashes settle
        run.record = page.evaluate("() => __mmgen")
        run.notebook = page.evaluate("() => jupyterapp.shell.currentWidget.content.model.toJSON()")
        page.locator(".mmgen-dashboard").first.evaluate("el => el.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
        print(f"lab: notebook open after {opened:.1f} s, run-all took "
              f"{(run.record['done'] - run.record['start']) / 1000:.1f} s; "
              f"{len(run.during_training('samples'))} sample frames, {len(run.during_training('curves'))} "
              f"curve frames, {len(run.during_training('status'))} status texts during training")
        yield run
    finally:
        save_artifacts(run)
        context.close()


# ------------------------------------------------------------------------------------------------ the tests
def test_kernel_is_pytests_python_on_the_chosen_backend(run):
    text = run.text()
    assert f"kernel python: {sys.executable}" in text, f"expected {sys.executable}\n{run.diagnostics()}"
    assert f"keras backend: {BACKEND}" in text, run.diagnostics()


def test_every_cell_ran_without_errors(run):
    assert run.record["result"] is True, f"run-all returned {run.record['result']!r}\n{run.diagnostics()}"
    errors = [f"{o['ename']}: {o['evalue']}" for o in run.outputs("error")]
    assert not errors, "\n".join(errors) + "\n" + run.diagnostics()
    code = [c for c in run.notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] for c in code), [c["execution_count"] for c in code]
    assert "finished 10 epochs" in run.text(), run.diagnostics()


def test_the_dashboard_is_rendered_by_the_widget_manager(run):
    counts = run.page.evaluate("""() => Object.fromEntries(['dashboard', 'status', 'curves', 'samples', 'replay']
        .map(k => [k, document.querySelectorAll('.jp-OutputArea .mmgen-' + k).length]))""")
    assert counts == {"dashboard": 1, "status": 1, "curves": 1, "samples": 1, "replay": 1}, \
        f"{counts}\n{run.diagnostics()}"
    assert not run.record["hashErrors"], run.record["hashErrors"]


@pytest.mark.parametrize("panel", ["samples", "curves"])
def test_the_picture_changes_while_training_goes_on(run, panel):
    frames, starts = run.during_training(panel), run.epoch_starts()
    assert len(starts) == 10, f"the fixture's epoch clock: {starts}\n{run.diagnostics()}"
    assert len(frames) >= MIN_FRAMES, (f"{panel}: {len(frames)} distinct pictures while training went on "
                                       f"(epochs began at {starts}; events: {run.record['events']})\n"
                                       f"{run.diagnostics()}")


def test_the_status_changes_while_training_goes_on(run):
    texts = run.during_training("status")
    assert len(texts) >= MIN_FRAMES, f"status texts while training went on: {texts}\n{run.diagnostics()}"


def test_no_request_left_the_machine(run):
    assert run.external == [], run.external


def test_dragging_the_replay_slider_shows_an_earlier_frame(run):
    events = sorted(run.record["events"], key=lambda e: e["t"])
    page, frames = run.page, [e["value"] for e in events if e["kind"] == "samples" and e["bytes"]]
    slider = page.locator(".jp-OutputArea .mmgen-replay").first
    handle, track = slider.locator(".noUi-handle").first, slider.locator(".noUi-base").first
    assert handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax"), \
        "after training the replay slider shows the last frame"
    final = page.evaluate(SAMPLES_HASH)
    assert final in frames, f"the picture after training {final} is none of those seen: {frames}"
    box, knob = track.bounding_box(), handle.bounding_box()
    page.mouse.move(knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 20, knob["y"] + knob["height"] / 2, steps=12)
    page.mouse.up()
    page.wait_for_function("h => h.getAttribute('aria-valuenow') === h.getAttribute('aria-valuemin')",
                           arg=handle.element_handle(), timeout=10_000)
    page.wait_for_function(f"async () => ({SAMPLES_HASH})().then(h => h !== {json.dumps(final)})",
                           timeout=20_000, polling=250)
    first = page.evaluate(SAMPLES_HASH)
    page.screenshot(path=str(ARTIFACTS / "replay.png"))
    assert first in frames and frames.index(first) < frames.index(final), \
        f"replayed {first}; after training {final}; seen in order {frames}"

"""Open a notebook in JupyterLab in a real (headless) browser, run every cell as a learner would, save it,
reopen it in a fresh browser session, and check what the learner sees both times.

    .venv/bin/python tools/lab_check.py                      # notebook 06, what `make lab-check` runs
    .venv/bin/python tools/lab_check.py --smoke              # the same as a smoke run (what CI runs)
    .venv/bin/python tools/lab_check.py notebooks/03_superres_gan.ipynb --timeout 1200

JupyterLab starts on a free loopback port, in a temporary folder holding a copy of the notebook (the
repository's copy is never saved over), with the environment ``make lab`` gives its kernels: this check sets no
``HELPERS_PROGRESS`` of its own, so a Makefile that turned the bars off for JupyterLab fails it. ``--smoke``
makes it a smoke run (``HELPERS_SMOKE=1``: every cell and fit, two batches per loader): the same bars,
tables and plots in a fraction of the time. Debian's ``chromium`` and ``chromium-driver`` drive it
through selenium. The checks, each printed with its count:

- progress bars were drawn while the cells ran (the ``<progress>`` elements ``helpers.progress`` draws, counted
  as they are added to the page; the most seen at once by polling is printed too);
- no "Error displaying widget" in any output, before or after reopening;
- no SEVERE message in the browser console, before or after reopening;
- no Python error (an error or stderr output) in any cell;
- no cell's outputs cut behind "Show more outputs" (a fit of any length is one output);
- the saved file holds no widget view whose state was not saved with it.

Exit status 0 when every check holds, 1 otherwise; 2 when the browser, its driver or selenium is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(folder: Path, port: int, token: str, smoke: bool) -> subprocess.Popen:
    # the environment `make lab` gives (HELPERS_PROGRESS as the Makefile leaves it: the bars' default, auto);
    # results records go to the check's own folder: runs/ keeps what `make test`'s notebooks wrote
    env = {**os.environ, "HELPERS_RUNS": str(folder.parent / "runs"), **({"HELPERS_SMOKE": "1"} if smoke else {})}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
           # a workspace of its own: JupyterLab would otherwise reopen the notebook an earlier check ran (a 404)
           f"--LabApp.workspaces_dir={folder.parent / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(folder.parent / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"JupyterLab did not start on port {port}; its log is {folder.parent / 'lab.log'}")


def browser(profile_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={profile_dir}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def wait_for(driver, script: str, timeout: float, what: str, every: float = 0.5, each=None):
    end = time.time() + timeout
    while time.time() < end:
        if each:
            each()
        if driver.execute_script(script):
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


NOTEBOOK_READY = """
const app = window.jupyterapp; if (!app) return false;
const w = app.shell.currentWidget; if (!w || !w.sessionContext || !w.content) return false;
const k = w.sessionContext.session && w.sessionContext.session.kernel;
return !!k && k.status === 'idle' && w.content.widgets.length > 0;"""
ALL_RAN = """
const w = window.jupyterapp.shell.currentWidget;
const k = w.sessionContext.session.kernel;
const code = w.content.widgets.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
return k.status === 'idle' && code.every(c => c.model.executionCount !== null) &&
       !document.body.innerText.includes('[*]');"""
# counts every <progress> element added to the page, however briefly it lives (a smoke run's bars last a moment)
COUNT_BARS = """
window.barsDrawn = 0;
new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes) if (n.nodeType === 1)
  window.barsDrawn += n.matches('progress') + n.querySelectorAll('progress').length;
}).observe(document.body, {childList: true, subtree: true});"""
PAGE_FACTS = """
const outs = document.querySelectorAll('.jp-OutputArea-output');
const text = document.body.innerText;
return {bars: document.querySelectorAll('.jp-OutputArea progress').length,
        widget_errors: (text.match(/Error displaying widget/g) || []).length,
        python_errors: document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
        show_more: (text.match(/Show more outputs/g) || []).length,
        outputs: outs.length};"""


def severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def check(nb: Path, timeout: float, smoke: bool = False) -> int:
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("lab_check needs selenium in this environment: pip install selenium", file=sys.stderr)
        return 2
    for tool in (CHROMIUM, DRIVER):
        if not Path(tool).exists():
            print(f"lab_check needs {tool}: apt-get install chromium chromium-driver", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="lab-check-"))
    folder = work / "notebooks"
    folder.mkdir()
    shutil.copy(nb, folder / nb.name)
    port, token = free_port(), os.urandom(8).hex()
    lab = start_lab(folder, port, token, smoke)
    url = f"http://127.0.0.1:{port}/lab/tree/{nb.name}?token={token}"
    facts: dict = {}
    try:
        # --- first session: run every cell, watching the bars
        driver = browser(work / "profile-1")
        try:
            driver.get(url)
            wait_for(driver, NOTEBOOK_READY, 120, "the notebook and its kernel")
            driver.execute_script(COUNT_BARS)
            start = time.time()
            driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            seen = {"max_bars": 0, "polls_with_bars": 0}

            def watch():
                n = driver.execute_script(PAGE_FACTS)["bars"]
                seen["max_bars"] = max(seen["max_bars"], n)
                seen["polls_with_bars"] += n > 0

            time.sleep(2)
            wait_for(driver, ALL_RAN, timeout, "every cell to run", each=watch)
            facts["run_seconds"] = round(time.time() - start, 1)
            facts["first"] = {**driver.execute_script(PAGE_FACTS), **seen, "severe": severe(driver),
                              "drawn": driver.execute_script("return window.barsDrawn")}
            driver.execute_script("window.jupyterapp.commands.execute('docmanager:save')")
            wait_for(driver, "return !window.jupyterapp.shell.currentWidget.context.model.dirty", 60, "the save")
        finally:
            driver.quit()
        # --- second session: reopen the saved notebook in a fresh browser
        driver = browser(work / "profile-2")
        try:
            driver.get(url)
            wait_for(driver, NOTEBOOK_READY, 120, "the saved notebook")
            time.sleep(3)  # let every output render
            facts["reopened"] = {**driver.execute_script(PAGE_FACTS), "severe": severe(driver)}
        finally:
            driver.quit()
    finally:
        lab.terminate()
        lab.wait(30)
    saved = json.loads((folder / nb.name).read_text())
    state = saved.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = set(state.get("state", {}))
    orphans = sum(1 for c in saved["cells"] for o in c.get("outputs", [])
                  if WIDGET_VIEW in o.get("data", {}) and o["data"][WIDGET_VIEW].get("model_id") not in models)
    shutil.rmtree(work, ignore_errors=True)
    first, again = facts["first"], facts["reopened"]
    results = [
        ("progress bars drawn while running", first["drawn"], first["drawn"] > 0),
        ("progress bars seen at once, polling every 0.5 s (most)", first["max_bars"], True),
        ('"Error displaying widget" after running', first["widget_errors"], first["widget_errors"] == 0),
        ('"Error displaying widget" after reopening', again["widget_errors"], again["widget_errors"] == 0),
        ("SEVERE console messages after running", len(first["severe"]), not first["severe"]),
        ("SEVERE console messages after reopening", len(again["severe"]), not again["severe"]),
        ("Python errors or stderr outputs", first["python_errors"], first["python_errors"] == 0),
        ('cells cut behind "Show more outputs"', first["show_more"], first["show_more"] == 0),
        ("widget views saved without their state", orphans, orphans == 0),
    ]
    print(f"lab check of {nb.name}{' (smoke run)' if smoke else ''}: every cell ran in {facts['run_seconds']} s in JupyterLab; "
          f"{first['outputs']} outputs, {again['outputs']} after reopening")
    for what, value, ok in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {value}")
    for msg in first["severe"] + again["severe"]:
        print(f"  SEVERE: {msg[:200]}")
    return 0 if all(ok for _, _, ok in results) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook", nargs="?", type=Path, default=ROOT / "notebooks" / "06_human_numbers.ipynb")
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for every cell to run")
    ap.add_argument("--smoke", action="store_true", help="run it as a smoke run (HELPERS_SMOKE=1), as CI does")
    args = ap.parse_args()
    return check(args.notebook.resolve(), args.timeout, args.smoke)


if __name__ == "__main__":
    sys.exit(main())

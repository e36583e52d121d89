"""A JupyterLab server on loopback and Debian's Chromium driven by Selenium, for the real-browser tests.

Nothing is downloaded: the browser and its driver are Debian's packages ``chromium`` and
``chromium-driver`` (``make browser-tools`` installs them where the machine allows), found at
``/usr/bin/chromium`` and ``/usr/bin/chromedriver``. The server runs on a copy of the notebooks in a
temporary folder (JupyterLab saves what it runs) with its own settings, workspace and runtime folders.

Every wait waits for an event on the page or the server (an element appearing, the kernel idle, the
last cell run) and gives up after a deadline scaled by :func:`slowness`: how much slower than the
course's idle CI machine this one is at the start of the session (a busy machine gets longer).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from nbtools import ARTIFACTS  # one definition of where artifacts go

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[1]


# The median time of _workload() on the course's CI machine kind (2-core AMD EPYC VM) when idle.
REFERENCE_WORKLOAD_S = 0.075
MAX_SLOWNESS = 10.0


def _workload() -> float:
    """Seconds for a fixed single-threaded CPU workload (a million multiply-add-modulo steps)."""
    start, x = time.perf_counter(), 0
    for i in range(1_000_000):
        x += i * i % 7
    return time.perf_counter() - start


@functools.cache
def slowness() -> float:
    """How many times slower than :data:`REFERENCE_WORKLOAD_S` this machine runs the workload now (median
    of five runs, so a busy machine, whose cores are shared, measures slower), at least 1 and at most
    :data:`MAX_SLOWNESS`. ``BROWSER_SLOWNESS`` overrides the measurement. Measured once per session."""
    if os.environ.get("BROWSER_SLOWNESS"):
        return max(1.0, float(os.environ["BROWSER_SLOWNESS"]))
    measured = statistics.median(_workload() for _ in range(5)) / REFERENCE_WORKLOAD_S
    return min(MAX_SLOWNESS, max(1.0, measured))


def deadline(seconds: float) -> float:
    """``seconds`` (enough on the idle reference machine) scaled by this machine's :func:`slowness`."""
    return seconds * slowness()


def wait_for(predicate, timeout: float, what: str, progress=None, on_timeout=None):
    """Poll ``predicate`` until it returns something true, and return that. Gives up after
    ``deadline(timeout)`` seconds without progress: when ``progress`` is given, each change of its value
    (cells run, outputs printed) starts the deadline again, so a slow run that moves is not cut short and
    a stuck one fails as soon as one deadline passes. ``on_timeout`` runs before the AssertionError."""
    limit = deadline(timeout)
    last = progress() if progress else None
    ends = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if progress:
            now = progress()
            if now != last:
                last, ends = now, time.monotonic() + limit
        if time.monotonic() > ends:
            break
        time.sleep(0.25)
    if on_timeout is not None:
        on_timeout()
    raise AssertionError(f"timed out waiting for {what}: nothing happened for {limit:.0f} s "
                         f"({timeout:.0f} s on the reference machine × slowness {slowness():.1f})")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return "Debian's chromium and chromium-driver are not installed (make browser-tools installs them as root)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it is in requirements.txt)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` on 127.0.0.1 serving ``root``; stopped by :meth:`stop`."""

    def __init__(self, root: Path, home: Path):
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        settings = home / "lab-settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True)
        # Every cell stays in the page (no virtual scrolling), so what a cell printed can be found and shown.
        (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        # No "Would you like to get notified about official Jupyter news?" toast over the page.
        notices = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
        notices.mkdir(parents=True)
        (notices / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "IPYTHONDIR": str(home / "ipython"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        self.log = open(home / "jupyter-lab.log", "wb")
        # The README's `make lab`, pointed at the copy, on a free port with a known token.
        lab_args = (f"--port={self.port} --IdentityProvider.token={self.token} "
                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
        self.process = subprocess.Popen(["make", "--no-print-directory", "-C", str(ROOT), "lab", f"LAB_DIR={root}",
                                         f"LAB_ARGS={lab_args}"],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready()

    def url(self, path: str, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?{query + '&' if query else ''}token={self.token}"

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait for the server's ``api/status`` to answer (``timeout`` is for the reference machine)."""
        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as reply:
                    return reply.status == 200
            except OSError:
                return False

        wait_for(answers, timeout, f"jupyter lab to answer on port {self.port} (see {self.log.name})")

    def stop(self) -> None:
        """Stop make and the server it started (they share a process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def chromium(user_data: Path):
    """A headless Chromium under chromedriver, with the flags this closed network needs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={user_data}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def copy_notebooks(names: list[str], to: Path, answers_from: Path | None = None) -> None:
    """Copy released notebooks into ``to``; with ``answers_from`` (solutions/), every answer cell gets
    the solution's code, as a learner who finished the lesson would have it."""
    import nbformat

    to.mkdir(parents=True, exist_ok=True)
    for name in names:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        if answers_from is not None:
            solution = nbformat.read(answers_from / name, as_version=4)
            answers = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in solution.cells
                       if c.metadata.get("nbgrader", {}).get("solution")}
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in answers:
                    cell.source = answers[grade_id]
        nbformat.write(nb, to / name)


def save_artifact(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path

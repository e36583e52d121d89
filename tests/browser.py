"""A JupyterLab server on loopback and Debian's Chromium driven by Selenium, for the real-browser tests.

Nothing is downloaded: the browser and its driver are Debian's packages ``chromium`` and
``chromium-driver`` (``make browser-tools`` installs them where the machine allows), found at
``/usr/bin/chromium`` and ``/usr/bin/chromedriver``. The server runs on a copy of the notebooks in a
temporary folder (JupyterLab saves what it runs) with its own settings, workspace and runtime folders.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


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

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s; see {self.log.name}")

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

"""The course in a real browser: JupyterLab on loopback, Debian's Chromium, Selenium.

Lesson 01 (answers filled in, as a learner who finished it has them) is run with "Run All Cells"
from JupyterLab's menu; every check cell's verdict must be rendered on the page, and nbgrader's
Validate button must agree. Lesson 10 (as released) is run the same way: its start cell starts the
clock and its first check cell prints the elapsed-time line before its verdict. Screenshots go to
``test-artifacts/`` (or ``$TEST_ARTIFACTS``).
"""

from __future__ import annotations

import shutil
import time

import pytest

from browser import ROOT, LabServer, browser_missing, chromium, copy_notebooks, save_artifact

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

LESSON_01 = "01_rlhf_objective.ipynb"
LESSON_10 = "10_mock_interview.ipynb"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("lab")
    work = home / "notebooks"
    copy_notebooks([LESSON_01], work, answers_from=ROOT / "solutions")
    copy_notebooks([LESSON_10], work)
    server = LabServer(work, home)
    driver = chromium(home / "chromium-profile")
    driver.set_page_load_timeout(60)
    try:
        yield server, driver
    finally:
        driver.quit()
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def wait_for(predicate, timeout: float, what: str, driver=None, shot: str | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    if driver is not None and shot:
        save_artifact(driver, shot)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


IDLE = ("const k = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');"
        "return !!k && k.getAttribute('data-status') === 'idle';")


def open_notebook(server, driver, name: str) -> None:
    """Open ``name`` alone (``?reset`` forgets the tabs of earlier tests) and wait for its kernel."""
    driver.get(server.url(f"lab/tree/{name}", query="reset"))
    current = "const t = document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel'); return t ? t.textContent : '';"
    wait_for(lambda: driver.execute_script(current) == name and driver.execute_script(IDLE), 90,
             f"{name} to open with an idle kernel", driver, f"{name}.open-failed.png")


def run_all(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
    driver.find_element(By.CSS_SELECTOR, "li.lm-Menu-item[data-command='runmenu:run-all']").click()


def outputs(driver) -> list[str]:
    """The text of every output area of the open notebook, cell by cell."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell'))"
        ".map(c => { const o = c.querySelector('.jp-OutputArea'); return o ? o.textContent : ''; });")


def show_output_containing(driver, text: str):
    """Scroll the first output that contains ``text`` into view; returns the element."""
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.XPATH, f"//div[contains(@class,'jp-OutputArea-output')][contains(., '{text}')]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    return element


def test_lesson_01_runs_in_the_browser_and_shows_every_verdict(lab):
    server, driver = lab
    open_notebook(server, driver, LESSON_01)
    run_all(driver)
    # every check cell of the lesson prints a ✓ line; wait for the last one
    wait_for(lambda: sum(text.count("✓") for text in outputs(driver)) >= 2 and driver.execute_script(IDLE),
             180, "the check cells' ✓ verdicts", driver, "01_rlhf_objective.run-failed.png")
    texts = outputs(driver)
    failed = [t[:300] for t in texts if "Traceback" in t or "✗" in t or "Error" in t.split("\n")[0]]
    assert not failed, failed     # no cell raised and no check printed a ✗ verdict
    assert any("[OK]   torch" in t for t in texts) and not any("[FAIL]" in t for t in texts)
    verdict = show_output_containing(driver, "✓")
    assert verdict.is_displayed() and "✓" in verdict.text
    shot = save_artifact(driver, "01_rlhf_objective.verdict.png")
    assert shot.stat().st_size > 10_000


def test_nbgraders_validate_button_agrees(lab):
    from selenium.webdriver.common.by import By

    server, driver = lab
    open_notebook(server, driver, LESSON_01)
    button = wait_for(lambda: driver.find_elements(
        By.XPATH, "//*[contains(@class,'jp-NotebookPanel') and not(contains(@class,'lm-mod-hidden'))]"
                  "//*[contains(@class,'jp-ToolbarButton')][normalize-space(.)='Validate']"),
                      30, "nbgrader's Validate button in the notebook toolbar", driver, "validate-missing.png")
    button[0].click()
    dialog = wait_for(lambda: [d for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog") if d.text.strip()
                               and "Validating" not in d.text], 180, "the validation result", driver, "validate-failed.png")
    save_artifact(driver, "01_rlhf_objective.validate.png")
    assert "Success" in dialog[0].text and "passes all" in dialog[0].text, dialog[0].text[:500]


def test_lesson_10_start_cell_and_check_cell_show_the_clock(lab):
    server, driver = lab
    open_notebook(server, driver, LESSON_10)
    run_all(driver)     # as released: runs until the first check cell, which fails (the stub) after printing the clock
    wait_for(lambda: any("elapsed of 60:00" in t and "not implemented" in t for t in outputs(driver)), 120,
             "the check cell's elapsed-time line and its verdict", driver, "10_mock_interview.run-failed.png")
    from selenium.webdriver.common.by import By

    check_cell = driver.find_element(By.XPATH, "//div[contains(@class,'jp-CodeCell')][.//div[contains(@class,'jp-OutputArea')]"
                                               "[contains(., 'elapsed of 60:00') and contains(., 'not implemented')]]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", check_cell)
    assert check_cell.is_displayed() and "drill.check(" in check_cell.text
    assert "⏱ 0:" in check_cell.text and "not implemented yet" in check_cell.text
    assert "Traceback" not in check_cell.text and "checking.py" not in check_cell.text   # a verdict, not a stack trace
    save_artifact(driver, "10_mock_interview.clock.png")

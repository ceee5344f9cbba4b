"""The web UI in Debian's chromium (headless, driven by Selenium through the system
chromedriver; no browser download), against a real server with a worker in the same process.
Screenshots go to ci-artifacts/ (gitignored) for CI to keep."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_util import Server, running_server

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "ci-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("TIDEFLOW_CI") == "1":  # CI installs them (.ci/run): never skip there
        raise RuntimeError("the browser tests need chromium and chromium-driver (apt)")
    pytest.skip("needs chromium and chromium-driver (apt)", allow_module_level=True)
APPROVAL = {"request_id": "r1", "amount": 5, "requester": "ann", "timeout": "1h"}


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Server]:
    with running_server(sqlite_url) as srv:
        yield srv


def _shot(browser: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _wait(browser: Any, condition: Any, timeout: float = 30) -> Any:
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)


def test_run_page_shows_run_history_and_lit_graph(server: Server, browser: Any) -> None:
    started = server.post("/runs", json={"workflow": "greeting", "input": {"name": "Ada"}})
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    browser.get(server.url + "/")
    row = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-run="{run_id}"]'))
    assert "greeting" in row[0].text
    browser.get(server.url + f"/#/run/{run_id}")
    _wait(browser, lambda d: d.find_element(By.ID, "status").text == "completed")
    _wait(browser, lambda d: "RunCompleted" in d.find_element(By.ID, "history").text)
    history = browser.find_element(By.ID, "history").text
    assert "RunStarted" in history and "StateEntered" in history
    lit = browser.find_elements(By.CSS_SELECTOR, "svg .node.visited")
    assert lit, "no state of the graph is lit"
    assert browser.find_elements(By.CSS_SELECTOR, 'svg .node.visited[data-state="end"]')
    assert browser.find_elements(By.CSS_SELECTOR, "svg .edge")
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline .bar")
    _shot(browser, "run-page")


def test_signal_from_the_form_finishes_the_run(server: Server, browser: Any) -> None:
    started = server.post(
        "/runs", json={"workflow": "approval", "input": APPROVAL, "run_id": "ui1"}
    )
    assert started.status_code == 201, started.text
    browser.get(server.url + "/#/run/ui1")
    _wait(
        browser,
        lambda d: d.find_elements(
            By.CSS_SELECTOR, 'svg .node.current[data-state="wait_for_decision"]'
        ),
    )
    form = browser.find_element(By.CSS_SELECTOR, 'form[data-signal="approve"]')
    form.find_element(By.NAME, "approved").click()
    form.find_element(By.NAME, "by").send_keys("browser")
    _shot(browser, "signal-form")
    form.find_element(By.TAG_NAME, "button").click()
    alert = _wait(browser, lambda d: d.switch_to.alert)
    alert.accept()  # the confirmation
    _wait(browser, lambda d: d.find_element(By.ID, "status").text == "completed")
    assert '"decided_by": "browser"' in browser.find_element(By.ID, "output").text
    _shot(browser, "signal-finished")


def _text(browser: Any, selector: str) -> str:
    """The element's text read in one script call (the page re-renders as it refreshes, so a
    found element can go stale before its text is read)."""
    text: str = browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector
    )
    return " ".join(text.split())


def test_run_page_links_the_original_and_the_forks(
    server: Server, browser: Any, sqlite_url: str, tmp_path: Path
) -> None:
    from interpreter.client import Client
    from tests.test_redrive import failed_chain

    run_id, _log, _fixed = failed_chain(sqlite_url, tmp_path)
    with Client(sqlite_url) as client:
        client.fork(run_id, "second", new_id="fork-a")
        client.retry(run_id)
    browser.get(server.url + f"/#/run/{run_id}")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#forks a[href="#/run/fork-a"]'))
    assert "retried 1 time" in _text(browser, "main")
    browser.find_element(By.CSS_SELECTOR, '#forks a[href="#/run/fork-a"]').click()
    _wait(browser, lambda d: f"forked from {run_id} at second" in _text(d, "#forks"))
    assert browser.find_elements(By.CSS_SELECTOR, f'#forks a[href="#/run/{run_id}"]')
    assert "Run fork-a" in _text(browser, "h2") and "retried" not in _text(browser, "main p")
    _shot(browser, "fork-links")
    browser.get(server.url + "/")
    _wait(browser, lambda d: f"fork of {run_id}" in _text(d, 'tr[data-run="fork-a"]'))
    assert "fork of" not in _text(browser, f'tr[data-run="{run_id}"]')

"""`research dashboard` in a real browser: headless Chromium, driven by Selenium through the
chromedriver installed beside it, against the dashboard started as a user starts it. The
pages list the studies, draw their charts with plotly.js, grow a running study's curves
without a reload, and steer a running babysit study through its forms; the console stays
free of errors on every page. The HTTP side is tests/test_dashboard.py.

When CI is set (.ci/run sets it) these tests must run; elsewhere they are skipped, in one
line, only when Chromium or chromedriver is missing. With RESEARCH_SCREENSHOTS=FOLDER they
also save the docs' pictures there (dashboard-studies.png, -study.png, -babysit.png,
-compare.png); otherwise they write nothing outside their temporary folders.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
if not CI:  # test extras: in CI a missing one is an error, not a skip
    pytest.importorskip("starlette", reason="the dashboard extra is not installed: pip install -e '.[test]'")
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.studyutil import cli, research_command, signal_group, wait_for  # noqa: E402
from tests.test_babysit import SLOW, live_epochs, said, start, stored_events  # noqa: E402

WAIT = 20.0          # the longest a page may take to show what it should
PROCESS_WAIT = 60.0  # a study or a dashboard starting or ending
WIDTH, HEIGHT = 1400, 1000
SCREENSHOTS = os.environ.get("RESEARCH_SCREENSHOTS")

# How many points each chart matching a selector plots: the non-null x of its plotly traces
# (null separates the curves a trace groups). -1 for a chart plotly has not drawn yet.
POINTS = """
return [...document.querySelectorAll(arguments[0])].map((chart) =>
  chart.data && chart.querySelector('.main-svg')
    ? chart.data.reduce((n, trace) => n + (trace.x || []).filter((x) => x !== null && x !== undefined).length, 0)
    : -1);
"""


# -- the browser ----------------------------------------------------------------------------------


def chromium_and_driver() -> tuple[str | None, str | None]:
    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.access("/usr/bin/chromedriver", os.X_OK)
                                              else None)
    return binary, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the whole module (starting one is the costly part). Its
    temporary folders go to a pytest folder: Chromium leaves some behind in TMPDIR."""
    binary, driver = chromium_and_driver()
    missing = [name for name, path in (("chromium", binary), ("chromedriver", driver)) if path is None]
    if missing:
        reason = f"no {' or '.join(missing)} installed (apt-get install chromium chromium-driver)"
        if CI:
            pytest.fail(f"{reason}: CI runs the browser tests", pytrace=False)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = {**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("chromium-tmp"))}
    chrome = webdriver.Chrome(service=Service(executable_path=driver, env=env), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def driver(browser: webdriver.Chrome, reap: list[subprocess.Popen]) -> Iterator[webdriver.Chrome]:
    """The module's browser for one test, its console read from here on. It leaves the page
    before the test's processes are reaped (a page polling a dashboard that is gone would log
    errors into the next test)."""
    browser.get_log("browser")
    browser.set_window_size(WIDTH, HEIGHT)
    yield browser
    try:  # a test that failed while a confirm was open
        browser.switch_to.alert.dismiss()
    except NoAlertPresentException:
        pass
    browser.get("about:blank")
    browser.get_log("browser")


def console_is_clean(driver: webdriver.Chrome) -> None:
    """No error on the console since the last look, and no error line on the page."""
    severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], f"console errors on {driver.current_url}: {severe}"
    shown = driver.find_element(By.ID, "error")
    assert not shown.is_displayed(), f"the page shows an error: {shown.text}"


def wait(driver: webdriver.Chrome, condition: Any, what: str, timeout: float = WAIT) -> Any:
    """``condition(driver)``'s first truthy value, or a failure naming ``what`` and the page's
    error. (Pages redraw their tables: an element found a moment ago may be gone.)"""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                             ).until(condition)
    except TimeoutException:
        shown = text(driver, "#error")
        raise AssertionError(f"timed out waiting for {what} on {driver.current_url} (page error: {shown!r})") from None


def text(driver: webdriver.Chrome, selector: str) -> str | None:
    """The text of the first element matching ``selector`` (None if there is none), read at once."""
    return driver.execute_script("const node = document.querySelector(arguments[0]);"
                                 "return node ? node.textContent : null", selector)


def cells(driver: webdriver.Chrome, selector: str) -> list[list[str]]:
    """The text of each cell of each row of the table matching ``selector``, its head first."""
    return driver.execute_script("const table = document.querySelector(arguments[0]); if (!table) return [];"
                                 "return [...table.rows].map((row) => [...row.cells].map((c) => c.textContent))",
                                 selector)


def click(driver: webdriver.Chrome, selector: str) -> None:
    """Click the element matching ``selector``, found again if the page redrew it meanwhile."""
    for _ in range(5):
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{selector} kept being redrawn")


def points(driver: webdriver.Chrome, selector: str) -> list[int]:
    return driver.execute_script(POINTS, selector)


def drawn(driver: webdriver.Chrome, selector: str, count: int) -> list[int] | None:
    """The points of the ``count`` charts matching ``selector`` once all are drawn with points."""
    found = points(driver, selector)
    return found if len(found) == count and all(n > 0 for n in found) else None


def content_text(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.ID, "content").text  # as shown: what a reader would see


def screenshot(driver: webdriver.Chrome, name: str, down_to: str | None = None) -> None:
    """dashboard-NAME.png in $RESEARCH_SCREENSHOTS (nothing without it); with ``down_to`` (a
    selector) the window is made tall enough to show the page down to that element."""
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    height = None
    if down_to is not None:
        bottom = driver.execute_script("return document.querySelector(arguments[0]).getBoundingClientRect().bottom"
                                       " + window.scrollY", down_to)
        chrome = driver.get_window_size()["height"] - driver.execute_script("return window.innerHeight")
        height = min(3000, int(bottom) + 16 + chrome)
        driver.set_window_size(WIDTH, height)
        time.sleep(1.0)  # plotly redraws its responsive charts to the new size
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(folder / f"dashboard-{name}.png"))
    if height is not None:
        driver.set_window_size(WIDTH, HEIGHT)


# -- the dashboard, as `research dashboard` serves it ---------------------------------------------


class Served:
    """A `research dashboard` process and the URL it printed."""

    def __init__(self, process: subprocess.Popen, url: str):
        self.process = process
        parts = urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.address = (parts.hostname, parts.port)
        self.token = dict(pair.split("=", 1) for pair in parts.query.split("&"))["token"]

    def url(self, path: str, *pairs: tuple[str, Any]) -> str:
        """``path`` with its query and the token (which a page's own links do without: the
        first page keeps it in a cookie)."""
        return f"{self.base}{path}?{urlencode([*pairs, ('token', self.token)])}"


def serve(db: Path, *options: str) -> Served:
    """Start `research dashboard --store DB --port 0 OPTIONS` in its own process group, in the
    store's folder as a user would (its output beside it), and read the URL it prints; the
    caller stops it."""
    out, err = db.with_name("dashboard.out"), db.with_name("dashboard.err")
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(research_command() + ["dashboard", "--store", db.name, "--port", "0", *options],
                                   cwd=db.parent, stdout=stdout, stderr=stderr, text=True, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def printed() -> str | None:
        return next((line for line in out.read_text().splitlines() if line.startswith("http")), None)

    if not wait_for(lambda: printed() is not None, PROCESS_WAIT, interval=0.05, process=process):
        process.kill()
        process.wait(timeout=PROCESS_WAIT)
        raise AssertionError(f"research dashboard printed no URL:\n{out.read_text()}\n{err.read_text()}")
    served = Served(process, printed().strip())
    # It prints the URL once its socket is bound but before uvicorn listens on it: wait until
    # the port takes connections (a browser opening the URL at once may be refused).
    assert wait_for(lambda: accepts(served.address), PROCESS_WAIT, interval=0.05, process=process), err.read_text()
    return served


def accepts(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


def stop(process: subprocess.Popen) -> None:
    """End a dashboard (or any process group) and wait for it."""
    if process.poll() is None:
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait(timeout=PROCESS_WAIT)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A dashboard of a store with four finished caviar studies: `a` and `b` (3 trials x 2
    epochs, seeds 0 and 1), `searched` and `lower-lr` (12 trials x 8 epochs over lr and beta1,
    so they have the scores and parallel-coordinates figures too)."""
    folder = tmp_path_factory.mktemp("finished")
    db = folder / "research.db"
    tiny = ["--trials", "3", "--epochs", "2", "--hidden", "16"]
    beta1 = ["--space", "beta1=log1m:0.8..0.99", "--trials", "12", "--epochs", "8", "--hidden", "16"]
    for name, options in (("a", tiny), ("b", [*tiny, "--seed", "1"]),
                          ("searched", ["--space", "lr=log:1e-3..1e-1", *beta1]),
                          ("lower-lr", ["--space", "lr=log:1e-4..1e-2", *beta1, "--seed", "1"])):
        ran = cli("train", "--strategy", "caviar", "--study", name, "--store", db, "--executor", "serial",
                  *options, "--plot", folder / f"{name}.png")
        assert ran.exit_code == 0, ran.output
    served = serve(db)
    try:
        yield served
    finally:
        stop(served.process)


# -- finished studies -----------------------------------------------------------------------------


def test_studies_page_lists_the_studies_and_compares_two(driver, finished):
    driver.get(finished.url("/"))
    rows = wait(driver, lambda d: cells(d, "#studies")[1:], "the studies table")
    assert sorted(row[1] for row in rows) == ["a", "b", "lower-lr", "searched"]
    for row in rows:
        assert row[2:4] == ["caviar", "finished"] and row[5] == "mlp on digits", row
        assert row[6] == ("3 / 3" if row[1] in ("a", "b") else "12 / 12") and row[7].endswith(" val acc"), row
    assert text(driver, "#content p.meta") == "research.db"  # the store, as named to the dashboard
    assert text(driver, "#live") == ""  # nothing runs
    assert "null" not in content_text(driver) and "undefined" not in content_text(driver)
    console_is_clean(driver)
    screenshot(driver, "studies")

    # choose a and b, compare them: one chart each, drawn
    for name in ("a", "b"):  # the page redraws every few seconds, keeping what is ticked
        click(driver, f"input.compare[value='{name}']")
    click(driver, "#compare")
    wait(driver, lambda d: urlsplit(d.current_url).path == "/compare", "the compare page")
    assert urlsplit(driver.current_url).query == "study=a&study=b"
    counts = wait(driver, lambda d: drawn(d, ".side-by-side .chart", 2), "two drawn charts")
    assert counts == [6, 6]  # 3 trials x 2 epochs each
    assert driver.find_element(By.TAG_NAME, "h1").text == "Compare a, b"
    assert [row[0] for row in cells(driver, "#content > table")[1:]] == ["a", "b"]
    assert "null" not in content_text(driver) and "undefined" not in content_text(driver)
    console_is_clean(driver)

    # the docs' picture compares the two searches (curves of 8 epochs, not 2)
    driver.get(finished.url("/compare", ("study", "searched"), ("study", "lower-lr")))
    counts = wait(driver, lambda d: drawn(d, ".side-by-side .chart", 2), "two drawn charts")
    assert all(n >= 12 * 8 for n in counts)
    console_is_clean(driver)
    screenshot(driver, "compare")


def test_study_page_draws_each_figure_and_leads_to_its_trials(driver, finished):
    driver.get(finished.url("/study", ("name", "searched")))
    counts = wait(driver, lambda d: drawn(d, "#figures .chart", 4), "the study's four figures")
    titles = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#figures section.figure > h2")]
    assert titles == ["Learning curves", "Score against each hyperparameter", "Parallel coordinates",
                      "Hyperparameter importance"]
    assert counts[0] >= 12 * 8  # every epoch of every trial
    assert driver.find_element(By.ID, "status").text.startswith("finished caviar study; trials: 12 finished")
    headers, *ranked = cells(driver, "#ranked")
    assert headers[:3] == ["rank", "trial", "status"] and headers[-3:-1] == ["lr", "beta1"]
    assert [row[0] for row in ranked] == [str(rank) for rank in range(1, 13)]
    assert {row[2] for row in ranked} == {"finished"}
    assert driver.find_elements(By.ID, "control-set") == []  # caviar offers no control, and they are off
    # plotly.js 4 gave every chart a "Share chart..." button that posts its data to Plotly's cloud
    buttons = driver.execute_script("return Array.from(document.querySelectorAll('#figures .modebar-btn'))"
                                    ".map(b => b.getAttribute('data-title'))")
    assert buttons and not [b for b in buttons if re.search("share|cloud|studio|edit", b, re.IGNORECASE)], buttons
    assert driver.execute_script("return document.querySelector('#figures .chart')._context.plotlyServerURL") == ""
    shown = content_text(driver)
    assert "null" not in shown and "undefined" not in shown and "NaN" not in shown
    console_is_clean(driver)
    screenshot(driver, "study", down_to="#ranked")

    # the best trial's own page, through its link in the ranking
    best = driver.find_element(By.CSS_SELECTOR, "#ranked tr.top td:nth-child(2) a")
    number = best.text
    best.click()
    wait(driver, lambda d: urlsplit(d.current_url).path == "/trial", "the trial page")
    (count,) = wait(driver, lambda d: drawn(d, "section.figure .chart", 1), "the trial's chart")
    assert count >= 8
    assert driver.find_element(By.TAG_NAME, "h1").text == f"Trial {number} of searched"
    configuration = dict(cells(driver, "#content > table")[1:])
    assert {"lr", "beta1"} <= set(configuration)
    assert float(configuration["lr"]) == pytest.approx(float(ranked[0][-3]), rel=1e-3)  # the ranking's top row
    console_is_clean(driver)


# -- running studies ------------------------------------------------------------------------------


def test_a_running_study_grows_its_chart_without_a_reload(driver, reap, tmp_path):
    db = tmp_path / "research.db"
    study = start(["train", "--strategy", "caviar", "--study", "live", "--store", db, "--plot", tmp_path / "live.png",
                   "--trials", "2", "--epochs", "300", "--workers", "1", *SLOW], tmp_path, "run")
    reap.append(study)
    served = serve(db)
    reap.append(served.process)
    # opened once the first epoch is in: the page's first figures have a curve to extend
    assert wait_for(lambda: live_epochs(db, "live") >= 1, PROCESS_WAIT, process=study), said(tmp_path, "run")[-3000:]

    driver.get(served.url("/study", ("name", "live")))
    driver.execute_script("window.loadedOnce = true")  # gone if the page were reloaded
    live = "#figures section.figure:first-child .chart"  # the learning curves, extended point by point
    (before,) = wait(driver, lambda d: drawn(d, live, 1), "the live chart")
    grown = wait(driver, lambda d: (n := points(d, live)) and n[0] > before and n[0], "more points on the live chart")
    assert grown > before
    assert driver.execute_script("return window.loadedOnce === true"), "the page was reloaded"
    assert text(driver, "#live").startswith("live: ")
    assert text(driver, "#status .state") == "running"
    console_is_clean(driver)

    signal_group(study, signal.SIGINT)
    study.wait(timeout=PROCESS_WAIT)


def test_babysit_set_and_stop_through_the_forms(driver, reap, tmp_path):
    db = tmp_path / "research.db"
    study = start(["train", "--strategy", "babysit", "--study", "s", "--store", db, "--plot", tmp_path / "s.png",
                   "--segment-epochs", "1", "--segments", "2000", "--policy", "none", *SLOW], tmp_path, "run")
    reap.append(study)
    served = serve(db, "--allow-control")
    reap.append(served.process)
    assert wait_for(lambda: live_epochs(db) >= 1, PROCESS_WAIT, process=study), said(tmp_path, "run")[-3000:]

    driver.get(served.url("/study", ("name", "s")))
    field = wait(driver, lambda d: d.find_elements(By.ID, "control-set-assignment"), "the set form")[0]
    wait(driver, lambda d: drawn(d, "#figures section.figure:first-child .chart", 1), "babysit's figure")
    assert [f.get_attribute("id") for f in driver.find_elements(By.CSS_SELECTOR, ".controls form")] == \
           ["control-set", "control-rollback", "control-stop"]
    field.send_keys("lr=0.003")
    driver.find_element(By.CSS_SELECTOR, "#control-set button[type=submit]").click()
    message = wait(driver, lambda d: text(d, "#control-message"), "the set's answer")
    assert message.startswith("queued set lr=0.003"), message
    assert driver.find_element(By.ID, "control-message").get_attribute("class") == ""  # not refused
    assert field.get_attribute("value") == ""

    # the running study applies it at its next boundary, and the events table shows it, unreloaded
    def change_row(d: webdriver.Chrome) -> list[str] | None:
        return next((row for row in cells(d, "#events") if row[2] == "change" and "-> 0.003" in row[5]), None)

    row = wait(driver, change_row, "the change in the events table")
    assert row[5].startswith("lr 0.001 -> 0.003 at epoch ") and row[5].endswith("(remote)"), row
    (change,) = stored_events(db, kind="change")
    assert change["data"]["name"] == "lr" and change["data"]["new"] == 0.003
    assert change["data"]["source"] == "remote" and row[4] == str(change["data"]["epoch"])
    assert [c["data"] for c in stored_events(db, kind="command")] == [{"action": "set", "name": "lr", "value": "0.003"}]
    # babysit's own figure is redrawn whole: its title counts the change
    title = "return document.querySelector('#figures section.figure:first-child .chart')?.layout?.title?.text || ''"
    wait(driver, lambda d: "1 change," in d.execute_script(title), "the change in babysit's figure")
    assert text(driver, "#live").startswith("live: ")
    console_is_clean(driver)
    screenshot(driver, "babysit", down_to="#figures section.figure:first-child")

    # stop, which asks first
    driver.find_element(By.CSS_SELECTOR, "#control-stop button[type=submit]").click()
    alert = WebDriverWait(driver, 5).until(expected_conditions.alert_is_present())
    assert alert.text == "Stop the study at its next segment boundary?"
    alert.accept()
    wait(driver, lambda d: text(d, "#control-message").startswith("queued stop"), "the stop's answer")
    assert study.wait(timeout=PROCESS_WAIT) == 0, said(tmp_path, "run")[-3000:]
    stop_event = stored_events(db, kind="stop")
    assert [e["data"]["source"] for e in stop_event] == ["remote"]
    # the page notices the end by itself: stopped, with segments left to train
    wait(driver, lambda d: text(d, "#status .state") == "stopped", "the stopped state")
    assert text(driver, "#live") == ""
    console_is_clean(driver)



def test_pages_keep_what_they_show_when_the_dashboard_stops(driver, reap, tmp_path):
    """A stopped dashboard left its pages with the browser's bare "Failed to fetch"; each keeps
    its content and says what happened."""
    db = tmp_path / "research.db"
    ran = cli("train", "--strategy", "caviar", "--study", "a", "--store", db, "--executor", "serial",
              "--trials", "2", "--epochs", "2", "--hidden", "16", "--plot", tmp_path / "a.png")
    assert ran.exit_code == 0, ran.output
    for path, pairs, shown in (("/", (), "#studies"), ("/study", (("name", "a"),), "#ranked")):
        served = serve(db)
        reap.append(served.process)
        driver.get(served.url(path, *pairs))
        wait(driver, lambda d: cells(d, shown), f"the table of {path}")
        stop(served.process)
        said = wait(driver, lambda d: text(d, "#error") or None, f"{path}: word that the dashboard stopped", timeout=20)
        assert said.startswith("the dashboard is not answering"), said
        assert cells(driver, shown), f"{path} lost its content"

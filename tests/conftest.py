"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REAP_TIMEOUT = 60.0
CHECKOUT = Path(__file__).resolve().parent.parent
_CHECKOUT_KEY = pytest.StashKey[set]()  # what the checkout held when the suite started

# Hypothesis draws the same examples on every run, so a commit's verdict does not depend on the
# luck of the draw; `pytest --hypothesis-profile=explore` draws new ones to look for more.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")

# A suite started in the background of a non-interactive shell (`pytest &`) inherits SIGINT
# ignored, and so would every program the tests start: the Ctrl-C tests need Python's own.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _checkout_entries() -> set[str]:
    """What the checkout's top folder holds, but for the tools' hidden folders (.pytest_cache...)."""
    return {name for name in os.listdir(CHECKOUT) if not name.startswith(".")}


def pytest_sessionstart(session):
    session.config.stash[_CHECKOUT_KEY] = _checkout_entries()


def pytest_sessionfinish(session, exitstatus):
    """A test that runs research in this process from the checkout wrote into it (a study's
    picture, s-curves.png): fail the run, naming what appeared. Checked once by the process
    that started the suite (xdist's workers share its folder)."""
    if hasattr(session.config, "workerinput"):
        return
    written = sorted(_checkout_entries() - session.config.stash.get(_CHECKOUT_KEY, set()))
    if written:
        print(f"\ntests wrote into the checkout: {', '.join(written)}; give each research command a folder of "
              "its test (monkeypatch.chdir(tmp_path), or --plot, --store and -o under tmp_path)", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _no_inherited_terminal_size():
    """No COLUMNS or LINES unless a test sets them: pytest imports pdb, whose readline puts
    COLUMNS=80 and LINES=24 in the process's environment (not in os.environ; xdist's workers
    then inherit them in os.environ), and the research commands the tests run would lay out
    their piped tables for 80 columns instead of their piped default."""
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
        os.unsetenv(name)


@pytest.fixture
def reap():
    """Processes a test started (append them); any still running at its end are killed with
    their process group."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=REAP_TIMEOUT)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on the Python path (of this process and of worker processes) for throwaway
    plugin distributions (tests/thirdparty.py); the working directory is the test's folder."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.setenv("PYTHONPATH", str(path))
    monkeypatch.chdir(tmp_path)
    yield path
    for name in [m for m in sys.modules if m.startswith("tp_")]:
        del sys.modules[name]

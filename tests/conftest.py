"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

REAP_TIMEOUT = 60.0


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

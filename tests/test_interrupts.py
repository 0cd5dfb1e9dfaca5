"""Ctrl-C and SIGTERM during a checkpoint write: held until the file is complete, then raised."""

from __future__ import annotations

import contextlib
import signal
import threading
import zipfile

import numpy as np
import pytest

from research.cli.console import Terminated, stop_on_sigterm
from research.interrupts import interrupts_deferred
from research.nn import checkpoint


@pytest.fixture
def sigterm_raises():
    previous = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_in_the_block_is_raised_after_it(signum, raised, sigterm_raises) -> None:
    done = []
    with pytest.raises(raised):
        with interrupts_deferred():
            signal.raise_signal(signum)
            done.append("rest of the block")
    assert done == ["rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers put back


def test_only_the_first_of_two_signals_is_raised(sigterm_raises) -> None:
    with pytest.raises(Terminated):
        with interrupts_deferred():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)


def test_an_error_in_the_block_still_puts_the_handlers_back(sigterm_raises) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ZeroDivisionError):
        with interrupts_deferred():
            1 / 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_nothing_changes() -> None:
    seen = []

    def work() -> None:
        with interrupts_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


@pytest.mark.parametrize("where", ["write_array", "entry_close"])
def test_sigterm_inside_savez_leaves_the_new_checkpoint_and_then_stops(where, tmp_path, monkeypatch,
                                                                       sigterm_raises) -> None:
    # Before: an interrupt while the zip archive closed an entry left it "writing", and its
    # cleanup raised "Can't close the ZIP file while there is an open writing handle" instead of
    # the interrupt (a crash, with the running trials left marked running).
    path = tmp_path / "trial.npz"
    checkpoint.save(path, {"w": np.zeros(3)})
    owner, name = (np.lib.format, "write_array") if where == "write_array" else (zipfile._ZipWriteFile, "close")
    real = getattr(owner, name)

    def interrupted(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupted)
    with pytest.raises(Terminated):
        checkpoint.save(path, {"w": np.ones(3), "b": np.arange(4.0)})
    monkeypatch.undo()
    saved = checkpoint.read_checkpoint(path)
    np.testing.assert_array_equal(saved.arrays["w"], np.ones(3))
    np.testing.assert_array_equal(saved.arrays["b"], np.arange(4.0))
    assert not (tmp_path / "trial.npz.tmp").exists()


@pytest.mark.parametrize("raised, code, word", [("Terminated", 143, "terminated"), ("KeyboardInterrupt", 130,
                                                                                     "interrupted")])
def test_a_stop_while_the_command_line_is_built_is_a_stop_not_a_traceback(monkeypatch, capsys, raised, code, word):
    """SIGTERM or Ctrl-C in the first moments (typer building the command line, click reading
    research's own flags) printed a traceback and exited 1."""
    import importlib
    import sys

    from research.cli.console import Terminated

    app_module = importlib.import_module("research.cli.app")  # the module: research.cli.app is also the Typer

    stop = Terminated if raised == "Terminated" else KeyboardInterrupt

    def building(*args, **kwargs):
        raise stop

    monkeypatch.setattr(app_module, "stop_on_sigterm", lambda: None)  # this test process keeps its own handler
    monkeypatch.setattr(app_module, "app", building)
    monkeypatch.setattr(sys, "argv", ["research", "studies"])
    with pytest.raises(SystemExit) as ended:
        app_module.main()
    assert ended.value.code == code and capsys.readouterr().err == f"{word}\n"


def test_a_ctrl_c_while_the_command_line_imports_is_a_stop_not_a_traceback(monkeypatch, capsys):
    """Ctrl-C while the `research` command imported its modules printed Python's traceback of
    the import: the console script imported the command line outside any guard."""
    import sys
    import types

    from research.__main__ import main

    class Importing(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "research.cli.app", Importing("research.cli.app"))
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_a_study_killed_alone_leaves_no_leaked_semaphore_warning(tmp_path) -> None:
    """`kill -9` of a study's process (not its group: the OOM killer, a `kill -9 PID`) left
    multiprocessing's resource tracker to free the pool's semaphores, and it printed "There appear
    to be 5 leaked semaphore objects to clean up at shutdown", with a path of Python's."""
    import os

    from tests.studyutil import live_epochs, start, wait_for

    process = start(["train", "--strategy", "caviar", "--study", "k", "--trials", "2", "--epochs", "3000",
                     "--hidden", "8", "--batch-size", "4", "--executor", "process", "--workers", "2"], tmp_path)
    try:
        assert wait_for(lambda: live_epochs(tmp_path / "research.db") >= 1, 120, process=process)
        os.kill(process.pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)  # its stderr closes once the tracker and workers are gone
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert "leaked" not in stderr and "UserWarning" not in stderr, stderr


def test_a_part_that_waits_on_the_user_takes_a_signal_at_once(sigterm_raises) -> None:
    """Inside a deferral (a babysit boundary), a prompt stops at a Ctrl-C as anywhere else, and
    one that came before the prompt is raised as it begins; after it the deferral holds again."""
    import os

    from research.interrupts import interrupts_allowed

    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            with interrupts_allowed():
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):  # the handler runs at the next bytecode
                    pass
            raise AssertionError("not stopped in the prompt")
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)  # held
            with interrupts_allowed():  # raised as the prompt begins
                raise AssertionError("the held signal was not raised")
    held = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            with interrupts_allowed():
                pass
            os.kill(os.getpid(), signal.SIGINT)  # held again after the prompt
            held.append("went on")
    assert held == ["went on"]

"""Worker processes start without the working folder's modules in the way, and the programs
they run still import from their own folder (research.spawning)."""

from __future__ import annotations

import os
import shlex
import sys

import pytest

from research.spawning import OURS, SAFE_PATH, forget, without_working_folder
from research.study.store import Store
from tests.studyutil import Folder

# Prints whether it saw research's setting, after importing a module beside it.
PROGRAM = """\
import os
import beside
print('{"epoch": 1, "val_acc": %s, "inherited": %d}' % (beside.VALUE, os.environ.get("PYTHONSAFEPATH") == "research"))
"""


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_a_file_named_like_a_standard_module_in_the_working_folder_breaks_no_worker(tmp_path, reap, executor):
    """array.py in the folder replaced the array module in every worker as it started: each
    printed a traceback, and the study blamed a missing `if __name__ == "__main__":`."""
    if executor == "dask":
        pytest.importorskip("distributed")
    here = Folder(tmp_path / "work", tmp_path / "site")
    (here.path / "array.py").write_text("raise SystemExit('the working folder shadowed the array module')\n")
    (here.path / "beside.py").write_text("VALUE = 0.5\n")
    (here.path / "program.py").write_text(PROGRAM)
    command = f"{shlex.quote(sys.executable)} program.py"
    done = here.run("train", "--strategy", "caviar", "--command", command, "--trials", "2", "--workers", "2",
                    "--epochs", "1", "--executor", executor, "--study", "s")
    assert done.returncode == 0, done.stderr
    assert "shadowed" not in done.stderr
    with Store(here.path / "research.db") as store:
        study = store.study("s")
        curves = store.curves(study)
        assert [t.status for t in store.trials(study)] == ["finished", "finished"]
    assert [curve[0]["inherited"] for curve in curves.values()] == [0.0, 0.0]  # the program's own folder came first


def test_the_users_own_setting_is_kept(monkeypatch):
    monkeypatch.setenv(SAFE_PATH, "1")
    with without_working_folder():
        assert os.environ[SAFE_PATH] == "1"
    forget()
    assert os.environ[SAFE_PATH] == "1"
    monkeypatch.delenv(SAFE_PATH)
    with without_working_folder():
        assert os.environ[SAFE_PATH] == OURS
    assert SAFE_PATH not in os.environ

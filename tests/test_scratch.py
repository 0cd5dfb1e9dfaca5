"""Temporary folders named by their process: a later one removes those whose process ended
(a kill -9 runs no cleanup), and a script run by hand removes its own when it exits."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from research.scratch import _host, scratch_folder

pytestmark = pytest.mark.skipif(os.name != "posix", reason="processes are probed as POSIX does")


def _ended_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_new_folder_removes_those_of_ended_processes_only(tmp_root):
    host = _host()
    ended = tmp_root / f"research-command-{_ended_pid()}-{host}-abcd"
    (ended / "checkpoint").mkdir(parents=True)
    (ended / "checkpoint" / "model.bin").write_bytes(b"\0" * 1000)
    running = tmp_root / f"research-command-{os.getppid()}-{host}-efgh"  # the test runner's parent: alive
    running.mkdir()
    unnamed = tmp_root / "research-command-x1y2z3"  # no pid in its name (made before the rule)
    unnamed.mkdir()
    elsewhere = tmp_root / f"research-command-{_ended_pid()}-another.host-mnop"  # its pid is another host's
    elsewhere.mkdir()
    other_prefix = tmp_root / f"research-results-{_ended_pid()}-{host}-ijkl"
    other_prefix.mkdir()

    made = scratch_folder("research-command-")

    assert made.is_dir() and made.parent == tmp_root
    assert made.name.startswith(f"research-command-{os.getpid()}-{host}-")
    assert not ended.exists()
    assert running.is_dir() and unnamed.is_dir() and elsewhere.is_dir() and other_prefix.is_dir()


def test_a_file_a_link_or_a_strange_name_is_left_alone(tmp_root):
    host = _host()
    stray = tmp_root / f"research-results-{_ended_pid()}-{host}-file"
    stray.write_text("not a folder")
    target = tmp_root / "kept"
    (target / "inside").mkdir(parents=True)
    link = tmp_root / f"research-results-{_ended_pid()}-{host}-link"
    link.symlink_to(target)
    names = (f"research-results-0-{host}-zero", f"research-results-99999999999-{host}-big", "research-results--x")
    for name in names:
        (tmp_root / name).mkdir()
    scratch_folder("research-results-")
    assert stray.is_file() and link.is_symlink() and (target / "inside").is_dir()
    assert all((tmp_root / name).is_dir() for name in names)


def test_a_script_run_by_hand_removes_its_temporary_folder_when_it_exits(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text(
        "from research import script\n"
        "trial = script.trial({'lr': 0.1}, epochs=1)\n"
        "(trial.checkpoint_dir / 'state.txt').write_text('saved')\n"
        "print(trial.checkpoint_dir)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("RESEARCH_CONFIG", None)
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.parent == tmp_path and folder.name.startswith("research-script-")
    assert not folder.exists()

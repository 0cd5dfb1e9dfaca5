"""Where the commands that write a file may write it: never over the store (under any name) or
another store, or into its checkpoints folder (an export written there lost every study, or a
trial's kept weights), and
never a folder, each refused in one line before anything is written."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from tests.studyutil import cli


@pytest.fixture
def stored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = cli("train", "--strategy", "caviar", "--study", "base", "--trials", "2", "--epochs", "1", "--hidden", "8",
               "--executor", "serial")
    assert done.exit_code == 0, done.output
    return tmp_path


def digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".png"}


@pytest.mark.parametrize("args, message", [
    (["export", "base", "-o", "research.db"],
     "error: cannot write research.db: it is the store research.db, whose studies it would replace; choose another -o"),
    (["export", "base", "--format", "json", "-o", "research.db-wal"], "it is the store research.db"),
    (["export", "base", "-o", "linked.csv"], "it is the store research.db"),  # a hard link: the same file
    (["export", "base", "-o", "other.db"], "error: cannot write other.db: it is an SQLite database (a research store?), "
                                           "which the output would replace; choose another -o, or remove that file"),
    (["export", "base", "-o", "research-checkpoints/study-1/x.csv"],
     "it is in the store's checkpoints folder, whose files research keeps; choose another -o"),
    (["export-model", "base", "-o", "research-checkpoints/study-1/trial-00001-best.npz"],
     "it is in the store's checkpoints folder"),
    (["plot", "base", "-o", "research-checkpoints/x.png"], "it is in the store's checkpoints folder"),
    (["report", "base", "-o", "research-checkpoints/x.html"], "it is in the store's checkpoints folder"),
    (["export-model", "base", "-o", "adir.npz"],
     "error: cannot write a model to adir.npz: it is a folder; name an .npz file in it, e.g. -o adir.npz/model.npz"),
    (["plot", "base", "-o", "adir.png"], "error: cannot write adir.png: it is a folder; name a file in it"),
    (["plot", "base", "-o", "adir.npz"], "error: cannot write adir.npz: it is a folder"),  # not "('.npz')"
    (["train", "--strategy", "caviar", "--study", "p2", "--trials", "2", "--epochs", "1", "--plot", "adir.png"],
     "error: cannot write adir.png: it is a folder; name a file in it, or choose another --plot"),
])
def test_an_output_over_what_the_store_keeps_or_onto_a_folder_is_refused(stored, args, message):
    (stored / "adir.npz").mkdir()
    (stored / "adir.png").mkdir()
    os.link(stored / "research.db", stored / "linked.csv")
    shutil.copy(stored / "research.db", stored / "other.db")  # another store
    before = digests(stored)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert digests(stored) == before  # nothing written, nothing stored (the study p2 neither)


@pytest.mark.parametrize("command", [["show", "wide"], ["plugins"], ["--help"], ["train", "--help"],
                                     ["sample", "-n", "3000", "--json"]])
def test_a_reader_that_goes_away_ends_the_command_as_a_closed_pipe(stored, command):
    """rich ended it with exit 1, a failure to a script (`research show s | head -1`); the
    help pages (typer's console) too; one large JSON write ended with 0 (CPython dropped the
    part the pipe did not take)."""
    import fcntl
    import os
    import subprocess

    from tests.studyutil import research_command

    if command[0] == "show":  # a table of 24 trials: more than the pipe holds, whatever the timing
        done = cli("train", "--strategy", "caviar", "--study", "wide", "--trials", "24", "--epochs", "1", "--hidden",
                   "8", "--executor", "serial")
        assert done.exit_code == 0, done.output

    read, write = os.pipe()
    fcntl.fcntl(read, 1031, 4096)  # F_SETPIPE_SZ (Linux): one page, less than the output, so a write must wait
    process = subprocess.Popen(research_command() + command, cwd=stored, stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    assert os.read(read, 1)
    os.close(read)
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, err
    assert err == ""


def test_a_locale_that_is_not_utf8_reads_names_as_typed_and_prints_what_it_can(stored):
    """Under LC_ALL=C (Python's UTF-8 mode off), a non-ASCII study name reached the store as
    lone surrogates: "UnicodeEncodeError ... (this is a bug)"; a table with a ``±`` or a
    non-ASCII name ended the command."""
    import subprocess

    from tests.studyutil import research_command

    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env.pop("PYTHONIOENCODING", None)

    def research(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(research_command() + list(args), cwd=stored, env=env, capture_output=True)

    renamed = research("rename", "base", "café", "--yes")
    assert renamed.returncode == 0, renamed.stderr
    assert b"renamed study 'base' to 'caf?'" in renamed.stderr
    assert cli("show", "café").exit_code == 0  # stored as typed: the UTF-8 name
    shown = research("show", "café")
    assert shown.returncode == 0 and b"study caf?" in shown.stdout, shown.stderr
    missing = research("show", "thé")
    assert (missing.returncode, missing.stderr.strip()) == (2, b"error: no study 'th?' in research.db; studies: caf?")
    # a file name such a locale cannot write: "UnicodeEncodeError ... (this is a bug)" for a default
    # path, "Invalid value for '-o': Value error, 'ascii' codec ..." for a typed one
    fix = (b"; use a UTF-8 locale (export LC_ALL=C.UTF-8) or Python's UTF-8 mode (export PYTHONUTF8=1), or "
           b"give that file an ASCII name")
    for args, e, code in [(["plot", "café"], b"?", 1), (["plot", "café", "-o", "café.png"], "é".encode(), 2)]:
        plotted = research(*args)  # click writes the typed bytes of its own errors
        said = b"error: the file name 'caf" + e + b".png' cannot be written under this locale: its encoding (ascii) " \
            b"has no U+00E9 ('" + e + b"')" + fix
        assert (plotted.returncode, plotted.stderr.strip()) == (code, said)
    assert research("plot", "café", "-o", "cafe.png").returncode == 0
    # a data file such a locale cannot name: "café.csv: no such file", though it was there
    (stored / "café.csv").write_text("a,label\n" + "".join(f"{k},{k % 2}\n" for k in range(20)))
    trained = research("train", "--dataset", "csv", "--dataset-opt", "path=café.csv", "--epochs", "1")
    said = b"error: the file name 'caf?.csv' cannot be read under this locale: its encoding (ascii) has no U+00E9 ('?')"
    assert (trained.returncode, trained.stderr.strip()) == (2, said + fix)


def test_piped_tables_take_the_width_columns_gives(stored):
    """Piped output was 160 columns wide whatever COLUMNS said."""
    for width in (100, 200):
        shown = cli_with_columns(width, "show", "base")
        assert shown.exit_code == 0, shown.output
        lines = shown.stdout.splitlines()
        assert max(len(line) for line in lines) <= width
    assert max(len(line) for line in cli_with_columns(None, "show", "base").stdout.splitlines()) > 100


def cli_with_columns(width, *args):
    from research.cli import app
    from tests.studyutil import runner

    env = {"COLUMNS": str(width)} if width else {"COLUMNS": ""}
    return runner.invoke(app, list(args), env=env)


def test_a_terminal_too_narrow_for_the_table_gets_each_trial_as_a_block(stored):
    """At 40 columns the ranked table squeezed every column to '…' (the rank and trial empty);
    a narrow one leaves out the expendable columns and says so; one too narrow for any table
    shows each trial as lines, every value whole."""
    wide = cli_with_columns(200, "show", "base").stdout
    assert "final val acc" in " ".join(wide.split()) and "…" not in wide
    medium = cli_with_columns(88, "show", "base").stdout
    assert "left out for the terminal's width" in medium and "…" not in medium
    narrow = cli_with_columns(40, "show", "base").stdout
    assert "…" not in narrow
    lines = narrow.splitlines()
    assert lines[0] == "study base (caviar): best first"
    assert lines[1].startswith("1. trial ") and lines[2].split() == ["status", "finished"]
    assert any(line.split()[:3] == ["final", "val", "acc"] for line in lines)


def test_a_full_disk_says_so_and_what_to_do(stored):
    """`research export base > /dev/full` printed "[Errno 28] No space left on device"."""
    import subprocess

    from tests.studyutil import research_command

    with open("/dev/full", "w") as full:
        done = subprocess.run(research_command() + ["export", "base"], cwd=stored, stdout=full,
                              stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: no space left on the device; free some space and run the command again "
                                   "(what was stored before is kept)")

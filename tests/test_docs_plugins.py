"""docs/plugins.md as a plugin author uses it.

The example package is read from the page (each of its files is the fenced block after a line
naming the file, e.g. `research-myplugins/pyproject.toml`), installed with pip into a folder
of its own, and used as a user would: the installed `research` command run with that folder
on PYTHONPATH, the page's scripts run with `python`, and the page's other Python blocks run
in process.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.studyutil import research_command
from tests.thirdparty import pip_install

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
PACKAGE = "research-myplugins"
MODULE = "research_myplugins"
TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    file: str | None  # the file name on the line before the block, if there is one
    line: int  # where the block starts in the page


def blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order, with the file it is named as."""
    lines = text.splitlines(keepends=True)
    found, i = [], 0
    while i < len(lines):
        opening = re.fullmatch(r"```(\w*)\s*", lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        named = re.fullmatch(r"`([\w./-]+\.\w+)`", before)
        found.append(Block(opening.group(1), "".join(lines[i + 1:end]), named and named.group(1), i + 1))
        i = end + 1
    return found


PAGE = blocks(DOC.read_text())
FILES = {b.file: b for b in PAGE if b.file}
SCRIPTS = {name: b for name, b in FILES.items() if not name.startswith(f"{PACKAGE}/")}


def test_the_page_has_the_example_package_and_its_scripts():
    assert {f"{PACKAGE}/pyproject.toml", f"{PACKAGE}/{MODULE}.py"} <= set(FILES)
    assert {"train_lion.py", "lion_study.py", "printer.py"} <= set(SCRIPTS)
    pyproject = FILES[f"{PACKAGE}/pyproject.toml"].code
    assert 'dependencies = ["research-hparams", "numpy"]' in pyproject
    assert "[project.entry-points.research]" in pyproject


@pytest.mark.parametrize("block", [b for b in PAGE if b.language == "python"], ids=lambda b: f"line{b.line}")
def test_every_python_block_compiles(block):
    compile(block.code, f"{DOC.name}:{block.line}", "exec")


# -- installed with pip -----------------------------------------------------------------------




@dataclass(frozen=True)
class Installed:
    target: Path  # what pip installed: the module and its dist-info
    source: Path  # the package as written from the page


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed in this environment")
    root = tmp_path_factory.mktemp("package")
    for name, block in FILES.items():
        if name.startswith(f"{PACKAGE}/"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(block.code)
    target = root / "site"
    pip_install(root / PACKAGE, target, TIMEOUT)
    assert (target / f"{MODULE}.py").exists()
    return Installed(target, root / PACKAGE)


def environment(pythonpath: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def research(args: list[str], cwd: Path, site: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run the installed `research` with ``site`` on PYTHONPATH; also returns its pid."""
    process = subprocess.Popen(research_command() + args, cwd=cwd, env=environment(site), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), process.pid


def python(script: Path, cwd: Path, site: Path | None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=environment(site), capture_output=True,
                          text=True, timeout=TIMEOUT)


def epoch_log(folder: Path) -> list[dict[str, str]]:
    """The example observer's lines: ``STUDY trial N epoch E val_acc A pid P``."""
    rows = []
    for line in (folder / "epochs.log").read_text().splitlines():
        study, _, number, _, epoch, _, acc, _, pid = line.split()
        rows.append({"study": study, "trial": number, "epoch": epoch, "val_acc": acc, "pid": pid})
    return rows


def test_research_plugins_lists_the_example_with_its_distribution(installed, tmp_path):
    done, _ = research(["plugins", "--json"], tmp_path, installed.target)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    [mine] = [p for p in listed["plugins"] if p["distribution"] == PACKAGE]
    assert mine["name"] == "myplugins" and mine["module"] == MODULE and mine["version"] == "0.1.0"
    assert mine["registers"] == {"optimizers": ["lion"], "datasets": ["rings"], "samplers": ["halton"],
                                 "strategies": ["sequential"]}
    assert mine["observes"] == ["on_epoch_end"]
    assert mine["error"] is None and listed["problems"] == []


def test_the_commands_on_the_page_run_as_shown(installed, tmp_path):
    [shown] = [b for b in PAGE if b.language == "bash" and f"pip install ./{PACKAGE}" in b.code]
    commands = [shlex.split(line) for line in shown.code.replace("\\\n", " ").splitlines() if line.strip()]
    assert commands[0] == ["pip", "install", f"./{PACKAGE}"]  # done by the fixture, into its own folder
    outputs = {}
    for command in commands[1:]:
        assert command[0] == "research"
        done, _ = research(command[1:], tmp_path, installed.target)
        assert done.returncode == 0, f"{shlex.join(command)}\n{done.stdout}\n{done.stderr}"
        outputs[shlex.join(command)] = done.stdout
    [one_model] = [out for command, out in outputs.items() if "train" in command and "--strategy" not in command]
    assert "finished: best val acc" in one_model
    log = outputs["research log sequential-1"]
    assert "early-stop" in log and "stopped after trial" in log
    studies = {row["study"] for row in epoch_log(tmp_path)}
    assert studies == {"-", "caviar-1", "sequential-1"}  # the observer heard all three runs


def test_one_model_with_the_example_optimizer_and_dataset(installed, tmp_path):
    done, pid = research(["train", "--optimizer", "lion", "--dataset", "rings", "--dataset-opt", "rings=4",
                          "--epochs", "3", "--hidden", "16", "--json"], tmp_path, installed.target)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "finished" and len(result["history"]) == 3
    assert result["config"]["optimizer"] == "lion" and result["config"]["dataset"] == "rings"
    assert {k: result["config"][k] for k in ("lr", "beta1", "beta2", "weight_decay")} == {
        "lr": 3e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0}
    log = epoch_log(tmp_path)
    assert [row["epoch"] for row in log] == ["1", "2", "3"]
    assert {row["pid"] for row in log} == {str(pid)}  # a lone model trains in the command's process


def test_a_caviar_study_with_the_example_runs_the_observer_in_the_workers(installed, tmp_path):
    done, pid = research(["train", "--strategy", "caviar", "--trials", "4", "--workers", "2", "--executor", "process",
                          "--sampler", "halton", "--optimizer", "lion", "--dataset", "rings", "--epochs", "2",
                          "--hidden", "16", "--json"], tmp_path, installed.target)
    assert done.returncode == 0, done.stderr
    trials = json.loads(done.stdout)["trials"]
    assert sorted(t["number"] for t in trials) == [0, 1, 2, 3]
    assert all(t["status"] == "finished" and t["epochs"] == 2 for t in trials)

    # Every trial's values are the Halton points of Lion's declared space.
    spec = importlib.util.spec_from_file_location("doc_example_plugins", installed.target / f"{MODULE}.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    from research.study.history import History

    space = example.Lion.search_space
    for trial in trials:
        expected = example.Halton().ask(space, History(number=trial["number"], budget=4, seed=0), None)
        assert {name: trial["config"][name] for name in space} == pytest.approx(expected, rel=1e-12)

    log = epoch_log(tmp_path)
    assert sorted((row["trial"], row["epoch"]) for row in log) == [(str(n), str(e)) for n in range(4) for e in (1, 2)]
    assert {row["study"] for row in log} == {"caviar-1"}
    workers = {row["pid"] for row in log}
    assert str(pid) not in workers and 1 <= len(workers) <= 2


def test_the_example_strategy_resumes_a_stopped_trial_from_its_checkpoint(installed, tmp_path):
    """SIGTERM in the middle of a sequential trial, then `research resume`: the interrupted trial
    trains on from its checkpoint and the study equals an uninterrupted one, epoch for epoch."""
    args = ["train", "--strategy", "sequential", "--study", "s", "--trials", "3", "--patience", "5",
            "--optimizer", "lion", "--dataset", "rings", "--epochs", "300", "--hidden", "16"]
    (tmp_path / "whole").mkdir()
    whole, _ = research(args, tmp_path / "whole", installed.target)
    assert whole.returncode == 0, whole.stderr
    (tmp_path / "cut").mkdir()
    process = subprocess.Popen(research_command() + args, cwd=tmp_path / "cut", env=environment(installed.target),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "cut" / "epochs.log"
    deadline = time.monotonic() + TIMEOUT
    while not (log.exists() and len(log.read_text().splitlines()) >= 350) and time.monotonic() < deadline:
        time.sleep(0.05)  # trial 1 is training
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 143, err
    resumed, _ = research(["resume", "s"], tmp_path / "cut", installed.target)
    assert resumed.returncode == 0, resumed.stderr

    def exported(folder: Path) -> list[list[str]]:
        done, _ = research(["export", "s", "--format", "csv"], folder, installed.target)
        assert done.returncode == 0, done.stderr
        rows = [line.split(",") for line in done.stdout.splitlines()]
        seconds = rows[0].index("seconds")
        return [row[:seconds] + row[seconds + 1:] for row in rows]

    assert exported(tmp_path / "cut") == exported(tmp_path / "whole")


def test_the_example_strategy_declares_its_flag_and_the_settings_it_accepts(installed, tmp_path):
    help_text, _ = research(["train", "--help"], tmp_path, installed.target)
    assert "--patience" in help_text.stdout and "(strategy sequential)" in help_text.stdout
    refused = {
        ("--strategy", "sequential", "--workers", "2"):
            "error: strategy 'sequential' does not use --workers (of the study settings it uses --space, --trials, "
            "--sampler); drop it",
        ("--strategy", "caviar", "--patience", "2"):
            "error: --patience does not apply to strategy 'caviar'; it is an option of --strategy sequential",
        ("--strategy", "caviar", "--trials", "1", "--sampler", "halton", "--sampler-opt", "shift=maybe"):
            "error: sampler 'halton': shift must be true or false, got 'maybe'",
        ("--optimizer", "lion", "--opt", "beta1=1.5"): "error: optimizer 'lion': beta1 must be a number in [0, 1), got '1.5'",
        ("--dataset", "rings", "--dataset-opt", "n_samples=5"):
            "error: dataset 'rings': n_samples must be at least 2 per ring (6), got 5",
    }
    for args, message in refused.items():
        done, _ = research(["train", "--epochs", "1", *args], tmp_path, installed.target)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "research.db").exists()


# -- the page's scripts and in-process examples -----------------------------------------------


def script_folder(root: Path, name: str, installed: Installed, beside: bool) -> Path:
    """A fresh working folder holding the page's script ``name`` (and, when ``beside``, the
    example module next to it, not installed)."""
    folder = root / name.removesuffix(".py")
    folder.mkdir()
    (folder / name).write_text(SCRIPTS[name].code)
    if beside:
        (folder / f"{MODULE}.py").write_text((installed.source / f"{MODULE}.py").read_text())
    return folder


def test_the_scripts_run_with_the_module_beside_them_not_installed(installed, tmp_path):
    folder = script_folder(tmp_path, "train_lion.py", installed, beside=True)
    done = python(folder / "train_lion.py", folder, None)
    assert done.returncode == 0, done.stderr
    status, best = done.stdout.split()
    assert status == "finished" and 0 < float(best) <= 1

    folder = script_folder(tmp_path, "lion_study.py", installed, beside=True)
    done = python(folder / "lion_study.py", folder, None)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert sorted(int(r[0]) for r in rows) == [0, 1, 2, 3] and {r[1] for r in rows} == {"finished"}
    shown = next(b.code for b in PAGE if b.code.startswith("$ python lion_study.py\n"))
    assert done.stdout.splitlines() == shown.splitlines()[1:], done.stdout  # what the page prints, exactly
    assert len(epoch_log(folder)) == 4 * 3
    assert "warning" not in done.stderr


def test_the_study_script_runs_with_the_installed_package(installed, tmp_path):
    folder = script_folder(tmp_path, "lion_study.py", installed, beside=False)
    done = python(folder / "lion_study.py", folder, installed.target)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert sorted(int(r[0]) for r in rows) == [0, 1, 2, 3] and {r[1] for r in rows} == {"finished"}
    log = epoch_log(folder)
    assert len(log) == 4 * 3 and {row["study"] for row in log} == {"lion-rings"}


def test_a_plugin_object_from_a_script_is_refused_for_process_workers_and_works_serially(installed, tmp_path):
    folder = script_folder(tmp_path, "printer.py", installed, beside=False)
    done = python(folder / "printer.py", folder, None)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r"trial \d: finished, best val acc [01]\.\d{3}", line) for line in lines)

    code = SCRIPTS["printer.py"].code
    assert 'executor="serial"' in code
    (folder / "printer.py").write_text(code.replace('executor="serial"', 'executor="process", workers=2'))
    refused = python(folder / "printer.py", folder, None)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "research.plugins.PluginError: the process executor trains in other processes, which cannot import "
        "<in process: Printer>: define the plugin in an importable module, or use an executor that trains in this "
        "process (serial)")
    assert "research.plugins.PluginError: the process executor" in DOC.read_text()


RUNNER = textwrap.dedent('''
    import json, sys
    for index, code in enumerate(json.load(open(sys.argv[1]))):
        exec(compile(code, f"block {index}", "exec"), {"__name__": "doc_block"})
        print(f"-- block {index} ran")
''')


def test_the_in_process_examples_run(installed, tmp_path):
    examples = [b.code for b in PAGE if b.language == "python" and b.file is None]
    assert len(examples) >= 3
    (tmp_path / "blocks.json").write_text(json.dumps(examples))
    (tmp_path / "runner.py").write_text(RUNNER)
    done = subprocess.run([sys.executable, "runner.py", "blocks.json"], cwd=tmp_path,
                          env=environment(installed.target), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ran") == len(examples)
    assert "sampler 'halton': shift must be true or false, got 'maybe'" in done.stdout.splitlines()


def test_int_log_probabilities_are_the_ones_the_page_states():
    from research.space import Int

    text = DOC.read_text()
    assert "1 is drawn 50.0 % of the time, 2 23.2 %, 3 15.3 % and 4 11.4 %" in text
    param = Int(1, 4, "log")
    draws = [param.from_unit(u) for u in np.linspace(0.0, 1.0, 200_001)]
    shares = np.bincount(draws, minlength=5)[1:] / len(draws)
    assert np.round(shares * 100, 1).tolist() == [50.0, 23.2, 15.3, 11.4]

"""docs/own-model.md as a researcher follows it.

The page shows the files of docs/examples/ in full; the first test checks that it shows each
one exactly. The others copy those files into a folder of their own, put it on PYTHONPATH (the
model package is installed there with pip) and run the installed `research` command as the
page does: the model plugin alone and in a caviar study; the numpy training loop alone (and
resumed from its checkpoint), in caviar with two worker processes, babysat with `research
set` from a second process, and killed with SIGKILL then resumed to the same curves; and the
same for the PyTorch loop (caviar with ASHA, babysit with a remote set, SIGKILL and resume),
skipped when torch is not installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from research.study.store import Store
from tests.studyutil import WAIT, Folder, cli, events, kill_then_resume, live_epochs, research_command, stored, wait_for
from tests.thirdparty import pip_install

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "own-model.md"
EXAMPLES = ROOT / "docs" / "examples"
PACKAGE = "research-tanhnet"
SHOWN = (f"{PACKAGE}/pyproject.toml", f"{PACKAGE}/research_tanhnet.py", "my_loop.py", "torch_digits.py",
         "digits_script.py")


def fenced(text: str) -> list[tuple[str, str]]:
    """Every fenced block of ``text`` as (the last non-empty line before it, its code)."""
    found, before, lines, i = [], "", text.splitlines(keepends=True), 0
    while i < len(lines):
        if re.fullmatch(r"```\w*\s*", lines[i]):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            found.append((before, "".join(lines[i + 1:end])))
            i, before = end + 1, "```"
            continue
        if lines[i].strip():
            before = lines[i].strip()
        i += 1
    return found


def test_the_page_shows_every_example_file_exactly():
    blocks = dict((name.strip("`"), code) for name, code in fenced(DOC.read_text()) if name.startswith("`"))
    for name in SHOWN:
        assert name in blocks, f"docs/own-model.md does not show {name} (a line `{name}` before its block)"
        assert blocks[name] == (EXAMPLES / name).read_text(), f"docs/own-model.md shows another {name}"


# -- running `research` as the page does ------------------------------------------------------


@pytest.mark.parametrize("name, value", [("lr", "-5"), ("lr", "0"), ("momentum", "-1"), ("momentum", "1")])
def test_the_example_loop_refuses_values_it_cannot_train_with(name, value):
    """It took any number: `research set babysit-1 lr=-5` was applied and its outcome kept."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_loop_example", EXAMPLES / "my_loop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    trainer = module.Trainer({"lr": 0.1, "momentum": 0.5, "epochs": 1})
    with pytest.raises(ValueError, match=rf"^{name} must be "):
        trainer.set_hyper(name, value)
    assert trainer.tunable() == {"lr": 0.1, "momentum": 0.5}


def copy_examples(site: Path, *names: str) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    for name in names:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLES / name, site / name)
    return site


# -- (a) a model plugin -----------------------------------------------------------------------




@pytest.fixture(scope="module")
def tanhnet(tmp_path_factory) -> Path:
    """The page's model package, installed with pip into a folder of its own."""
    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed in this environment")
    root = tmp_path_factory.mktemp("tanhnet")
    source = root / PACKAGE
    copy_examples(source.parent, *(name for name in SHOWN if name.startswith(PACKAGE)))
    target = root / "site"
    pip_install(source, target, WAIT)
    return target


def test_the_model_plugin_is_listed_and_trains_alone(tanhnet, tmp_path):
    here = Folder(tmp_path, tanhnet)
    listed = here.json("plugins")
    [mine] = [p for p in listed["plugins"] if p["distribution"] == PACKAGE]
    assert mine["registers"] == {"models": ["tanhnet"]} and mine["error"] is None

    one = here.json("train", "--model", "tanhnet", "--width", "32", "--epochs", "5", "--lr", "0.01")
    assert one["status"] == "finished" and len(one["history"]) == 5
    assert one["config"]["model"] == "tanhnet" and one["config"]["width"] == 32
    assert max(m["val_acc"] for m in one["history"]) > 0.9

    by_path = here.json("train", "--model", "research_tanhnet:TanhNet", "--model-opt", "width=16", "--epochs", "1")
    assert by_path["status"] == "finished" and by_path["config"]["width"] == 16

    refused = here.run("train", "--model", "tanhnet", "--hidden", "32")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: --hidden does not apply to model 'tanhnet'; it is an option of --model mlp"


def test_the_model_plugin_in_a_caviar_study_with_two_workers(tanhnet, tmp_path):
    here = Folder(tmp_path, tanhnet)
    trials = here.json("train", "--strategy", "caviar", "--model", "tanhnet", "--trials", "4", "--workers", "2",
                       "--epochs", "3", "--space", "lr=log:1e-3..1e-1", "--space", "width=int:log:8..128")["trials"]
    assert sorted(t["number"] for t in trials) == [0, 1, 2, 3]
    assert all(t["status"] == "finished" and t["epochs"] == 3 for t in trials)
    assert all(8 <= t["config"]["width"] <= 128 for t in trials)


# -- (b) your own training loop, in numpy -----------------------------------------------------


LOOP = "my_loop:Trainer"


@pytest.fixture
def loop(tmp_path) -> Folder:
    return Folder(tmp_path / "work", copy_examples(tmp_path / "site", "my_loop.py"))


def test_the_loop_trains_alone_and_resumes_from_its_checkpoint(loop):
    """As the page runs it (5 epochs with a checkpoint, then 8 from it), to the digits the page
    prints: its tables had gone stale when the data gained a test split."""
    whole = loop.json("train", "--trainer", LOOP, "--epochs", "8", "--lr", "0.1")
    assert whole["status"] == "finished"
    assert [set(m) for m in whole["history"]] == [{"train_loss", "val_loss", "val_acc", "worst_class_acc"}] * 8

    first = loop.json("train", "--trainer", LOOP, "--epochs", "5", "--lr", "0.1", "--checkpoint", "run.npz")
    assert first["history"] == whole["history"][:5]
    resumed = loop.run("train", "--trainer", LOOP, "--epochs", "8", "--lr", "0.1", "--checkpoint", "run.npz",
                       "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from run.npz at epoch 5" in resumed.stderr
    assert json.loads(resumed.stdout)["history"] == whole["history"]
    section = DOC.read_text().split("### Alone, and resumed from a checkpoint")[1].split("### A caviar study")[0]
    shown = {int(row[0]): [float(v) for v in row[1:]] for row in re.findall(
        r"│\s+(\d+) │\s+([\d.]+) │\s+([\d.]+) │\s+([\d.]+) │\s+([\d.]+) │", section)}
    assert shown == {epoch: [round(m[k], 4) for k in ("train_loss", "val_loss", "val_acc", "worst_class_acc")]
                     for epoch, m in enumerate(whole["history"], start=1)}


def test_the_loop_in_caviar_with_two_process_workers_and_its_own_metric(loop):
    trials = loop.json("train", "--strategy", "caviar", "--trainer", LOOP, "--trials", "4", "--workers", "2",
                       "--epochs", "3", "--space", "lr=log:1e-3..1", "--space", "momentum=0.5,0.9,0.99",
                       "--metric", "worst_class_acc")["trials"]
    assert [t["status"] for t in trials] == ["finished"] * 4
    best = [t["best_worst_class_acc"] for t in trials]
    assert best == sorted(best, reverse=True)
    assert all(t["config"]["momentum"] in (0.5, 0.9, 0.99) for t in trials)
    _, curves = stored(loop.db, "caviar-1")
    assert all(len(curve) == 3 and "worst_class_acc" in curve[-1] for curve in curves.values())

    refused = loop.run("train", "--strategy", "caviar", "--trainer", LOOP, "--metric", "worst")
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("error: unknown metric 'worst'; choose one of: val_acc, val_loss, train_loss, "
                                      "worst_class_acc")


def babysit_then_set(folder: Folder, reap: list, trainer: str, study: str, lr: str, new: str, least: int,
                     segments: int) -> tuple[subprocess.Popen, dict[str, Any]]:
    """Babysit ``trainer`` at ``lr``, send `research set STUDY lr=NEW` once ``least`` epochs are
    committed, and return the run and the change it recorded (checked to be that one)."""
    process = folder.start("babysit", "train", "--strategy", "babysit", "--trainer", trainer, "--lr", lr,
                           "--segment-epochs", "1", "--segments", str(segments), "--policy", "none", "--study", study)
    reap.append(process)
    assert wait_for(lambda: live_epochs(folder.db) >= least, WAIT, process=process), folder.said("babysit")
    sent = folder.run("set", study, f"lr={new}")
    assert sent.returncode == 0, sent.stderr
    assert f"queued set lr={new} for '{study}': applied at its next segment boundary" in sent.stderr
    assert wait_for(lambda: events(folder.db, study, "change"), WAIT, process=process), folder.said("babysit")
    change = events(folder.db, study, "change")[0]["data"]
    assert (change["name"], change["old"], change["new"], change["source"]) == ("lr", float(lr), float(new), "remote")
    return process, change


def test_the_loop_babysat_with_research_set_from_another_process(loop, reap):
    process, change = babysit_then_set(loop, reap, LOOP, "b", "0.5", "0.05", least=2, segments=2000)
    assert wait_for(lambda: len(events(loop.db, "b", "segment")) > change["epoch"] + 1, WAIT, process=process)

    stopped = cli("stop", "b", "--store", loop.db)  # in this process: only the store matters
    assert stopped.exit_code == 0, stopped.output
    assert process.wait(timeout=WAIT) == 0, loop.said("babysit")
    segments = events(loop.db, "b", "segment")
    assert segments[-1]["data"]["hyper"] == {"lr": 0.05, "momentum": 0.9}
    assert [e["data"]["hyper"]["lr"] for e in segments if e["data"]["epoch"] < change["epoch"]] == \
        [0.5] * (change["epoch"] - 1)


def test_the_loop_babysat_at_the_prompt_changes_its_momentum(loop):
    done = subprocess.run(research_command() + ["train", "--strategy", "babysit", "--trainer", LOOP, "--segment-epochs",
                                                "2", "--segments", "3", "--policy", "none", "--interactive"],
                          cwd=loop.path, env=loop.env, input="set momentum=0.5\ncontinue\n", capture_output=True,
                          text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    [change] = events(loop.db, "babysit-1", "change")
    assert (change["data"]["name"], change["data"]["old"], change["data"]["new"]) == ("momentum", 0.9, 0.5)


def test_the_loop_killed_then_resumed_gives_the_same_curves(loop, tmp_path, reap):
    command = ["train", "--strategy", "caviar", "--trainer", LOOP, "--trials", "4", "--workers", "2", "--epochs",
               "30", "--batch-size", "16", "--space", "lr=log:1e-3..1", "--study", "long"]
    reference = Folder(tmp_path / "reference", loop.site)
    straight = reference.start("straight", *command)
    reap.append(straight)
    kill_then_resume(loop, command, least=8)
    assert straight.wait(timeout=WAIT) == 0, reference.said("straight")
    statuses, curves = stored(loop.db, "long")
    assert statuses == {n: "finished" for n in range(4)}
    assert (statuses, curves) == stored(reference.db, "long")
    assert all(len(curve) == 30 and "worst_class_acc" in curve[0] for curve in curves.values())


# -- (c) the PyTorch example ------------------------------------------------------------------


TORCH = "torch_digits:Trainer"


@pytest.fixture
def torch_loop(tmp_path, monkeypatch) -> Folder:
    pytest.importorskip("torch")
    site = copy_examples(tmp_path / "site", "torch_digits.py")
    monkeypatch.syspath_prepend(str(site))  # for the in-process reference run
    yield Folder(tmp_path / "work", site)
    sys.modules.pop("torch_digits", None)


def test_torch_babysat_with_research_set_from_another_process(torch_loop, reap):
    here = torch_loop
    process, change = babysit_then_set(here, reap, TORCH, "tb", "0.01", "0.001", least=1, segments=400)
    assert wait_for(lambda: live_epochs(here.db) >= change["epoch"] + 2, WAIT, process=process)
    assert cli("stop", "tb", "--store", here.db).exit_code == 0
    assert process.wait(timeout=WAIT) == 0, here.said("babysit")
    _, curves = stored(here.db, "tb")
    rates = [row["lr"] for row in curves[0]]
    assert rates[:change["epoch"]] == [0.01] * change["epoch"]
    assert set(rates[change["epoch"]:]) == {0.001} and len(rates) >= change["epoch"] + 2


def test_torch_in_caviar_with_asha_killed_then_resumed_gives_the_same_curves(torch_loop):
    """The page's ASHA study, smaller, SIGKILLed mid-way and run again: every trial ends
    finished or pruned, and the curve of every trial the kill interrupted is the one it gives
    trained straight through in this process (up to where it stopped, if pruned)."""
    command = ["train", "--strategy", "caviar", "--trainer", TORCH, "--trials", "6", "--workers", "2", "--epochs",
               "4", "--space", "lr=log:1e-4..1e-1", "--space", "channels=4,8", "--prune", "asha", "--study", "tk"]
    interrupted = kill_then_resume(torch_loop, command, least=4)
    statuses, curves = stored(torch_loop.db, "tk")
    with Store(torch_loop.db, create=False) as store:
        trials = {t.number: t for t in store.trials(store.study("tk"))}
    assert sorted(statuses) == list(range(6)) and set(statuses.values()) == {"finished", "pruned"}
    for number, status in statuses.items():
        assert len(curves[number]) == 4 if status == "finished" else len(curves[number]) < 4
        assert status == "finished" or trials[number].error.startswith("ASHA rung ")

    from research.plugins import load_plugins
    from research.study.trainer import make_trainer

    plugins = load_plugins()
    for number in interrupted:
        trainer = make_trainer(trials[number].config, plugins)
        straight = [trainer.train_epoch() for _ in curves[number]]
        assert curves[number] == [{"epoch": epoch, **metrics} for epoch, metrics in enumerate(straight, start=1)]

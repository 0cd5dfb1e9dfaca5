"""Coarse to fine across studies: ``--from-study NAME`` starts a study in a box around NAME's
best quarter of trials, on each parameter's own scale, copied so the source may be deleted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from research.space import Choice, Condition, Float, Int, parse_space
from research.study.zoom import MIN_WIDTH, _narrowed, _without_dead_conditions
from tests.studyutil import cli

SOURCE = ["train", "--strategy", "caviar", "--trials", "12", "--epochs", "2", "--hidden", "8", "--executor", "serial",
          "--space", "lr=log:1e-4..1", "--space", "beta1=log1m:0.8..0.999", "--space", "layers=1,2,3"]


def settings_of(db: Path, name: str) -> dict:
    connection = sqlite3.connect(db)
    try:
        return json.loads(connection.execute("SELECT settings FROM studies WHERE name = ?", (name,)).fetchone()[0])
    finally:
        connection.close()


def best_quarter(db: Path, name: str) -> list[dict]:
    rows = json.loads(cli("show", name, "--store", db, "--json").stdout)["trials"]
    finished = [r for r in rows if r["status"] == "finished"]
    return [r["config"] for r in finished[:(len(finished) + 3) // 4]]


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = cli(*SOURCE, "--study", "src", "--plot", "src.png")
    assert done.exit_code == 0, done.output
    return tmp_path / "research.db"


def test_the_box_holds_the_source_s_best_quarter_and_is_narrower(source):
    done = cli("train", "--strategy", "caviar", "--study", "fine", "--from-study", "src", "--trials", "3",
               "--epochs", "1", "--hidden", "8", "--executor", "serial", "--plot", "fine.png")
    assert done.exit_code == 0, done.output
    assert "a box around the best quarter of study 'src''s trials" in done.stderr
    settings = settings_of(source, "fine")
    assert settings["from_study"] == "src"
    space = parse_space(settings["space"])
    wide = parse_space(settings_of(source, "src")["space"])
    for config in best_quarter(source, "src"):
        assert all(space[name].contains(config[name]) for name in space), (config, settings["space"])
    lr, beta1 = space["lr"], space["beta1"]
    assert lr.scale == "log" and beta1.scale == "log1m"
    assert wide["lr"].low <= lr.low < lr.high <= wide["lr"].high
    assert (lr.to_unit(lr.high) - lr.to_unit(lr.low)) < 1 or beta1.low > 0.8  # something narrowed
    reported = cli("report", "fine", "-o", "fine.html")  # it listed the box's ranges, not where they came from
    assert reported.exit_code == 0, reported.output
    assert "A box around the best quarter of study 'src''s trials" in (source.parent / "fine.html").read_text()


def test_the_new_study_resumes_after_the_source_is_deleted(source):
    args = ["train", "--strategy", "caviar", "--study", "fine", "--from-study", "src", "--trials", "2", "--epochs", "1",
            "--hidden", "8", "--executor", "serial", "--plot", "fine.png"]
    assert cli(*args).exit_code == 0
    copied = settings_of(source, "fine")["space"]
    assert cli("delete", "src", "--yes").exit_code == 0
    again = cli("resume", "fine", "--trials", "3", "--executor", "serial", "--plot", "fine.png")
    assert again.exit_code == 0, again.output
    assert settings_of(source, "fine")["space"] == copied
    assert settings_of(source, "fine")["from_study"] == "src"
    same = cli(*args[:-6], "--trials", "4", "--executor", "serial", "--plot", "fine.png")  # the same flags, resumed
    assert same.exit_code == 0, same.output


def test_space_flags_add_or_replace_names_of_the_box(source):
    done = cli("train", "--strategy", "caviar", "--study", "mixed", "--from-study", "src", "--space", "layers=2",
               "--space", "hidden=int:8..16", "--trials", "2", "--epochs", "1", "--executor", "serial",
               "--plot", "m.png")
    assert done.exit_code == 0, done.output
    space = settings_of(source, "mixed")["space"]
    assert space["layers"] == "2" and space["hidden"] == "int:8..16" and set(space) == {"lr", "beta1", "layers",
                                                                                          "hidden"}


@pytest.mark.parametrize("args, says", [
    (["--from-study", "nosuch"], "no study 'nosuch'"),
    (["--from-study", "src", "--store", "other.db"], "there is no store other.db to read it from"),
])
def test_bad_sources_are_one_line(source, args, says):
    result = cli("train", "--strategy", "caviar", *args)
    assert result.exit_code == 2 and says in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_source_with_too_few_scored_trials_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(*SOURCE[:3], "--trials", "2", *SOURCE[5:], "--study", "small", "--plot", "s.png").exit_code == 0
    result = cli("train", "--strategy", "caviar", "--from-study", "small")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: study 'small' has 2 trials with a score (finished, pruned or diverged); "
                                     "--from-study needs at least 4; resume it with more --trials first")


def test_a_source_whose_trials_failed_or_tie_is_refused_with_its_fix(tmp_path, monkeypatch):
    from research.study.store import Store

    monkeypatch.chdir(tmp_path)
    with Store(tmp_path / "research.db") as store:
        for name, status in (("failing", "failed"), ("flat", "pruned")):
            study = store.create_study(name, "caviar", {"space": {"lr": "log:1e-3..1"}, "base": {}})
            for number in range(6):
                trial = store.add_trial(study, number, {"lr": 0.01 * (number + 1)}, number)
                if status == "pruned":  # pruned trials' scores count: all 0.5 here
                    store.add_epoch(trial, 1, {"val_acc": 0.5, "val_loss": 1.0})
                store.set_status(trial, status)
    failing = cli("train", "--strategy", "caviar", "--from-study", "failing")
    assert failing.exit_code == 2 and failing.stderr.strip().endswith(
        "needs at least 4; 6 failed: fix the cause, then `research resume failing --retry-failed`")
    flat = cli("train", "--strategy", "caviar", "--from-study", "flat")
    assert flat.exit_code == 2 and flat.stderr.strip() == (
        "error: the 6 scored trials of study 'flat' all have the same score, so no region is better than another; "
        "zoom into a study whose metric tells its trials apart")


def test_babysit_does_not_take_it(source):
    result = cli("train", "--strategy", "babysit", "--from-study", "src")
    assert result.exit_code == 2 and "does not use --space/--from-study" in result.stderr


# -- the box, axis by axis -------------------------------------------------------------------


def test_a_float_box_is_on_its_scale_padded_and_rounded_outward():
    lr = Float(1e-4, 1.0, "log", name="lr")
    box = _narrowed(lr, [1e-3, 1e-2])
    assert box.low <= 1e-3 and box.high >= 1e-2 and box.scale == "log"
    assert lr.to_unit(box.low) == pytest.approx(0.25 - 0.0625, abs=0.01)  # a quarter of the width padded
    assert len(repr(box.low)) <= 8 and len(repr(box.high)) <= 8  # three significant digits
    beta = Float(0.9, 0.9999, "log1m", name="beta")
    box = _narrowed(beta, [0.99, 0.999])
    assert box.low <= 0.99 and box.high >= 0.999 and box.high < 0.9999


def test_one_value_still_leaves_a_box_of_the_least_width():
    lr = Float(1e-4, 1.0, "log", name="lr")
    box = _narrowed(lr, [1e-2])
    assert lr.to_unit(box.high) - lr.to_unit(box.low) == pytest.approx(MIN_WIDTH, abs=0.01)
    assert _narrowed(Int(1, 8, name="k"), [8]) == Int(7, 8, name="k")


def test_a_choice_keeps_the_values_the_best_took_and_conditions_follow():
    space = {"optimizer": Choice(("adam", "momentum", "sgd"), name="optimizer"),
             "beta2": Float(0.99, 0.9999, "log1m", name="beta2", when=Condition("optimizer", "=", ("adam", "sgd"))),
             "beta": Float(0.9, 0.999, "log1m", name="beta", when=Condition("optimizer", "=", ("momentum",)))}
    narrowed = {**space, "optimizer": _narrowed(space["optimizer"], ["adam", "adam"])}
    assert _without_dead_conditions(narrowed) == {"optimizer": "adam",
                                                  "beta2": "log1m:0.99..0.9999 if optimizer=adam"}


def test_a_comparison_that_no_longer_holds_drops_its_parameter():
    """layers>=1 when the best kept only layers=0: the box had kept hidden (from the inactive
    trials' default 128, outside the searched range, clipped to its top)."""
    space = {"layers": Choice((0,), name="layers"),
             "hidden": Int(2, 4, name="hidden", when=Condition("layers", ">=", (1,)))}
    assert _without_dead_conditions(space) == {"layers": "0"}


def test_the_box_ignores_values_of_parameters_inactive_in_a_trial(tmp_path):
    """A store written before inactive parameters were left out holds a plugin's default
    there (adamw's beta2 = 0.999): it must not stretch the box, nor count for importance."""
    from research.study.importance import study_importance
    from research.study.store import Store
    from research.study.zoom import best_region

    space = {"optimizer": "adam,adamw", "beta2": "log1m:0.9..0.9999 if optimizer=adam", "lr": "log:1e-3..1"}
    with Store(tmp_path / "r.db") as store:
        study = store.create_study("old", "caviar", {"space": space, "base": {}, "metric": "val_acc",
                                                     "direction": "maximize"})
        for number in range(12):
            adam = number % 2 == 0
            config = {"optimizer": "adam" if adam else "adamw", "beta2": 0.9 + 0.0001 * number if adam else 0.999,
                      "lr": 10 ** (-3 + number / 4)}
            trial = store.add_trial(study, number, config, number)
            store.add_epoch(trial, 1, {"val_acc": 1.0 - number / 100 - (0.5 if adam else 0.0), "val_loss": 1.0})
            store.set_status(trial, "finished")
        region = best_region(store, "old")
        assert region["optimizer"] == "adamw" and "beta2" not in region  # only adamw at the top
        beta2 = next(p for p in study_importance(store, store.study("old")).params if p.name == "beta2")
        assert beta2.trials == 6

"""Pruners: ASHA and the median rule decide exactly as their rules say, on curves written by
hand; bad options are one line; in a caviar study pruned trials keep their curves and their
reason, `research show` counts them and the epochs saved, and a killed study resumes
without un-pruning or repeating anything."""

from __future__ import annotations

import json
import math
import multiprocessing

import pytest
from research_plugins.pruners import ASHA, Median

from research.plugins import load_plugins
from research.study.store import Store
from research.study.study import QuietReporter, StudySettings, open_study
from tests.studyutil import cli, curves, integrity, kept_epochs, kill_group, query, run, start, wait_for


def decide(pruner, events, max_epochs):
    """Feed ``(trial, epoch, value)`` arrivals in order, as caviar does after each committed
    epoch; returns each arrival's decision (None: the trial goes on)."""
    curves: dict[int, list[float | None]] = {}
    decisions = []
    for number, epoch, value in events:
        curves.setdefault(number, []).append(value)
        assert len(curves[number]) == epoch
        decisions.append(pruner.prune(number, epoch, curves, max_epochs))
    return decisions


# ASHA, reduction 3, min_epochs 1, 9 epochs: rungs at epochs 1 and 3. A trial goes on from a
# rung when it is at least the max(1, n // 3)-th best of the n trials that reached the rung.
ASHA_EVENTS = [
    # trial, epoch, val_acc, decision worked out by hand
    (0, 1, 0.50, None),  # rung 1, first arrival: n=1, keep 1
    (0, 2, 0.55, None),  # epoch 2 is no rung
    (1, 1, 0.60, None),  # n=2, keep 1: the best so far
    (0, 3, 0.62, None),  # rung 3, first arrival
    (2, 1, 0.40, "ASHA rung 1: ranked 3 of 3 trials; the top 1 (1/3) go on"),
    (1, 2, 0.66, None),
    (1, 3, 0.70, None),  # rung 3: n=2, keep 1: 0.70 beats 0.62
    (3, 1, 0.70, None),  # n=4, keep 1: a tie with the threshold goes on
    (0, 4, 0.63, None),
    (4, 1, 0.55, "ASHA rung 1: ranked 3 of 5 trials; the top 1 (1/3) go on"),
    (3, 2, 0.72, None),
    (3, 3, 0.60, "ASHA rung 3: ranked 3 of 3 trials; the top 1 (1/3) go on"),
    (5, 1, 0.30, "ASHA rung 1: ranked 6 of 6 trials; the top 2 (1/3) go on"),  # keep 2 now
    (6, 1, 0.65, None),  # n=7, keep 2: 0.70, 0.65
    (7, 1, 0.80, None),  # n=8, keep 2: 0.80, 0.70
    (8, 1, 0.45, "ASHA rung 1: ranked 7 of 9 trials; the top 3 (1/3) go on"),  # keep 3
    (6, 2, 0.70, None),
    (6, 3, 0.75, None),  # rung 3: n=4, keep 1: the best
    (7, 2, 0.60, None),  # a bad value off the rungs is no reason
    (7, 3, 0.71, "ASHA rung 3: ranked 2 of 5 trials; the top 1 (1/3) go on"),
]


def test_asha_promotes_and_stops_exactly_the_trials_the_rule_says():
    pruner = ASHA(min_epochs=1, reduction=3)
    assert pruner.rungs(9) == [1, 3]
    events = [(n, e, v) for n, e, v, _ in ASHA_EVENTS]
    assert decide(pruner, events, 9) == [expected for *_, expected in ASHA_EVENTS]
    # Options as the command line passes them (strings) give the same decisions.
    assert decide(ASHA(min_epochs="1", reduction="3"), events, 9) == [expected for *_, expected in ASHA_EVENTS]


def test_asha_rungs_last_epoch_max_epochs_and_missing_values():
    assert ASHA().rungs(3) == [1]
    assert ASHA().rungs(10) == [1, 3, 9]
    assert ASHA(min_epochs=2, reduction=2).rungs(20) == [2, 4, 8, 16]
    assert ASHA(min_epochs=5).rungs(5) == []
    worst = {0: [0.9] * 9, 1: [0.1] * 9}
    # The last epoch is never a rung: the trial ends there anyway.
    assert ASHA().prune(1, 9, worst, 9) is None
    assert ASHA().prune(1, 3, worst, 9) == "ASHA rung 3: ranked 2 of 2 trials; the top 1 (1/3) go on"
    # max_epochs caps every trial (and the rungs) below the study's epochs.
    capped = ASHA(max_epochs=3)
    assert capped.rungs(9) == [1]
    assert capped.prune(0, 2, worst, 9) is None
    assert capped.prune(0, 3, worst, 9) == "reached max_epochs=3"
    assert ASHA(max_epochs=9).prune(0, 9, worst, 9) is None
    # A trial without a finite value at the rung is not judged; others without one do not count.
    assert ASHA().prune(1, 1, {0: [0.9], 1: [None]}, 9) is None
    assert ASHA().prune(1, 1, {0: [None], 1: [0.5]}, 9) is None
    assert ASHA().prune(1, 1, {0: [math.nan], 1: [0.5]}, 9) is None


# Median, warmup_epochs 1, min_trials 2, 5 epochs: after epoch 1, a trial below the median of
# the other trials' values at the same epoch stops, once at least 2 others got there.
MEDIAN_EVENTS = [
    (0, 1, 0.50, None),  # warm-up
    (0, 2, 0.60, None),  # no other trial at epoch 2
    (1, 1, 0.40, None),
    (1, 2, 0.50, None),  # one other (< min_trials)
    (2, 1, 0.30, None),
    (2, 2, 0.55, None),  # others 0.50, 0.60: median 0.55, a tie goes on
    (3, 1, 0.20, None),
    (3, 2, 0.52, "median rule at epoch 2: worse than the median of 3 others"),
    (0, 3, 0.70, None),
    (1, 3, 0.65, None),
    (2, 3, 0.50, "median rule at epoch 3: worse than the median of 2 others"),
    (4, 1, 0.90, None),
    (4, 2, 0.90, None),
    (4, 3, 0.66, None),  # others 0.50 (pruned there, still counts), 0.65, 0.70: median 0.65
    (0, 4, 0.10, None),  # nobody else at epoch 4
]


def test_median_stops_exactly_the_trials_the_rule_says():
    events = [(n, e, v) for n, e, v, _ in MEDIAN_EVENTS]
    assert decide(Median(warmup_epochs=1, min_trials=2), events, 5) == [expected for *_, expected in MEDIAN_EVENTS]
    curves = {0: [0.9] * 5, 1: [0.1] * 5}
    loose = Median(warmup_epochs=0, min_trials=1)
    assert loose.prune(1, 4, curves, 5).startswith("median rule at epoch 4")
    assert loose.prune(1, 5, curves, 5) is None  # the last epoch ends the trial anyway
    assert Median().prune(1, 2, {0: [0.9] * 5, 2: [0.9] * 5, 3: [0.9] * 5, 1: [0.1] * 5}, 5) is None  # warm-up 2
    assert Median().prune(1, 3, {0: [0.9] * 5, 2: [0.9] * 5, 3: [0.9] * 5, 1: [0.1] * 5}, 5) is not None


@pytest.mark.parametrize("factory, options, message", [
    (ASHA, {"reduction": 1}, "pruner 'asha': reduction must be an integer >= 2, got 1"),
    (ASHA, {"reduction": "three"}, "pruner 'asha': reduction must be an integer >= 2, got 'three'"),
    (ASHA, {"min_epochs": 0}, "pruner 'asha': min_epochs must be an integer >= 1, got 0"),
    (ASHA, {"min_epochs": "1.5"}, "pruner 'asha': min_epochs must be an integer >= 1, got '1.5'"),
    (ASHA, {"max_epochs": -1}, "pruner 'asha': max_epochs must be an integer >= 0, got -1"),
    (ASHA, {"rate": 3}, "pruner 'asha': unknown option 'rate'; valid names: min_epochs, reduction, max_epochs"),
    (Median, {"warmup_epochs": -1}, "pruner 'median': warmup_epochs must be an integer >= 0, got -1"),
    (Median, {"min_trials": 0}, "pruner 'median': min_trials must be an integer >= 1, got 0"),
    (Median, {"min_trials": None}, "pruner 'median': min_trials must be an integer >= 1, got None"),
    (Median, {"warmup": 1}, "pruner 'median': unknown option 'warmup'; valid names: warmup_epochs, min_trials"),
])
def test_bad_options_are_one_line_value_errors(factory, options, message):
    with pytest.raises(ValueError) as caught:
        factory(**options)
    assert str(caught.value) == message


# Every built-in plugin's options come from its signature -------------------------------------

def built_ins():
    from research_plugins import dask_executor, datasets, executors, optimizers, pruners, samplers, schedules

    return load_plugins([optimizers, schedules, samplers, pruners, datasets, executors, dask_executor],
                        entry_points=False)


def test_every_built_in_plugin_declares_its_options_in_its_signature():
    plugins = built_ins()
    assert not plugins.problems
    for kind, factories in plugins.registry.items():
        for name in factories:
            specs = plugins.options_of(kind, name)
            assert specs is not None, f"{kind} {name} takes **kwargs"
            assert all(spec.type in (int, float, bool, str) for spec in specs.values()), (kind, name)
    described = {(kind, name): {key: spec.describe() for key, spec in plugins.options_of(kind, name).items()}
                 for kind in ("pruners", "executors", "datasets") for name in plugins.names(kind)}
    seed, fraction = "an integer >= 0", "a number in (0, 1)"
    test = {"test_fraction": "a number in [0, 1)"}
    assert described == {
        ("pruners", "asha"): {"min_epochs": "an integer >= 1", "reduction": "an integer >= 2",
                              "max_epochs": "an integer >= 0"},
        ("pruners", "median"): {"warmup_epochs": "an integer >= 0", "min_trials": "an integer >= 1"},
        ("executors", "dask"): {"address": "a string or none", "timeout": "a number in (0, 3600]"},
        ("executors", "process"): {"start_method": "one of: " + ", ".join(multiprocessing.get_all_start_methods())},
        ("executors", "serial"): {},
        ("datasets", "blobs"): {"n_samples": "an integer >= 2", "classes": "an integer >= 2",
                                "features": "an integer >= 1", "spread": "a number >= 0", "seed": seed,
                                "val_fraction": fraction, **test},
        ("datasets", "csv"): {"path": "a string", "label": "a string", "seed": seed, "val_fraction": fraction,
                              **test},
        ("datasets", "digits"): {"seed": seed, "val_fraction": fraction, **test},
        ("datasets", "moons"): {"n_samples": "an integer >= 2", "noise": "a number >= 0", "seed": seed,
                                "val_fraction": fraction, **test},
        ("datasets", "npz"): {"path": "a string", "seed": seed, "val_fraction": fraction, **test},
        ("datasets", "spirals"): {"n_samples": "an integer >= 2", "classes": "an integer >= 2",
                                  "noise": "a number >= 0", "seed": seed, "val_fraction": fraction, **test},
    }


@pytest.mark.parametrize("kind, name, strings, values", [
    ("optimizers", "adamw", {"lr": "0.01", "weight_decay": "0"}, {"lr": 0.01, "weight_decay": 0.0}),
    ("schedules", "step", {"step_size": " 3 ", "factor": "0.5"}, {"step_size": 3, "factor": 0.5}),
    ("samplers", "grid", {"points_per_axis": "none"}, {"points_per_axis": None}),
    ("pruners", "asha", {"reduction": "2", "max_epochs": "1e1"}, {"reduction": 2, "max_epochs": 10}),
    ("datasets", "csv", {"path": "data.csv", "label": "target", "seed": "3"},
     {"path": "data.csv", "label": "target", "seed": 3}),
    ("executors", "process", {"start_method": " spawn"}, {"start_method": "spawn"}),
    ("executors", "dask", {"address": "none", "timeout": "2.5"}, {"address": None, "timeout": 2.5}),
])
def test_strings_from_the_command_line_are_converted_for_every_kind(kind, name, strings, values):
    assert built_ins().check_options(kind, name, strings) == values


@pytest.mark.parametrize("kind, name, options, message", [
    ("executors", "process", {"start_method": "thread"},
     "executor 'process': start_method must be one of: {methods}, got 'thread'"),
    ("executors", "dask", {"adress": "tcp://host:8786"},
     "executor 'dask': unknown option 'adress'; valid names: address, timeout"),
    ("executors", "dask", {"timeout": "soon"}, "executor 'dask': timeout must be a number in (0, 3600], got 'soon'"),
    ("datasets", "moons", {"noise": "-1"}, "dataset 'moons': noise must be a number >= 0, got '-1'"),
])
def test_bad_options_of_every_kind_are_one_line(kind, name, options, message):
    plugins = built_ins()
    expected = message.format(methods=", ".join(multiprocessing.get_all_start_methods()))
    with pytest.raises(ValueError) as caught:
        plugins.build(kind, name, **options)
    assert str(caught.value) == expected
    with pytest.raises(ValueError) as caught:  # the factory checks them itself, called from Python
        plugins.get(kind, name)(**options)
    assert str(caught.value).split(";")[0] == expected.split(";")[0]


@pytest.mark.parametrize("args, message", [
    (["--prune", "asha", "--prune-opt", "reduction=1"], "error: pruner 'asha': reduction must be an integer >= 2, got '1'"),
    (["--prune", "asha", "--prune-opt", "rate=3"], ("error: pruner 'asha': unknown option 'rate'; valid names: "
                                                    "min_epochs, reduction, max_epochs")),
    (["--prune", "hyperband"], "error: unknown pruner 'hyperband'; choose one of: asha, median"),
    (["--prune-opt", "reduction=2"], "error: --prune-opt needs a pruner: add --prune NAME (see `research plugins`)"),
])
def test_bad_pruner_flags_are_one_line_exit_2_before_any_study(tmp_path, args, message):
    result = cli("train", "--strategy", "caviar", "--store", tmp_path / "r.db", "--hidden", "16", "--epochs", "2",
                 *args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message]
    db = tmp_path / "r.db"  # refused before the store is opened, or opened and left without a study
    assert not db.exists() or query(db, "SELECT COUNT(*) FROM studies") == [(0,)]


def test_pruner_options_for_a_stored_study_are_compared_with_its_own(tmp_path):
    """`research train --study s --prune-opt reduction=2` of a study made with --prune asha said
    "--prune-opt needs a pruner: add --prune NAME", which the study has."""
    common = ["--store", tmp_path / "r.db", "--plot", tmp_path / "s.png"]
    made = cli("train", "--strategy", "caviar", "--study", "s", "--trials", "2", "--hidden", "8", "--epochs", "2",
               "--executor", "serial", "--prune", "asha", *common)
    assert made.exit_code == 0, made.output
    again = cli("train", "--study", "s", "--prune-opt", "reduction=2", *common)
    assert again.exit_code == 2
    assert again.stderr.strip().startswith("error: study 's' was created with prune_options = {}, not "
                                           "prune_options = {\"reduction\": \"2\"}; drop that option")


# Pruning in caviar studies --------------------------------------------------------------------

def replay(db, study, pruner, max_epochs):
    """The rule applied to the store's epochs in the order they were committed: the reason
    each trial should have been pruned for (caviar decides after every commit)."""
    rows = query(db, "SELECT t.number, m.epoch, m.val_acc FROM metrics m JOIN trials t ON t.id = m.trial_id "
                     "JOIN studies s ON s.id = t.study_id WHERE s.name = ? AND m.rolled_back = 0 ORDER BY m.id",
                 (study,))
    curves: dict[int, list[float | None]] = {}
    reasons = {}
    for number, epoch, value in rows:
        curves.setdefault(number, []).append(value)
        assert len(curves[number]) == epoch, f"trial {number}: epoch {epoch} out of order"
        assert number not in reasons, f"trial {number} trained on after it was pruned"
        reason = pruner.prune(number, epoch, curves, max_epochs)
        if reason is not None:
            reasons[number] = reason
    return reasons


def stored(db, study):
    """trial -> (status, error, committed epochs) straight from SQLite."""
    trials = query(db, "SELECT t.number, t.status, t.error, t.id FROM trials t JOIN studies s ON s.id = t.study_id "
                       "WHERE s.name = ?", (study,))
    return {number: (status, error, [e for (e,) in query(db, "SELECT epoch FROM metrics WHERE trial_id = ? "
                                                             "AND rolled_back = 0 ORDER BY epoch", (tid,))])
            for number, status, error, tid in trials}


def check_pruned_study(db, study, trials, epochs):
    """Every trial ran once and ended finished or pruned; pruned ones kept their curve up to
    a rung and say why; the decisions are the rule's, replayed in commit order; show's
    summary counts them and the epochs they saved."""
    assert integrity(db) == "ok"
    found = stored(db, study)
    assert sorted(found) == list(range(trials))
    assert query(db, "SELECT t.number, m.epoch FROM metrics m JOIN trials t ON t.id = m.trial_id "
                     "GROUP BY t.id, m.epoch HAVING COUNT(*) > 1") == []
    rungs = ASHA().rungs(epochs)
    pruned = {n: error for n, (status, error, _) in found.items() if status == "pruned"}
    for number, (status, error, done) in found.items():
        assert status in ("finished", "pruned"), (number, status, error)
        if status == "finished":
            assert done == list(range(1, epochs + 1)) and error is None
        else:
            rung = int(error.split(":")[0].removeprefix("ASHA rung "))
            assert rung in rungs and done == list(range(1, rung + 1)), (number, error, done)
    assert pruned, "nothing was pruned: the study does not exercise the pruner"
    assert replay(db, study, ASHA(), epochs) == pruned

    shown = cli("show", study, "--store", db, "--json")
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.stdout)["summary"]
    trained = sum(len(done) for _, _, done in found.values())
    assert summary == {
        "trials": trials, "statuses": {s: n for s in ("finished", "pruned")
                                       if (n := sum(v[0] == s for v in found.values()))},
        "epochs_trained": trained, "pruned": len(pruned),
        "epochs_saved_by_pruning": trials * epochs - trained,
    }
    return found, summary


def test_a_caviar_study_with_asha_stores_pruned_trials_and_show_counts_them(tmp_path):
    db = tmp_path / "r.db"
    result = cli("train", "--strategy", "caviar", "--study", "p", "--store", db, "--plot", tmp_path / "p.png",
                 "--trials", "8", "--epochs", "4", "--hidden", "16", "--workers", "2", "--seed", "4",
                 "--prune", "asha")
    assert result.exit_code == 0, result.output
    _, summary = check_pruned_study(db, "p", 8, 4)
    assert set(kept_epochs(tmp_path / "r-checkpoints")) == set(range(8))  # pruned trials' best epochs too

    text = cli("show", "p", "--store", db)
    assert text.exit_code == 0, text.output
    assert f"pruning saved {summary['epochs_saved_by_pruning']} epochs" in text.stdout
    assert sum(line.startswith("trial ") and " pruned: ASHA rung " in line
               for line in text.stdout.splitlines()) == summary["pruned"]

    report = cli("report", "p", "--store", db, "-o", tmp_path / "p.html")
    assert report.exit_code == 0, report.output
    assert (f"pruning stopped {summary['pruned']} trials and saved {summary['epochs_saved_by_pruning']} epochs"
            in (tmp_path / "p.html").read_text())


def test_a_space_that_searches_epochs_is_pruned_each_trial_on_its_own_length(tmp_path):
    """The pruner never ran when epochs was searched (caviar took the study's fixed epochs, which
    there are none of): ASHA's max_epochs capped nothing and no rung stopped anything."""
    db = tmp_path / "r.db"
    result = cli("train", "--strategy", "caviar", "--study", "e", "--store", db, "--plot", tmp_path / "e.png",
                 "--trials", "6", "--workers", "1", "--hidden", "8", "--space", "epochs=int:2..8",
                 "--space", "lr=log:1e-3..1e-2", "--prune", "asha", "--prune-opt", "max_epochs=4")
    assert result.exit_code == 0, result.output
    found = stored(db, "e")
    drawn = {number: json.loads(config)["epochs"] for number, config in
             query(db, "SELECT t.number, t.config FROM trials t JOIN studies s ON s.id = t.study_id WHERE s.name = ?",
                   ("e",))}
    assert max(drawn.values()) > 4  # some trial was drawn longer than the cap
    for number, (status, error, done) in found.items():
        assert len(done) <= min(drawn[number], 4), (number, drawn[number], done)
        if status == "finished":
            assert len(done) == drawn[number] <= 4
    rung_pruned = {n: error for n, (status, error, _) in found.items() if status == "pruned" and "rung" in error}
    assert rung_pruned, "no rung stopped a trial: the study does not exercise the pruner"
    pruner = ASHA(max_epochs=4)
    rows = query(db, "SELECT t.number, m.epoch, m.val_acc FROM metrics m JOIN trials t ON t.id = m.trial_id "
                     "ORDER BY m.id")
    curves_so_far: dict[int, list[float | None]] = {}
    reasons = {}
    for number, epoch, value in rows:  # the rule, each trial judged on its own length
        curves_so_far.setdefault(number, []).append(value)
        reason = pruner.prune(number, epoch, curves_so_far, drawn[number])
        if reason is not None:
            reasons[number] = reason
    assert reasons == {n: error for n, (status, error, _) in found.items() if status == "pruned"}


# Small batches and 30 epochs keep a trial part-way, beside pruned ones, for about 0.6 s (with 6
# epochs, three windows of 50 ms, which a poll on a loaded machine could miss).
STUDY_EPOCHS = 30
STUDY = ["train", "--strategy", "caviar", "--study", "p", "--store", "research.db", "--trials", "12",
         "--epochs", str(STUDY_EPOCHS), "--hidden", "16", "--batch-size", "4", "--workers", "2", "--seed", "1",
         "--prune", "asha"]


def test_pruning_survives_a_kill_and_resume(tmp_path):
    """SIGKILL once a trial is pruned and another is part-way: the resumed study keeps the
    pruned trials as they were, continues the others, and counts no trial or epoch twice."""
    db = tmp_path / "research.db"

    def midway():
        rows = query(db, "SELECT t.status, COUNT(m.epoch) FROM trials t LEFT JOIN metrics m ON m.trial_id = t.id "
                         "GROUP BY t.id")
        return (any(status == "pruned" for status, _ in rows)
                and any(status == "running" and 0 < n < STUDY_EPOCHS for status, n in rows))

    process = start(STUDY, tmp_path)
    stderr = ""
    try:
        caught = wait_for(midway, timeout=90, process=process)
    finally:
        stderr = kill_group(process)
    assert caught, f"the study ended before it could be killed:\n{stderr}"
    before = stored(db, "p")
    pruned_before = {n: v for n, v in before.items() if v[0] == "pruned"}
    seconds_before = query(db, "SELECT m.id, m.trial_id, m.epoch, m.seconds FROM metrics m ORDER BY m.id")
    assert pruned_before and any(status == "running" for status, _, _ in before.values())

    resumed = run(STUDY, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after, summary = check_pruned_study(db, "p", 12, STUDY_EPOCHS)
    for number, value in pruned_before.items():
        assert after[number] == value, f"trial {number} was pruned, then changed on resume"
    # Everything committed before the kill is still there, untouched.
    assert query(db, "SELECT m.id, m.trial_id, m.epoch, m.seconds FROM metrics m ORDER BY m.id")[
        : len(seconds_before)] == seconds_before
    assert summary["pruned"] >= len(pruned_before)


class Interrupt(QuietReporter):
    """Ctrl-C right after trial ``number``'s epoch ``epoch`` is committed, before caviar
    has judged it."""

    def __init__(self, number, epoch):
        self.at = (number, epoch)

    def epoch_done(self, number, epoch, metrics):
        if (number, epoch) == self.at:
            raise KeyboardInterrupt


def run_pruned_study(path, *, reporter=None, before_commit=None):
    """Six trials of 4 epochs pruned by ASHA, one at a time in this process (so the order
    of arrivals, and with it every decision, is fixed); ``before_commit`` = (trial, epoch)
    interrupts after that epoch's checkpoint is written and before it is committed."""
    plugins = load_plugins()
    settings = StudySettings(strategy="caviar", base={"epochs": 4, "hidden": 16}, space={"lr": "log:1e-4..1"},
                             seed=6, trials=6, prune="asha")
    with Store(path) as store:
        study = open_study(store, "p", settings, plugins, executor="serial", workers=1, reporter=reporter)
        if before_commit is not None:
            add_epoch = store.add_epoch

            def interrupted_add_epoch(trial, epoch, metrics):
                if (trial.number, epoch) == before_commit:
                    raise KeyboardInterrupt
                add_epoch(trial, epoch, metrics)

            store.add_epoch = interrupted_add_epoch
        plugins.get("strategies", "caviar")().run(study)


@pytest.mark.parametrize("moment", ["after the commit", "before the commit"])
def test_an_interrupt_before_the_decision_still_prunes_on_resume(tmp_path, moment):
    """Interrupted between writing a rung epoch and judging it, the resumed study judges it:
    the outcome is the uninterrupted study's, trial for trial."""
    run_pruned_study(tmp_path / "reference.db")
    reference = stored(tmp_path / "reference.db", "p")
    late = [(n, done[-1]) for n, (status, _, done) in reference.items() if status == "pruned" and n > 0]
    assert late, reference
    number, rung = late[0]

    db = tmp_path / "interrupted.db"
    with pytest.raises(KeyboardInterrupt):
        if moment == "after the commit":
            run_pruned_study(db, reporter=Interrupt(number, rung))
        else:
            run_pruned_study(db, before_commit=(number, rung))
    left = stored(db, "p")[number]
    assert left[0] == "interrupted"
    assert left[2] == (list(range(1, rung + 1)) if moment == "after the commit" else list(range(1, rung)))
    run_pruned_study(db)
    assert stored(db, "p") == reference
    assert curves(db, "p") == curves(tmp_path / "reference.db", "p")


def test_epochs_trained_again_after_a_resume_are_not_judged_again(tmp_path):
    """Trial 2 committed epochs 1-3 before trials 0 and 1 reached any rung (so ASHA let it on),
    but its checkpoint holds only epoch 1. Resumed, it trains epochs 2 and 3 again: judging them
    against today's curves, where 0 and 1 beat it at rung 3, would prune it after the fact."""
    plugins = load_plugins()
    settings = StudySettings(strategy="caviar", base={"epochs": 4, "hidden": 16}, space={"lr": "log:1e-4..1"},
                             seed=6, trials=3, prune="asha")
    good = {"val_acc": 0.99, "val_loss": 0.05, "train_loss": 0.05, "train_acc": 0.99}
    bad = {"val_acc": 0.1, "val_loss": 2.3, "train_loss": 2.3, "train_acc": 0.1}
    with Store(tmp_path / "research.db") as store:
        study = open_study(store, "p", settings, plugins, executor="serial", workers=1)
        config = {"epochs": 4, "hidden": 16, "lr": 0.01, "seed": 2}
        late = store.add_trial(study.record, 2, config, 2)
        for epoch in (1, 2, 3):  # committed first, before any other trial reached a rung
            store.add_epoch(late, epoch, bad)
        for number in (0, 1):
            trial = store.add_trial(study.record, number, {**config, "seed": number}, number)
            for epoch in (1, 2, 3, 4):
                store.add_epoch(trial, epoch, good)
            store.set_status(trial, "finished")
        from research.study.trainer import make_trainer

        trainer = make_trainer(config, plugins)
        trainer.train_epoch()
        study.save_checkpoint(2, trainer.state())  # older than the store: epoch 1 of 3
        study.run(plugins.build("strategies", "caviar"))
        resumed = store.trial(study.record, 2)
        assert (resumed.status, resumed.error) == ("finished", None)
        assert [row["epoch"] for row in store.curve(resumed)] == [1, 2, 3, 4]


@pytest.mark.parametrize("flags, message", [
    (["--prune", "asha", "--prune-opt", "min_epochs=10"],
     "error: pruner 'asha': min_epochs=10 leaves no rung before the study's last epoch (3), so it would prune nothing; "
     "lower min_epochs or raise --epochs"),
    (["--prune", "asha", "--prune-opt", "max_epochs=2"],
     "error: pruner 'asha': max_epochs=2 would stop every trial at epoch 2 of the study's 3, as pruned, so none would "
     "finish; train with --epochs 2 instead"),
    (["--prune", "asha", "--prune-opt", "max_epochs=9"],
     "error: pruner 'asha': max_epochs=9 is above the study's 3 epochs, so it would cap nothing (it caps trials whose "
     "epochs are searched); train with --epochs 9, or leave max_epochs out"),
    (["--prune", "median"],
     "error: pruner 'median': warmup_epochs=2 leaves no epoch to judge before the study's last (3), so it would prune "
     "nothing; lower warmup_epochs or raise --epochs"),
])
def test_a_pruner_that_could_never_prune_the_study_is_refused_before_it_starts(tmp_path, flags, message):
    from tests.studyutil import cli

    result = cli("train", "--strategy", "caviar", "--store", tmp_path / "r.db", "--trials", "2", "--epochs", "3", *flags)
    assert result.exit_code == 2, result.output
    assert " ".join(result.stderr.split()) == message
    assert not (tmp_path / "r.db").exists()
    assert ASHA().inert(3) is None and Median(warmup_epochs=1).inert(3) is None
    assert ASHA(max_epochs=3).inert(3) is None

"""The parallel coordinates of a study, one trial's curves, and the pruned trials' crosses on
the learning curves: what each figure holds, that it reads back from JSON, and how it is drawn."""

import json
import math

import pytest

from research.plugins import load_plugins
from research.report import render
from research.report.figure import Figure, VLine
from research.report.figures import curves_figure, parallel_figure, trial_figure
from research.report.html import render_report
from research.study.store import Store, StoreError

SPACE = {"lr": "log:1e-4..1", "beta": "log1m:0.9..0.999", "hidden": "int:16..256", "optimizer": "adam,momentum"}
SETTINGS = {"space": SPACE, "metric": "val_acc", "direction": "maximize"}
# number: (configuration, best val_acc, status); each curve climbs to its best in 3 epochs.
TRIALS = {
    0: ({"lr": 1e-4, "beta": 0.9, "hidden": 16, "optimizer": "adam"}, 0.5, "finished"),  # low end, the worst
    1: ({"lr": 1.0, "beta": 0.999, "hidden": 256, "optimizer": "momentum"}, 0.9, "finished"),  # high end, the best
    2: ({"lr": 1e-2, "beta": 0.99, "hidden": 136, "optimizer": "adam"}, 0.7, "pruned"),  # the middle of each range
    3: ({"lr": 1e-3, "beta": 0.95, "hidden": 32, "optimizer": "adam"}, None, "running"),  # no epoch, no score
    4: ({"lr": 1e-3, "beta": 0.95, "optimizer": "adam"}, 0.8, "finished"),  # no hidden
    5: ({"lr": 1e-3, "beta": 0.95, "hidden": 64, "optimizer": "momentum"}, 0.6, "pruned"),
}


def add_trials(store, study, trials):
    for number, (config, best, status) in trials.items():
        trial = store.add_trial(study, number, config, seed=number)
        if best is not None:
            epochs = 3 if status != "pruned" else 2
            for epoch in range(1, epochs + 1):
                acc = best - 0.1 * (epochs - epoch)
                store.add_epoch(trial, epoch, {"val_acc": acc, "train_acc": acc + 0.05, "val_loss": 1 - acc,
                                               "train_loss": 0.9 - acc})
        store.set_status(trial, status)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "research.db") as opened:
        add_trials(opened, opened.create_study("s", "caviar", SETTINGS), TRIALS)
        yield opened


def by_trial(figure):
    return {s.info["trial"]: s for s in figure.panels[0].series if "trial" in s.info}


# parallel coordinates ----------------------------------------------------------------------------

def test_parallel_axes_are_the_searched_ranges_then_the_score(store):
    figure = parallel_figure(store, store.study("s"))
    panel = figure.panels[0]
    assert panel.x.scale == "choice"
    assert panel.x.categories == ("lr\n1e-04..1 (log)", "beta\n0.9..0.999 (log 1-x)", "hidden\n16..256 (int)",
                                  "optimizer\nadam|momentum", "best val acc\n0.5..0.9")
    assert panel.y.scale == "linear" and panel.y.limits == (0, 1)
    assert panel.y.label == "position in the searched range (score: worst to best seen)"
    assert figure.name == "Parallel coordinates" and figure.caption
    narrow = parallel_figure(store, store.create_study("one", "caviar", {"space": {"lr": SPACE["lr"]}}))
    assert narrow.panels[0].x.categories == ("lr\n1e-04..1 (log)", "best val acc")  # no trial, no score yet
    assert figure.size[0] > narrow.size[0]  # wider for more axes


def test_parallel_places_each_value_on_its_own_scale(store):
    lines = by_trial(parallel_figure(store, store.study("s")))
    assert sorted(lines) == [0, 1, 2, 5]  # 3 has no score, 4 no value of hidden
    assert all(line.x == (0, 1, 2, 3, 4) for line in lines.values())
    assert lines[0].y == (0, 0, 0, 0, 0)  # every low end, and the worst score
    assert lines[1].y == pytest.approx((1, 1, 1, 1, 1))
    assert lines[2].y == pytest.approx((0.5, 0.5, 0.5, 0, 0.5))  # 1e-2, 0.99, 136 (linear), adam, 0.7
    assert lines[5].y[:3] == pytest.approx((0.25, (math.log10(0.05) + 1) / -2, 48 / 240))
    assert lines[2].info == {"trial": 2, "best_val_acc": pytest.approx(0.7), "config": TRIALS[2][0]}


def test_parallel_highlights_the_top_trials_like_the_curves_and_draws_them_last(store):
    study = store.study("s")
    series = parallel_figure(store, study, top=3).panels[0].series  # the top 3: trials 1, 4 (left out) and 2
    assert [(s.info["trial"], s.emphasis) for s in series] == [(5, "faded"), (0, "faded"), (1, "highlighted"),
                                                               (2, "highlighted")]
    assert all(s.color is None and s.label == "" for s in series[:2])
    curves = {s.info["trial"]: (s.color, s.label) for s in curves_figure(store, study, top=3).panels[0].series
              if s.emphasis == "highlighted"}
    assert [(s.info["trial"], s.color, s.label) for s in series[2:]] == [(1, *curves[1]), (2, *curves[2])]
    assert series[2].label.startswith("#1 (0.9): lr=1")


def test_parallel_puts_the_best_score_on_top_when_minimizing(tmp_path):
    settings = {"space": {"lr": "log:1e-4..1", "act": "relu"}, "metric": "val_loss", "direction": "minimize"}
    with Store(tmp_path / "r.db") as store:
        study = store.create_study("m", "caviar", settings)
        add_trials(store, study, {n: ({"lr": 1e-2, "act": "relu"}, best, "finished")
                                  for n, best in enumerate([0.5, 0.9, 0.7])})  # val_loss = 1 - val_acc
        lines = by_trial(parallel_figure(store, study))
        axis = parallel_figure(store, study).panels[0].x
    assert {n: line.y[-1] for n, line in lines.items()} == pytest.approx({1: 1.0, 2: 0.5, 0: 0.0})
    assert all(line.y[1] == 0.5 for line in lines.values())  # a choice of one value stands in the middle
    assert axis.categories[-1] == "best val loss\n0.5..0.1"  # worst..best


def test_parallel_is_none_without_a_space_and_round_trips_through_json(store):
    assert parallel_figure(store, store.create_study("none", "caviar", {"space": {}})) is None
    figure = parallel_figure(store, store.study("s"), curves=store.curves(store.study("s")))
    assert Figure.from_dict(json.loads(json.dumps(figure.as_dict(), allow_nan=False))) == figure
    ax = render.draw(figure).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "best val acc\n0.5..0.9"


# one trial --------------------------------------------------------------------------------------

def test_trial_figure_shows_the_metric_beside_train_and_test_and_the_losses(store):
    study = store.study("s")
    trial = store.trial(study, 1)
    for epoch in (1, 2, 3):
        store.add_epoch(trial, epoch + 3, {"val_acc": 0.95, "val_loss": 0.05})
    store.roll_back(trial, 3)  # epochs 4..6 undone
    store.add_epoch(trial, 4, {"val_acc": 0.85, "train_acc": 0.95, "test_acc": 0.8, "val_loss": 0.2,
                               "train_loss": 0.1, "test_loss": 0.25})
    figure = trial_figure(store, study, 1)
    top, losses = figure.panels
    assert figure.title == "s: trial 1 (finished)" and figure.name == "Trial 1" and figure.share_x
    assert [(s.label, s.style, s.color, s.info["metric"]) for s in top.series] == [
        ("val", "solid", 0, "val_acc"), ("train", "dashed", 1, "train_acc"), ("test", "solid", 2, "test_acc")]
    assert top.series[0].x == (1, 2, 3, 4) and top.series[2].x == (4,)
    assert [s.info["metric"] for s in losses.series] == ["train_loss", "val_loss", "test_loss"]
    assert (top.y.label, losses.y.label) == ("acc", "loss")
    assert [(m.x, m.text) for m in top.marks] == [(3, "chosen epoch 3")]  # 0.9 at 3 beats 0.85 at 4
    assert [m.x for m in losses.marks if isinstance(m, VLine)] == [3]
    assert top.x.limits[0] < 1 and top.x.limits[1] > 4
    assert Figure.from_dict(json.loads(json.dumps(figure.as_dict()))) == figure


def test_trial_figure_of_a_loss_study_shows_the_accuracies_below(tmp_path):
    with Store(tmp_path / "r.db") as store:
        study = store.create_study("l", "caviar", {**SETTINGS, "metric": "val_loss", "direction": "minimize"})
        add_trials(store, study, {0: TRIALS[0]})
        figure = trial_figure(store, study, 0)
    assert [[s.info["metric"] for s in p.series] for p in figure.panels] == [["val_loss", "train_loss"],
                                                                             ["train_acc", "val_acc"]]


def test_trial_figure_of_a_trial_without_epochs_is_empty_and_a_missing_trial_an_error(store):
    study = store.study("s")
    figure = trial_figure(store, study, 3)
    assert figure.empty and len(figure.panels) == 1 and not figure.panels[0].marks
    assert figure.title == "s: trial 3 (interrupted)"  # left running without a live runner
    with pytest.raises(StoreError, match="no trial 99"):
        trial_figure(store, study, 99)


# pruned trials on the curves ---------------------------------------------------------------------

def test_the_curves_mark_where_pruned_trials_stopped(store):
    study = store.study("s")
    figure = curves_figure(store, study)
    crosses = [s for s in figure.panels[0].series if s.style == "points"]
    assert len(crosses) == 1
    cross = crosses[0]
    assert (cross.label, cross.marker, cross.color, cross.emphasis) == ("pruned (stopped here)", "cross", None,
                                                                        "normal")
    assert sorted(zip(cross.info["trials"], cross.x, cross.y)) == [(2, 2, pytest.approx(0.7)),
                                                                   (5, 2, pytest.approx(0.6))]
    assert "Crosses: pruned trials" in figure.caption
    drawn = [line for line in render.draw(figure).axes[0].lines if line.get_marker() == "x"]
    assert len(drawn) == 1 and list(drawn[0].get_xdata()) == list(cross.x)


def test_the_crosses_change_nothing_else(store):
    study = store.study("s")
    before = curves_figure(store, study)
    for number in (2, 5):
        store.set_status(store.trial(study, number), "finished")
    after = curves_figure(store, study)
    assert not [s for s in after.panels[0].series if s.style == "points"]
    assert "Crosses" not in after.caption
    assert after.panels[0].y == before.panels[0].y and after.title == before.title

    def drawn(figure):
        return [(s.x, s.y, s.label, s.emphasis, s.color) for s in figure.panels[0].series if s.style != "points"]

    assert drawn(after) == drawn(before)


# the report --------------------------------------------------------------------------------------

def test_the_report_shows_the_parallel_coordinates_after_the_scores(store, monkeypatch):
    monkeypatch.setattr(render, "to_bytes", lambda figure, fmt: b"drawn")  # drawing is tested above
    text = render_report(store, store.study("s"), load_plugins())
    assert text.index("<h2>Score against each hyperparameter</h2>") < text.index("<h2>Parallel coordinates</h2>")
    section = text.split("<h2>Parallel coordinates</h2>")[1].split("<h2>")[0]
    assert "data:image/png;base64," in section

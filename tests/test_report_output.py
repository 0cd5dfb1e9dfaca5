"""What the pictures, the HTML report and the log show of a study: the axis focused on the
trials that matter, the same top trials in every panel, nothing written when there is
nothing to plot, babysit's picture of the metric its policy watches, the values every trial
ran with, and events numbered per study."""

import json

import pytest
from research_plugins.babysit import figure as babysit_figure

from research import report
from research.plugins import load_plugins
from research.report import render
from research.report.figure import Axis, Figure, Panel, Series, VLine
from research.report.html import render_report
from research.study.store import Store
from tests.studyutil import cli

# The last validation accuracy of each trial, by trial number: the good ones end between 0.86
# and 0.97, the bad ones at 0.30 and below. The train loss ranks them otherwise (the worst fit
# their training data best), and trial 3, the best by accuracy, has a worse validation loss
# than trial 0.
FINAL = {0: 0.95, 1: 0.91, 2: 0.30, 3: 0.97, 4: 0.20, 5: 0.93, 6: 0.15, 7: 0.86}
EPOCHS = 4


def curve(number: int, final: float | None = None) -> list[dict[str, float]]:
    final = FINAL[number] if final is None else final
    good = final > 0.5
    rows = []
    for epoch in range(1, EPOCHS + 1):
        acc = final - (EPOCHS - epoch) * (0.04 if good else 0.03)
        val_loss = 0.5 * (1 - acc) + (0.1 if number == 3 else 0.0)
        rows.append({"val_acc": acc, "val_loss": val_loss, "train_acc": acc, "lr": 0.1,
                     "train_loss": 0.05 + final / epoch})
    return rows


def caviar_study(store, name="cav", finals=FINAL):
    study = store.create_study(name, "caviar", {"space": {"lr": "log:1e-3..1"}, "base": {"epochs": EPOCHS},
                                               "trials": len(finals)})
    for number in finals:
        trial = store.add_trial(study, number, {"epochs": EPOCHS, "lr": 10 ** -(number % 3 + 1), "seed": number,
                                                "optimizer": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                                "dataset_options": {"noise": 0.1}}, number)
        for epoch, row in enumerate(curve(number, finals[number]), start=1):
            store.add_epoch(trial, epoch, row)
        store.set_status(trial, "finished")
    return study


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "research.db") as opened:
        caviar_study(opened)
        yield opened


def highlighted(figure):
    return {s.info["trial"]: (s.color, s.label) for panel in figure.panels for s in panel.series
            if s.emphasis == "highlighted"}


# 1. the y axis of the curves --------------------------------------------------------------------

def test_the_curves_axis_focuses_on_the_top_trials(store):
    study = store.study("cav")
    figure = report.curves_figure(store, study)
    low, high = figure.panels[0].y.limits
    top = [FINAL[n] for n in (3, 0, 5, 1, 7)]
    assert 0.5 < low <= min(top)  # the bad trials (0.15 to 0.30) are left below
    assert max(top) < high <= 1.0
    assert Figure.from_dict(json.loads(json.dumps(figure.as_dict()))).panels[0].y.limits == (low, high)
    assert render.draw(figure).axes[0].get_ylim() == pytest.approx((low, high))

    loss = report.curves_figure(store, study, "val_loss").panels[0].y
    worst_top = max(min(r["val_loss"] for r in curve(n)) for n in (3, 0, 5, 1, 7))
    assert loss.limits is not None and worst_top < loss.limits[1] < 0.5 * (1 - 0.30)  # bad trials left above
    assert loss.limits[0] <= min(r["val_loss"] for n in FINAL for r in curve(n))  # the best end is all shown


def test_a_panel_with_labelled_marks_keeps_its_axis_limits():
    """The renderer shows exactly the limits a figure carries, the band for labels above them."""
    panel = Panel(Axis("epoch"), Axis("val acc", limits=(0.8, 1.0)), [Series([1, 2, 3], [0.2, 0.85, 0.9])],
                  [VLine(2, "lr 0.1 -> 0.05")])
    low, high = render.draw(Figure("f", [panel])).axes[0].get_ylim()
    assert low == pytest.approx(0.8) and high > 1.0


def test_the_axis_fits_everything_when_the_trials_are_close(tmp_path):
    with Store(tmp_path / "r.db") as store:
        study = caviar_study(store, finals={0: 0.95, 1: 0.93, 2: 0.92})
        figure = report.curves_figure(store, study)
    assert figure.panels[0].y.limits is None


def test_an_accuracy_axis_stays_within_0_and_1(tmp_path):
    with Store(tmp_path / "r.db") as store:
        study = caviar_study(store, finals={0: 1.0, 1: 0.99, 2: 0.98, 3: 0.97, 4: 0.96, 5: 0.2, 6: 0.1})
        low, high = report.curves_figure(store, study).panels[0].y.limits
    assert 0.5 < low and high == 1.0


# 2. the same top trials everywhere --------------------------------------------------------------

def test_every_panel_highlights_the_studys_top_trials_alike(store):
    study = store.study("cav")
    top = [row["number"] for row in report.ranked(store, study)[:5]]
    assert top == [3, 0, 5, 1, 7]
    reference = highlighted(report.curves_figure(store, study))
    assert list(reference) == top
    assert [color for color, _ in reference.values()] == [0, 1, 2, 3, 4]
    assert reference[3][1].startswith("#3 (0.97)")
    for figure in (report.curves_figure(store, study, "train_loss"), report.curves_figure(store, study, "val_loss"),
                   report.scores_figure(store, study), report.scores_figure(store, study, "val_loss")):
        assert highlighted(figure) == reference, figure.name
    train_loss = report.curves_figure(store, study, "train_loss")
    assert "val acc" in train_loss.legend.title  # the labels' numbers are the study's score, not the train loss


def test_the_scores_legend_fits_its_long_labels(store):
    figure = report.scores_figure(store, store.study("cav"))
    fig = render.draw(figure)
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    assert legend.x0 >= 0 and legend.x1 <= fig.bbox.width and legend.y0 >= 0
    assert all(legend.y1 <= ax.get_tightbbox().y0 + 1 for ax in fig.axes if ax.get_visible())


# 3. nothing to plot -----------------------------------------------------------------------------

@pytest.fixture
def empty(tmp_path):
    """A study whose one trial failed before its first epoch, and one with no trial at all."""
    path = tmp_path / "empty.db"
    with Store(path) as store:
        study = store.create_study("e", "caviar", {"space": {"lr": "log:1e-3..1"}})
        store.set_status(store.add_trial(study, 0, {"lr": 0.01}, 0), "failed", "boom")
        store.create_study("none", "caviar", {"space": {}})
        store.create_study("baby", "babysit", {"space": {}})
    return path


@pytest.mark.parametrize("name", ["e", "none", "baby"])
def test_plot_of_a_study_without_epochs_writes_nothing_and_says_so(empty, tmp_path, monkeypatch, name):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = cli("plot", name, "--store", empty)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    where = f"--store {empty}"  # not the default store: the command given must name it
    fix = f"research show e {where}` says why" if name == "e" else f"train it with `research resume {name} {where}`"
    assert len(lines) == 1 and lines[0].startswith("error: nothing to plot: ") and fix in lines[0], result.stderr
    assert list(work.iterdir()) == []


def test_the_python_api_writes_no_empty_picture(empty, tmp_path):
    plugins = load_plugins()
    with Store(empty, create=False) as store:
        for name in ("e", "none", "baby"):
            study = store.study(name)
            assert report.study_figure(store, study, None, plugins).empty
            assert report.plot_study(store, study, tmp_path / f"{name}.png", None, plugins) is None
            assert report.plot_curves(store, study, tmp_path / f"{name}-curves.png") is None
        text = render_report(store, store.study("e"), plugins)
    assert not list(tmp_path.glob("*.png"))
    assert "<img" not in text.split("Learning curves", 1)[1].split("<h2>", 1)[0]
    assert "Nothing to plot yet" in text


def test_a_study_with_epochs_is_not_empty(store):
    assert not report.curves_figure(store, store.study("cav")).empty


# 4. babysit's picture shows what its policy decides on ------------------------------------------

def babysit_study(store, name, metric=None):
    study = store.create_study(name, "babysit", {"space": {}, "metric": metric, "base": {"epochs": 15}})
    trial = store.add_trial(study, 0, {"epochs": 3, "lr": 0.1, "beta1": 0.9}, 0)
    for epoch in range(1, 5):
        store.add_epoch(trial, epoch, {"val_acc": 0.5 + epoch / 10, "val_loss": 1.0 / epoch, "lr": 0.1,
                                       "train_loss": 0.9 / epoch})
    store.set_status(trial, "finished")
    return study


@pytest.mark.parametrize("chosen, asked, shown", [
    (None, None, "val loss"),  # no metric chosen: the policy watches the validation loss
    ("val_acc", None, "val acc"),  # the study's chosen metric
    ("train_loss", None, "train loss"),
    (None, "lr", "lr"),  # asked for
    (None, "val_acc", "val acc"),  # asked for, though it is the study's default metric
])
def test_the_babysit_picture_shows_the_metric_its_policy_watches(tmp_path, chosen, asked, shown):
    plugins = load_plugins([babysit_figure])
    with Store(tmp_path / "r.db") as store:
        study = babysit_study(store, "b", chosen)
        figure = report.study_figure(store, study, asked, plugins)
    assert figure.panels[0].y.label == shown
    live = figure.panels[0].series[0]
    assert list(live.y) == [{"val loss": 1.0 / e, "val acc": 0.5 + e / 10, "train loss": 0.9 / e, "lr": 0.1}[shown]
                            for e in range(1, 5)]
    assert shown in figure.caption


def test_plot_of_a_babysit_study_shows_the_validation_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Store(tmp_path / "research.db") as store:
        babysit_study(store, "b")
    assert cli("plot", "b", "-o", "b.svg").exit_code == 0
    assert "val loss" in (tmp_path / "b.svg").read_text()  # matplotlib notes each text in a comment


# 5. the values every trial ran with -------------------------------------------------------------

def fixed_table(text):
    part = text.split("Fixed for every trial", 1)[1].split("</table>", 1)[0]
    cells = [cell.split("</td>", 1)[0] for cell in part.split("<td")[1:]]
    cells = [cell.split(">", 1)[1] for cell in cells]
    return dict(zip(cells[::2], cells[1::2]))


def test_the_fixed_values_are_the_effective_ones_every_trial_shares(store):
    fixed = fixed_table(render_report(store, store.study("cav"), load_plugins()))
    assert fixed["beta1"] == "0.9" and fixed["beta2"] == "0.999" and fixed["eps"] == "1e-08"
    assert fixed["optimizer"] == "adam" and "noise" in fixed["dataset_options"]
    assert fixed["epochs"] == str(EPOCHS)
    assert "lr" not in fixed and "seed" not in fixed  # searched, and different in every trial


def test_the_fixed_epochs_are_those_trained_when_the_run_went_on(tmp_path):
    """A babysit study made with the default 15 epochs, whose one model was configured for 3
    and went on to train 4 (resumed with more of its steps)."""
    with Store(tmp_path / "r.db") as store:
        study = babysit_study(store, "b")
        fixed = fixed_table(render_report(store, study, load_plugins()))
    assert fixed["epochs"] == "4"
    assert fixed["beta1"] == "0.9"


# 6. events numbered per study -------------------------------------------------------------------

@pytest.fixture
def logged(tmp_path):
    path = tmp_path / "research.db"
    with Store(path) as store:
        first, second = (store.create_study(name, "caviar", {"space": {}}) for name in ("a", "b"))
        for index in range(3):
            store.add_event(first, "note", {"index": index})
        for index in range(2):
            store.add_event(second, "note", {"index": index})
        store.add_event(first, "note", {"index": 3})
    return path


def test_log_numbers_events_per_study(logged):
    result = cli("log", "b", "--store", logged)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "note" in line]
    assert [line.split("│")[1].strip() for line in rows] == ["1", "2"]
    data = json.loads(cli("log", "b", "--store", logged, "--json").stdout)
    assert [e["number"] for e in data["events"]] == [1, 2]
    assert [e["id"] for e in data["events"]] == [4, 5]  # the stored ids, kept
    data = json.loads(cli("log", "a", "--store", logged, "--json").stdout)
    assert [e["number"] for e in data["events"]] == [1, 2, 3, 4]


def test_the_report_numbers_events_as_the_log_does(logged):
    with Store(logged, create=False) as store:
        text = render_report(store, store.study("b"), load_plugins())
    events = text.split("<h2>Events</h2>", 1)[1]
    numbers = [cell.split("</td>", 1)[0].split(">", 1)[1] for cell in events.split("<tr>")[2:]]
    assert numbers == ["1", "2"]


def test_a_default_picture_name_never_replaces_another_study_s_picture(tmp_path, monkeypatch):
    """Two studies named alike (in two stores, or one deleted and made again) shared STUDY.png,
    STUDY-curves.png and STUDY.html in the working folder: the second replaced the first's
    without a word. Each file says whose it is; another study's is kept, the next name taken."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.db", "b.db"):
        with Store(tmp_path / name) as opened:
            caviar_study(opened)
    wrote = [cli(command, "cav", "--store", store).stdout.strip() for store in ("a.db", "b.db", "a.db", "b.db")
             for command in ("plot", "report")]
    assert wrote == ["wrote cav.png", "wrote cav.html",
                     "wrote cav-2.png (cav.png is another study's of that name)",
                     "wrote cav-2.html (cav.html is another study's of that name)",
                     "wrote cav.png", "wrote cav.html",  # a study's own picture is drawn again
                     "wrote cav-2.png (cav.png is another study's of that name)",
                     "wrote cav-2.html (cav.html is another study's of that name)"]
    assert cli("plot", "cav", "--store", "b.db", "-o", "cav.svg").exit_code == 0
    assert cli("plot", "cav", "--store", "a.db", "-o", "cav.svg").stdout.strip() == "wrote cav.svg"  # as asked
    with Store(tmp_path / "a.db") as opened:
        opened.delete_study(opened.study("cav"))
        caviar_study(opened)  # made again: another study, though in the same store
    assert cli("plot", "cav", "--store", "a.db").stdout.strip() == \
        "wrote cav-3.png (cav.png is another study's of that name)"

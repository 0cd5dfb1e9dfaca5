"""Reports a researcher looks at: `research plot` (PNG/SVG) for caviar and babysit studies,
the self-contained HTML of `research report`, and their one-line errors."""

import base64
import csv
import io
import json
import struct
import types
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from research_plugins.babysit import figure as babysit_figure

from research import report
from research.errors import UsageError
from research.plugins import load_plugins
from research.report import render
from research.report.figure import Arrow, EdgeCross, Figure, Series, VLine
from research.report.figures import short
from research.report.html import render_report
from research.study.store import Store
from research.study.study import StudySettings, open_study
from tests.studyutil import cli

PNG = b"\x89PNG\r\n\x1a\n"
LOSS = {"train_loss": 0.5, "val_loss": 0.6}
NASTY = 'boom <script>alert("x")</script> & more'


def babysit_plugins():
    """The installed plugins with babysit's figure hook loaded explicitly."""
    return load_plugins([babysit_figure])


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (which must come first)."""
    assert data[:8] == PNG
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def run_study(path, name, settings, strategy):
    plugins = load_plugins()
    with Store(path) as store:
        study = open_study(store, name, settings, plugins, executor="serial", workers=1)
        plugins.get("strategies", settings.strategy)(**strategy).run(study)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """One store with a coarse-to-fine caviar study (one trial marked failed with an error full
    of HTML, one left running with no epochs) and a babysit study whose lr diverges."""
    path = tmp_path_factory.mktemp("reports") / "research.db"
    caviar = StudySettings(strategy="caviar", base={"epochs": 2, "hidden": 16},
                           space={"lr": "log:1e-3..0.3", "beta1": "log1m:0.8..0.99", "layers": "1,2"},
                           sampler="coarse-to-fine", sampler_options={"round_size": 3}, seed=1, trials=6)
    run_study(path, "cav", caviar, {})
    babysit = StudySettings(strategy="babysit", trials=1, space={},
                            base={"optimizer": "sgd", "lr": 40.0, "hidden": 16, "batchnorm": False})
    run_study(path, "baby", babysit, {"segment_epochs": 1, "segments": 4})
    with Store(path) as store:
        study = store.study("cav")
        store.set_status(store.trial(study, 5), "failed", NASTY + "\nsecond line of the traceback")
        store.add_trial(study, 6, {"lr": 0.01, "beta1": 0.9, "layers": 1}, seed=6)  # running, no runner
    return path


def test_the_babysit_study_diverged_and_was_rolled_back(store_path):
    """The premise of the babysit tests: lr 40 diverges, the policy rolls back and halves it."""
    with Store(store_path, create=False) as store:
        study = store.study("baby")
        kinds = [e["kind"] for e in store.events(study)]
        curve = store.curve(store.trials(study)[0], rolled_back=True)
    assert "rollback" in kinds and "change" in kinds
    assert any(row["rolled_back"] for row in curve)
    assert any(row["val_loss"] is None for row in curve)  # the diverged epoch


@pytest.mark.parametrize("name, size", [("cav", (800, 500)), ("baby", (900, 600))])
def test_plot_writes_a_png_of_sensible_size(store_path, tmp_path, monkeypatch, name, size):
    monkeypatch.chdir(tmp_path)
    result = cli("plot", name, "--store", store_path)
    assert result.exit_code == 0, result.output
    data = (tmp_path / f"{name}.png").read_bytes()  # the default: STUDY.png in the working directory
    assert png_size(data) == size
    assert 10_000 < len(data) < 300_000
    assert f"{name}.png" in result.stdout


@pytest.mark.parametrize("name, metric", [("cav", "val_loss"), ("baby", "lr")])
def test_plot_writes_svg_for_any_metric(store_path, tmp_path, name, metric):
    target = tmp_path / "out" / f"{name}.svg"
    target.parent.mkdir()
    result = cli("plot", name, "--store", store_path, "-o", target, "--metric", metric)
    assert result.exit_code == 0, result.output
    root = ET.parse(target).getroot()
    assert root.tag.endswith("svg")
    width, height = (float(root.get(a).removesuffix("pt")) for a in ("width", "height"))
    assert 300 < width < 1000 and 200 < height < 800
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 10


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def marks(figure, kind, panel=0):
    return [m for m in figure.panels[panel].marks if isinstance(m, kind)]


def test_babysit_figure_marks_changes_rollbacks_and_diverged_epochs(store_path):
    with Store(store_path, create=False) as store:
        study = store.study("baby")
        changes = [e["data"] for e in store.events(study, kind="change")]
        rollbacks = [e["data"] for e in store.events(study, kind="rollback")]
        segments = [e["data"] for e in store.events(study, kind="segment")]
        figure = report.study_figure(store, study, "val_acc", babysit_plugins())  # babysit's hook answers
    lines, arrows = marks(figure, VLine), marks(figure, Arrow)
    labels = " ".join([line.text for line in lines] + [arrow.text for arrow in arrows])
    first = changes[0]
    assert f"lr {short(first['old'])} -> {short(first['new'])}" in labels
    assert labels.count("rollback ") == len(rollbacks)
    assert f"rollback {rollbacks[0]['from_epoch']}->{rollbacks[0]['to_epoch']}" in labels
    assert {line.x for line in lines} == {c["epoch"] for c in changes}
    assert marks(figure, EdgeCross)  # the diverged epoch, on the bottom edge of the metric's panel
    rate = figure.panels[1]
    assert rate.y.scale == "log" and all(s.steps for s in rate.series if s.style != "points")
    assert {line.x for line in marks(figure, VLine, 1)} == {c["epoch"] for c in changes}
    assert figure.tables[0].title == "Hyperparameters at the last boundary"
    assert dict(figure.tables[0].rows) == segments[-1]["hyper"]

    fig = render.draw(figure)
    assert set(texts(fig)) >= {line.text for line in lines} | {arrow.text for arrow in arrows}
    top = fig.axes[0]
    vertical = [line for line in top.lines if len(set(line.get_xdata())) == 1 and line.get_linestyle() == ":"]
    assert {line.get_xdata()[0] for line in vertical} == {c["epoch"] for c in changes}
    assert any(line.get_marker() == "x" for line in top.lines)
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert {"live curve", "change", "rollback", "diverged (NaN loss)"} <= set(legend)


def test_babysit_figure_has_no_rate_panel_for_a_trainer_that_reports_no_rate(tmp_path):
    """A --command program that prints only losses got an empty lr panel under its curve."""
    with Store(tmp_path / "r.db") as store:
        study = store.create_study("own", "babysit", {"space": {}})
        trial = store.add_trial(study, 0, {"lr": 0.1}, 0)
        for epoch in range(1, 4):
            store.add_epoch(trial, epoch, LOSS)
        store.add_event(study, "change", {"name": "lr", "old": 0.1, "new": 0.05, "source": "user", "reason": "user",
                                          "epoch": 2, "before": None}, trial)
        figure = babysit_figure.babysit_figure(store, study)
    assert len(figure.panels) == 1 and figure.panels[0].y.label == "val loss"
    assert [line.text for line in marks(figure, VLine)] == ["lr 0.1 -> 0.05"]


def test_babysit_figure_of_a_program_that_reports_no_train_loss_draws_its_curve(tmp_path):
    """A --command program printing val_loss and val_acc only: every epoch was taken for a
    diverged one (a cross each) and the panel had no curve. A NaN val_loss is still a cross."""
    with Store(tmp_path / "r.db") as store:
        study = store.create_study("own", "babysit", {"space": {}})
        trial = store.add_trial(study, 0, {"lr": 0.1}, 0)
        for epoch in range(1, 5):
            store.add_epoch(trial, epoch, {"val_loss": 1 / epoch if epoch != 3 else float("nan"), "val_acc": 0.5})
        figure = babysit_figure.babysit_figure(store, study)
    live = next(s for s in figure.panels[0].series if s.info.get("part") == "live")
    assert list(live.x) == [1, 2, 4] and list(live.y) == [1.0, 0.5, 0.25]
    assert [m.x for m in marks(figure, EdgeCross)] == [3]


def test_the_export_keeps_the_epochs_a_rollback_undid_apart(tmp_path):
    """The plot drew them, the export left them out: a babysit story could not be read back."""
    from research.report import export

    with Store(tmp_path / "r.db") as store:
        study = store.create_study("story", "babysit", {"space": {}})
        trial = store.add_trial(study, 0, {"lr": 0.1}, 0)
        for epoch in range(1, 5):
            store.add_epoch(trial, epoch, {"val_acc": epoch / 10, **LOSS})
        store.roll_back(trial, 2)
        for epoch in range(3, 5):
            store.add_epoch(trial, epoch, {"val_acc": 0.5 + epoch / 10, **LOSS})
        rows = list(csv.DictReader(io.StringIO(export(store, study, "csv"))))
        document = json.loads(export(store, study, "json"))
        caviar = store.create_study("plain", "caviar", {"space": {}})
        store.add_epoch(store.add_trial(caviar, 0, {}, 0), 1, LOSS)
        plain = export(store, caviar, "csv")
    assert [(r["epoch"], r["val_acc"], r["rolled_back"]) for r in rows] == [
        ("1", "0.1", "0"), ("2", "0.2", "0"), ("3", "0.8", "0"), ("4", "0.9", "0"),
        ("3", "0.3", "1"), ("4", "0.4", "1")]
    trial = document["trials"][0]
    assert [r["val_acc"] for r in trial["curve"]] == [0.1, 0.2, 0.8, 0.9]
    assert [(r["epoch"], r["val_acc"]) for r in trial["undone"]] == [(3, 0.3), (4, 0.4)]
    assert "rolled_back" not in plain.splitlines()[0]  # a study without rollbacks keeps its columns


def test_csv_export_gives_every_column_its_own_name(tmp_path):
    """A trainer's metric "epoch_lr" beside the epoch's lr (renamed epoch_lr: a searched lr has
    "lr") made two columns "epoch_lr", and a CSV reader kept one of them."""
    from research.report import export

    with Store(tmp_path / "r.db") as store:
        study = store.create_study("own", "caviar", {"space": {"lr": "log:1e-4..1", "momentum": "0.8..0.99"}})
        trial = store.add_trial(study, 0, {"lr": 0.1, "momentum": 0.9}, 0)
        store.add_epoch(trial, 1, {**LOSS, "val_acc": 0.5, "lr": 0.3, "epoch_lr": 7.0, "momentum": 0.85,
                                   "epoch_epoch_lr": 8.0})
        text = export(store, study, "csv")
    header = text.splitlines()[0].split(",")
    assert len(header) == len(set(header)), header
    row = next(csv.DictReader(io.StringIO(text)))
    assert (row["lr"], row["momentum"]) == ("0.1", "0.9")        # the trial's values keep their names
    assert {row[name] for name in header if name.endswith("_lr")} == {"0.3", "7.0", "8.0"}
    assert row["epoch_momentum"] == "0.85" and row["epoch_lr"] == "7.0"


def test_babysit_figure_draws_rolled_back_epochs_faded_from_where_they_branched(tmp_path):
    """A hand-made story: epochs 1..4, a change at 2 undone by a rollback from 4 to 2, then 3..5."""
    with Store(tmp_path / "r.db") as store:
        study = store.create_study("story", "babysit", {"space": {}})
        trial = store.add_trial(study, 0, {"lr": 0.1}, 0)
        for epoch in range(1, 5):
            store.add_epoch(trial, epoch, {"val_acc": 0.5 + epoch / 10, "lr": 0.1 if epoch <= 2 else 0.4, **LOSS})
        change = store.add_event(study, "change", {"name": "lr", "old": 0.1, "new": 0.4, "source": "user",
                                                   "reason": "user", "epoch": 2, "before": None}, trial)
        store.add_event(study, "outcome", {"change": change, "name": "lr", "kept": False}, trial)
        store.roll_back(trial, 2)
        store.add_event(study, "rollback", {"from_epoch": 4, "to_epoch": 2, "reason": "user"}, trial)
        for epoch in range(3, 6):
            store.add_epoch(trial, epoch, {"val_acc": 0.6 + epoch / 20, "lr": 0.1, **LOSS})
        figure = babysit_figure.babysit_figure(store, study, "val_acc")
    series = figure.panels[0].series
    assert [list(s.x) for s in series if s.emphasis == "faded"] == [[2, 3, 4]]  # from where it branched off
    assert [list(s.x) for s in series if s.emphasis == "highlighted"] == [[1, 2, 3, 4, 5]]
    assert [line.text for line in marks(figure, VLine)] == ["lr 0.1 -> 0.4 (undone)"]
    assert [arrow.text for arrow in marks(figure, Arrow)] == ["rollback 4->2"]
    assert not marks(figure, EdgeCross)  # nothing diverged
    # no segment event: no table of the last boundary; the one change in the timeline
    assert [(t.title, t.rows) for t in figure.tables] == [("Hyperparameter timeline",
                                                          ((2, "lr", 0.1, 0.4, "user", "undone"),))]

    top = render.draw(figure).axes[0]
    faded = [line for line in top.lines if line.get_alpha() == 0.35]
    live = [line for line in top.lines if line.get_linewidth() == 2]
    assert [list(line.get_xdata()) for line in faded] == [[2, 3, 4]]
    assert [list(line.get_xdata()) for line in live] == [[1, 2, 3, 4, 5]]
    assert not any(line.get_marker() == "x" for line in top.lines)


def test_rollback_labels_never_print_into_each_other():
    """Rollbacks 1->0, 2->1 and 3->0 in a 20-epoch run: the first and last shared a row, and
    their labels ran together ("rollback 1->0rollback 3->0"). Each label now has its own room."""
    from research.report.figure import Axis, Panel

    arrows = [Arrow(1, 0, "rollback 1->0"), Arrow(2, 1, "rollback 2->1"), Arrow(3, 0, "rollback 3->0"),
              Arrow(15, 12, "rollback 15->12")]
    panel = Panel(Axis("epoch", integer=True, limits=(-0.3, 20.7)), Axis("val loss"),
                  [Series(list(range(1, 21)), [1 / e for e in range(1, 21)], "live curve")], arrows, 3)
    fig = render.draw(Figure(title="t", panels=[panel], size=(9, 5)))
    fig.canvas.draw()
    boxes = {t.get_text(): t.get_window_extent() for t in fig.axes[0].texts if t.get_text().startswith("rollback")}
    assert len(boxes) == 4
    for one, other in [(a, b) for a in boxes for b in boxes if a < b]:
        assert not boxes[one].overlaps(boxes[other]), (one, other)
    arrow_rows = {round(p.xy[1], 3) for p in fig.axes[0].texts if not p.get_text()}  # the arrows themselves
    assert len(arrow_rows) == 3  # three rows where three meet; 15->12 shares the top one


def test_the_babysit_hook_leaves_other_studies_alone(store_path):
    with Store(store_path, create=False) as store:
        assert babysit_figure.study_figure(store, store.study("cav"), "val_acc", True) is None
        figure = report.study_figure(store, store.study("cav"), "val_acc", babysit_plugins())
    assert figure.name == "Learning curves"
    highlighted = [s for s in figure.panels[0].series if s.emphasis == "highlighted"]
    assert len(highlighted) == 5 and all(s.label.startswith("#") for s in highlighted)
    assert all(s.color is None for s in figure.panels[0].series if s.emphasis == "faded")


def test_scores_are_plotted_on_each_parameters_scale(store_path):
    with Store(store_path, create=False) as store:
        figure = report.scores_figure(store, store.study("cav"))
    assert [p.x.scale for p in figure.panels] == ["log", "log1m", "choice"]
    fig = render.draw(figure)
    by_label = {ax.get_xlabel(): ax for ax in fig.axes if ax.get_visible()}
    assert by_label["lr (log scale)"].get_xscale() == "log"
    beta = by_label["beta1 (log scale of 1 - beta1)"]
    assert beta.get_xscale() == "log"
    low, high = beta.get_xlim()
    assert low > high  # 1 - beta decreases to the right: beta grows to the right
    fig.canvas.draw()
    ticks = [t.get_text() for t in beta.get_xticklabels() if t.get_text()]
    assert "0.9" in ticks and "0.99" in ticks
    assert [t.get_text() for t in by_label["layers"].get_xticklabels()] == ["1", "2"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "round 0" in legend and "round 1" in legend and "no score" in legend


@pytest.mark.parametrize("metric", ["val_acc", "val_loss", "lr"])
def test_figures_round_trip_through_json(store_path, metric):
    """What a web page would read: plain JSON (no NaN), read back into the same figure."""
    plugins = babysit_plugins()
    with Store(store_path, create=False) as store:
        figures = [report.study_figure(store, store.study("cav"), metric, plugins),
                   report.scores_figure(store, store.study("cav"), metric),
                   report.study_figure(store, store.study("baby"), metric, plugins)]
    assert [f.name for f in figures] == ["Learning curves", "Score against each hyperparameter",
                                         "Learning curve, changes and rollbacks"]
    for figure in figures:
        text = json.dumps(figure.as_dict(), allow_nan=False)
        assert Figure.from_dict(json.loads(text)) == figure
    kinds = {m["kind"] for panel in json.loads(text)["panels"] for m in panel["marks"]}
    assert {"vline", "arrow"} <= kinds


def test_figure_data_is_checked_when_built():
    with pytest.raises(ValueError, match="2 x values and 1 y values"):
        Series([1, 2], [0.5])
    with pytest.raises(ValueError, match="emphasis must be one of: highlighted, normal, faded"):
        Series([1], [0.5], emphasis="bold")
    with pytest.raises(ValueError, match="finite numbers"):
        Series([1], [float("nan")])


class Page(HTMLParser):
    """The tables (rows of cell texts) and image sources of an HTML page."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.tags = [], [], []
        self.cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def parse(text):
    page = Page()
    page.feed(text)
    page.close()
    return page


def table_with(page, *headers):
    return next(t for t in page.tables if set(headers) <= set(t[0]))


def check_self_contained(text, page):
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    assert page.images
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        width, height = png_size(base64.b64decode(src.split(",", 1)[1]))
        assert 300 < width < 2000 and 200 < height < 1500


def test_html_report_of_a_caviar_study(store_path, tmp_path):
    target = tmp_path / "report.html"
    result = cli("report", "cav", "--store", store_path, "-o", target)
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    page = parse(text)
    check_self_contained(text, page)
    assert len(page.images) == 3  # the curves, the scores against each hyperparameter, the parallel coordinates
    with Store(store_path, create=False) as store:
        statuses = {t.number: t.status for t in store.trials(store.study("cav"))}
    ranked = table_with(page, "rank", "trial", "status", "best val acc", "final val acc", "lr", "beta1", "error")
    header = ranked[0]
    found = {int(row[header.index("trial")]): row[header.index("status")] for row in ranked[1:]}
    # the trial left running has no live runner: it reads as interrupted
    assert found == statuses and set(statuses.values()) == {"finished", "failed", "interrupted"}
    failed = next(row for row in ranked[1:] if row[header.index("status")] == "failed")
    assert failed[header.index("error")] == NASTY  # the first line, escaped and read back intact
    assert "<script>" not in text and "&lt;script&gt;" in text
    counts = table_with(page, "status", "trials")
    assert dict(counts[1:]) == {"finished": "5", "failed": "1", "interrupted": "1", "total": "7"}
    assert ["lr", "log:1e-3..0.3"] in table_with(page, "name", "definition")


def test_html_report_of_a_babysit_study(store_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("report", "baby", "--store", store_path)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "baby.html").read_text(encoding="utf-8")
    page = parse(text)
    check_self_contained(text, page)
    assert len(page.images) == 1
    ranked = table_with(page, "rank", "trial", "status")
    assert [row[1:3] for row in ranked[1:]] == [["0", "finished"]]
    events = table_with(page, "#", "kind", "what")
    kinds = {row[2] for row in events[1:]}
    assert {"segment", "change", "rollback", "end"} <= kinds
    assert any("lr 40 -> 20" in row[4] for row in events[1:])  # in babysit's words, as its run note says it
    assert "Hyperparameters at the last boundary" in text
    hyper = [t for t in page.tables if t[0] == ["name", "value"]][-1]  # after the settings' own
    assert ["lr", "10"] in hyper


def test_report_escapes_a_study_name(tmp_path):
    with Store(tmp_path / "r.db") as store:
        study = store.create_study("<b>x</b>", "caviar", {"space": {"lr": "log:1e-3..1"}, "base": {"note": "<i>"}})
        text = render_report(store, study, load_plugins())
    assert "<b>" not in text and "<i>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text


FANCY = '''
from research import hookimpl
from research.report.figure import Axis, Figure, Panel, Series, Table

@hookimpl
def study_figure(store, study, metric):
    if study.strategy != "fancy":
        return None
    curve = store.curve(store.trials(study)[0])
    series = Series([r["epoch"] for r in curve], [r[metric] for r in curve], "the <fancy> one")
    return Figure(title=f"{study.name}: fancy", panels=[Panel(Axis("epoch"), Axis(metric), [series])],
                  name="A fancy picture", caption="Read me <carefully>.",
                  tables=[Table("Fancy numbers", ["what", "how many"], [["ideas", 3], ["doubts", 0.5]])])
'''


def plugin_module(name, source):
    """A plugin module made in this process, as a third party's would be imported."""
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def fancy_study(store):
    study = store.create_study("f", "fancy", {"space": {}})
    trial = store.add_trial(study, 0, {"lr": 0.1}, 0)
    for epoch in range(1, 4):
        store.add_epoch(trial, epoch, {"val_acc": 0.5 + epoch / 10, "lr": 0.1, **LOSS})
    store.set_status(trial, "finished")
    return study


def test_a_third_party_figure_replaces_the_picture_of_its_own_strategys_study(tmp_path):
    plugins = load_plugins([plugin_module("fancyplot", FANCY)])
    with Store(tmp_path / "r.db") as store:
        study = fancy_study(store)
        other = store.create_study("c", "caviar", {"space": {}})
        assert report.study_figure(store, study, "val_acc", plugins).title == "f: fancy"
        assert report.study_figure(store, other, "val_acc", plugins).name == "Learning curves"
        picture = report.plot_study(store, study, tmp_path / "f.png", "val_acc", plugins)
        text = render_report(store, study, plugins)
    assert png_size(picture.read_bytes()) == (800, 500)
    page = parse(text)
    check_self_contained(text, page)
    assert "A fancy picture" in text and "Read me &lt;carefully&gt;." in text
    assert table_with(page, "what", "how many")[1:] == [["ideas", "3"], ["doubts", "0.5"]]
    assert "Fancy numbers" in text and not plugins.problems


@pytest.mark.parametrize("body, says", [
    ("raise RuntimeError('no picture today')", "failed in study_figure: RuntimeError: no picture today"),
    ("return Series([1], [2], emphasis='loud')", "failed in study_figure: ValueError: series emphasis"),
    ("return 'a picture'", "plugin 'brokenplot': its study_figure returned 'a picture', not a "
                           "research.report.figure.Figure; it is ignored"),
])
def test_a_figure_hook_that_fails_falls_back_to_the_curves(tmp_path, body, says):
    source = f"from research import hookimpl\nfrom research.report.figure import Series\n" \
             f"@hookimpl\ndef study_figure(store, study, metric):\n    {body}\n"
    plugins = load_plugins([plugin_module("brokenplot", source)])
    with Store(tmp_path / "r.db") as store:
        study = fancy_study(store)
        figure = report.study_figure(store, study, "val_acc", plugins)
        text = render_report(store, study, plugins)
    assert figure.name == "Learning curves" and "f: 1 trials" in figure.title
    assert "Learning curves" in text
    assert any(says in problem for problem in plugins.problems), plugins.problems
    if "failed in" in says:
        assert any(problem.startswith("plugin 'brokenplot' failed") for problem in plugins.problems)


def test_an_event_description_that_is_no_text_is_reported_and_the_event_shown_as_data(tmp_path):
    """describe_event returning 42 made `research log` fail with rich's NotRenderableError,
    as research's own bug."""
    source = "from research import hookimpl\n@hookimpl\ndef describe_event(study, event):\n    return 42\n"
    plugins = load_plugins([plugin_module("wordless", source)])
    with Store(tmp_path / "r.db") as store:
        study = fancy_study(store)
        line = plugins.describe(study, {"kind": "note", "data": {"x": 1}})
    assert line == 'note {"x": 1}'
    assert plugins.problems == ["plugin 'wordless': its describe_event returned 42, not a str; it is ignored"]


@pytest.mark.parametrize("args, says", [
    (["plot", "cav", "--metric", "accuracy"], "unknown metric 'accuracy'"),
    (["plot", "cav", "-o", "curves.jpg"], "name a .png or .svg file"),
    (["plot", "cav", "-o", "curves"], "name a .png or .svg file"),
    (["plot", "cav", "-o", "missing/curves.png"], "folder missing does not exist"),
    (["plot", "nope"], "no study 'nope'"),
    (["report", "nope"], "no study 'nope'"),
    (["report", "cav", "-o", "report.pdf"], "name an .html file"),
    (["report", "cav", "-o", "."], "cannot write the report to .: it is a folder; name an .html file in it"),  # "to ;"
])
def test_bad_input_is_one_line_and_exit_2(store_path, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    result = cli(*args, "--store", store_path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_is_not_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in ("plot", "report"):
        result = cli(command, "cav")
        assert result.exit_code == 2 and "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_python_api_checks_metric_and_extension(store_path, tmp_path):
    plugins = load_plugins()
    with Store(store_path, create=False) as store:
        study = store.study("cav")
        with pytest.raises(UsageError, match="unknown metric"):
            report.plot_study(store, study, tmp_path / "a.png", "acc", plugins)
        with pytest.raises(UsageError, match="png or .svg"):
            report.plot_curves(store, study, tmp_path / "a.gif")
        with pytest.raises(UsageError, match="folder .*missing does not exist"):
            report.plot_curves(store, study, tmp_path / "missing" / "a.png")
        with pytest.raises(UsageError, match="name an .html file"):
            report.write_report(store, study, tmp_path / "r.pdf", plugins)
        assert report.plot_scores(store, study, tmp_path / "s.png").read_bytes()[:8] == PNG
        with pytest.raises(UsageError, match="searched no hyperparameters"):
            report.plot_scores(store, store.study("baby"), tmp_path / "b.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]


def test_a_file_that_cannot_be_written_is_a_usage_error(store_path, tmp_path):
    (tmp_path / "taken.png").mkdir()  # a folder where the picture should go
    with Store(store_path, create=False) as store:
        with pytest.raises(UsageError, match=r"cannot write .*taken.png: it is a folder; name a file in it, or choose "
                                             r"another -o"):
            report.plot_curves(store, store.study("cav"), tmp_path / "taken.png")

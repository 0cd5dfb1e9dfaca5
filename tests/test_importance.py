"""Hyperparameter importance (PED-ANOVA): synthetic objectives where we know which parameters
matter, conditional parameters, the bootstrap and the shuffles, which stored trials count, the
figure, and `research importance` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from research.errors import UsageError
from research.plugins import load_plugins
from research.report.html import render_report
from research.report.importance import importance_figure
from research.space import parse_space, restrict
from research.study.importance import GRID, MIN_TOP, bandwidth, density, encode, importance, pearson, study_importance
from research.study.store import CONFIRMATIONS_FROM, Store
from tests.studyutil import cli

SPACE = {"lr": "log:1e-4..1", "beta": "log1m:0.9..0.999", "wd": "log:1e-6..1e-2", "drop": "0..0.5",
         "layers": "int:1..4", "act": "relu,tanh,gelu"}


def draw(space, n, seed):
    """``n`` configurations drawn uniformly on each parameter's scale, inactive ones left out."""
    rng = np.random.default_rng(seed)
    return [restrict(space, {name: p.from_unit(float(rng.random())) for name, p in space.items()}) for _ in range(n)]


def shares(found):
    return {item.name: item.share for item in found.params}


def noisy(scores, seed, sd=0.05):
    rng = np.random.default_rng(seed)
    return [s + sd * float(rng.normal()) for s in scores]


# the method ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_only_the_two_parameters_that_matter_get_a_share(seed):
    space = parse_space(SPACE)
    configs = draw(space, 300, seed)
    # best near lr = 1e-2 (u = 0.5 on its log scale) and beta = 0.99 (u = 0.5 on log(1 - beta))
    scores = noisy([-(space["lr"].to_unit(c["lr"]) - 0.5) ** 2 - (space["beta"].to_unit(c["beta"]) - 0.5) ** 2
                    for c in configs], seed)
    found = importance(space, configs, scores, seed=0)
    assert [item.name for item in found.params[:2]] in (["lr", "beta"], ["beta", "lr"])
    assert all(item.share < 0.1 for item in found.params[2:]), shares(found)
    assert all(item.p <= 0.01 for item in found.params[:2])
    assert sum(shares(found).values()) == pytest.approx(1.0)
    assert (found.trials, found.scored, found.top) == (300, 300, 30)
    assert found.note is None
    assert {item.name: item.scale for item in found.params} == {
        "lr": "log", "beta": "log1m", "wd": "log", "drop": "linear", "layers": "int", "act": "choice"}


def test_a_parameter_that_matters_through_a_choice_alone():
    space = parse_space(SPACE)
    configs = draw(space, 300, 7)
    scores = noisy([{"relu": 1.0, "tanh": 0.0, "gelu": 0.2}[c["act"]] for c in configs], 7)
    found = importance(space, configs, scores, seed=0)
    assert found.params[0].name == "act" and found.params[0].share > 0.6, shares(found)
    assert all(item.share < 0.1 for item in found.params[1:]), shares(found)


def test_an_integer_that_matters_is_measured_on_its_integers():
    space = parse_space(SPACE)
    configs = draw(space, 300, 3)
    scores = noisy([-abs(c["layers"] - 3) for c in configs], 3, sd=0.3)
    found = importance(space, configs, scores, seed=0)
    assert found.params[0].name == "layers" and found.params[0].share > 0.6, shares(found)
    encoded = encode(space["layers"], [c["layers"] for c in configs])
    assert encoded.cells == 4 and encoded.widths.sum() == pytest.approx(1.0)  # one cell per integer


def test_the_log_scale_is_the_one_measured_on():
    """lr matters in its lowest decade: on the log scale that is a quarter of the range, on a
    linear one a sliver near 0. Either way it is the one that matters; its unit coordinates
    are the log ones."""
    space = parse_space({"lr": "log:1e-4..1", "other": "0..1"})
    encoded = encode(space["lr"], [1e-4, 1e-2, 1.0])
    assert encoded.u.tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert encoded.cell.tolist() == [0, GRID // 2, GRID - 1]


def test_densities_and_the_divergence():
    space = parse_space({"x": "0..1", "c": "a,b,c,d"})
    x = encode(space["x"], list(np.linspace(0.05, 0.25, 20)))
    mass = density(x, np.arange(20))
    assert mass.shape == (GRID,) and mass.sum() == pytest.approx(1.0) and mass.min() > 0
    assert mass[:30].sum() > 0.85  # the kernels stay near the values, cut at 0 and renormalized
    assert pearson(mass, mass) == 0.0
    c = encode(space["c"], ["a", "a", "a", "b"])
    # counts plus one trial's worth of uniform mass: (3 + 1/4, 1 + 1/4, 1/4, 1/4) / 5
    assert density(c, np.arange(4)).tolist() == pytest.approx([0.65, 0.25, 0.05, 0.05])
    uniform = np.full(4, 0.25)
    assert pearson(density(c, np.arange(4)), uniform) == pytest.approx(
        sum((m - 0.25) ** 2 / 0.25 for m in (0.65, 0.25, 0.05, 0.05)))
    # Scott's rule: 1.059 * sd * n**(-1/5) when the IQR does not make the spread smaller
    u = np.array([0.0, 1.0] * 10)
    assert bandwidth(u) == pytest.approx(1.059 * min(np.std(u, ddof=1), 1 / 1.34) * 20 ** -0.2)
    assert bandwidth(np.full(10, 0.3)) == 1 / GRID  # at least one cell


@pytest.mark.parametrize("definition", ["log:1e-4..1", "int:1..4", "int:16..256", "log1m:0.8..0.999 if act=relu"])
def test_the_shuffles_density_made_once_a_bandwidth_is_the_one_of_every_row(definition):
    """Rows that order the same trials differ only by the rounding of their bandwidths: smoothing
    each distinct one once gives every row's density exactly (so the p-values do not move)."""
    space = parse_space({"x": definition, "act": "relu,tanh"})
    configs = draw(space, 300, 0)
    x = encode(space["x"], [config.get("x") for config in configs])
    rows = np.random.default_rng(0).permuted(np.tile(np.arange(300), (50, 1)), axis=1)
    assert np.array_equal(density(x, rows, same_trials=True), density(x, rows))


def test_conditional_parameters_are_measured_where_they_are_active():
    space = parse_space({"optimizer": "adam,sgd", "beta2": "log1m:0.99..0.9999 if optimizer=adam",
                         "momentum": "0..0.99 if optimizer=sgd", "lr": "log:1e-4..1"})
    configs = draw(space, 400, 11)
    for index, config in enumerate(configs):  # inactive written both ways: absent and None
        if index % 2 and "beta2" not in config:
            config["beta2"] = None
    # adam is good only with beta2 in its upper half; sgd is mediocre whatever its momentum
    scores = noisy([(1.0 if space["beta2"].to_unit(c["beta2"]) > 0.5 else 0.0) if c["optimizer"] == "adam" else 0.4
                    for c in configs], 11)
    found = importance(space, configs, scores, seed=0)
    by_name = {item.name: item for item in found.params}
    adam = sum(c["optimizer"] == "adam" for c in configs)
    assert by_name["beta2"].trials == adam and by_name["momentum"].trials == len(configs) - adam
    assert by_name["beta2"].top == found.top and by_name["momentum"].top == 0  # the top set is all adam
    assert by_name["beta2"].condition == "optimizer=adam"
    assert by_name["momentum"].share == 0.0 and by_name["momentum"].p == 1.0  # never active at the top
    assert {found.params[0].name, found.params[1].name} == {"beta2", "optimizer"}
    assert by_name["lr"].share < 0.1


def test_a_value_of_a_parameter_inactive_in_a_trial_is_not_counted():
    """A configuration that carried beta2 though its optimizer was sgd had it counted: beta2's
    share was measured on trials where it did nothing. A space of definitions' text was an
    AttributeError."""
    space = parse_space({"optimizer": "adam,sgd", "beta2": "log1m:0.99..0.9999 if optimizer=adam",
                         "lr": "log:1e-4..1"})
    configs = draw(space, 120, 3)
    scores = noisy([-(space["lr"].to_unit(c["lr"]) - 0.3) ** 2 for c in configs], 3)
    clean = importance(space, configs, scores, seed=0)
    carried = [{**c, "beta2": 0.995} if c["optimizer"] == "sgd" else c for c in configs]
    assert importance(space, carried, scores, seed=0) == clean
    with pytest.raises(UsageError, match=r"^space\['optimizer'\] is 'adam,sgd', not a parameter; make the space "):
        importance({"optimizer": "adam,sgd"}, configs, scores)
    with pytest.raises(UsageError, match=r"^configs\[119\] is None, not a configuration; give each trial a mapping"):
        importance(space, configs[:-1] + [None], scores)  # an AttributeError


@pytest.mark.filterwarnings("error")
def test_a_parameter_active_in_one_top_trial_only_raises_no_warning():
    """numpy's nanstd warns on one value (ddof 1); a rare conditional parameter must not print
    numpy's warnings in the middle of `research importance`."""
    space = parse_space({"optimizer": "adam,momentum", "lr": "log:1e-3..0.3",
                         "beta": "log1m:0.9..0.999 if optimizer=momentum"})
    configs = [restrict(space, {"optimizer": "momentum" if i == 0 else "adam", "lr": 10 ** (-3 + 2.4 * i / 23),
                                "beta": 0.99}) for i in range(24)]
    found = importance(space, configs, [float(i % 7) for i in range(24)])
    assert {item.name: item.trials for item in found.params}["beta"] == 1
    u = np.array([[0.2, np.nan, np.nan], [0.1, 0.5, np.nan], [np.nan] * 3])
    assert bandwidth(u).tolist() == pytest.approx([1 / GRID, bandwidth(np.array([0.1, 0.5])), 1 / GRID])


def test_the_bootstrap_and_the_shuffles_are_seeded():
    space = parse_space(SPACE)
    configs = draw(space, 60, 5)
    scores = noisy([-(space["lr"].to_unit(c["lr"]) - 0.3) ** 2 for c in configs], 5)
    first, again = (importance(space, configs, scores, seed=4, resamples=50) for _ in range(2))
    assert first == again
    other = importance(space, configs, scores, seed=5, resamples=50)
    assert shares(other) == shares(first)  # the estimate itself is not random
    assert [item.error for item in other.params] != [item.error for item in first.params]
    lr = next(item for item in first.params if item.name == "lr")
    assert lr.error > 0 and 0 <= lr.low <= lr.high <= 1
    assert all(1 / 51 <= item.p <= 1 for item in first.params)


@pytest.mark.parametrize(("n", "seed"), [(12, 7), (20, 11), (20, 36), (30, 5)])
def test_each_share_lies_within_its_interval(n, seed):
    """Resampling repeats trials, which sharpens the top set's density and lifts every
    divergence: the plain 5..95% percentiles of small studies' shares missed the share itself
    (a dominant one above its interval, a negligible one below). The interval is the
    bootstrap's spread centred on the share."""
    space = parse_space({"lr": "log:1e-4..1", "beta1": "log1m:0.9..0.999", "hidden": "int:16..128"})
    configs = draw(space, n, seed)
    scores = noisy([-abs(space["lr"].to_unit(c["lr"]) - 0.5) for c in configs], seed, sd=0.15)
    for item in importance(space, configs, scores).params:
        assert 0 <= item.low <= item.share <= item.high <= 1, item


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_that_no_parameter_explains_are_said_to_be_chance(seed):
    space = parse_space(SPACE)
    configs = draw(space, 60, seed)
    scores = noisy([0.0] * 60, seed + 10)   # the order of the trials is pure noise
    found = importance(space, configs, scores)
    assert all(item.p > 0.05 for item in found.params)
    least = min(found.params, key=lambda item: item.p)
    assert found.note == (f"no parameter stands out from chance (the smallest p is {least.p:.3f}, {least.name}'s), "
                          "so the order of the shares may be noise; run more trials")


def test_few_trials_are_said_and_too_few_refused():
    space = parse_space(SPACE)
    configs = draw(space, 12, 1)
    scores = [float(i) for i in range(12)]
    found = importance(space, configs, scores, resamples=20)
    assert found.top == MIN_TOP and "only 12 trials have a score" in found.note
    assert "the top set is the best 3 of 12 trials (25%, not the 10% asked)" in found.note
    assert "\n" not in found.note
    with pytest.raises(UsageError, match="at least 6 trials with a score .* got 5; run more trials"):
        importance(space, configs[:5], scores[:5])
    with pytest.raises(UsageError, match="between 0 and 1"):
        importance(space, configs, scores, quantile=1.0)
    # a top set of every trial compares them with nothing: every share was 0, adding up to 0
    with pytest.raises(UsageError, match=r"^the top 99% is 12 trials and 12 of 12 have a score, which leaves fewer "
                                         r"than 3 to set it against; ask for a smaller quantile"):
        importance(space, configs, scores, quantile=0.99)
    assert importance(space, configs, scores, quantile=0.75, resamples=5).top == 9
    # equal scores: the top set would be chosen by trial order
    with pytest.raises(UsageError, match=r"^the 12 scored trials all have the same score, so no hyperparameter "):
        importance(space, configs, [0.5] * 12)


def test_trials_without_a_score_rank_last():
    """They are in the baseline, never in the top set: here every unscored trial has a high x,
    so the top set (low x only) differs from the baseline in x."""
    space = parse_space({"x": "0..1", "y": "0..1"})
    rng = np.random.default_rng(0)
    configs = [{"x": float(rng.random()) * 0.5, "y": float(rng.random())} for _ in range(50)]
    configs += [{"x": 0.5 + float(rng.random()) * 0.5, "y": float(rng.random())} for _ in range(50)]
    scores = [float(rng.random()) for _ in range(50)] + [None] * 50
    found = importance(space, configs, scores, resamples=20)
    assert (found.trials, found.scored, found.top) == (100, 50, 10)
    assert found.params[0].name == "x" and found.params[0].share > 0.6


# a stored study ----------------------------------------------------------------------------------------------

def stored(tmp_path, statuses, metric=None, direction=None):
    """A study of x (which matters: the loss is x) and y (which does not), one trial per status."""
    store = Store(tmp_path / "research.db")
    settings = {"space": {"x": "0..1", "y": "0..1"}, "metric": metric, "direction": direction}
    study = store.create_study("s", "caviar", settings)
    rng = np.random.default_rng(0)
    for number, status in enumerate(statuses):
        x, y = float(rng.random()), float(rng.random())
        trial = store.add_trial(study, number, {"x": x, "y": y, "epochs": 2}, seed=number)
        store.add_epoch(trial, 1, {"val_loss": x + 1, "val_acc": 1 - x})
        store.add_epoch(trial, 2, {"val_loss": x, "val_acc": 1 - x / 2})
        if status != "running":
            store.set_status(trial, status)
    return store, study


def test_which_stored_trials_count(tmp_path):
    statuses = ["finished"] * 30 + ["pruned"] * 5 + ["diverged"] * 2 + ["failed"] * 4 + ["running"] * 3 \
               + ["interrupted"]
    store, study = stored(tmp_path, statuses, metric="val_loss")
    config = {"x": 0.0, "y": 0.0}
    store.add_confirmation(study, CONFIRMATIONS_FROM, config, seed=9, confirms=0, replicate=1)
    found = study_importance(store, study, resamples=20)
    assert found.trials == 37  # finished, pruned and diverged; not failed, running, interrupted or confirmations
    assert found.params[0].name == "x" and found.params[0].share > 0.8  # the loss minimized: low x is the top


def test_trials_of_one_score_are_ranked_by_the_tie_break_as_research_show_ranks_them(tmp_path):
    """Every trial at val_acc 1.0 (a small validation set): `research show` ranked them by the
    validation loss, but importance refused them as all of the same score."""
    store = Store(tmp_path / "research.db")
    study = store.create_study("s", "caviar", {"space": {"x": "0..1", "y": "0..1"}})
    rng = np.random.default_rng(0)
    for number in range(40):
        x, y = float(rng.random()), float(rng.random())
        trial = store.add_trial(study, number, {"x": x, "y": y, "epochs": 1}, seed=number)
        store.add_epoch(trial, 1, {"val_loss": x, "val_acc": 1.0})
        store.set_status(trial, "finished")
    found = study_importance(store, study, resamples=20)
    assert found.params[0].name == "x" and found.params[0].share > 0.8  # low loss: low x
    assert found.note.startswith("every scored trial has the same val_acc, so the top set is the best by val_loss, "
                                 "the tie-break of the ranking")

    tied = store.create_study("t", "caviar", {"space": {"x": "0..1", "y": "0..1"}})  # equal in both: nothing to explain
    for number in range(8):
        trial = store.add_trial(tied, number, {"x": number / 8, "y": 0.5, "epochs": 1}, seed=number)
        store.add_epoch(trial, 1, {"val_loss": 0.5, "val_acc": 1.0})
        store.set_status(trial, "finished")
    with pytest.raises(UsageError, match=r"^the 8 scored trials all have the same score"):
        study_importance(store, tied)


def test_a_study_without_a_space_is_refused(tmp_path):
    store = Store(tmp_path / "research.db")
    study = store.create_study("b", "babysit", {"base": {}})
    with pytest.raises(UsageError, match="study 'b' \\(babysit\\) searched no hyperparameters"):
        study_importance(store, study)
    assert importance_figure(store, study) is None


def test_the_figure_the_report_and_the_dashboard(tmp_path):
    store, study = stored(tmp_path, ["finished"] * 40)
    figure = importance_figure(store, study)
    assert figure.name == "Hyperparameter importance"
    assert figure.panels[0].y.categories == ("y", "x")  # the largest share at the top
    bar = figure.panels[0].series[-3]  # the top row's bar: from 0 to its share
    assert bar.x[0] == 0.0 and bar.x[1] == pytest.approx(study_importance(store, study).params[0].share)
    assert figure.tables[0].rows[0][0] == "x"
    from research.report import render as drawing

    assert drawing.to_bytes(figure, "png").startswith(b"\x89PNG")
    text = render_report(store, study, load_plugins())
    assert "<h2>Hyperparameter importance</h2>" in text
    from research_plugins.dashboard.views import Views, figures

    shown = figures(store, study, load_plugins(), Views())["figures"]
    assert shown[-1]["figure"]["name"] == "Hyperparameter importance"
    # the same numbers as the command and the report (the page drew 50 resamples, not 200: other p-values)
    assert shown[-1]["figure"] == figure.as_dict()
    (tmp_path / "few").mkdir()
    few, small = stored(tmp_path / "few", ["finished"] * 4)
    assert "Not measured: importance needs at least 6 trials" in render_report(few, small, load_plugins())
    names = [item["figure"]["name"] for item in figures(few, small, load_plugins(), Views())["figures"]]
    assert "Hyperparameter importance" not in names


# the command ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def study_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("importance")
    db = folder / "research.db"
    ran = cli("train", "--strategy", "caviar", "--study", "c", "--store", db, "--executor", "serial", "--trials", "20",
              "--epochs", "2", "--hidden", "8", "--plot", folder / "c.png")
    assert ran.exit_code == 0, ran.output
    ran = cli("train", "--strategy", "caviar", "--study", "few", "--store", db, "--executor", "serial", "--trials",
              "4", "--epochs", "1", "--hidden", "8", "--plot", folder / "few.png")
    assert ran.exit_code == 0, ran.output
    with Store(db) as store:
        store.create_study("b", "babysit", {"base": {}})
    return db


def test_the_command_shows_each_searched_parameter(study_store):
    ran = cli("importance", "c", "--store", study_store)
    assert ran.exit_code == 0, ran.output
    assert "which hyperparameters mattered for the best 3 of 20 trials" in ran.stdout
    for name in ("lr", "beta1", "beta2", "eps"):
        assert f"│ {name} " in ran.stdout
    assert "20 (3)" in ran.stdout and "note: the top set is the best 3 of 20 trials" in ran.stdout


def test_the_command_as_json(study_store):
    ran = cli("importance", "c", "--store", study_store, "--json")
    assert ran.exit_code == 0, ran.output
    found = json.loads(ran.stdout)
    assert found["study"] == "c" and (found["trials"], found["top"], found["resamples"]) == (20, 3, 200)
    assert {item["name"] for item in found["params"]} == {"lr", "beta1", "beta2", "eps"}
    assert sum(item["share"] for item in found["params"]) == pytest.approx(1.0)
    assert [item["share"] for item in found["params"]] == sorted((item["share"] for item in found["params"]),
                                                                 reverse=True)
    with Store(study_store, create=False) as store:
        assert found["params"] == list(study_importance(store, store.study("c")).as_dict()["params"])
    wider = json.loads(cli("importance", "c", "--store", study_store, "--json", "--quantile", "0.25").stdout)
    assert wider["top"] == 5 and "the top set" not in (wider["note"] or "")  # 5 of 20 is the quarter asked


@pytest.mark.parametrize("args, message", [
    (["nope"], "error: no study 'nope' in "),
    (["b"], "error: study 'b' (babysit) searched no hyperparameters"),
    (["few"], "error: importance needs at least 6 trials with a score (and means little below 20), got 4; "
              "run more trials"),
    (["c", "--quantile", "1.5"], "error: --quantile must be between 0 and 1"),
])
def test_bad_input_is_one_line(study_store, args, message):
    ran = cli("importance", *args, "--store", study_store)
    assert ran.exit_code == 2
    assert ran.stderr.startswith(message) and ran.stderr.count("\n") == 1, ran.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda c, s: s.__setitem__(3, float("nan")), r"^scores\[3\] is nan; give a finite number, or None for a trial "),
    (lambda c, s: s.__setitem__(0, "good"), r"^scores\[0\] is 'good'"),
    (lambda c, s: c[5].__setitem__("lr", 5.0), r"^configs\[5\] has lr=5\.0, outside the space lr=log:"),
    (lambda c, s: c[2].pop("lr"), r"^configs\[2\] has no value of lr, which is active in it"),
    (lambda c, s: s.__setitem__(1, True), r"^scores\[1\] is True; give a finite number"),  # was taken as 1
    (lambda c, s: s.pop(), r"^40 configurations and 39 scores; give one score per trial$"),  # a ValueError
])
def test_trials_given_from_python_are_checked_not_dropped_in_silence(edit, message):
    """A NaN score counted as scored; a value outside the space or a missing one dropped the
    trial from that parameter's share, with no word."""
    space = parse_space(SPACE)
    configs = draw(space, 40, 1)
    scores = [-(space["lr"].to_unit(c["lr"]) - 0.3) ** 2 for c in configs]
    edit(configs, scores)
    with pytest.raises(UsageError, match=message):
        importance(space, configs, scores)

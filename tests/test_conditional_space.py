"""Conditional spaces: a parameter that exists only for some values of another
(research.space: ``when``, ``restrict``), in --space, in study.toml, for every sampler, and
checked against the plugins each condition selects."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from research.plugins import load_plugins
from research.space import (
    Choice,
    Condition,
    Float,
    SpaceError,
    active,
    check_conditions,
    from_table,
    parse_param,
    parse_space,
    restrict,
)
from research.study.history import History
from tests.studyutil import cli

SPACE = {
    "optimizer": "adam,momentum",
    "beta2": "log1m:0.99..0.9999 if optimizer=adam",
    "beta": "log1m:0.9..0.999 if optimizer=momentum",
    "layers": "1,2,3",
    "units2": "int:16..256 if layers>=2",
    "units3": "int:16..256 if units2>100",
}


def test_definitions_with_conditions_read_and_write_back():
    space = parse_space(SPACE)
    assert space["beta2"].when == Condition("optimizer", "=", ("adam",))
    assert space["units2"].when == Condition("layers", ">=", (2,))
    assert {name: param.describe() for name, param in space.items()} == SPACE
    assert parse_param("x", "0..1 if o=a,b").when == Condition("o", "=", ("a", "b"))
    for op in (">=", ">", "<=", "<"):
        assert parse_param("x", f"0..1 if n{op}2.5").when == Condition("n", op, (2.5,))


@pytest.mark.parametrize("config, kept", [
    ({"optimizer": "adam", "beta2": 0.999, "beta": 0.95, "layers": 1, "units2": 200, "units3": 50},
     {"optimizer", "beta2", "layers"}),
    ({"optimizer": "momentum", "beta2": 0.999, "beta": 0.95, "layers": 2, "units2": 200, "units3": 50},
     {"optimizer", "beta", "layers", "units2", "units3"}),
    ({"optimizer": "momentum", "beta2": 0.999, "beta": 0.95, "layers": 3, "units2": 64, "units3": 50},
     {"optimizer", "beta", "layers", "units2"}),
])
def test_restrict_keeps_the_active_parameters_and_the_rest_of_the_config(config, kept):
    space = parse_space(SPACE)
    assert restrict(space, {**config, "epochs": 3}) == {**{k: config[k] for k in kept}, "epochs": 3}


def test_a_child_of_an_inactive_parent_is_inactive():
    space = parse_space(SPACE)
    config = {"layers": 1, "units2": 200, "units3": 50}  # units2 inactive: units3 too, whatever units2 says
    assert not active(space, config, "units3")


@pytest.mark.parametrize("texts, says", [
    ({"a": "1..2 if b=3"}, "names 'b', which the space does not search"),
    ({"a": "1..2 if a=3"}, "cannot depend on itself"),
    ({"a": "1..2 if b=3", "b": "1,2"}, "b never takes 3 (its values: 1,2)"),
    ({"a": "1..2 if b=7", "b": "int:1..5"}, "does not hold every value named"),
    ({"a": "1..2 if b>=1", "b": "x,y"}, "compares b with a number"),
    ({"a": "1..2 if b=1", "b": "0,1 if a=1"}, "conditions form a loop: a -> b -> a"),
    ({"a": "1..2 if b"}, "cannot read the condition 'b'"),
    ({"a": "1..2 if b>=x", "b": "1,2"}, "which is not a number"),
    # conditions that can never hold: the parameter was never searched, in silence
    ({"a": "1..2 if b>=5", "b": "1,2,3"}, "a: 'if b>=5' never holds: b is drawn from 1,2,3; change the condition"),
    ({"a": "1..2 if b>2", "b": "0..1"}, "a: 'if b>2' never holds: b is drawn from linear:0.0..1.0"),
    ({"a": "1..2 if b<3", "b": "int:5..9"}, "never holds"),
    ({"a": "1..2 if b=0.5", "b": "0..1"}, "a: 'if b=0.5' never holds: b is a float drawn from linear:0.0..1.0, never exactly"),
])
def test_bad_conditions_are_one_line(texts, says):
    with pytest.raises(SpaceError) as info:
        parse_space(texts)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_a_table_takes_when():
    param = from_table("beta2", {"low": 0.99, "high": 0.9999, "scale": "log1m", "when": "optimizer=adam"})
    assert param == Float(0.99, 0.9999, "log1m", name="beta2", when=Condition("optimizer", "=", ("adam",)))
    with pytest.raises(SpaceError, match="when must be a condition as text"):
        from_table("beta2", {"low": 0.99, "high": 0.9999, "when": ["optimizer", "adam"]})


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["0..1", "log:1e-4..1", "int:1..9", "a,b,c"]), st.sampled_from(["=", ">=", "<"]),
       st.integers(1, 3))
def test_any_condition_round_trips_through_describe(definition, op, limit):
    param = parse_param("x", f"{definition} if p{op}{limit}")
    assert parse_param("x", param.describe()) == param


@pytest.mark.parametrize("sampler", ["random", "coarse-to-fine", "latin-hypercube", "grid"])
def test_every_sampler_s_draws_are_restricted_to_the_active_parameters(sampler):
    space = parse_space(SPACE)
    built = load_plugins().build("samplers", sampler)
    seen_units2 = 0
    for number in range(40):
        config = restrict(space, built.ask(space, History(number=number, budget=40, seed=1),
                                           np.random.default_rng([1, number])))
        assert ("beta2" in config) == (config["optimizer"] == "adam")
        assert ("beta" in config) == (config["optimizer"] == "momentum")
        assert ("units2" in config) == (config["layers"] >= 2)
        seen_units2 += "units2" in config
        assert all(space[name].contains(value) for name, value in config.items())
    assert 0 < seen_units2 < 40


def _trial_configs(db: Path, study: str) -> list[dict]:
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute("SELECT t.config FROM trials t JOIN studies s ON t.study_id = s.id "
                                  "WHERE s.name = ? ORDER BY t.number", (study,)).fetchall()
    finally:
        connection.close()
    return [json.loads(row[0]) for row in rows]


def test_a_study_stores_only_the_active_parameters_and_trains_each_optimizer(tmp_path):
    db = tmp_path / "research.db"
    result = cli("train", "--strategy", "caviar", "--store", db, "--trials", "8", "--epochs", "1", "--hidden", "8",
                 "--executor", "serial", "--study", "c", "--plot", tmp_path / "c.png",
                 "--space", "optimizer=adam,adamw,momentum", "--space", "lr=log:1e-3..0.3",
                 "--space", "beta2=log1m:0.99..0.9999 if optimizer=adam",
                 "--space", "beta=log1m:0.9..0.999 if optimizer=momentum")
    assert result.exit_code == 0, result.output
    configs = _trial_configs(db, "c")
    # adamw takes a beta2 too: its default was recorded as if drawn (shown, exported, measured)
    assert len(configs) == 8 and {c["optimizer"] for c in configs} == {"adam", "adamw", "momentum"}
    for config in configs:
        assert ("beta2" in config) == (config["optimizer"] == "adam")
        assert ("beta" in config) == (config["optimizer"] == "momentum")
    shown = cli("show", "c", "--store", db, "--json")
    assert shown.exit_code == 0, shown.output


def test_a_study_toml_with_conditions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("study.toml").write_text(
        'strategy = "caviar"\ntrials = 4\nepochs = 1\nhidden = 8\n\n[space]\n'
        'optimizer = { values = ["adam", "momentum"] }\n'
        'beta = { low = 0.9, high = 0.999, scale = "log1m", when = "optimizer=momentum" }\n')
    result = cli("train", "--config", "study.toml", "--executor", "serial", "--study", "t", "--plot", "t.png")
    assert result.exit_code == 0, result.output
    assert all(("beta" in c) == (c["optimizer"] == "momentum") for c in _trial_configs(Path("research.db"), "t"))


def test_a_parameter_only_some_searched_plugins_take_must_be_conditional(tmp_path):
    db = tmp_path / "research.db"
    result = cli("train", "--strategy", "caviar", "--store", db, "--space", "optimizer=adam,momentum",
                 "--space", "beta2=log1m:0.99..0.9999")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "the space searches optimizer: make beta2 conditional, e.g. --space "
        "'beta2=log1m:0.99..0.9999 if optimizer=adam'"), result.stderr
    wrong = cli("train", "--strategy", "caviar", "--store", db, "--space", "optimizer=adam,momentum",
                "--space", "beta2=log1m:0.99..0.9999 if optimizer=momentum")
    assert wrong.exit_code == 2 and "unknown search-space parameter 'beta2'" in wrong.stderr
    assert "optimizer 'momentum'" in wrong.stderr
    assert not db.exists() or _trial_configs(db, "c") == []
    # fixed rather than searched: checked against adam alone, the momentum trials failed at run time
    # (exit 0), and --retry-failed could never mend them
    fixed = cli("train", "--strategy", "caviar", "--store", db, "--space", "optimizer=adam,momentum",
                "--opt", "beta2=0.99")
    assert fixed.exit_code == 2 and " ".join(fixed.stderr.split()) == (
        "error: beta2=0.99 is fixed for every trial, but optimizer 'momentum', which the space searches, has no "
        "beta2; give it only where it exists, e.g. --space 'beta2=0.99 if optimizer=adam'")
    both = cli("train", "--strategy", "caviar", "--store", db, "--space", "optimizer=adam,adamw", "--opt",
               "beta2=0.99", "--trials", "1", "--epochs", "1", "--hidden", "8", "--executor", "serial",
               "--plot", tmp_path / "p.png")
    assert both.exit_code == 0, both.output  # an option every choice takes stays fixed


def test_a_model_option_searched_under_a_condition_is_probed_as_that_model(tmp_path):
    """`kernel_size=int:3..5 if model=cnn` skipped the model's own checks: the trials that drew 4
    failed (exit 0), where `kernel_size=int:3..5` alone is refused before the study starts."""
    db = tmp_path / "research.db"
    for space, says in [("kernel_size=int:3..5 if model=cnn", "model 'cnn': kernel_size must be an odd integer >= 1, "
                                                              "got 4"),
                        ("hidden=1000000000,16 if model=mlp", "model 'mlp': hidden=1000000000 with layers=2")]:
        result = cli("train", "--strategy", "caviar", "--store", db, "--space", "model=mlp,cnn", "--space", space)
        assert result.exit_code == 2, result.output
        said = " ".join(result.stderr.split())
        assert said.startswith(f"error: the space's {space} draws values the model refuses: {says}"), said
    assert not db.exists() or _trial_configs(db, "caviar-1") == []


def test_sample_previews_a_conditional_space():
    result = cli("sample", "-n", "100", "--space", "layers=1,2", "--space", "units2=int:16..64 if layers>=2")
    assert result.exit_code == 0, result.output
    assert "units2 (int:16..64 if layers>=2)" in result.stdout
    assert "units2 exists in" in result.stdout and "of 100 draws (if layers>=2)" in result.stdout


def test_check_conditions_accepts_a_number_choice_for_comparisons():
    check_conditions({"layers": Choice((1, 2, 3), name="layers"),
                      "units2": Float(1, 2, name="units2", when=Condition("layers", ">", (1,)))})


def test_the_grid_never_trains_one_configuration_twice():
    """The grid varied parameters absent at a point: of 8 trials, 4 were distinct."""
    space = parse_space({"optimizer": "adam,momentum", "beta": "log1m:0.9..0.999 if optimizer=momentum",
                         "beta1": "log1m:0.8..0.99 if optimizer=adam"})
    grid = load_plugins().build("samplers", "grid")
    configs = [restrict(space, grid.ask(space, History(number=n, budget=8, seed=0), np.random.default_rng(n)))
               for n in range(8)]
    distinct = {tuple(sorted(c.items())) for c in configs[:4]}
    assert len(distinct) == 4  # adam x 2 beta1 values, momentum x 2 beta values
    assert configs[4:] == configs[:4]  # then it cycles

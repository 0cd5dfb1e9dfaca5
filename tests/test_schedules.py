"""The built-in learning-rate schedules against their formulas."""

from __future__ import annotations

import inspect
import math

import pytest
from research_plugins import schedules
from research_plugins.schedules import Constant, Exponential, InverseTime, Step

from research.contracts import Schedule as ContractSchedule
from research.nn.schedule import Schedule
from research.options import declared
from research.plugins import load_plugins
from research.space import Float, Int

CLASSES = {"constant": Constant, "inverse-time": InverseTime, "exponential": Exponential, "step": Step}
DEFAULTS = {
    "constant": {},
    "inverse-time": {"decay_rate": 1.0},
    "exponential": {"decay_rate": 0.95},
    "step": {"step_size": 10, "factor": 0.5},
}
EPOCHS = range(0, 60)


@pytest.mark.parametrize("base_lr", [0.1, 3e-4])
@pytest.mark.parametrize(
    "name, options, formula",
    [
        ("constant", {}, lambda a, e: a),
        ("inverse-time", {}, lambda a, e: a / (1 + 1.0 * e)),
        ("inverse-time", {"decay_rate": "0.25"}, lambda a, e: a / (1 + 0.25 * e)),
        ("inverse-time", {"decay_rate": 0}, lambda a, e: a),
        ("exponential", {}, lambda a, e: 0.95**e * a),
        ("exponential", {"decay_rate": "0.8"}, lambda a, e: 0.8**e * a),
        ("exponential", {"decay_rate": 1}, lambda a, e: a),
        ("step", {}, lambda a, e: a * 0.5 ** (e // 10)),
        ("step", {"step_size": "3", "factor": "0.1"}, lambda a, e: a * 0.1 ** (e // 3)),
        ("step", {"step_size": 1.0, "factor": 0.9}, lambda a, e: a * 0.9**e),
    ],
)
def test_formula(name, options, formula, base_lr):
    schedule = CLASSES[name](**options)
    for epoch in EPOCHS:
        got = schedule.lr(base_lr, epoch)
        assert type(got) is float
        assert got == pytest.approx(formula(base_lr, epoch), rel=1e-12), f"epoch {epoch}"


def test_first_epoch_is_the_base_rate_and_rates_never_grow():
    for cls in CLASSES.values():
        schedule = cls()
        assert schedule.lr(0.1, 0) == 0.1
        rates = [schedule.lr(0.1, e) for e in EPOCHS]
        assert all(b <= a for a, b in zip(rates, rates[1:]))


def test_step_drops_exactly_at_multiples_of_step_size():
    schedule = Step(step_size=4, factor=0.5)
    assert [schedule.lr(1.0, e) for e in range(9)] == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]


@pytest.mark.parametrize("name", CLASSES)
def test_defaults_options_and_signature(name):
    cls = CLASSES[name]
    assert cls().options == DEFAULTS[name]
    parameters = list(inspect.signature(cls).parameters.values())
    # The host routes options by signature: explicit keyword-only options, no **kwargs.
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    assert {p.name: p.default for p in parameters} == DEFAULTS[name]


def test_strings_are_converted():
    assert Step(step_size=" 7 ", factor="0.25").options == {"step_size": 7, "factor": 0.25}
    assert type(Step(step_size="7.0").options["step_size"]) is int
    assert InverseTime(decay_rate="2").options == {"decay_rate": 2.0}
    assert Exponential(decay_rate="0.5").options == {"decay_rate": 0.5}


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("inverse-time", {"decay_rate": -1}, "decay_rate must be a number >= 0, got -1"),
        ("inverse-time", {"decay_rate": "fast"}, "decay_rate must be a number >= 0, got 'fast'"),
        ("inverse-time", {"decay_rate": math.inf}, "decay_rate must be a finite number >= 0, got inf"),
        ("exponential", {"decay_rate": 0}, "decay_rate must be a number in (0, 1], got 0"),
        ("exponential", {"decay_rate": "1.01"}, "decay_rate must be a number in (0, 1], got '1.01'"),
        ("exponential", {"decay_rate": "nan"}, "decay_rate must be a finite number in (0, 1], got 'nan'"),
        ("exponential", {"decay_rate": True}, "decay_rate must be a number in (0, 1], got True"),
        ("step", {"step_size": 0}, "step_size must be an integer >= 1, got 0"),
        ("step", {"step_size": "2.5"}, "step_size must be an integer >= 1, got '2.5'"),
        ("step", {"step_size": "ten"}, "step_size must be an integer >= 1, got 'ten'"),
        ("step", {"factor": 0}, "factor must be a number in (0, 1], got 0"),
        ("step", {"factor": 2}, "factor must be a number in (0, 1], got 2"),
        ("step", {"factor": None}, "factor must be a number in (0, 1], got None"),
    ],
)
def test_bad_options(name, options, message):
    with pytest.raises(ValueError) as info:
        CLASSES[name](**options)
    assert str(info.value) == f"schedule '{name}': {message}"


@pytest.mark.parametrize("name", CLASSES)
def test_unknown_options_list_the_valid_ones(name):
    valid = ", ".join(DEFAULTS[name]) or None
    expected = f"schedule '{name}': unknown option 'gamma'; " + (
        f"valid names: {valid}" if valid else "it takes no options"
    )
    for error in (TypeError, ValueError):
        with pytest.raises(error) as info:
            CLASSES[name](gamma=0.1)
        assert str(info.value) == expected


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize(
    "base_lr, epoch, match",
    [(0.1, -1, "epoch must be an integer >= 0"), (0.1, 1.5, "epoch must be"), (0, 3, "base_lr must be a number > 0")],
)
def test_bad_lr_arguments(name, base_lr, epoch, match):
    with pytest.raises(ValueError, match=match):
        CLASSES[name]().lr(base_lr, epoch)


def test_search_spaces():
    assert Constant.search_space == {}
    assert InverseTime.search_space == {"decay_rate": Float(0.01, 10.0, "log", name="decay_rate")}
    assert Exponential.search_space == {"decay_rate": Float(0.8, 0.999, "log1m", name="decay_rate")}
    assert set(Step.search_space) == {"step_size", "factor"}
    assert isinstance(Step.search_space["step_size"], Int)
    for name, cls in CLASSES.items():
        for key, param in cls.search_space.items():
            assert param.name == key and key in DEFAULTS[name]
            for u in (0.0, 1.0):  # both bounds are valid options
                cls(**{key: param.from_unit(u)})


def test_register_schedules_registers_exactly_the_built_ins_in_order():
    plugins = load_plugins([schedules], entry_points=False)
    assert list(plugins.registry["schedules"].items()) == list(CLASSES.items()) and not plugins.problems


def test_built_ins_subclass_the_core_base():
    # Third parties build on research.nn.schedule.Schedule, as the built-ins do.
    for cls in CLASSES.values():
        assert issubclass(cls, Schedule) and isinstance(cls(), ContractSchedule)


def test_options_are_declared_in_the_signatures():
    described = {name: {key: spec.describe() for key, spec in declared(cls).items()} for name, cls in CLASSES.items()}
    assert described == {
        "constant": {},
        "inverse-time": {"decay_rate": "a number >= 0"},
        "exponential": {"decay_rate": "a number in (0, 1]"},
        "step": {"step_size": "an integer >= 1", "factor": "a number in (0, 1]"},
    }


def test_a_name_the_optimizer_and_the_schedule_share_is_changed_by_its_qualified_name():
    """babysit's `research set s optimizer.beta=0.95` was refused as unknown, and `beta=0.95`
    changed the schedule's beta to itself (tunable showed one `beta`, the schedule's)."""
    from typing import Annotated

    import research
    from research.nn.config import ConfigError
    from research.nn.training import Trainer
    from research.options import Option

    class Beta(Schedule):
        name = "beta-schedule"

        def __init__(self, *, beta: Annotated[float, Option("Its beta", above=0.0)] = 0.5):
            self.beta = beta

        def lr(self, base_lr, epoch):
            return base_lr

    class Plugin:
        @research.hookimpl
        def register_schedules(self, register):
            register("beta-schedule", Beta)

    trainer = Trainer({"optimizer": "momentum", "schedule": "beta-schedule", "epochs": 1, "hidden": 8,
                       "optimizer.beta": 0.9, "schedule.beta": 0.5}, load_plugins([Plugin()]))
    tunable = trainer.tunable()
    assert (tunable["optimizer.beta"], tunable["schedule.beta"]) == (0.9, 0.5) and "beta" not in tunable
    trainer.set_hyper("optimizer.beta", 0.95)
    trainer.set_hyper("schedule.beta", 0.7)
    assert (trainer.optimizer.hyper["beta"], trainer.schedule.options["beta"]) == (0.95, 0.7)
    with pytest.raises(ConfigError, match=r"^unknown hyperparameter 'beta'; changeable: .*optimizer\.beta, "
                                          r"schedule\.beta"):
        trainer.set_hyper("beta", 0.8)
    trainer.set_hyper("lr", 0.02)  # names no other part has stay bare, qualified or not
    trainer.set_hyper("optimizer.lr", 0.03)
    assert trainer.tunable()["lr"] == 0.03

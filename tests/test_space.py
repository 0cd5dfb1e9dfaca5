"""Search spaces: scales, unit coordinates, parsing, and samples that stay in bounds."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from research_plugins.samplers import CoarseToFine, Grid, LatinHypercube, RandomSampler
from scipy import stats

from research.space import (
    Choice,
    Float,
    Int,
    SpaceError,
    from_table,
    parse_assignment,
    parse_param,
    parse_space,
    sample_uniform,
    scale_advice,
    scale_written,
)
from research.study.history import History, TrialSummary

# Bounds stay within magnitudes a search space has (1e-12 .. 1e6): the property is about
# scales and rounding, not about the last bits of the float range.
LINEAR = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
POSITIVE = st.floats(1e-12, 1e6, allow_nan=False, allow_infinity=False)
BELOW_ONE = st.floats(-1e6, 1 - 1e-12, allow_nan=False, allow_infinity=False)


def _ordered(values: st.SearchStrategy) -> st.SearchStrategy:
    # Ranges a search space has: wider than a millionth of their magnitude.
    return st.tuples(values, values).filter(lambda b: b[1] - b[0] > 1e-6 * max(1.0, abs(b[0]), abs(b[1])))


@st.composite
def floats_params(draw: st.DrawFn) -> Float:
    scale = draw(st.sampled_from(["linear", "log", "log1m"]))
    low, high = draw(_ordered({"linear": LINEAR, "log": POSITIVE, "log1m": BELOW_ONE}[scale]))
    return Float(low, high, scale, name="p")


@st.composite
def int_params(draw: st.DrawFn) -> Int:
    scale = draw(st.sampled_from(["linear", "log"]))
    values = st.integers(-(10**6), 10**6) if scale == "linear" else st.integers(1, 10**6)
    low, high = draw(_ordered(values))
    return Int(low, high, scale, name="p")


# Choice values that survive the command line: numbers, and names that do not spell one.
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: not _is_number(s))
CHOICE_VALUES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    NAMES,
)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _one_value(value: int | float | str) -> float | str:
    """What a choice compares its values by: 0 and 0.0 (and -0.0) are one number to it."""
    return value if isinstance(value, str) else float(value)


def choice_params() -> st.SearchStrategy[Choice]:
    return st.lists(CHOICE_VALUES, min_size=1, max_size=6, unique_by=_one_value).map(
        lambda values: Choice(tuple(values), name="p")
    )


PARAMS = st.one_of(floats_params(), int_params(), choice_params())
UNIT = st.floats(0.0, 1.0, allow_nan=False)


# -- unit coordinates -------------------------------------------------------------------------


@given(floats_params(), UNIT)
def test_float_from_unit_is_in_bounds_and_round_trips(param: Float, u: float) -> None:
    value = param.from_unit(u)
    assert param.contains(value)
    assert param.to_unit(value) == pytest.approx(u, abs=1e-6)


@given(floats_params(), st.data())
def test_float_to_unit_then_from_unit_gives_the_value_back(param: Float, data: st.DataObject) -> None:
    value = data.draw(st.floats(param.low, param.high))
    u = param.to_unit(value)
    assert -1e-12 <= u <= 1 + 1e-12
    back = param.from_unit(u)
    if param.scale == "log1m":  # precision lives in 1 - x
        assert math.isclose(1 - back, 1 - value, rel_tol=1e-9)
    elif param.scale == "log":
        assert math.isclose(back, value, rel_tol=1e-9)
    else:
        assert math.isclose(back, value, rel_tol=1e-9, abs_tol=1e-12 * (param.high - param.low))


@given(int_params(), st.data())
def test_int_round_trips_exactly(param: Int, data: st.DataObject) -> None:
    value = data.draw(st.integers(param.low, param.high))
    u = param.to_unit(value)
    assert 0.0 <= u <= 1.0
    assert param.from_unit(u) == value


@given(int_params(), UNIT)
def test_int_from_unit_is_an_int_in_bounds(param: Int, u: float) -> None:
    value = param.from_unit(u)
    assert type(value) is int and param.contains(value)


@given(choice_params(), st.data())
def test_choice_round_trips(param: Choice, data: st.DataObject) -> None:
    value = data.draw(st.sampled_from(param.values))
    assert param.from_unit(param.to_unit(value)) == value
    assert param.contains(param.from_unit(data.draw(UNIT)))


def test_unit_coordinates_follow_the_scale() -> None:
    lr = Float(1e-4, 1.0, "log")
    assert lr.from_unit(0.0) == 1e-4 and lr.from_unit(1.0) == 1.0
    assert lr.from_unit(0.5) == pytest.approx(1e-2)  # the middle of 1e-4..1 is 1e-2, not 0.5
    beta = Float(0.9, 0.999, "log1m")
    assert beta.from_unit(0.5) == pytest.approx(0.99)  # halfway between 1 - 1e-1 and 1 - 1e-3
    assert beta.to_unit(0.99) == pytest.approx(0.5)
    assert Int(1, 4).from_unit(0.0) == 1 and Int(1, 4).from_unit(1.0) == 4
    assert [Int(1, 4).from_unit(u) for u in (0.1, 0.3, 0.6, 0.9)] == [1, 2, 3, 4]  # equal slices
    assert [Choice(("a", "b")).from_unit(u) for u in (0.0, 0.49, 0.5, 1.0)] == ["a", "a", "b", "b"]


def test_from_unit_clips_outside_the_unit_interval() -> None:
    for param in (Float(0.1, 0.9), Float(1e-4, 1.0, "log"), Float(0.9, 0.999, "log1m"), Int(1, 8)):
        assert param.from_unit(-0.7) == param.low and param.from_unit(1.7) == param.high
    choice = Choice(("a", "b", "c"))
    assert choice.from_unit(-0.5) == "a" and choice.from_unit(1.5) == "c"


def test_extreme_but_valid_bounds_stay_in_bounds() -> None:
    huge = Float(1.0, 1.7976931348623157e308, "log")
    assert huge.from_unit(1.0) == huge.high
    assert huge.contains(huge.from_unit(0.999999999999))


# -- sampling stays in bounds ------------------------------------------------------------------


@given(st.lists(PARAMS, min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_sample_uniform_stays_in_bounds(params: list, seed: int) -> None:
    space = {f"p{i}": p for i, p in enumerate(params)}
    rng = np.random.default_rng(seed)
    for _ in range(5):
        config = sample_uniform(space, rng)
        assert list(config) == list(space)
        assert all(space[name].contains(value) for name, value in config.items())


SAMPLERS = [
    RandomSampler(),
    CoarseToFine(round_size=3, top_k=2),
    CoarseToFine(round_size=1, top_k=1, shrink=0.1),
    LatinHypercube(),
    Grid(),
    Grid(points_per_axis=3),
]


@st.composite
def histories(draw: st.DrawFn, space: dict) -> History:
    """A history with earlier trials whose configs lie in ``space``, some failed or running."""
    number = draw(st.integers(0, 30))
    budget = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    trials = []
    for n in range(number):
        status = draw(st.sampled_from(["finished", "finished", "failed", "running"]))
        score = draw(st.floats(0, 1)) if status == "finished" else None
        trials.append(TrialSummary(n, sample_uniform(space, rng), status, score))
    return History(number=number, budget=budget, seed=seed, trials=tuple(trials))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PARAMS, min_size=1, max_size=4), st.data())
def test_every_sampler_stays_in_bounds(params: list, data: st.DataObject) -> None:
    space = {f"p{i}": p for i, p in enumerate(params)}
    history = data.draw(histories(space))
    for sampler in SAMPLERS:
        config = sampler.ask(space, history, np.random.default_rng(history.number))
        assert list(config) == list(space), sampler
        for name, value in config.items():
            assert space[name].contains(value), (sampler, name, value, space[name])


# -- the scales, checked statistically -----------------------------------------------------------

N = 2000


def _draw(param: Float) -> np.ndarray:
    rng = np.random.default_rng(12345)
    return np.array([sample_uniform({"x": param}, rng)["x"] for _ in range(N)])


def test_log_samples_are_uniform_in_log10() -> None:
    x = _draw(Float(1e-4, 1.0, "log"))
    assert stats.kstest(np.log10(x), "uniform", args=(-4, 4)).pvalue > 0.01
    # ... and not uniform in x: most of the mass sits below 0.1
    assert stats.kstest(x, "uniform", args=(1e-4, 1 - 1e-4)).pvalue < 1e-6


def test_log1m_samples_are_uniform_in_log10_one_minus_x() -> None:
    beta = _draw(Float(0.9, 0.999, "log1m"))
    assert stats.kstest(np.log10(1 - beta), "uniform", args=(-3, 2)).pvalue > 0.01


def test_linear_beta_is_not_uniform_in_log_one_minus_beta() -> None:
    # Linear sampling of beta on 0.9..0.999 puts ~90% of the trials at beta < 0.99 (averaging
    # over fewer than 100 steps) and barely explores 0.99..0.999, where beta matters most.
    beta = _draw(Float(0.9, 0.999, "linear"))
    assert stats.kstest(np.log10(1 - beta), "uniform", args=(-3, 2)).pvalue < 1e-6
    assert np.mean(beta > 0.99) == pytest.approx(0.009 / 0.099, abs=0.02)  # log1m: one half
    assert np.mean(_draw(Float(0.9, 0.999, "log1m")) > 0.99) == pytest.approx(0.5, abs=0.05)


# -- parsing ------------------------------------------------------------------------------------


@given(PARAMS)
def test_parse_param_round_trips_through_describe(param) -> None:
    assert parse_param("p", param.describe()) == param


@pytest.mark.parametrize(
    "text, expected",
    [
        ("log:1e-4..1", Float(1e-4, 1.0, "log", name="p")),
        ("log1m:0.9..0.999", Float(0.9, 0.999, "log1m", name="p")),
        ("linear:0..0.5", Float(0.0, 0.5, name="p")),
        ("0..0.5", Float(0.0, 0.5, name="p")),
        ("-1..1", Float(-1.0, 1.0, name="p")),
        ("int:16..256", Int(16, 256, name="p")),
        ("int:log:16..256", Int(16, 256, "log", name="p")),
        ("int:1e1..1e2", Int(10, 100, name="p")),
        ("1,2,3", Choice((1, 2, 3), name="p")),
        ("relu, tanh", Choice(("relu", "tanh"), name="p")),
        ("0.5,1e-3,adam", Choice((0.5, 1e-3, "adam"), name="p")),
    ],
)
def test_parse_param_examples(text: str, expected) -> None:
    assert parse_param("p", text) == expected


def test_parse_assignment_and_from_table() -> None:
    assert parse_assignment("lr=log:1e-4..1") == ("lr", Float(1e-4, 1.0, "log", name="lr"))
    assert from_table("lr", {"low": 1e-4, "high": 1, "scale": "log"}) == Float(1e-4, 1.0, "log", name="lr")
    assert from_table("n", {"low": 1, "high": 8}) == Int(1, 8, name="n")
    assert from_table("act", {"values": ["relu", "tanh"]}) == Choice(("relu", "tanh"), name="act")
    with pytest.raises(SpaceError, match=r"^lr: 'values' has nan, not a finite number; choose finite values$"):
        from_table("lr", {"values": [0.1, float("nan")]})  # a study.toml's nan


@pytest.mark.parametrize(("text", "values", "said"), [
    ('a,"b c"', ("a", "b c"), "a,b c"),                  # the quotes were kept in the value
    ("relu, 'leaky, relu' ,tanh", ("relu", "leaky, relu", "tanh"), 'relu,"leaky, relu",tanh'),
    ('"3",3', ("3", 3), '"3",3'),                         # quoted: a string, not a number
    ("'log:x',y", ("log:x", "y"), '"log:x",y'),
    ('a,"say \'hi\'"', ("a", "say 'hi'"), "a,say 'hi'"),
])
def test_a_quoted_choice_is_the_string_between_its_quotes_and_is_said_back_so(text, values, said) -> None:
    param = parse_param("act", text)
    assert param.values == values and param.describe() == said
    assert parse_param("act", said) == param              # a study stores its space as that text


@pytest.mark.parametrize(
    "text, message",
    [
        ("1..1", "low must be below high"),
        ("2..1", "low must be below high"),
        ("int:5..5", "low must be below high"),
        ("log:0..1", "log scale needs low > 0"),
        ("log:-1..1", "log scale needs low > 0"),
        ("int:log:0..8", "log scale needs low > 0"),
        ("log1m:0.9..1", "log1m scale needs high < 1"),
        ("log1m:0.9..1.5", "log1m scale needs high < 1"),
        ("int:log1m:1..8", "integers take the linear or log scale"),
        ("cubic:1..2", "unknown scale 'cubic'"),
        ("int:cubic:1..2", "unknown scale 'cubic'"),
        ("int:log:extra:1..2", "cannot read"),
        ("log:extra:1..2", "cannot read"),
        ("log:..1", "expected low..high"),
        ("log:1..", "expected low..high"),
        ("log:1e-4...1", "expected low..high (two dots)"),
        ("0.9..0.999:log1m", "cannot read '0.9..0.999:log1m'; the scale goes before the range"),  # was "got 'log1m'"
        ("a..b", "'a' is not a number"),
        ("1..2..3", "is not a number"),
        ("int:1..2.5", "'2.5' is not an integer"),
        ("int:0..1e400", "is not an integer"),
        ("0..inf", "bounds must be finite"),
        ("nan..1", "bounds must be finite"),
        # it said "too narrow or too wide ...; widen or narrow it"
        ("-1e308..1e308",
         "-1e+308..1e+308 is too wide for a float on the linear scale (high - low overflows); narrow it"),
        ("log1m:1e-17..2e-17", "1e-17..2e-17 is too narrow to tell its ends apart on the log1m scale; widen it"),
        ("", "at least one value"),
        ("a,,b", "'a,,b' has an empty value between its commas"),  # the empty one was dropped in silence
        ("relu,", "'relu,' has an empty value"),
        ("1,2 if ", "nothing follows 'if' in '1,2 if'"),  # was the choice '2 if'
        ("log:1e-4..1 if", "nothing follows 'if'"),
        ("a,b if optimizer=adam,,sgd", "'if optimizer=adam,,sgd' has an empty value"),
        ("a,b if optimizer!=adam", "'if optimizer!=adam': != is not a condition research reads; name the values"),
        ("a,b,a", "choice values repeat"),
        ('a,"b c', "has '\"b c', a quote not closed or text beside a quoted value; write a value with spaces"),
        ('a,"b c"d', "has '\"b c\"d', a quote not closed"),
        ("nan", "'nan' has the choice nan, not a finite number"),  # research sample drew it, as NaN in its JSON
        ("inf,1", "'inf,1' has the choice inf, not a finite number"),
        ("1.0,1", "choice values repeat: [1.0, 1]"),  # one value to a plugin
        ("log(1e-4,1)", "cannot read 'log(1e-4,1)'; write low..high with an optional scale (log:1e-4..1"),
        ("uniform[0, 1]", "or choices (relu,tanh)"),
        (0.1, "a definition is text, low..high"),  # from Python: was an AttributeError
        (None, "got None (a fixed value goes in the base settings)"),
    ],
)
def test_bad_definitions_raise_space_error(text: str, message: str) -> None:
    with pytest.raises(SpaceError, match=re.escape(message)) as info:
        parse_param("lr", text)
    assert str(info.value).startswith("lr: ") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Float(1.0, 1.0),
        lambda: Float(0.0, 1.0, "log"),
        lambda: Float(0.5, 1.0, "log1m"),
        lambda: Int(3, 2),
        lambda: Choice(()),
        lambda: from_table("x", {"low": 1}),
        lambda: from_table("x", {"low": 1, "high": 2, "type": "complex"}),
        lambda: from_table("x", {"values": "ab"}),
    ],
)
def test_bad_constructions_raise_space_error(make) -> None:
    with pytest.raises(SpaceError):
        make()


@pytest.mark.parametrize("given", [["lr=log:1e-4..1"], "lr=log:1e-4..1"])
def test_a_space_that_is_no_mapping_is_refused_with_the_form(given) -> None:
    """A list of --space flags was an AttributeError: 'list' object has no attribute 'items'."""
    with pytest.raises(SpaceError, match=r"^a space is a mapping of names to definitions \(\{'lr': 'log:1e-4..1'\}\)"):
        parse_space(given)


WIDE = ("is too wide: integer bounds must be within ±1e12, beyond which a draw's float arithmetic favours some "
        "integers over others; narrow the range, or drop 'int:' to search floats")


@pytest.mark.parametrize("make, shown", [
    # int:0..1e30 was accepted as int:0..1000000000000000019884624838656, drawn through floats
    (lambda: parse_param("k", "int:0..1e30"), "int:0..1.00e+30"),
    (lambda: parse_param("k", "int:log:1..1e30"), "int:log:1..1.00e+30"),
    (lambda: parse_param("k", "int:0..1e18"), "int:0..1.00e+18"),  # 5 odd draws in 2,000
    (lambda: parse_param("k", "int:-9007199254740993..0"), "int:-9007199254740993..0"),
    (lambda: parse_param("k", "int:0..1000000000001"), "int:0..1000000000001"),
    (lambda: parse_param("k", "int:0..1" + "0" * 400), "int:0..1.00e+400"),  # was an OverflowError
    (lambda: from_table("k", {"low": 1, "high": 10**20, "scale": "log"}), "int:log:1..1.00e+20"),
    (lambda: Int(0, 10**18, name="k"), "int:0..1.00e+18"),
])
def test_integer_bounds_beyond_1e12_are_refused(make, shown: str) -> None:
    with pytest.raises(SpaceError) as info:
        make()
    assert str(info.value) == f"k: {shown} {WIDE}"


def _share(param: Int, k: int) -> float:
    """The unit-coordinate length that draws ``k``: between the smallest floats drawing more."""
    def above(k: int) -> float:  # the smallest u with from_unit(u) > k, bisected over the floats' bits
        low, high = np.float64(0.0).view(np.int64), np.float64(1.0).view(np.int64)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if param.from_unit(float(middle.view(np.float64))) > k else (middle, high)
        return float(high.view(np.float64))
    return above(k) - above(k - 1)


@pytest.mark.parametrize("scale, tolerance", [("linear", 0.001), ("log", 0.01)])
def test_integers_within_the_bounds_get_their_share(scale: str, tolerance: float, monkeypatch) -> None:
    """Where the limit comes from: at 1e12 every integer's share of the draws is right to 0.02 %
    (0.5 % at the top of a log range); at 1e13 (the limit lifted), 0.25 % and 7 %."""
    monkeypatch.setattr("research.space.INT_LIMIT", 10**13)
    def worst(high: int) -> float:
        param = Int(1, high, scale)
        t0, t1 = math.log10(0.5), math.log10(high + 0.5)
        ideal = (lambda k: math.log10((k + 0.5) / (k - 0.5)) / (t1 - t0)) if scale == "log" else (lambda k: 1 / high)
        return max(abs(_share(param, k) / ideal(k) - 1) for k in range(high - 30, high))

    assert worst(10**12) < tolerance
    assert worst(10**13) > tolerance


def test_integers_up_to_1e12_are_drawn() -> None:
    param = parse_param("k", "int:-1e12..1e12")
    assert param == Int(-(10**12), 10**12, name="k")
    draws = [param.from_unit(u) for u in np.random.default_rng(0).random(2000)]
    assert all(param.contains(k) for k in draws) and 900 < sum(k % 2 for k in draws) < 1100


@pytest.mark.parametrize("text", ["lr", "=log:1e-4..1", "lr=", "lr = "])
def test_bad_assignments_raise_space_error(text: str) -> None:
    with pytest.raises(SpaceError, match="NAME=DEFINITION"):
        parse_assignment(text)


@pytest.mark.parametrize("text, says", [
    ("0.0001..1", "lr=0.0001..1.0 is on the linear scale, so 90% of its draws land in 0.1..1.0; lr=log:0.0001..1.0"),
    ("0.9..0.999", "lr=0.9..0.999 is on the linear scale, so 91% of its draws land in 0.9..0.99; "
                   "lr=log1m:0.9..0.999 draws every decade of 1 - lr alike"),
    ("int:16..2048", "lr=int:16..2048 is on the linear scale, so 91% of its draws land in 205..2048; "
                     "lr=int:log:16..2048"),
    ("0..0.5", None),  # from zero: no decades to crowd
    ("int:16..512", None),  # under two decades
    ("0.5..0.99", None),
    ("-1..1", None),
    ("relu,tanh", None),
    ("log:0.0001..1", None),
])
def test_a_range_that_spans_decades_on_the_linear_scale_is_advised_a_log_scale(text, says):
    param = parse_param("lr", text)
    advice = scale_advice("lr", param, scale_written(f"lr={text}"))
    assert (advice is None) if says is None else advice.startswith(says), advice


def test_a_scale_written_out_is_never_advised_against():
    assert scale_written("lr=linear:0.0001..1") and scale_written("h=int:linear:16..2048 if layers>=2")
    assert not scale_written("lr=0.0001..1") and not scale_written("h=int:16..2048")
    assert scale_advice("lr", parse_param("lr", "linear:0.0001..1"), True) is None
    table = from_table("lr", {"low": 0.0001, "high": 1})
    assert scale_advice("lr", table, False, table=True).startswith(
        '[space.lr] 0.0001..1.0 is on the linear scale, so 90% of its draws land in 0.1..1.0; scale = "log" in it')

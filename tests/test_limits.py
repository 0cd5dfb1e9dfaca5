"""Limits: what cannot fit or cannot be represented is refused up front, as a one-line error.

- trial budgets: any budget runs, its trial numbers generated one by one (never listed);
- models: parameter counts and mini-batch work arrays beyond the limits (docs/models.md);
- synthetic datasets: sizes beyond the limits (docs/datasets.md);
- data files: labels read exactly, duplicate CSV columns refused;
- kernels: every integer scalar checked against its C type, every float against a double.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from research_plugins.samplers import GRID_MAX_POINTS, LHS_MAX_STRATA, Grid, LatinHypercube
from typer.testing import CliRunner

from research import kernels
from research.cli import app
from research.data import DatasetError, load_csv, load_npz, make_blobs, make_moons, make_spirals
from research.data.synthetic import MAX_SAMPLES, MAX_VALUES
from research.errors import UsageError
from research.kernels import _plans
from research.kernels._checks import c_signature_problems
from research.kernels._table import (
    C_INTEGERS,
    DOUBLE_MAX,
    KERNELS,
    MOMENTUM_UPDATE,
    SOFTMAX_CROSS_ENTROPY,
    Array,
    Kernel,
    Layout,
    Shape,
)
from research.nn import model as model_module
from research.nn.cnn import CNN
from research.nn.model import MAX_DEPTH, MAX_PARAMS, MLP
from research.space import parse_param
from research.study.history import History
from research.study.store import Store

RNG = np.random.default_rng


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text
    return text


# -- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, flag", [
    ({"hidden": 10**9}, "--hidden"),
    ({"hidden": 10**5, "layers": 3}, "--hidden"),
    ({"hidden": 47_000, "layers": 2}, "--layers"),   # 47000**2 > 2**31
])
def test_mlp_beyond_the_parameter_limit_is_refused_before_allocating(kwargs, flag):
    assert model_module._mlp_size(64, 10, kwargs["hidden"], kwargs.get("layers", 2), True)[0] > MAX_PARAMS
    with pytest.raises(UsageError) as info:
        MLP(64, 10, rng=RNG(0), **kwargs)
    assert flag in one_line(info.value) and f"{MAX_PARAMS:,}" in str(info.value)


@pytest.mark.parametrize("kwargs", [{"channels": 10**6, "blocks": 3}, {"widen": 1e10, "blocks": 100},
                                    {"widen": 1e300, "blocks": 5}])  # a kernel wider than the input: test_cnn
def test_cnn_beyond_the_parameter_limit_is_refused_before_allocating(kwargs):
    with pytest.raises(UsageError) as info:
        CNN((1, 8, 8), 10, rng=RNG(0), **kwargs)
    assert "--channels" in one_line(info.value)


def test_depth_is_limited():
    with pytest.raises(UsageError, match=rf"layers must be an integer in \[0, {MAX_DEPTH}\], got {MAX_DEPTH + 1}"):
        MLP(4, 2, hidden=1, layers=MAX_DEPTH + 1, rng=RNG(0))
    with pytest.raises(UsageError, match=rf"blocks must be an integer in \[1, {MAX_DEPTH}\], got"):
        CNN((1, 2, 2), 2, channels=1, blocks=10**9, rng=RNG(0))


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 9), k=st.integers(2, 5), hidden=st.integers(1, 7), layers=st.integers(0, 3),
       batchnorm=st.booleans())
def test_mlp_size_is_counted_exactly(d, k, hidden, layers, batchnorm):
    m = MLP(d, k, hidden=hidden, layers=layers, batchnorm=batchnorm, rng=RNG(0), dtype=np.float64)
    assert model_module._mlp_size(d, k, hidden, layers, batchnorm)[0] == m.n_params
    ws = m._workspace(3)
    allocated = sum(a.size for a in vars(ws).values() if isinstance(a, np.ndarray))
    allocated += sum(a.size for arrays in (ws.h, ws.z, ws.dh) for a in arrays if a is not None)
    assert allocated <= 3 * model_module._mlp_size(d, k, hidden, layers, batchnorm)[1]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), channels=st.integers(1, 4),
       blocks=st.integers(1, 3), k=st.sampled_from([1, 3]), widen=st.sampled_from([0.5, 1.0, 2.0]))
def test_cnn_size_is_counted_exactly(c, h, w, channels, blocks, k, widen):
    from research.nn.cnn import _cnn_size

    assume(k <= 2 * max(h, w) - 1)  # a wider kernel on a 1x1 image is refused (sees only padding)
    m = CNN((c, h, w), 3, channels=channels, blocks=blocks, kernel_size=k, widen=widen, rng=RNG(0))
    assert _cnn_size((c, h, w), 3, channels, blocks, k, widen)[0] == m.n_params


def test_a_cnn_over_the_limit_is_refused_with_its_whole_count():
    """The count stopped at the limit: the message gave the blocks', not the head's."""
    from research.nn.cnn import _cnn_size

    n = 1_000_000 * 9 + 2 * 1_000_000 + 1_000_000 * 1_000_000 * 9 + 2 * 1_000_000 + 1_000_000 * 4 * 10 + 10
    assert _cnn_size((1, 8, 8), 10, 1_000_000, 2, 3, 1.0)[0] == n
    with pytest.raises(UsageError, match=f"makes {n:,} parameters, more than the limit"):
        CNN((1, 8, 8), 10, channels=1_000_000, rng=RNG(0))
    with pytest.raises(UsageError, match=r"makes more than 10\*\*\d+ parameters, more than the limit"):
        CNN((1, 8, 8), 10, blocks=1000, widen=2.0, rng=RNG(0))  # a count of 600 digits, not printed


def test_memory_limits_the_parameters_and_the_batch(monkeypatch):
    monkeypatch.setattr(model_module, "memory_limit", lambda: 2**20)  # a 1 MiB machine
    with pytest.raises(UsageError, match=r"more than this machine's .*lower --hidden or --layers"):
        MLP(64, 10, hidden=512, rng=RNG(0))          # 300k parameters * 4 copies * 4 bytes
    m = MLP(8, 3, hidden=16, layers=1, rng=RNG(0))
    x, y = RNG(1).standard_normal((4000, 8)), np.arange(4000) % 3
    with pytest.raises(UsageError, match=r"lower --batch-size \(at most [\d,]+ rows fit\)") as info:
        m.loss_and_grads(x, y)
    one_line(info.value)
    m.loss_and_grads(x[:64], y[:64])
    # Eval mode shrinks its batches to what fits; the result does not depend on them.
    limited = m.evaluate(x, y, batch_size=4000)
    monkeypatch.setattr(model_module, "memory_limit", lambda: None)
    assert m.evaluate(x, y, batch_size=4000) == pytest.approx(limited, rel=1e-6)


@pytest.mark.parametrize("make", [lambda: MLP(8, 3, hidden=16, layers=1, rng=RNG(0)),
                                  lambda: CNN((1, 8, 8), 3, channels=4, blocks=1, rng=RNG(0))])
def test_the_workspaces_kept_together_fit_where_each_alone_does(monkeypatch, make):
    """Training's, the last batch's and evaluation's work arrays were all kept: each fitted the
    size check, together they ran a wide CNN out of memory (the system killed it, exit 137).
    Those of other batch sizes are dropped while all would take more than half of what is left."""
    m = make()
    x, y = RNG(1).standard_normal((300, 64 if isinstance(m, CNN) else 8)), np.arange(300) % 3
    budget = 2 * 200 * m._row_bytes  # half of what is left holds 200 rows of work arrays
    monkeypatch.setattr(model_module, "memory_limit", lambda: budget + m._param_bytes)
    m.loss_and_grads(x[:64], y[:64])
    m.loss_and_grads(x[:60], y[:60])
    assert sorted(m._workspaces) == [60, 64]  # 124 rows: both kept
    limited = m.evaluate(x, y, batch_size=150)
    assert sorted(m._workspaces) == [150]  # 274 rows would not fit: the others went
    monkeypatch.setattr(model_module, "memory_limit", lambda: None)
    assert m.evaluate(x, y, batch_size=150) == limited


def test_memory_limit_is_the_machine_s():
    limit = model_module.memory_limit()
    assert limit is None or limit > 2**20


def test_cli_refuses_an_mlp_that_cannot_fit():
    result = CliRunner().invoke(app, ["train", "--hidden", "1000000000", "--epochs", "1"])
    assert result.exit_code == 2, result.output
    assert "--hidden" in result.output and "bug" not in result.output


# -- trial budgets ----------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["random", "coarse-to-fine", "latin-hypercube", "grid"])
def test_a_huge_trial_budget_runs_until_its_other_budget(tmp_path, sampler):
    db = tmp_path / "research.db"
    result = CliRunner().invoke(app, ["train", "--strategy", "caviar", "--sampler", sampler, "--trials", str(10**12),
                                      "--max-epochs", "2", "--epochs", "1", "--hidden", "4", "--executor", "serial",
                                      "--store", str(db), "--plot", str(tmp_path / "c.png"), "--study", "huge"])
    assert result.exit_code == 0, result.output
    with Store(db, create=False) as store:
        assert [t.number for t in store.trials(store.study("huge"))] == [0, 1]


@pytest.mark.parametrize("one_axis", [True, False])
def test_samplers_ask_cheaply_at_a_huge_budget(one_axis):
    space = {"lr": parse_param("lr", "log:1e-4..1")}
    if not one_axis:
        space["beta"] = parse_param("beta", "log1m:0.9..0.999")
    history = History(number=12345, budget=10**12, seed=3)
    assert Grid().points_for(space, history.budget) == GRID_MAX_POINTS
    for sampler in (Grid(), LatinHypercube()):
        config = sampler.ask(space, history, np.random.default_rng(0))
        assert 1e-4 <= config["lr"] <= 1
    small = History(number=5, budget=LHS_MAX_STRATA - 1, seed=3)  # below the cap: strata as before
    stratum = LatinHypercube.permutation(3, 0, LHS_MAX_STRATA - 1)[5]
    assert space["lr"].to_unit(LatinHypercube().ask(space, small, np.random.default_rng(0))["lr"]) == pytest.approx(
        (stratum + np.random.default_rng(0).random()) / (LHS_MAX_STRATA - 1))


# -- synthetic datasets ------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [make_blobs, make_spirals, make_moons])
@pytest.mark.parametrize("n", [MAX_SAMPLES + 1, 10**12, "1e12"])
def test_synthetic_sizes_beyond_the_limit_are_refused(factory, n):
    with pytest.raises(UsageError, match=f"n_samples must be at most {MAX_SAMPLES:,}") as info:
        factory(n_samples=n)
    one_line(info.value)


def test_blobs_values_beyond_the_limit_are_refused():
    with pytest.raises(UsageError, match=f"at most {MAX_VALUES:,}"):
        make_blobs(n_samples=MAX_SAMPLES, features=11)
    with pytest.raises(UsageError, match=f"at most {MAX_VALUES:,}"):
        make_blobs(n_samples=600, features=10**12)


# -- data files --------------------------------------------------------------------------------

LABEL_TEXT = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.text(st.characters(codec="utf-8", exclude_characters=',"\r\n\x00', exclude_categories=["Cs", "Zs", "Cc"]),
            min_size=1, max_size=4),
)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=st.lists(LABEL_TEXT, min_size=2, max_size=5, unique=True))
def test_csv_labels_are_exact(tmp_path, labels):
    """Each distinct label is its own class: exact integers when all are whole numbers, else
    exact texts; never merged by float rounding."""
    rows = [f"{i},{label}" for i in range(5) for label in labels]
    path = _write(tmp_path / "d.csv", "x,label\n" + "\n".join(rows) + "\n")
    try:
        data = load_csv(path, test_fraction=0.0, val_fraction=0.3)
    except DatasetError as err:     # e.g. "1.5" among names is fine, but "nan" with numbers is not
        assert "not an integer (numeric labels must all be integers)" in one_line(err)
        return
    try:
        as_integers = [int(text) for text in labels]
    except ValueError:
        as_integers = None
    if as_integers is not None and len(set(as_integers)) == len(labels):
        assert data.classes == tuple(str(v) for v in sorted(as_integers))
    elif as_integers is None and all(not _is_number(t) for t in labels):
        assert data.classes == tuple(sorted(t.strip() for t in labels))
    assert data.n_classes == len({_key(t) for t in labels})


def _is_number(text):
    from decimal import Decimal, InvalidOperation

    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def _key(text):
    from decimal import Decimal

    return int(Decimal(text)) if _is_number(text) and Decimal(text).is_finite() else text.strip()


def test_csv_labels_that_a_float_would_merge_stay_apart(tmp_path):
    rows = "".join(f"{i},{label}\n" for i in range(4) for label in ("0", "99999999999999999999", "99999999999999999998"))
    data = load_csv(_write(tmp_path / "d.csv", "x,label\n" + rows))
    assert data.classes == ("0", "99999999999999999998", "99999999999999999999")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(["a", "b", "label", "x"]), min_size=2, max_size=5))
def test_csv_duplicate_column_names_are_refused(tmp_path, names):
    header = ",".join(names)
    rows = "".join(",".join(str(i % 2) for _ in names) + "\n" for i in range(10))
    path = _write(tmp_path / "d.csv", header + "\n" + rows)
    twice = sorted({n for n in names if names.count(n) > 1})
    if not twice:
        return
    with pytest.raises(DatasetError) as info:
        load_csv(path)
    message = one_line(info.value)
    assert "more than once" in message and all(repr(n) in message for n in twice)


def test_npz_whole_float_labels_beyond_int64_stay_apart(tmp_path):
    path = tmp_path / "d.npz"
    y = np.array([0.0, 1e20, 1e20 + 2**17] * 6)
    np.savez(path, X=RNG(0).standard_normal((18, 2)), y=y)
    assert load_npz(path).classes == ("0", "100000000000000000000", "100000000000000131072")


def test_npz_uint64_labels_keep_their_values(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=RNG(0).standard_normal((10, 2)), y=np.uint64(2**64 - 2) + (np.arange(10) % 2).astype(np.uint64))
    assert load_npz(path).classes == (str(2**64 - 2), str(2**64 - 1))


@pytest.mark.parametrize("x", [np.zeros((10, 0)), np.zeros((10, 3, 0)), np.zeros((0, 1, 2, 2))])
def test_npz_without_features_or_samples_is_a_dataset_error(tmp_path, x):
    path = tmp_path / "d.npz"
    np.savez(path, X=x, y=np.arange(len(x)) % 2)
    with pytest.raises(DatasetError) as info:
        load_npz(path)
    one_line(info.value)


# -- kernels -----------------------------------------------------------------------------------


def test_the_table_matches_the_compiled_c_types():
    assert c_signature_problems() == []


def test_a_batched_struct_unlike_the_table_is_reported():
    """The plans fill the batched kernels' structs by the table's array names: a name C does
    not have is a problem (here momentum's velocity, declared as `vel`)."""
    renamed = Kernel("momentum_update", Layout.ELEMENTS,
                     (*MOMENTUM_UPDATE.arrays[:2], Array("vel", Shape.LIKE_SOURCE, written=True, plural="vels"),
                      *MOMENTUM_UPDATE.scalars))
    problems = c_signature_problems([renamed])
    assert len(problems) == 2 and all("struct rs_momentum_update_arrays_f" in p for p in problems), problems


def _valid(spec):
    r = spec.range
    if r.integer:
        return int(r.low) if r.low_closed else int(r.low) + 1
    return (r.low + r.high) / 2 if math.isfinite(r.high) else r.low + 1.0


def _arguments(kernel):
    """Valid keyword arguments of the kernel's checked function (every optional array given)."""
    args = {}
    for a in kernel.arrays:
        if a.out:
            args[a.keyword] = None
        elif a.labels:
            args[a.keyword] = np.arange(4) % 3  # (N,) int64 labels of (4, 3) logits
        elif a.shape is Shape.PER_CHANNEL:
            args[a.keyword] = np.ones(3)
        else:
            args[a.keyword] = RNG(0).standard_normal((4, 3))
    args.update({s.keyword: _valid(s) for s in kernel.scalars})
    return args


def _bad_values(spec):
    """Values the C type cannot hold, or just outside the declared range."""
    r = spec.range
    if r.integer:
        c_low, c_high = C_INTEGERS[r.c_type]
        return [r.high + 1, 2**64, 10**30, np.uint64(2**64 - 1), c_low - 1, r.low - 1, np.int64(r.low - 1)]
    return [10**400, -(10**400), 2 * 10**308, float("inf"), float("nan")]


def _scalar_cases():
    return [(k, s, v) for k in KERNELS for s in k.scalars for v in _bad_values(s)]


@pytest.mark.parametrize("kernel, spec, value", _scalar_cases(),
                         ids=lambda p: getattr(p, "name", None) or repr(p)[:12])
def test_every_scalar_out_of_range_is_a_value_error_naming_it(kernel, spec, value):
    args = _arguments(kernel)
    getattr(kernels, kernel.name)(**args)          # valid arguments run
    args = _arguments(kernel)
    args[spec.keyword] = value
    with pytest.raises(ValueError) as info:
        getattr(kernels, kernel.name)(**args)
    assert one_line(info.value).startswith(f"{spec.keyword} must be ")
    if spec.range.integer:
        assert str(spec.range.high) in str(info.value)


@pytest.mark.parametrize("kernel, spec", [(k, s) for k in KERNELS for s in k.scalars],
                         ids=lambda p: getattr(p, "name", None) or repr(p)[:12])
def test_every_scalar_that_is_not_a_number_is_a_type_error_naming_it(kernel, spec):
    for value in ("1e-3", None, 1j):
        args = _arguments(kernel)
        args[spec.keyword] = value
        with pytest.raises(TypeError) as info:
            getattr(kernels, kernel.name)(**args)
        assert one_line(info.value).startswith(f"{spec.keyword} must be "), info.value


def _update_plans():
    return [cls for cls in vars(_plans).values()
            if isinstance(cls, type) and issubclass(cls, _plans._UpdatePlan) and cls is not _plans._UpdatePlan]


def test_every_kernel_with_scalars_is_covered_by_a_plan_or_bn():
    covered = {cls._kernel for cls in _update_plans()} | set(_plans.BatchNormPlan._operations.values())
    # The loss has no plan (its labels are new every batch); its function checks its scalar.
    assert covered | {SOFTMAX_CROSS_ENTROPY} == set(KERNELS)


@pytest.mark.parametrize("cls", _update_plans(), ids=lambda c: c.__name__)
def test_every_plan_step_refuses_out_of_range_scalars(cls):
    kernel = cls._kernel
    arrays = [[np.zeros(5)] for _ in kernel.arrays]
    plan = cls(*arrays)
    valid = [_valid(s) for s in kernel.scalars]
    plan.step(*valid)
    for i, spec in enumerate(kernel.scalars):
        for value in _bad_values(spec):
            scalars = list(valid)
            scalars[i] = value
            with pytest.raises(ValueError, match=" must be "):
                plan.step(*scalars)


@pytest.mark.parametrize("name", ["eps", "momentum"])
@pytest.mark.parametrize("value", [10**400, -(10**400), float("inf")])
def test_batchnorm_plan_refuses_scalars_beyond_a_double(name, value):
    x = RNG(0).standard_normal((4, 3))
    c = np.ones(3)
    with pytest.raises(ValueError, match=f"{name} must be "):
        kernels.BatchNormPlan(x, c, c.copy(), np.empty_like(x), np.empty(3), np.empty(3), **{name: value})


def test_largest_values_are_accepted():
    p, g, m, v = (np.zeros(3) for _ in range(4))
    kernels.adam_update(p, g, m, v, 2**63 - 1)
    kernels.adam_update(p, g, m, v, np.uint64(2**63 - 1))
    kernels.sgd_update(p, g, DOUBLE_MAX, 0.0)

"""Tests of research.nn.model.MLP against an independent numpy reference and finite differences."""

import numpy as np
import pytest

from research import kernels
from research.nn import model as model_module
from research.nn.model import MLP
from research.options import declared

N, D, H, K = 7, 4, 5, 3


def make_model(seed=0, **kw):
    kw = {"hidden": H, "layers": 2, **kw}
    return MLP(D, K, rng=np.random.default_rng(seed), **kw)


def make_data(seed=1, n=N, d=D, k=K):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * 1.5 + 0.3
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)  # every class present
    return x, y


def randomize(model, seed=2):
    """Non-trivial gamma, beta, biases and running statistics, loaded through load_state."""
    rng = np.random.default_rng(seed)
    state = model.state()
    for name, a in state.items():
        if name.startswith("gamma"):
            state[name] = rng.uniform(0.5, 1.5, a.shape)
        elif name.startswith(("beta", "b", "running_mean")):
            state[name] = rng.normal(0.0, 0.5, a.shape)
        elif name.startswith("running_var"):
            state[name] = rng.uniform(0.5, 2.0, a.shape)
    model.load_state(state)
    return model


def reference(model, x, y, train):
    """Loss, logits and batch statistics of the model computed in plain float64 numpy."""
    p = {n: a.astype(np.float64) for n, a in zip(model.param_names, model.params)}
    buf = {n: a.astype(np.float64) for n, a in zip(model.buffer_names, model.buffers)}
    eps = model.bn_eps
    h, stats = np.asarray(x, np.float64), []
    for i in range(1, model.layers + 1):
        z = h @ p[f"W{i}"]
        if model.batchnorm:
            if train:
                mu, var = z.mean(axis=0), z.var(axis=0)
                stats.append((mu, z.var(axis=0, ddof=1)))
            else:
                mu, var = buf[f"running_mean{i}"], buf[f"running_var{i}"]
            a = p[f"gamma{i}"] * (z - mu) / np.sqrt(var + eps) + p[f"beta{i}"]
        else:
            a = z + p[f"b{i}"]
        h = np.maximum(a, 0.0)
    L = model.layers + 1
    s = h @ p[f"W{L}"] + p[f"b{L}"]
    m = s.max(axis=1, keepdims=True)
    logsumexp = np.log(np.exp(s - m).sum(axis=1)) + m[:, 0]
    loss = np.mean(logsumexp - s[np.arange(len(y)), y])
    return loss, s, stats


# --------------------------------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("layers, widths", [(0, {}), (1, {}), (2, {}), (3, {"hidden": 8, "hidden2": 5, "hidden3": 3})])
def test_gradients_match_central_differences(layers, widths, batchnorm):
    model = randomize(make_model(layers=layers, batchnorm=batchnorm, dtype=np.float64, **widths))
    x, y = make_data()
    buffers = [b.copy() for b in model.buffers]

    def loss():
        # the training forward updates the running statistics: put them back every time so
        # that nothing but the parameters changes between evaluations
        value = model.loss_and_grads(x, y)[0]
        for b, saved in zip(model.buffers, buffers):
            b[...] = saved
        return value

    _, _, grads = model.loss_and_grads(x, y)
    grads = [g.copy() for g in grads]  # the model reuses its gradient arrays
    for b, saved in zip(model.buffers, buffers):
        b[...] = saved
    step = 1e-6
    for name, p, g in zip(model.param_names, model.params, grads):
        assert g.shape == p.shape, name
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + step
            up = loss()
            p[idx] = old - step
            down = loss()
            p[idx] = old
            numeric[idx] = (up - down) / (2 * step)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8, err_msg=name)


def test_training_loss_does_not_depend_on_running_statistics():
    model = randomize(make_model(dtype=np.float64))
    x, y = make_data()
    loss1, acc1, g1 = model.loss_and_grads(x, y)
    g1 = [g.copy() for g in g1]
    for b in model.buffers:
        b[...] = 123.0
    loss2, acc2, g2 = model.loss_and_grads(x, y)
    assert loss1 == loss2 and acc1 == acc2
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)


def test_float32_gradients_close_to_float64():
    x, y = make_data()
    m64 = randomize(make_model(dtype=np.float64))
    m32 = randomize(make_model(dtype=np.float32))
    l64, a64, g64 = m64.loss_and_grads(x, y)
    l32, a32, g32 = m32.loss_and_grads(x, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    assert a32 == a64
    for name, a, b in zip(m64.param_names, g64, g32):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5, err_msg=name)


# --------------------------------------------------------------------------------------------------
# forward against the numpy reference


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_training_forward_matches_reference(layers, batchnorm, dtype, rtol):
    model = randomize(make_model(layers=layers, batchnorm=batchnorm, dtype=dtype))
    x, y = make_data()
    before = {n: b.astype(np.float64) for n, b in zip(model.buffer_names, model.buffers)}
    ref_loss, ref_s, stats = reference(model, x, y, train=True)
    loss, acc, _ = model.loss_and_grads(x, y)
    assert isinstance(loss, float) and isinstance(acc, float)
    assert loss == pytest.approx(ref_loss, rel=rtol)
    assert acc == pytest.approx(np.mean(ref_s.argmax(axis=1) == y))
    # running averages: (1 - momentum) * running + momentum * batch statistic (unbiased var)
    mom = model.bn_momentum
    after = dict(zip(model.buffer_names, model.buffers))
    for i, (mu, var_unbiased) in enumerate(stats, start=1):
        rm, rv = after[f"running_mean{i}"], after[f"running_var{i}"]
        np.testing.assert_allclose(rm, (1 - mom) * before[f"running_mean{i}"] + mom * mu,
                                   rtol=10 * rtol, atol=10 * rtol)
        np.testing.assert_allclose(rv, (1 - mom) * before[f"running_var{i}"] + mom * var_unbiased,
                                   rtol=10 * rtol, atol=10 * rtol)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_eval_forward_matches_reference(layers, batchnorm, dtype, rtol):
    """Eval-mode batchnorm: gamma * (z - running_mean) / sqrt(running_var + eps) + beta."""
    model = randomize(make_model(layers=layers, batchnorm=batchnorm, dtype=dtype))
    x, y = make_data(n=11)
    ref_loss, ref_s, _ = reference(model, x, y, train=False)
    np.testing.assert_allclose(model.logits(x), ref_s, rtol=10 * rtol, atol=10 * rtol)
    loss, acc = model.evaluate(x, y)
    assert loss == pytest.approx(ref_loss, rel=rtol)
    assert acc == pytest.approx(np.mean(ref_s.argmax(axis=1) == y))
    np.testing.assert_array_equal(model.predict(x), model.logits(x).argmax(axis=1))


def test_eval_mode_changes_nothing_and_ignores_batch_size():
    model = randomize(make_model(dtype=np.float64))
    x, y = make_data(n=11)
    before = model.state()
    full = model.evaluate(x, y)
    for batch_size in (1, 2, 5, 11, 1000):
        loss, acc = model.evaluate(x, y, batch_size=batch_size)
        assert loss == pytest.approx(full[0], rel=1e-12) and acc == full[1]
        np.testing.assert_allclose(model.logits(x, batch_size=batch_size), model.logits(x),
                                   rtol=1e-12)
        model.predict(x, batch_size=batch_size)
    for name, a in model.state().items():
        np.testing.assert_array_equal(a, before[name], err_msg=name)


def test_eval_works_on_a_single_example():
    model = randomize(make_model())
    x, y = make_data()
    assert model.predict(x[:1]).shape == (1,)
    with pytest.raises(ValueError, match="at least 2"):
        model.loss_and_grads(x[:1], y[:1])


def test_softmax_is_stable_for_huge_logits():
    model = make_model(layers=0, dtype=np.float32)
    x, y = make_data()
    loss, _, grads = model.loss_and_grads(x * 1e6, y)
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert np.isfinite(model.evaluate(x * 1e6, y)[0])


# --------------------------------------------------------------------------------------------------
# structure, determinism, dtypes


def test_parameter_names_and_shapes():
    model = MLP(D, K, hidden=H, layers=2, rng=np.random.default_rng(0))
    assert model.param_names == ["W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "b3"]
    assert [p.shape for p in model.params] == [(D, H), (H,), (H,), (H, H), (H,), (H,), (H, K), (K,)]
    assert model.buffer_names == ["running_mean1", "running_var1", "running_mean2", "running_var2"]
    model = MLP(D, K, hidden=H, layers=2, batchnorm=False, rng=np.random.default_rng(0))
    assert model.param_names == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert model.buffers == [] and model.buffer_names == []
    model = MLP(D, K, layers=0, rng=np.random.default_rng(0))
    assert model.param_names == ["W1", "b1"] and model.params[0].shape == (D, K)
    assert model.n_params == D * K + K


def test_initialization_is_he_and_zero_or_one():
    model = MLP(200, 10, hidden=300, layers=2, rng=np.random.default_rng(0))
    p = dict(zip(model.param_names, model.params))
    assert np.std(p["W1"]) == pytest.approx(np.sqrt(2 / 200), rel=0.02)
    assert np.std(p["W2"]) == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    assert np.std(p["W3"]) == pytest.approx(np.sqrt(2 / 300), rel=0.05)
    assert np.all(p["gamma1"] == 1) and np.all(p["beta1"] == 0) and np.all(p["b3"] == 0)
    b = dict(zip(model.buffer_names, model.buffers))
    assert np.all(b["running_mean1"] == 0) and np.all(b["running_var1"] == 1)


def test_determinism_for_a_seed():
    x, y = make_data()
    a, b, c = make_model(seed=5), make_model(seed=5), make_model(seed=6)
    for pa, pb in zip(a.params, b.params):
        np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(a.params[0], c.params[0])
    la, _, ga = a.loss_and_grads(x, y)
    lb, _, gb = b.loss_and_grads(x, y)
    assert la == lb
    for u, v in zip(ga, gb):
        np.testing.assert_array_equal(u, v)
    # float32 and float64 models of one seed start from the same values
    m64 = make_model(seed=5, dtype=np.float64)
    for p32, p64 in zip(a.params, m64.params):
        np.testing.assert_array_equal(p32, p64.astype(np.float32))


def test_only_the_passed_rng_is_used():
    np.random.seed(0)
    a = make_model(seed=3)
    np.random.seed(1)
    b = make_model(seed=3)
    np.testing.assert_array_equal(a.params[0], b.params[0])


@pytest.mark.parametrize("batchnorm", [True, False])
def test_float32_by_default_and_float64_on_request(batchnorm):
    x, y = make_data()  # float64 data: cast by the model
    for dtype, kw in [(np.float32, {}), (np.float64, {"dtype": np.float64}),
                      (np.float64, {"dtype": "float64"})]:
        model = make_model(batchnorm=batchnorm, **kw)
        assert model.dtype == np.dtype(dtype)
        assert all(a.dtype == dtype for a in model.params + model.buffers)
        _, _, grads = model.loss_and_grads(x, y)
        assert all(g.dtype == dtype for g in grads)
        assert model.logits(x).dtype == dtype
        assert model.predict(x).dtype.kind == "i"
        assert all(a.dtype == dtype for a in model.state().values())


def test_params_are_updated_in_place_never_rebound():
    model = make_model()
    ids = [id(p) for p in model.params]
    grads_ids = [id(g) for g in model.grads]
    x, y = make_data()
    for _ in range(3):
        _, _, grads = model.loss_and_grads(x, y)
        for p, g in zip(model.params, grads):
            p -= 0.1 * g
    model.evaluate(x, y)
    model.load_state(make_model(seed=9).state())
    assert [id(p) for p in model.params] == ids
    assert [id(g) for g in grads] == grads_ids


def test_alternating_batch_sizes_match_a_fresh_model():
    model = randomize(make_model(dtype=np.float64))
    x, y = make_data(n=20)
    for n in (20, 7, 20, 3, 7):
        loss, _, grads = model.loss_and_grads(x[:n], y[:n])
        grads = [g.copy() for g in grads]
        ref_model = make_model(dtype=np.float64)
        ref_model.load_state(model.state())  # a fresh model: fresh buffers
        rloss, _, rgrads = ref_model.loss_and_grads(x[:n], y[:n])
        assert loss == rloss
        for g, r in zip(grads, rgrads):
            np.testing.assert_array_equal(g, r)


# --------------------------------------------------------------------------------------------------
# state


def test_state_round_trip(tmp_path):
    x, y = make_data()
    a = randomize(make_model(seed=1))
    a.loss_and_grads(x, y)  # moves the running statistics
    state = a.state()
    assert set(state) == set(a.param_names + a.buffer_names)
    for name, arr in zip(a.param_names + a.buffer_names, a.params + a.buffers):
        assert state[name] is not arr
        np.testing.assert_array_equal(state[name], arr)
    state["W1"][...] = 0.0  # a copy: the model is untouched
    assert np.any(a.params[0] != 0)

    state = a.state()
    np.savez(tmp_path / "ckpt.npz", **state)
    b = make_model(seed=2)
    with np.load(tmp_path / "ckpt.npz") as saved:
        b.load_state(saved)
    for name, arr in b.state().items():
        np.testing.assert_array_equal(arr, state[name], err_msg=name)
    np.testing.assert_array_equal(a.logits(x), b.logits(x))
    assert a.evaluate(x, y) == b.evaluate(x, y)


def test_load_state_rejects_mismatches():
    model = make_model()
    good = model.state()
    params_before = [p.copy() for p in model.params]

    missing = dict(good)
    del missing["running_var2"]
    with pytest.raises(ValueError, match="missing.*running_var2"):
        model.load_state(missing)

    extra = {**good, "W9": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match="unexpected.*W9"):
        model.load_state(extra)

    wrong_shape = {**good, "W2": np.zeros((H + 1, H), np.float32)}
    wrong_shape["W1"] = good["W1"] + 1.0  # must not be copied: validation comes first
    with pytest.raises(ValueError, match="W2.*shape"):
        model.load_state(wrong_shape)

    with pytest.raises(ValueError, match="missing"):
        model.load_state(make_model(batchnorm=False).state())

    for p, before in zip(model.params, params_before):
        np.testing.assert_array_equal(p, before)


# --------------------------------------------------------------------------------------------------
# arguments


@pytest.mark.parametrize("kwargs,match", [
    ({"layers": -1}, r"layers must be an integer in \[0, 1000\], got -1"),
    ({"layers": 1.5}, r"layers must be an integer in \[0, 1000\], got 1\.5"),
    ({"hidden": 0}, "hidden must be an integer >= 1, got 0"),
    ({"hidden": "sixty-four"}, "hidden must be an integer >= 1, got 'sixty-four'"),
    ({"hidden": True}, "hidden must be an integer >= 1, got True"),
    ({"n_features": 0}, "n_features must be an integer >= 1, got 0"),
    ({"n_classes": 1}, "n_classes must be an integer >= 2, got 1"),
    ({"batchnorm": "ture"}, "batchnorm must be true or false, got 'ture'"),
    ({"bn_momentum": 1.5}, r"bn_momentum must be a number in \[0, 1\], got 1.5"),
    ({"bn_momentum": -0.1}, r"bn_momentum must be a number in \[0, 1\], got -0.1"),
    ({"bn_eps": 0.0}, "bn_eps must be a number > 0, got 0.0"),
    ({"bn_eps": float("nan")}, "bn_eps must be a finite number > 0, got nan"),
    ({"depth": 3}, "unknown option 'depth'; valid names: hidden, layers, hidden2, hidden3, hidden4, batchnorm, dtype, "
                    "rng, bn_momentum, bn_eps"),
])
def test_bad_options_are_one_line_naming_the_model(kwargs, match):
    args = {"n_features": D, "n_classes": K, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ValueError, match=f"^model 'mlp': {match}$"):
        MLP(args.pop("n_features"), args.pop("n_classes"), **args)


@pytest.mark.parametrize("dtype", [np.float16, np.int32, "nonsense", None])
def test_bad_dtype_raises_value_error(dtype):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        MLP(D, K, dtype=dtype, rng=np.random.default_rng(0))


def test_options_are_declared_with_their_flags_and_ranges():
    specs = declared(MLP)
    model = {name: spec for name, spec in specs.items() if name not in MLP.HOST_ARGUMENTS}
    assert {name: (spec.type, spec.default) for name, spec in model.items()} == {
        "hidden": (int, 128), "layers": (int, 2), "hidden2": (int, None), "hidden3": (int, None),
        "hidden4": (int, None), "batchnorm": (bool, True), "bn_momentum": (float, 0.1), "bn_eps": (float, 1e-5)}
    assert {name: spec.option.flag for name, spec in model.items()} == {
        "hidden": "--hidden", "layers": "--layers", "hidden2": None, "hidden3": None, "hidden4": None,
        "batchnorm": "--batchnorm", "bn_momentum": None, "bn_eps": None}
    assert [spec.describe() for spec in model.values()] == [
        "an integer >= 1", "an integer in [0, 1000]", *["an integer >= 1 or none"] * 3, "true or false",
        "a number in [0, 1]", "a number > 0"]


def test_string_options_are_converted_to_the_same_model():
    a = MLP(D, K, hidden=H, layers=1, batchnorm=False, bn_momentum=0.2, bn_eps=1e-3, rng=np.random.default_rng(0))
    b = MLP(D, K, hidden=str(H), layers="1", batchnorm="no", bn_momentum="0.2", bn_eps="1e-3",
            rng=np.random.default_rng(0))
    assert a.options == b.options == {"hidden": H, "layers": 1, "batchnorm": False, "bn_momentum": 0.2,
                                      "bn_eps": 1e-3}
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="Generator"):
        MLP(D, K, rng=np.random.RandomState(0))
    with pytest.raises(TypeError):
        MLP(D, K)  # rng is required


def test_numpy_integers_are_accepted():
    model = MLP(np.int64(D), np.int32(K), hidden=np.int64(H), layers=np.int64(1),
                rng=np.random.default_rng(0))
    assert model.hidden == H and model.layers == 1


@pytest.mark.parametrize("make_xy,match", [
    (lambda x, y: (x[:, :-1], y), "shape"),
    (lambda x, y: (x[0], y), "shape"),
    (lambda x, y: (x[:0], y[:0]), "empty"),
    (lambda x, y: (x, y[:-1]), "y must have shape"),
    (lambda x, y: (x, y.astype(float)), "integer"),
    (lambda x, y: (x, y + K), "labels"),
    (lambda x, y: (x, y - 1), "labels"),
])
def test_bad_batches_raise_value_error(make_xy, match):
    model = make_model()
    x, y = make_xy(*make_data())
    with pytest.raises(ValueError, match=match):
        model.loss_and_grads(x, y)
    with pytest.raises(ValueError, match=match):
        model.evaluate(x, y)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int32, np.uint64, np.int64])
def test_any_integer_label_dtype(label_dtype):
    model = make_model(dtype=np.float64)
    x, y = make_data()
    expected = model.evaluate(x, y)
    assert model.evaluate(x, y.astype(label_dtype)) == expected
    assert model.loss_and_grads(x, y.astype(label_dtype))[0] == pytest.approx(
        reference(model, x, y, train=True)[0], rel=1e-12)


def test_bad_batch_size_raises_value_error():
    model = make_model()
    x, y = make_data()
    with pytest.raises(ValueError, match="batch_size"):
        model.evaluate(x, y, batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=2.5)


# --------------------------------------------------------------------------------------------------
# exactness of the fused batchnorm + ReLU


def unfused_step(model, p, buf, x, y):
    """Loss, accuracy and gradients of a training step of a batchnorm `model` with parameters p and
    buffers buf (dicts by name, copies of the model's; buf updated in place), each hidden layer run
    unfused: `kernels.batchnorm_forward`, `np.maximum`, the mask `dh * (h > 0)` and
    `kernels.batchnorm_backward`. The linear and output layers and the softmax are the model's own
    helpers, so the results equal the model's bit for bit."""
    n, L, K = x.shape[0], model.layers, model.n_classes
    hs, zs, saved = [x], [], []
    for i in range(1, L + 1):
        z = model_module._linear_forward(hs[-1], p[f"W{i}"], None, np.empty((n, p[f"W{i}"].shape[1]), x.dtype))
        a, mean, invstd = kernels.batchnorm_forward(z, p[f"gamma{i}"], p[f"beta{i}"], model.bn_eps,
                                                    buf[f"running_mean{i}"], buf[f"running_var{i}"],
                                                    model.bn_momentum)
        zs.append(z)
        saved.append((mean, invstd))
        hs.append(np.maximum(a, 0))
    out = model_module._LossArrays(n, K, x.dtype)
    model_module._output_forward(hs[-1], p[f"W{L + 1}"], p[f"b{L + 1}"], out.s)
    loss, n_correct = model_module._softmax_cross_entropy(out, y)
    g = {name: np.empty_like(a) for name, a in p.items()}
    dh = np.empty_like(hs[-1]) if L else None
    model_module._output_backward(out.ds, hs[-1], p[f"W{L + 1}"], g[f"W{L + 1}"], g[f"b{L + 1}"], dh)
    for i in range(L, 0, -1):
        da = dh * (hs[i] > 0)
        dz, g[f"gamma{i}"][...], g[f"beta{i}"][...] = kernels.batchnorm_backward(da, zs[i - 1], p[f"gamma{i}"],
                                                                                 *saved[i - 1])
        dh = np.empty_like(hs[i - 1]) if i > 1 else None
        model_module._linear_backward(dz, hs[i - 1], p[f"W{i}"], g[f"W{i}"], None, dh)
    return loss / n, n_correct / n, [g[name] for name in model.param_names]


def unfused_logits(model, p, buf, x):
    """Eval-mode logits (N, K) with `kernels.batchnorm_inference` and `np.maximum` per hidden layer."""
    n, L = x.shape[0], model.layers
    h = x
    for i in range(1, L + 1):
        z = model_module._linear_forward(h, p[f"W{i}"], None, np.empty((n, p[f"W{i}"].shape[1]), x.dtype))
        h = np.maximum(kernels.batchnorm_inference(z, p[f"gamma{i}"], p[f"beta{i}"], buf[f"running_mean{i}"],
                                                   buf[f"running_var{i}"], model.bn_eps), 0)
    return model_module._output_forward(h, p[f"W{L + 1}"], p[f"b{L + 1}"], np.empty((n, model.n_classes), x.dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layers, widths", [(1, {}), (2, {}), (4, {"hidden": 6, "hidden2": 1, "hidden3": 9, "hidden4": 2})])
def test_fused_batchnorm_relu_trains_exactly_as_the_unfused_kernels(layers, widths, dtype):
    """Five SGD steps (batch sizes 7, 2, 13, 7, 2: workspaces made and reused) give the same losses,
    gradients, parameters and running statistics bit for bit as the unfused kernels, and so do the
    eval-mode logits after them."""
    model = randomize(make_model(layers=layers, dtype=dtype, bn_momentum=0.3, **widths))
    p = {name: a.copy() for name, a in zip(model.param_names, model.params)}
    buf = {name: a.copy() for name, a in zip(model.buffer_names, model.buffers)}
    x, y = make_data(n=40)
    x = x.astype(dtype)
    start = 0
    for n in (7, 2, 13, 7, 2):
        xb, yb = x[start:start + n], y[start:start + n]
        start += n
        loss, acc, grads = model.loss_and_grads(xb, yb)
        ref_loss, ref_acc, ref_grads = unfused_step(model, p, buf, xb, yb)
        assert (loss, acc) == (ref_loss, ref_acc)
        for name, g, ref in zip(model.param_names, grads, ref_grads):
            np.testing.assert_array_equal(g, ref, err_msg=name)
        for name, param, g, ref in zip(model.param_names, model.params, grads, ref_grads):
            param -= dtype(0.1) * g
            p[name] -= dtype(0.1) * ref
    for name, a in zip(model.param_names + model.buffer_names, model.params + model.buffers):
        assert a.tobytes() == {**p, **buf}[name].tobytes(), name
    assert model.logits(x).tobytes() == unfused_logits(model, p, buf, x).tobytes()


# --------------------------------------------------------------------------------------------------
# learning


@pytest.mark.parametrize("batchnorm,layers", [(True, 2), (False, 2), (True, 0), (False, 1)])
def test_gradient_descent_learns_a_separable_problem(batchnorm, layers):
    rng = np.random.default_rng(0)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    y = rng.integers(0, 3, size=96)
    x = (centers[y] + 0.5 * rng.standard_normal((96, 2))).astype(np.float32)
    model = MLP(2, 3, hidden=16, layers=layers, batchnorm=batchnorm, rng=np.random.default_rng(1))
    first, _, _ = model.loss_and_grads(x, y)
    for _ in range(300):
        loss, acc, grads = model.loss_and_grads(x, y)
        for p, g in zip(model.params, grads):
            p -= 0.1 * g
    assert loss < 0.1 * first and loss < 0.1
    assert acc == 1.0
    eval_loss, eval_acc = model.evaluate(x, y)
    assert eval_acc > 0.95 and eval_loss < 0.3

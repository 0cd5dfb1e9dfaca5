"""Tests of research.nn.cnn.CNN against a plain NCHW numpy reference and finite differences, and of
the cnn model plugin through research.train and the command line."""

import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

import research
from research import kernels
from research.cli import app
from research.errors import UsageError
from research.nn import checkpoint
from research.nn import cnn as cnn_module
from research.nn.cnn import CNN
from research.nn.model import MLP
from research.options import declared
from tests.test_kernels_numerics import _numeric_gradient
from tests.test_model import randomize  # non-trivial gamma, beta, biases, running statistics

runner = CliRunner()
K = 3
SMALL = {  # input shape -> options: small nets covering the pooling rule and the kernel sizes
    "8x8": ((1, 8, 8), {"channels": 3, "blocks": 3}),                     # pools 8 -> 4 -> 2, then not
    "odd": ((2, 5, 7), {"channels": 2, "blocks": 2, "widen": 1.5}),       # 5x7 pools to 2x3
    "1x1 kernels": ((3, 4, 4), {"channels": 2, "blocks": 2, "kernel_size": 1}),
    "5x5 kernels": ((1, 6, 6), {"channels": 2, "blocks": 2, "kernel_size": 5, "widen": 2}),
    # Winograd blocks (16 input channels or more, 3x3, even images): the second of three, with an
    # input gradient; the first, without one, before an im2col block on 2x3
    "winograd": ((1, 8, 8), {"channels": 16, "blocks": 3}),
    "winograd first": ((16, 4, 6), {"channels": 17, "blocks": 2}),
}


def make_model(case="8x8", seed=0, **kw):
    shape, options = SMALL[case]
    return CNN(shape, K, rng=np.random.default_rng(seed), **{**options, **kw})


def make_data(model, n=5, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, model.n_features)) * 1.5 + 0.3
    y = rng.integers(0, K, size=n)
    return x, y


def reference(model, x, y, train):
    """Loss, logits and batch statistics of the model in plain float64 numpy, NCHW, loop by loop."""
    p = {n: a.astype(np.float64) for n, a in zip(model.param_names, model.params)}
    buf = {n: a.astype(np.float64) for n, a in zip(model.buffer_names, model.buffers)}
    h = np.asarray(x, np.float64).reshape(len(x), *model.input_shape)
    stats = []
    for b in range(1, model.blocks + 1):
        W = p[f"W{b}"]
        n, _, H, Wd = h.shape
        k, pad = W.shape[2], (W.shape[2] - 1) // 2
        hp = np.pad(h, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        z = np.zeros((n, W.shape[0], H, Wd))
        for u in range(k):
            for v in range(k):
                z += np.einsum("oi,nirc->norc", W[:, :, u, v], hp[:, :, u:u + H, v:v + Wd])
        if train:
            mu, var = z.mean(axis=(0, 2, 3)), z.var(axis=(0, 2, 3))
            stats.append((mu, z.var(axis=(0, 2, 3), ddof=1)))
        else:
            mu, var = buf[f"running_mean{b}"], buf[f"running_var{b}"]
        shape = (1, -1, 1, 1)
        a = p[f"gamma{b}"].reshape(shape) * (z - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + model.bn_eps)
        a = np.maximum(a + p[f"beta{b}"].reshape(shape), 0.0)
        if H >= 4 and Wd >= 4:
            ho, wo = H // 2, Wd // 2
            a = a[:, :, :2 * ho, :2 * wo].reshape(n, -1, ho, 2, wo, 2).max(axis=(3, 5))
        h = a
    s = h.reshape(len(x), -1) @ p[f"W{model.blocks + 1}"] + p[f"b{model.blocks + 1}"]
    m = s.max(axis=1, keepdims=True)
    logsumexp = np.log(np.exp(s - m).sum(axis=1)) + m[:, 0]
    return np.mean(logsumexp - s[np.arange(len(y)), y]), s, stats


# --------------------------------------------------------------------------------------------------
# numerics


@pytest.mark.parametrize("case", SMALL)
def test_gradients_match_central_differences(case):
    model = randomize(make_model(case, dtype=np.float64))
    x, y = make_data(model)
    buffers = [b.copy() for b in model.buffers]

    def loss():
        # the training forward updates the running statistics: put them back every time
        for b, saved in zip(model.buffers, buffers):
            b[...] = saved
        return model.loss_and_grads(x, y)[0]

    grads = [g.copy() for g in model.loss_and_grads(x, y)[2]]  # the model reuses its arrays
    rng = np.random.default_rng(3)
    for name, p, g in zip(model.param_names, model.params, grads):
        some = rng.choice(p.size, size=min(p.size, 4), replace=False)  # a few coordinates each
        numeric = _numeric_gradient(loss, p, some, h=1e-6)
        np.testing.assert_allclose(g.reshape(-1)[some], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("case", SMALL)
def test_forward_matches_the_nchw_reference(case):
    model = randomize(make_model(case, dtype=np.float64))
    x, y = make_data(model)
    eval_loss, _ = model.evaluate(x, y)
    want_loss, want_logits, _ = reference(model, x, y, train=False)
    np.testing.assert_allclose(model.logits(x), want_logits, rtol=1e-10, atol=1e-12)
    assert eval_loss == pytest.approx(want_loss, rel=1e-12)

    before = [b.copy() for b in model.buffers]
    want_loss, _, stats = reference(model, x, y, train=True)
    assert model.loss_and_grads(x, y)[0] == pytest.approx(want_loss, rel=1e-12)
    m = model.bn_momentum
    for b, (mu, var) in enumerate(stats):
        np.testing.assert_allclose(model.buffers[2 * b], (1 - m) * before[2 * b] + m * mu, rtol=1e-12)
        np.testing.assert_allclose(model.buffers[2 * b + 1], (1 - m) * before[2 * b + 1] + m * var, rtol=1e-12)


@pytest.mark.parametrize("case", ["winograd", "winograd first"])
def test_winograd_blocks_agree_with_the_im2col(case, monkeypatch):
    model = randomize(make_model(case, dtype=np.float64))
    by_winograd = [block.winograd for block in model._blocks]
    assert by_winograd == ([False, True, False] if case == "winograd" else [True, False])
    x, y = make_data(model, n=7)
    monkeypatch.setattr(cnn_module, "WINOGRAD_MIN_CHANNELS", 10**6)
    by_im2col = make_model(case, dtype=np.float64)
    for mine, theirs in zip(by_im2col.params + by_im2col.buffers, model.params + model.buffers):
        mine[...] = theirs
    assert not any(block.winograd for block in by_im2col._blocks)
    for train in (True, False):
        want = by_im2col.loss_and_grads(x, y) if train else (by_im2col.evaluate(x, y)[0],)
        got = model.loss_and_grads(x, y) if train else (model.evaluate(x, y)[0],)
        assert got[0] == pytest.approx(want[0], rel=1e-12)
        for name, g, w in zip(model.param_names, got[2] if train else [], want[2] if train else []):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(model.logits(x), by_im2col.logits(x), rtol=1e-10, atol=1e-12)


def _work_values(model, n):
    """Values of the work arrays a batch of n allocates: each array's own memory once."""
    owners = {}
    ws = model._workspace(n)
    for holder in [ws, ws.out, *ws.blocks, *(work.conv for work in ws.blocks)]:
        names = getattr(type(holder), "__slots__", None) or vars(holder)
        for value in (getattr(holder, name) for name in names):
            while isinstance(value, np.ndarray) and isinstance(value.base, np.ndarray):
                value = value.base
            if isinstance(value, np.ndarray):
                owners[id(value)] = value.size
    return sum(owners.values())


@pytest.mark.parametrize("case", SMALL)
def test_the_size_check_counts_every_work_value_of_a_batch_row(case):
    model = make_model(case)
    shape, options = SMALL[case]
    _, per_row = cnn_module._cnn_size(shape, K, options["channels"], options["blocks"],
                                      options.get("kernel_size", 3), options.get("widen", 1.0))
    assert 0 < _work_values(model, 3) - _work_values(model, 2) <= per_row


def test_ties_in_a_pooling_window_send_the_gradient_to_the_first_maximum():
    model = CNN((1, 4, 4), K, channels=1, blocks=1, kernel_size=1, dtype=np.float64, rng=np.random.default_rng(0))
    x = np.tile(np.array([[2.0, 2.0, 0.0, 1.0], [2.0, 2.0, 1.0, 3.0], [0, 0, 0, 0], [0, 0, 0, 0]]).ravel(), (2, 1))
    x[1] += 0.5  # two samples, so that batchnorm has spread
    grads = model.loss_and_grads(x, np.array([0, 1]))[2]
    dW1 = grads[0].copy()
    # the top-left window is four equal values: its gradient must count once, as for one maximum
    x2 = x.copy()
    x2[:, [1, 4, 5]] -= 1e-9
    np.testing.assert_allclose(model.loss_and_grads(x2, np.array([0, 1]))[2][0], dW1, rtol=1e-6)


def test_float32_agrees_with_float64():
    x, y = make_data(make_model(), n=8)
    f32 = randomize(make_model(dtype=np.float32))
    f64 = randomize(make_model(dtype=np.float64))
    for a, b in zip(f32.params + f32.buffers, f64.params + f64.buffers):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(f32.logits(x), f64.logits(x), rtol=1e-4, atol=1e-4)
    loss32, acc32, grads32 = f32.loss_and_grads(x, y)
    loss64, acc64, grads64 = f64.loss_and_grads(x, y)
    assert loss32 == pytest.approx(loss64, rel=1e-5) and acc32 == acc64
    for g32, g64 in zip(grads32, grads64):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-4 * np.abs(g64).max())


class _UnfusedPlan:
    """Stand-in for kernels.BatchNormPlan(..., relu=True) from the public unfused kernels:
    batchnorm then ReLU forward; ReLU mask (dy * (y > 0)) then batchnorm backward."""

    def __init__(self, x, gamma, beta, y, mean, invstd, running_mean, running_var, *, dy, dx, dgamma,
                 dbeta, eps, momentum, relu):
        assert relu
        self.__dict__.update(locals())

    def forward(self):
        kernels.batchnorm_forward(self.x, self.gamma, self.beta, self.eps, self.running_mean, self.running_var,
                                  self.momentum, out=self.y, mean_out=self.mean, invstd_out=self.invstd)
        np.maximum(self.y, 0, out=self.y)

    def inference(self):
        kernels.batchnorm_inference(self.x, self.gamma, self.beta, self.running_mean, self.running_var, self.eps,
                                    out=self.y)
        np.maximum(self.y, 0, out=self.y)

    def backward(self):
        kernels.batchnorm_backward(self.dy * (self.y > 0), self.x, self.gamma, self.mean, self.invstd,
                                   dx_out=self.dx, dgamma_out=self.dgamma, dbeta_out=self.dbeta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SMALL)
def test_fused_batchnorm_relu_is_bit_identical_to_the_unfused_kernels(case, dtype, monkeypatch):
    def run():
        model = randomize(make_model(case, dtype=dtype))
        state = model.state()
        for name in state:
            if name.startswith("beta"):    # some channels (nearly) dead: the ReLU's mask matters
                state[name] = state[name] - np.linspace(0.0, 3.0, state[name].size)
        model.load_state(state)
        results = []
        for step, n in enumerate((6, 4)):
            x, y = make_data(model, n=n, seed=step)
            loss, _, grads = model.loss_and_grads(x, y)
            results += [np.float64(loss)] + [g.copy() for g in grads]
            for p, g in zip(model.params, grads):
                p -= 0.1 * g
        return results + [a.copy() for a in model.params + model.buffers] + [model.logits(make_data(model, 5, 9)[0])]

    fused = run()
    monkeypatch.setattr(cnn_module, "kernels", SimpleNamespace(BatchNormPlan=_UnfusedPlan))
    unfused = run()
    assert len(fused) == len(unfused)
    for a, b in zip(fused, unfused):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------------------------------
# shapes and state


def test_parameters_and_shapes():
    model = CNN((1, 8, 8), 10, channels=4, blocks=3, widen=1.5, rng=np.random.default_rng(0))
    assert model.block_shapes == [(4, 4, 4), (6, 2, 2), (9, 2, 2)]  # 4 * 1.5 ** 2 = 9; no pooling below 4x4
    assert model.param_names == ["W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "gamma3", "beta3",
                                 "W4", "b4"]
    assert [p.shape for p in model.params] == [(4, 1, 3, 3), (4,), (4,), (6, 4, 3, 3), (6,), (6,), (9, 6, 3, 3),
                                               (9,), (9,), (36, 10), (10,)]
    assert model.buffer_names == [f"running_{s}{b}" for b in (1, 2, 3) for s in ("mean", "var")]
    assert all(p.dtype == np.float32 and p.flags.c_contiguous for p in model.params + model.buffers)
    assert model.n_params == sum(p.size for p in model.params)
    # He initialization: std sqrt(2 / fan_in)
    wide = CNN((1, 8, 8), 10, channels=64, blocks=1, rng=np.random.default_rng(0))
    assert wide.params[0].std() == pytest.approx(np.sqrt(2 / 9), rel=0.1)
    assert CNN((3, 5, 7), 4, channels=2, blocks=1, rng=np.random.default_rng(0)).block_shapes == [(2, 2, 3)]


def test_the_same_gradient_arrays_every_step_and_checks_of_a_batch():
    model = make_model()
    x, y = make_data(model)
    first = model.loss_and_grads(x, y)[2]
    second = model.loss_and_grads(x[:2], y[:2])[2]
    assert all(a is b is g for a, b, g in zip(first, second, model.grads))
    assert [g.shape for g in first] == [p.shape for p in model.params]
    with pytest.raises(ValueError, match=r"x must have shape \(N, 64\)"):
        model.loss_and_grads(x[:, :-1], y)
    with pytest.raises(ValueError, match="labels"):
        model.evaluate(x, y + K)
    loss, acc = model.evaluate(x[:1], y[:1])  # one sample in eval mode is fine
    assert np.isfinite(loss) and acc in (0.0, 1.0)
    assert model.predict(x).shape == (len(x),)


def test_state_round_trip(tmp_path):
    """Every parameter and running statistic goes through a checkpoint file and back."""
    trained = randomize(make_model(seed=0))
    x, y = make_data(trained)
    trained.loss_and_grads(x, y)                    # running statistics move too
    assert set(trained.state()) == set(trained.param_names + trained.buffer_names)
    checkpoint.save(tmp_path / "cnn.npz", trained.state())
    fresh = make_model(seed=5)
    fresh.load_state(checkpoint.load(tmp_path / "cnn.npz"))
    assert all(np.array_equal(mine, theirs) for mine, theirs in
               zip(fresh.params + fresh.buffers, trained.params + trained.buffers))
    assert np.array_equal(fresh.logits(x), trained.logits(x)) and fresh.evaluate(x, y) == trained.evaluate(x, y)
    assert np.array_equal(copy.deepcopy(trained).logits(x), trained.logits(x))
    with pytest.raises(ValueError, match="missing"):
        fresh.load_state(make_model(blocks=2).state())


# --------------------------------------------------------------------------------------------------
# options


def test_a_flat_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"^model 'cnn': input_shape must be \(channels, height, width\), got "
                                         r"\(64,\); use a dataset whose samples have a shape .*digits$"):
        CNN((64,), 10, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^model 'cnn': input_shape must be .*got \(2,\)"):
        research.train(model="cnn", dataset="moons", epochs=1)


@pytest.mark.parametrize("kwargs,message", [
    ({"kernel_size": 4}, "kernel_size must be an odd integer >= 1, got 4"),
    ({"kernel_size": 0}, "kernel_size must be an odd integer >= 1, got 0"),
    ({"kernel_size": 17}, r"kernel_size must be at most 15 for 8x8 inputs \(a wider kernel sees only padding\), "
                          "got 17; lower --kernel-size"),
    ({"channels": 0}, "channels must be an integer >= 1, got 0"),
    ({"blocks": "two"}, r"blocks must be an integer in \[1, 1000\], got 'two'"),
    ({"widen": 0}, "widen must be a number > 0, got 0"),
    ({"bn_momentum": 1.5}, r"bn_momentum must be a number in \[0, 1\], got 1.5"),
    ({"bn_eps": 0.0}, "bn_eps must be a number > 0, got 0.0"),
    ({"hidden": 8}, "unknown option 'hidden'; valid names: channels, blocks, kernel_size, widen, dtype, rng, "
                    "bn_momentum, bn_eps"),
])
def test_bad_options_are_one_line_naming_the_model(kwargs, message):
    with pytest.raises(ValueError, match=f"^model 'cnn': {message}$"):
        CNN((1, 8, 8), 10, rng=np.random.default_rng(0), **kwargs)


def test_options_are_declared_with_their_own_flags_and_the_mlps_names():
    specs = {name: spec for name, spec in declared(CNN).items() if name not in CNN.HOST_ARGUMENTS}
    assert {name: (spec.type, spec.default, spec.option.flag) for name, spec in specs.items()} == {
        "channels": (int, 64, "--channels"), "blocks": (int, 2, "--blocks"),
        "kernel_size": (int, 3, "--kernel-size"), "widen": (float, 1.0, "--widen"),
        "bn_momentum": (float, 0.1, None), "bn_eps": (float, 1e-5, None)}
    mlp = declared(MLP)
    for name in ("bn_momentum", "bn_eps"):
        assert specs[name] == mlp[name]
    model = CNN((1, 8, 8), 10, channels="8", widen="2", rng=np.random.default_rng(0))
    assert model.options == {"channels": 8, "blocks": 2, "kernel_size": 3, "widen": 2.0, "bn_momentum": 0.1,
                             "bn_eps": 1e-5}
    assert model.config == {"input_shape": (1, 8, 8), "n_classes": 10, **model.options, "dtype": "float32"}
    assert specs["kernel_size"].describe() == "an odd integer >= 1"   # as `research plugins` lists it


# --------------------------------------------------------------------------------------------------
# the plugin


def test_research_train_improves_a_cnn_on_digits():
    result = research.train(model="cnn", epochs=2, seed=0)
    assert result.status == "finished" and result.config["model"] == "cnn"
    first, last = result.history
    assert last["train_loss"] < first["train_loss"]
    assert last["val_acc"] > 0.9


def test_the_command_line_trains_a_cnn_and_refuses_the_mlps_flags():
    ok = runner.invoke(app, ["train", "--model", "cnn", "--channels", "8", "--epochs", "1", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["status"] == "finished"
    assert data["config"]["model"] == "cnn" and data["config"]["channels"] == 8
    refused = runner.invoke(app, ["train", "--model", "cnn", "--hidden", "8", "--epochs", "1"])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == "error: --hidden does not apply to model 'cnn'; it is an option of --model mlp"
    odd = runner.invoke(app, ["train", "--model", "cnn", "--kernel-size", "4", "--epochs", "1"])
    assert odd.exit_code == 2
    assert odd.stderr.strip() == "error: model 'cnn': kernel_size must be an odd integer >= 1, got 4"


def test_grey_images_without_a_channel_axis_are_told_to_add_one():
    """(N, H, W) images were told to "use a dataset whose samples have a shape", which they had."""
    with pytest.raises(UsageError, match=r"got \(6, 6\): images without a channel axis; save X with one, shape "
                                         r"\(N, 1, 6, 6\) \(X\[:, None\]\)$"):
        CNN((6, 6), 3, rng=np.random.default_rng(0))


@pytest.mark.parametrize("space, refused, said", [("3,4", 4, "it cannot take"), ("int:1..5", 2, "the model refuses"),
                                                  ("int:3..99", 4, "the model refuses")])
def test_a_searched_value_only_the_model_refuses_stops_the_study_before_it_is_stored(tmp_path, space, refused, said):
    """An even kernel_size passed the declaration (an integer) and failed every trial that drew
    it, with a `--retry-failed` hint that could never help; inside a range (int:1..5: odd ends)
    it still did. A choice is checked against the declaration (odd); a range's inner values
    by the model, on samples."""
    db = tmp_path / "r.db"
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--model", "cnn", "--trials", "3", "--epochs", "1",
                                 "--space", f"kernel_size={space}", "--store", str(db), "--executor", "serial"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: the space's kernel_size={space} draws values {said}: model "
                                     f"'cnn': kernel_size must be an odd integer >= 1, got {refused}; change the space")
    assert not db.exists() or "kernel_size" not in db.read_bytes().decode("latin-1")

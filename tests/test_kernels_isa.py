"""The kernels' instruction sets: every set this CPU runs gives the same bits, RESEARCH_KERNELS
forces one (with a one-line error for one that cannot run), and a study records which ran.

A Dask cluster mixes CPUs and a resumed study must continue exactly, so results may not depend
on the set: the comparisons below are exact (array_equal), not within a tolerance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from research import kernels
from tests.studyutil import curves, research_command

SETS = kernels.supported_isas()
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

# (N, C) shapes with channels that are no multiple of any vector width, one over two float
# strips (8192 channels), one of 4 MiB and more with an odd row count (numpy places it off a
# 64-byte boundary: the lead strip of csrc/batchnorm_impl.h; two rows a sweep, then the last
# one), one of 16 MiB and more (four rows a sweep, in the forward 256 apart, then three), and
# NCHW shapes with short and long spatial runs, the last three over 4 MiB (the channel-group
# path: groups of one channel, of 64 for short runs, of 8 to 32 for small samples; the last
# group partial).
SHAPES = [(7, 3), (64, 129), (5, 8291), (1025, 1024), (1027, 4099), (9, 5, 17), (4, 3, 37, 29),
          (2, 2, 1031), (6, 19, 97, 97), (1024, 70, 4, 4), (2, 600, 32, 32)]


@pytest.fixture
def restore_isa():
    before = kernels.isa()
    yield
    kernels.use_isa(before)


def _every_kernel(shape: tuple[int, ...], dtype: type) -> dict[str, np.ndarray]:
    """Every kernel's outputs on one seeded input (inputs built afresh, so each set starts alike)."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 3 + 1e3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(dtype), rng.uniform(-1, 1, c).astype(dtype)
    rmean, rvar = rng.uniform(-1, 1, c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    out = {}
    y, mean, invstd = kernels.batchnorm_forward(x, gamma, beta, running_mean=rmean, running_var=rvar)
    out |= {"y": y, "mean": mean, "invstd": invstd, "rmean": rmean.copy(), "rvar": rvar.copy()}
    out["dx"], out["dgamma"], out["dbeta"] = kernels.batchnorm_backward(dy, x, gamma, mean, invstd)
    out["inference"] = kernels.batchnorm_inference(x, gamma, beta, rmean, rvar)
    yr, mean_r, invstd_r = kernels.batchnorm_relu_forward(x, gamma, beta)
    out["relu_y"] = yr
    out["relu_dx"], out["relu_dgamma"], out["relu_dbeta"] = kernels.batchnorm_relu_backward(
        dy, yr, x, gamma, mean_r, invstd_r)
    out["relu_inference"] = kernels.batchnorm_relu_inference(x, gamma, beta, rmean, rvar)
    logits = x.reshape(shape[0], -1) - 1e3  # (N, C * spatial) classes
    labels = rng.integers(0, logits.shape[1], shape[0])
    out["loss"], out["hit"], out["grad"] = kernels.softmax_cross_entropy(logits, labels, 1.0 / shape[0])
    size = int(np.prod(shape))
    p, g = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    m, v = np.zeros(size, dtype), np.zeros(size, dtype)
    for step in (1, 2, 3):
        kernels.adam_update(p, g, m, v, step, lr=1e-2, weight_decay=0.01)
    kernels.momentum_update(p, g, m, lr=1e-2, beta=0.9)
    kernels.rmsprop_update(p, g, v, lr=1e-2, beta=0.99)
    kernels.sgd_update(p, g, lr=1e-2, weight_decay=1e-4)
    out |= {"param": p, "m": m, "v": v}
    return out


def test_the_sets_this_cpu_runs_start_with_the_baseline_and_one_is_in_use():
    assert SETS[0] == "baseline"
    assert set(SETS) <= {"baseline", "avx2", "avx512"}
    assert kernels.isa() in SETS
    if not os.environ.get("RESEARCH_KERNELS"):
        assert kernels.isa() == SETS[-1]  # the widest by default


@pytest.mark.skipif(len(SETS) < 2, reason="this CPU runs only the baseline kernels")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_set_gives_the_same_bits(shape, dtype, restore_isa):
    results = {}
    for name in SETS:
        kernels.use_isa(name)
        results[name] = _every_kernel(shape, dtype)
    first, *others = SETS
    for name in others:
        for key, value in results[first].items():
            assert np.array_equal(value, results[name][key], equal_nan=True), f"{key}: {first} != {name}"


def test_a_plan_keeps_the_set_it_was_made_with(restore_isa):
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    ones, zeros = np.ones(4, np.float32), np.zeros(4, np.float32)
    made = {}
    for name in SETS:
        kernels.use_isa(name)
        made[name] = (kernels.BatchNormPlan(x, ones, zeros, np.empty_like(x), zeros.copy(), zeros.copy()),
                      kernels.SGDPlan([x.copy()], [x.copy()]))
    kernels.use_isa(SETS[0])
    for name, plans in made.items():
        assert [plan.isa for plan in plans] == [name, name]


def test_use_isa_refuses_unknown_and_unrunnable_sets(restore_isa):
    with pytest.raises(ValueError, match="must be one of baseline, avx2, avx512, got 'sse9'"):
        kernels.use_isa("sse9")
    missing = [name for name in ("avx2", "avx512") if name not in SETS]
    for name in missing:
        with pytest.raises(ValueError, match=f"this CPU cannot run the {name} kernels"):
            kernels.use_isa(name)
    assert kernels.isa() in SETS
    kernels.use_isa(SETS[0].upper())  # any case, as RESEARCH_KERNELS takes it
    assert kernels.isa() == SETS[0]
    for wrong in (2, None):
        with pytest.raises(TypeError, match=f"must be a string, one of baseline, avx2, avx512, got {wrong}"):
            kernels.use_isa(wrong)


def _python(code: str, **environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **environment}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.skipif(len(SETS) < 2, reason="this CPU runs only the baseline kernels")
def test_process_workers_run_the_set_use_isa_chose(restore_isa):
    """A study records its process's set; a spawned worker would otherwise choose the best."""
    from research_plugins.executors import process_executor

    kernels.use_isa(SETS[0])
    with process_executor(1) as pool:
        assert pool.submit(kernels.isa).result(timeout=60) == SETS[0]


@pytest.mark.parametrize("name", SETS)
def test_research_kernels_forces_a_set(name):
    for spelled in (name, f" {name.upper()} "):  # as written in a shell, any case
        done = _python("from research import kernels; print(kernels.isa())", RESEARCH_KERNELS=spelled)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == name


@pytest.mark.parametrize("value, message", [
    ("sse9", "RESEARCH_KERNELS=sse9 is not an instruction set: set it to one of baseline"),
    ("avx512" if "avx512" not in SETS else "avx1024", "RESEARCH_KERNELS="),
])
def test_a_bad_research_kernels_is_one_line_from_the_command_line(tmp_path, value, message):
    done = subprocess.run([*research_command(), "train", "--epochs", "1"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "RESEARCH_KERNELS": value}, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: " + message) or message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "research.db").exists()


def test_a_study_is_the_same_on_every_set_and_records_which_ran(tmp_path):
    args = ["train", "--strategy", "caviar", "--study", "s", "--trials", "2", "--epochs", "2", "--hidden", "16",
            "--executor", "serial", "--seed", "3"]
    stored = {}
    for name in SETS:
        folder = tmp_path / name
        folder.mkdir()
        env = {**os.environ, **ONE_THREAD, "RESEARCH_KERNELS": name}
        done = subprocess.run([*research_command(), *args], cwd=folder, capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        shown = subprocess.run([*research_command(), "show", "s", "--json"], cwd=folder,
                               capture_output=True, text=True, env=env, timeout=60)
        assert json.loads(shown.stdout)["provenance"]["kernels_isa"] == name
        stored[name] = curves(folder / "research.db", "s")
    for name in SETS[1:]:
        assert stored[name] == stored[SETS[0]], f"{name} curves differ from {SETS[0]}'s"


def test_the_c_support_query_answers_one_or_zero():
    """kernels.h promises 1 or 0, so C callers may compare with == 1."""
    from research.kernels._c import ISAS, lib

    answers = {name: lib.rs_isa_supported(value) for name, value in ISAS.items()}
    assert set(answers.values()) <= {0, 1}, answers
    assert answers["baseline"] == 1

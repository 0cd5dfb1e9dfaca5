"""The benchmark scripts run to their end on a tiny setting (all but search_quality.py and
dashboard.py, which take minutes even so: only their refusals are run), and refuse a bad value in
one line. Their figures are not checked here (the machines are shared and noisy: figures belong in
the benchmarks' own output), but a script that crashes measures nothing: executors.py and
caviar.py crashed on every run for sessions before anyone ran them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

RUNS = [
    ("caviar.py", ["--quick", "--trials", "2", "--epochs", "2", "--repeats", "1", "--commits", "20"], ()),
    ("executors.py", ["--trials", "2", "--epochs", "1", "--repeats", "1", "--round-trips", "2"], ("distributed",)),
    ("train.py", ["--quick", "--no-torch", "--repeats", "2", "--warmup", "1", "--profile-epochs", "1"], ()),
    ("train.py", ["--model", "cnn", "--model-opt", "channels=4", "--quick", "--no-torch", "--repeats", "1",
                  "--warmup", "0", "--profile-epochs", "1"], ()),
    ("kernels.py", ["--quick", "--no-torch", "--dtype", "float32", "--kernel", "adam", "--kernel", "overhead",
                    "--budget", "0.01", "--min-rounds", "1"], ()),
    ("threads.py", ["--seconds", "0.02", "--repeats", "1"], ()),
    ("pruning.py", ["--trials", "4", "--epochs", "4", "--seeds", "1", "--workers", "1"], ()),
    ("sampler_cost.py", ["--repeats", "2", "--seeds", "1", "--budget", "4"], ()),
]


def run(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("script, args, needs", RUNS, ids=[f"{s} {' '.join(a[:2])}" for s, a, _ in RUNS])
def test_the_benchmark_runs_to_its_end(tmp_path, script, args, needs):
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    result = run(script, args, tmp_path)  # from another folder, as the docs allow
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


@pytest.mark.parametrize("script, args, says", [
    ("kernels.py", ["--budget", "-1"], "argument --budget: expected a finite number > 0, got -1"),
    ("train.py", ["--repeats", "0"], "argument --repeats: expected a whole number >= 1, got 0"),
    ("train.py", ["--model-opt", "nokey"], "--model-opt 'nokey': write KEY=VALUE"),
    ("train.py", ["--baseline", "no/such/python"], "no such executable"),
    ("pruning.py", ["--workers", "0"], "argument --workers: expected a whole number >= 1, got 0"),
    ("search_quality.py", ["--quick", "--tasks", "foo"], "unknown task foo"),
])
def test_a_bad_value_is_one_line(tmp_path, script, args, says):
    """Tables of nan (--budget -1), a traceback (--model-opt nokey), or a run of other values
    (--quick --tasks foo ran digits)."""
    result = run(script, args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr.strip().splitlines()[-1] and "Traceback" not in result.stderr, result.stderr


def test_a_bad_instruction_set_is_one_line(tmp_path):
    import os

    result = subprocess.run([sys.executable, str(BENCHMARKS / "kernels.py"), "--quick"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "RESEARCH_KERNELS": "foo"})
    assert result.returncode == 2 and result.stderr.strip().startswith(
        "error: RESEARCH_KERNELS=foo is not an instruction set: set it to one of baseline"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr

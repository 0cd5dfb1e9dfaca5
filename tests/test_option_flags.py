"""The repeatable KEY=VALUE flags (--opt, --model-opt, --sampler-opt...): each key once, with a value."""

from __future__ import annotations

import pytest

from research.cli.train import parse_pairs
from research.errors import UsageError
from tests.studyutil import cli

CAVIAR = ["train", "--strategy", "caviar", "--trials", "2", "--epochs", "1", "--executor", "serial"]


@pytest.mark.parametrize("args, message", [
    # the second value silently won, where --space NAME given twice is refused
    (["sample", "--sampler", "grid", "--sampler-opt", "points_per_axis=5", "--sampler-opt", "points_per_axis=6"],
     "--sampler-opt points_per_axis is given twice (5 and 6); give it once"),
    (["train", "--epochs", "1", "--opt", "lr=0.1", "--opt", "lr=0.2"],
     "--opt lr is given twice (0.1 and 0.2); give it once"),
    (["train", "--epochs", "1", "--model-opt", "hidden2=64", "--model-opt", "hidden2=32"],
     "--model-opt hidden2 is given twice (64 and 32); give it once"),
    ([*CAVIAR, "--strategy-opt", "retries=1", "--strategy-opt", "retries=1"],
     "--strategy-opt retries is given twice (1 and 1); give it once"),
    ([*CAVIAR, "--trainer-opt", "command=python a.py", "--trainer-opt", "command=python b.py"],
     "--trainer-opt command is given twice ('python a.py' and 'python b.py'); give it once"),
    # --model-opt k=v is --opt model.k=v
    (["train", "--epochs", "1", "--opt", "model.hidden2=32", "--model-opt", "hidden2=64"],
     "model.hidden2 is given twice, as --opt model.hidden2=32 and as --model-opt hidden2=64; give it once"),
    # an empty value was the default, in silence
    (["sample", "--sampler", "grid", "--sampler-opt", "points_per_axis="],
     "--sampler-opt points_per_axis= has no value; write --sampler-opt points_per_axis=VALUE, or leave it out for "
     "the default"),
    ([*CAVIAR, "--prune", "median", "--prune-opt", "warmup= "],
     "--prune-opt warmup= has no value; write --prune-opt warmup=VALUE, or leave it out for the default"),
    # the example was --dataset-opt beta1=0.95, an optimizer's option
    (["train", "--epochs", "1", "--dataset-opt", "noequals"],
     "cannot read --dataset-opt 'noequals'; write --dataset-opt NAME=VALUE (research plugins lists each plugin's "
     "options)"),
    ([*CAVIAR, "--executor-opt", "=2"],
     "cannot read --executor-opt '=2'; write --executor-opt NAME=VALUE (research plugins lists each plugin's options)"),
])
def test_a_key_twice_an_empty_value_or_no_key_is_one_line_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "research.db").exists()


def test_none_is_a_value_and_keys_are_stripped():
    assert parse_pairs([" points_per_axis = none ", "x=a=b"], "--sampler-opt") == {"points_per_axis": "none",
                                                                                "x": "a=b"}
    assert parse_pairs(None, "--opt") == {}
    with pytest.raises(UsageError, match=r"^--opt lr is given twice \(0.1 and 0.1\); give it once$"):
        parse_pairs(["lr=0.1", " lr =0.1"], "--opt")

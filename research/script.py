"""For a training program that the ``command`` trainer runs: read the trial, report each epoch.

research starts the program once per trial (``--command "python train.py"``) and tells it
what to do through environment variables; the program prints one JSON line of metrics per
epoch and waits for research's answer before the next. The whole protocol is in
docs/own-model.md ("Any program"); with this module a Python script needs three lines::

    from research import script

    trial = script.trial(defaults={"lr": 0.01, "epochs": 10})  # the defaults: run by hand
    for epoch in trial.remaining:                   # from the checkpoint's epoch + 1
        ...train one epoch with trial.config["lr"], save into trial.checkpoint_dir...
        if not trial.report(val_acc=acc, val_loss=loss):  # print the line, wait for the answer
            break

It imports nothing but the standard library, so it adds no start-up time to the program.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from research.contracts import is_number, not_a_number
from research.scratch import scratch_folder

CONFIG = "RESEARCH_CONFIG"
"""Path of a JSON file: the trial's configuration (its searched and fixed values, ``seed``)."""
CHECKPOINT_DIR = "RESEARCH_CHECKPOINT_DIR"
"""A folder the program saves its checkpoint into and resumes from when it is not empty."""
START_EPOCH = "RESEARCH_START_EPOCH"
"""The epochs the checkpoint in it holds (0: an empty folder, start from scratch)."""
EPOCHS = "RESEARCH_EPOCHS"
"""The epoch to reach, counted from the trial's start."""
PARAM_PREFIX = "RESEARCH_PARAM_"
"""Each configuration value again, as ``RESEARCH_PARAM_<NAME>`` (see :func:`param_variable`)."""
CONTINUE, STOP = "continue", "stop"
"""research's answers to each line."""


def param_variable(name: str) -> str:
    """The environment variable of configuration value ``name``: upper case, every character
    other than a letter or a digit made ``_`` (``optimizer.eps`` is ``RESEARCH_PARAM_OPTIMIZER_EPS``)."""
    return PARAM_PREFIX + "".join(c if c.isascii() and c.isalnum() else "_" for c in name.upper())


def param_text(value: Any) -> str:
    """A configuration value as its variable holds it: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Trial:
    """One trial as the program sees it. ``driven`` is False when the program runs by hand:
    then the configuration is the defaults and :meth:`report` only prints."""

    config: dict[str, Any]
    checkpoint_dir: Path
    start_epoch: int
    epochs: int
    driven: bool
    output: TextIO = field(default_factory=lambda: sys.stdout, repr=False)  # the streams of the moment
    answers: TextIO = field(default_factory=lambda: sys.stdin, repr=False)
    epoch: int = field(init=False)

    def __post_init__(self) -> None:
        self.epoch = self.start_epoch

    @property
    def remaining(self) -> range:
        """The epochs still to train: from the checkpoint's epoch + 1 to ``epochs``."""
        return range(self.start_epoch + 1, self.epochs + 1)

    def report(self, **metrics: float) -> bool:
        """Print this epoch's metrics as research reads them (one JSON line with ``epoch``) and
        wait for research's answer. True: train the next epoch; False: stop now (the last
        epoch is done, or research ends the trial: a pruned trial, a change to apply).

        Save the checkpoint before calling this: research may copy the folder as soon as it
        reads the line."""
        for name, value in metrics.items():
            if not is_number(value):
                raise TypeError(not_a_number(name, value))
        self.epoch += 1
        line = json.dumps({"epoch": self.epoch, **{k: float(v) for k, v in metrics.items()}})
        print(line, file=self.output, flush=True)
        if not self.driven:
            return self.epoch < self.epochs
        return self.answers.readline().strip() == CONTINUE


def trial(defaults: Mapping[str, Any] | None = None, *, epochs: int = 10) -> Trial:
    """The trial research started this program for; run by hand (no ``RESEARCH_CONFIG``), the
    ``defaults`` with a fresh temporary checkpoint folder, removed when the program exits,
    trained for ``defaults["epochs"]`` (or ``epochs``) epochs."""
    path = os.environ.get(CONFIG)
    if path is None:
        config = dict(defaults or {})
        count = int(config.get("epochs", epochs))
        folder = scratch_folder("research-script-")
        atexit.register(shutil.rmtree, folder, True)
        return Trial(config, folder, 0, count, driven=False)
    with open(path, encoding="utf-8") as handle:
        config = {**(defaults or {}), **json.load(handle)}
    start, count = int(os.environ[START_EPOCH]), int(os.environ[EPOCHS])
    return Trial(config, Path(os.environ[CHECKPOINT_DIR]), start, count, driven=True)


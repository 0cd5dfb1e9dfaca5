"""The vendored digits: 1,797 8x8 handwritten digits of UCI optdigits (CC BY 4.0)."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib import resources

import numpy as np

from research.data.dataset import (
    DEFAULT_TEST_FRACTION,
    Dataset,
    Seed,
    TestFraction,
    ValFraction,
    split_and_standardize,
)
from research.options import checked


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The vendored digits, read once per process (every trial of a study loads them)."""
    with resources.files("research").joinpath("data/digits.npz").open("rb") as file, np.load(file) as archive:
        x, y = archive["X"], archive["y"]
    x.flags.writeable = y.flags.writeable = False  # shared by every call: nobody may change them
    return x, y


@checked("dataset", "digits")
def load_digits(*, seed: Seed = 0, val_fraction: ValFraction = 0.2,
                test_fraction: TestFraction = DEFAULT_TEST_FRACTION) -> Dataset:
    """The 1,797 8x8 handwritten digits of UCI optdigits (CC BY 4.0): 64 features 0..16, 10 classes;
    each sample is a 1x8x8 image (``sample_shape``), rows of 8 pixels top to bottom."""
    x, y = _digits()
    classes = tuple(str(d) for d in range(10))
    rng = np.random.default_rng(seed)
    data = split_and_standardize(x, y.astype(np.int64), val_fraction, rng, "digits", classes, test_fraction)
    return dataclasses.replace(data, sample_shape=(1, 8, 8))

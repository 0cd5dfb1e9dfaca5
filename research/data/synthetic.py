"""Synthetic 2-D (and n-D) sets for quick experiments: spirals, moons and Gaussian blobs."""

from __future__ import annotations

from typing import Annotated

import numpy as np

from research.data.dataset import (
    DEFAULT_TEST_FRACTION,
    Dataset,
    Seed,
    TestFraction,
    ValFraction,
    split_and_standardize,
)
from research.options import Option, OptionError, checked

# Size limits, checked before anything is allocated (docs/datasets.md): a synthetic set is a
# quick experiment, and ten million samples (or a hundred million values, samples x features)
# already take gigabytes once split and standardized in float64.
MAX_SAMPLES = 10_000_000
MAX_VALUES = 100_000_000

Samples = Annotated[int, Option("Number of samples (at least one per class)", min=2)]
Classes = Annotated[int, Option("Number of classes", min=2)]  # at most n_samples
Features = Annotated[int, Option("Number of features", min=1)]
Noise = Annotated[float, Option("Std of the Gaussian noise", min=0.0)]


@checked("dataset", "spirals")
def make_spirals(*, n_samples: Samples = 600, classes: Classes = 3, noise: Noise = 0.2, seed: Seed = 0,
                 val_fraction: ValFraction = 0.2,
                 test_fraction: TestFraction = DEFAULT_TEST_FRACTION) -> Dataset:
    """Interleaved 2-D spirals, one arm per class (the CS231n toy set).

    Arm k: radius r in 0..1, angle t = 4k + 4r + noise * N(0, 1), point (r sin t, r cos t).
    """
    _one_per_class("spirals", n_samples, classes)
    _not_too_large("spirals", n_samples)
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n_samples, classes)
    r = np.concatenate([np.linspace(0.0, 1.0, np.count_nonzero(y == k)) for k in range(classes)])
    t = 4.0 * (y + r) + noise * rng.standard_normal(n_samples)
    x = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return split_and_standardize(x, y, val_fraction, rng, "spirals", range(classes), test_fraction)


@checked("dataset", "moons")
def make_moons(*, n_samples: Samples = 600, noise: Noise = 0.1, seed: Seed = 0,
               val_fraction: ValFraction = 0.2,
               test_fraction: TestFraction = DEFAULT_TEST_FRACTION) -> Dataset:
    """Two interleaving half circles in 2-D, plus Gaussian noise of std `noise`.

    Class 0: (cos t, sin t); class 1: (1 - cos t, 0.5 - sin t); t evenly spaced in [0, pi].
    """
    _not_too_large("moons", n_samples)
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n_samples, 2)
    t = np.concatenate([np.linspace(0.0, np.pi, np.count_nonzero(y == k)) for k in range(2)])
    x = np.column_stack([np.where(y == 0, np.cos(t), 1.0 - np.cos(t)),
                         np.where(y == 0, np.sin(t), 0.5 - np.sin(t))])
    x += noise * rng.standard_normal(x.shape)
    return split_and_standardize(x, y, val_fraction, rng, "moons", range(2), test_fraction)


@checked("dataset", "blobs")
def make_blobs(*, n_samples: Samples = 600, classes: Classes = 3,
               features: Features = 2,
               spread: Annotated[float, Option("Std of each blob", min=0.0)] = 1.0, seed: Seed = 0,
               val_fraction: ValFraction = 0.2,
               test_fraction: TestFraction = DEFAULT_TEST_FRACTION) -> Dataset:
    """Gaussian blobs: class k is center_k + spread * N(0, I), centers uniform in [-10, 10]^features."""
    _one_per_class("blobs", n_samples, classes)
    _not_too_large("blobs", n_samples, features)
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10.0, 10.0, size=(classes, features))
    y = _balanced_labels(n_samples, classes)
    x = centers[y] + spread * rng.standard_normal((n_samples, features))
    return split_and_standardize(x, y, val_fraction, rng, "blobs", range(classes), test_fraction)


def _one_per_class(name: str, n_samples: int, classes: int) -> None:
    """At least one sample per class, or an OptionError in the options' format."""
    if n_samples < classes:
        raise OptionError(f"dataset '{name}': n_samples must be an integer >= classes ({classes}), got {n_samples!r}")


def _not_too_large(name: str, n_samples: int, features: int = 2) -> None:
    """At most MAX_SAMPLES samples and MAX_VALUES values (samples x features), or an
    OptionError in the options' format, before anything is allocated."""
    if n_samples > MAX_SAMPLES:
        raise OptionError(f"dataset '{name}': n_samples must be at most {MAX_SAMPLES:,} (the synthetic sets' "
                          f"limit), got {n_samples!r}")
    if n_samples * features > MAX_VALUES:
        raise OptionError(f"dataset '{name}': n_samples * features must be at most {MAX_VALUES:,} (the synthetic "
                          f"sets' limit), got {n_samples:,} * {features:,}; lower n_samples or features")


def _balanced_labels(n: int, classes: int) -> np.ndarray:
    """(n,) int64 labels, class k repeated n // classes times (the first n % classes classes once more)."""
    counts = [n // classes + (k < n % classes) for k in range(classes)]
    return np.repeat(np.arange(classes, dtype=np.int64), counts)

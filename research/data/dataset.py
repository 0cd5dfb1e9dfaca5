"""What every dataset loader returns: a seeded, stratified train/validation/test split whose
features are standardized with the training statistics only, so nothing about the
validation or test sets leaks into training.

Validation selects (trials, epochs); the held-out test split only reports, for the chosen
ones: a score that took part in the choice is optimistic on small validation sets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from research.errors import UsageError
from research.options import Option, Spec
from research.words import plural

Seed = Annotated[int, Option("Random seed", min=0)]
_FRACTION = Option("Fraction of the samples for validation", above=0.0, below=1.0)
ValFraction = Annotated[float, _FRACTION]
_VAL_FRACTION = Spec("val_fraction", float, option=_FRACTION)
_TEST = Option("Fraction of the samples held out for the test score (0: none)", min=0.0, below=1.0)
TestFraction = Annotated[float, _TEST]
_TEST_FRACTION = Spec("test_fraction", float, option=_TEST)
DEFAULT_TEST_FRACTION = 0.2


class DatasetError(UsageError):
    """A dataset cannot be built from its source; the message is one line: source, problem, fix.
    (Bad option values are research.options.OptionError, as for every plugin.)"""


def error(source, problem: str, fix: str) -> DatasetError:
    """The one-line error ``source: problem; fix``."""
    return DatasetError(f"{source}: {problem}; {fix}")


@dataclass(frozen=True)
class Dataset:
    """A train/validation/test split for classification.

    x_train (n_train, n_features) and x_val (n_val, n_features) are float arrays; y_train (n_train,)
    and y_val (n_val,) are int64 labels in 0..n_classes-1; `classes[k]` is the name of label k.
    `sample_shape` is one sample's shape when its n_features values are more than a flat
    vector (an image: (channels, height, width), in that order); None for tabular data.
    x_test/y_test: the held-out test split (None: the dataset has none). feature_mean and
    feature_scale: how raw features became these, ``(raw - mean) / scale`` (None: they are
    the raw features), so that an exported model can take raw inputs.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: tuple[str, ...]
    sample_shape: tuple[int, ...] | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    feature_mean: np.ndarray | None = None
    feature_scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._check_splits()
        if self.sample_shape is not None and int(np.prod(self.sample_shape)) != self.n_features:
            raise error(self.name, f"sample_shape {self.sample_shape} does not hold {self.n_features} features",
                        "give the shape of one sample, e.g. (1, 8, 8) for 64 pixels")

    def _check_splits(self) -> None:
        """Each split's rows of the training split's features and its labels, one per row, in
        0..n_classes-1: a dataset plugin's narrower validation split failed in the model, named
        as the model's bug, and labels beyond its classes failed naming no dataset."""
        splits = [("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)]
        splits += [("test", self.x_test, self.y_test)] if self.x_test is not None else []
        for split, x, y in splits:
            if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == self.x_train.shape[1]):
                raise error(self.name, f"x_{split} has shape {np.shape(x)}, not (N, {np.shape(self.x_train)[-1]}) "
                            "as x_train", "give every split the same features, one row per sample")
            if not (isinstance(y, np.ndarray) and y.shape == (len(x),) and y.dtype.kind in "iu"):
                raise error(self.name, f"y_{split} has shape {np.shape(y)} and dtype {getattr(y, 'dtype', None)}, "
                            f"not ({len(x)},) integer labels", "give one int64 label per row of its x")
            if y.size and not (0 <= int(y.min()) and int(y.max()) < len(self.classes)):
                raise error(self.name, f"y_{split} holds labels in [{int(y.min())}, {int(y.max())}], beyond its "
                            f"{len(self.classes)} classes", f"labels are 0..{len(self.classes) - 1}, classes[k] the "
                            "name of label k")
        if not len(self.y_train):
            raise error(self.name, "the training split is empty", "give it at least one sample of each class")

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape as models see it: ``sample_shape``, or ``(n_features,)``."""
        return tuple(self.sample_shape) if self.sample_shape is not None else (self.n_features,)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def has_test(self) -> bool:
        return self.x_test is not None and self.y_test is not None and len(self.y_test) > 0

    def astype(self, dtype) -> Dataset:
        """A copy with x_train, x_val and x_test in float `dtype` (float32 for the f32 kernels)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise DatasetError(f"{self.name}: cannot convert features to {dtype}; pass float32 or float64")
        x_test = self.x_test.astype(dtype) if self.x_test is not None else None
        return dataclasses.replace(self, x_train=self.x_train.astype(dtype), x_val=self.x_val.astype(dtype),
                                   x_test=x_test)


def split_and_standardize(x, y, val_fraction, rng: np.random.Generator, name: str, classes,
                          test_fraction: float = DEFAULT_TEST_FRACTION) -> Dataset:
    """Split (x, y) into train, validation and test, stratified by label, then standardize.

    x (n, features) numbers; y (n,) integer labels in 0..len(classes)-1. round(n * test_fraction)
    samples are held out for the test score first, then round(n * val_fraction) go to
    validation (val_fraction in (0, 1), test_fraction in [0, 1), together below 1), each drawn
    evenly across the labels in a random order from `rng`. Features become `(x - mean) / std`
    with the mean and (biased) std of the training rows; a feature constant in training keeps
    std 1. Output x is float64, y int64.
    """
    val_fraction = _VAL_FRACTION.convert(name, val_fraction)
    test_fraction = _TEST_FRACTION.convert(name, test_fraction)
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.names:  # a record array: its fields are the features, but one value a sample to numpy
        raise error(name, f"X is a structured array (fields {', '.join(x.dtype.names)})",
                    "save X as a plain 2-D array, e.g. np.column_stack([X[f] for f in X.dtype.names])")
    if x.ndim != 2:
        raise error(name, f"X has shape {x.shape} but must be 2-D (samples, features)",
                    "reshape it, e.g. X.reshape(len(X), -1)")
    if y.ndim != 1 or len(y) != len(x):
        raise error(name, f"X has {len(x)} samples but y has shape {y.shape}",
                    "give y one label per row of X, shape (samples,)")
    if x.dtype.kind not in "biuf":
        raise error(name, f"X has dtype {x.dtype}", "features must be numbers")
    with np.errstate(over="ignore"):  # a longdouble beyond float64 becomes inf, refused below
        x = x.astype(np.float64)
    unusable = ~np.isfinite(x)
    if unusable.any():
        sample, feature = (int(i) for i in np.argwhere(unusable)[0])
        samples = plural(int(unusable.any(axis=1).sum()), "sample")
        raise error(name, f"X holds NaN or infinity in {samples} (the first: sample {sample}, feature {feature}), "
                          "or values beyond float64",
                    "remove or fill those values")
    if val_fraction + test_fraction >= 1:
        raise error(name, f"val_fraction={val_fraction} and test_fraction={test_fraction} leave no samples to "
                          "train on", "keep their sum below 1")
    n = len(y)
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    if n_val < 1 or n - n_val - n_test < 2:
        are = "is" if n == 1 else "are"
        raise error(name, f"{plural(n, 'sample')} {are} too few to split with val_fraction={val_fraction} and "
                          f"test_fraction={test_fraction}",
                    "give at least 1 validation and 2 training samples (lower the fractions or add samples)")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= len(classes):
        raise error(name, f"labels must be integers 0..{len(classes) - 1}", "encode each class as its index")
    present = np.unique(y)
    if len(present) < 2:
        raise error(name, f"only {len(present)} class in the labels",
                    "a classifier needs samples of at least 2 classes")

    # Random order, then grouped by label (stable, so random within a label): every (n / k)-th
    # sample of that grouping goes to a split of k samples, which gives each label its share.
    order = rng.permutation(n)
    grouped = order[np.argsort(y[order], kind="stable")]
    test = _evenly(grouped, n_test)
    rest = grouped[~np.isin(grouped, test)]
    val = _evenly(rest, n_val)
    held = np.zeros(n, dtype=bool)
    held[test] = held[val] = True
    train = order[~held[order]]
    val, test = order[np.isin(order, val)], order[np.isin(order, test)]  # in the random order
    if len(np.unique(y[train])) < 2:  # a handful of samples: the held-out splits took a whole class
        raise error(name, f"{n} samples leave the training split {len(train)}, all of one class, once validation "
                          "and test take theirs", "give more samples of each class, or lower val_fraction/test_fraction")

    with np.errstate(over="ignore", invalid="ignore"):
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):  # silently, every feature would become 0
        raise error(name, "X's values are too large to standardize (their spread overflows a double)",
                    "rescale X, e.g. divide it by its largest absolute value")
    std[std == 0] = 1.0
    x = (x - mean) / std
    y = y.astype(np.int64)
    return Dataset(name, x[train], y[train], x[val], y[val], tuple(str(c) for c in classes),
                   x_test=x[test] if n_test else None, y_test=y[test] if n_test else None,
                   feature_mean=mean, feature_scale=std)


def _evenly(grouped: np.ndarray, k: int) -> np.ndarray:
    """k of the label-grouped indices, evenly spaced (so each label gets its share)."""
    n = len(grouped)
    return grouped[np.arange(k) * n // k] if k else grouped[:0]

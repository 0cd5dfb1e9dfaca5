"""Datasets for classifiers: the vendored digits, synthetic 2-D sets and the user's .npz/.csv files.

Every loader returns a `Dataset`: a seeded train/validation split whose features are standardized with
the training statistics only, so nothing about the validation set leaks into training.
Options may arrive as command-line strings (`--dataset-opt noise=0.3`); each loader coerces them and
raises `DatasetError`, a one-line message naming the source, the problem and the fix.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A dataset cannot be built; the message is one line: source, problem, fix."""


@dataclass(frozen=True)
class Dataset:
    """A train/validation split for classification.

    x_train (n_train, n_features) and x_val (n_val, n_features) are float arrays; y_train (n_train,)
    and y_val (n_val,) are int64 labels in 0..n_classes-1; `classes[k]` is the name of label k.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def astype(self, dtype) -> Dataset:
        """A copy with x_train and x_val in float `dtype` (float32 for the f32 kernels)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise DatasetError(f"{self.name}: cannot convert features to {dtype}; pass float32 or float64")
        return dataclasses.replace(self, x_train=self.x_train.astype(dtype), x_val=self.x_val.astype(dtype))


def split_and_standardize(x, y, val_fraction, rng: np.random.Generator, name: str, classes) -> Dataset:
    """Split (x, y) into train and validation, stratified by label, then standardize.

    x (n, features) numbers; y (n,) integer labels in 0..len(classes)-1. round(n * val_fraction)
    samples go to validation, drawn evenly across the labels in a random order from `rng`.
    Features become `(x - mean) / std` with the mean and (biased) std of the training rows; a
    feature constant in training keeps std 1. Output x is float64, y int64.
    """
    val_fraction = _fraction(val_fraction)
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2:
        raise _error(name, f"X has shape {x.shape} but must be 2-D (samples, features)",
                     "reshape it, e.g. X.reshape(len(X), -1)")
    if y.ndim != 1 or len(y) != len(x):
        raise _error(name, f"X has {len(x)} samples but y has shape {y.shape}",
                     "give y one label per row of X, shape (samples,)")
    if x.dtype.kind not in "biuf":
        raise _error(name, f"X has dtype {x.dtype}", "features must be numbers")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise _error(name, "X contains NaN or inf", "remove or fill those values")
    n = len(y)
    n_val = round(n * val_fraction)
    if n_val < 1 or n - n_val < 2:
        raise _error(name, f"{n} samples are too few to split with val_fraction={val_fraction}",
                     "give at least 1 validation and 2 training samples")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= len(classes):
        raise _error(name, f"labels must be integers 0..{len(classes) - 1}", "encode each class as its index")
    present = np.unique(y)
    if len(present) < 2:
        raise _error(name, f"only {len(present)} class in the labels",
                     "a classifier needs samples of at least 2 classes")

    # Random order, then grouped by label (stable, so random within a label); every (n / n_val)-th
    # sample of that grouping goes to validation, which gives each label its share of the split.
    order = rng.permutation(n)
    grouped = order[np.argsort(y[order], kind="stable")]
    is_val = np.zeros(n, dtype=bool)
    is_val[grouped[np.arange(n_val) * n // n_val]] = True
    train, val = order[~is_val[order]], order[is_val[order]]

    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0
    x = (x - mean) / std
    y = y.astype(np.int64)
    return Dataset(name, x[train], y[train], x[val], y[val], tuple(str(c) for c in classes))


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The vendored digits, read once per process (every trial of a study loads them)."""
    with resources.files("research").joinpath("data/digits.npz").open("rb") as file, np.load(file) as archive:
        x, y = archive["X"], archive["y"]
    x.flags.writeable = y.flags.writeable = False  # shared by every call: nobody may change them
    return x, y


def load_digits(seed=0, val_fraction=0.2) -> Dataset:
    """The 1,797 8x8 handwritten digits of UCI optdigits (CC BY 4.0): 64 features 0..16, 10 classes."""
    seed = _integer("seed", seed, 0)
    x, y = _digits()
    classes = tuple(str(d) for d in range(10))
    rng = np.random.default_rng(seed)
    return split_and_standardize(x, y.astype(np.int64), val_fraction, rng, "digits", classes)


def make_spirals(n_samples=600, classes=3, noise=0.2, seed=0, val_fraction=0.2) -> Dataset:
    """Interleaved 2-D spirals, one arm per class (the CS231n toy set).

    Arm k: radius r in 0..1, angle t = 4k + 4r + noise * N(0, 1), point (r sin t, r cos t).
    """
    classes = _integer("classes", classes, 2)
    n_samples = _integer("n_samples", n_samples, classes)
    noise, seed = _real("noise", noise, 0.0), _integer("seed", seed, 0)
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n_samples, classes)
    r = np.concatenate([np.linspace(0.0, 1.0, np.count_nonzero(y == k)) for k in range(classes)])
    t = 4.0 * (y + r) + noise * rng.standard_normal(n_samples)
    x = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return split_and_standardize(x, y, val_fraction, rng, "spirals", range(classes))


def make_moons(n_samples=600, noise=0.1, seed=0, val_fraction=0.2) -> Dataset:
    """Two interleaving half circles in 2-D, plus Gaussian noise of std `noise`.

    Class 0: (cos t, sin t); class 1: (1 - cos t, 0.5 - sin t); t evenly spaced in [0, pi].
    """
    n_samples, noise = _integer("n_samples", n_samples, 2), _real("noise", noise, 0.0)
    seed = _integer("seed", seed, 0)
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n_samples, 2)
    t = np.concatenate([np.linspace(0.0, np.pi, np.count_nonzero(y == k)) for k in range(2)])
    x = np.column_stack([np.where(y == 0, np.cos(t), 1.0 - np.cos(t)),
                         np.where(y == 0, np.sin(t), 0.5 - np.sin(t))])
    x += noise * rng.standard_normal(x.shape)
    return split_and_standardize(x, y, val_fraction, rng, "moons", range(2))


def make_blobs(n_samples=600, classes=3, features=2, spread=1.0, seed=0, val_fraction=0.2) -> Dataset:
    """Gaussian blobs: class k is center_k + spread * N(0, I), centers uniform in [-10, 10]^features."""
    classes = _integer("classes", classes, 2)
    n_samples = _integer("n_samples", n_samples, classes)
    features, spread = _integer("features", features, 1), _real("spread", spread, 0.0)
    rng = np.random.default_rng(_integer("seed", seed, 0))
    centers = rng.uniform(-10.0, 10.0, size=(classes, features))
    y = _balanced_labels(n_samples, classes)
    x = centers[y] + spread * rng.standard_normal((n_samples, features))
    return split_and_standardize(x, y, val_fraction, rng, "blobs", range(classes))


def load_npz(path=None, seed=0, val_fraction=0.2) -> Dataset:
    """A user's .npz archive with arrays X (samples, features) and y (samples,) of integer labels.

    Labels are renumbered 0..k-1 in sorted order; their original values become the class names.
    """
    path = _existing_file(path, "npz", "data.npz")
    seed = _integer("seed", seed, 0)
    x, y = _read_npz(path)
    if y.ndim != 1:
        raise _error(path, f"y has shape {y.shape} but must be 1-D (samples,)",
                     "save y with one label per row of X")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise _error(path, "y contains NaN or inf", "give every sample an integer label")
        if (y != np.round(y)).any():
            raise _error(path, "labels are not integers (y has fractional values)", _ENCODE_LABELS)
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise _error(path, f"labels are not integers (y has dtype {y.dtype})", _ENCODE_LABELS)
    values, codes = np.unique(y, return_inverse=True)
    return split_and_standardize(x, codes, val_fraction, np.random.default_rng(seed), str(path), values)


_SAVEZ = "save it with np.savez(path, X=X, y=y)"
_ENCODE_LABELS = "encode each class as an integer, e.g. np.unique(labels, return_inverse=True)[1]"
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X and y of an .npz archive, without ever unpickling."""
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS:
        raise _error(path, "is not a readable .npz archive", _SAVEZ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _error(path, "is a single .npy array, not an .npz archive", _SAVEZ)
    with archive:
        missing = [key for key in ("X", "y") if key not in archive.files]
        if missing:
            have = ", ".join(archive.files) or "none"
            raise _error(path, f"has no array {' or '.join(missing)} (it has: {have})", _SAVEZ)
        try:
            return archive["X"], archive["y"]
        except _READ_ERRORS:
            raise _error(path, "is corrupt or holds object arrays", _SAVEZ + " from numeric arrays") from None


def load_csv(path=None, label="label", seed=0, val_fraction=0.2) -> Dataset:
    """A user's .csv file: a header row, the `label` column, every other column a numeric feature.

    Labels that are all whole numbers sort numerically; otherwise they are names, sorted as text.
    Class k is the k-th label in that order. Blank lines are skipped.
    """
    path = _existing_file(path, "csv", "data.csv")
    seed = _integer("seed", seed, 0)
    header, rows = _read_csv(path)
    if label not in header:
        raise _error(path, f"has no label column {label!r} (columns: {', '.join(map(repr, header))})",
                     "pass label=NAME with one of those columns")
    if len(header) < 2:
        raise _error(path, "has no feature columns", "add numeric feature columns beside the label")
    at = header.index(label)
    features, labels = [], []
    for line, row in rows:
        if len(row) != len(header):
            raise _error(path, f"line {line} has {len(row)} fields but the header has {len(header)}",
                         "give every row one value per column")
        for column, field in enumerate(row):
            if column != at:
                try:
                    features.append(float(field))
                except ValueError:
                    where = f"line {line}, column {header[column]!r}"
                    raise _error(path, f"{where}: {field.strip()!r} is not a number",
                                 "features must be numeric; fill or remove that value") from None
        labels.append(row[at].strip())
    x = np.array(features, dtype=np.float64).reshape(len(labels), len(header) - 1)
    codes, classes = _csv_labels(labels, path)
    return split_and_standardize(x, codes, val_fraction, np.random.default_rng(seed), str(path), classes)


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The stripped header and the (line number, fields) of every non-blank row after it."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            for row in reader:
                if any(field.strip() for field in row):
                    rows.append((reader.line_num, row))
    except UnicodeDecodeError:
        raise _error(path, "is not UTF-8 text", "save it as a UTF-8 .csv file") from None
    except csv.Error as err:
        problem = f"is not valid CSV ({_first_line(err)})"
        raise _error(path, problem, "save it as comma-separated values") from None
    if not rows:
        raise _error(path, "is empty", "the first row must name the columns, e.g. x1,x2,label")
    return [name.strip() for name in rows[0][1]], rows[1:]


def _csv_labels(labels: list[str], path) -> tuple[np.ndarray, list[str]]:
    """Encode CSV labels: whole numbers sort numerically, anything else sorts as text."""
    if any(not text for text in labels):
        raise _error(path, "a row has an empty label", "give every row a label")
    try:
        numbers = np.array([float(text) for text in labels])
    except ValueError:
        values, codes = np.unique(np.array(labels), return_inverse=True)
        return codes, [str(v) for v in values]
    if not np.isfinite(numbers).all() or (numbers != np.round(numbers)).any():
        raise _error(path, "numeric labels are not all integers", "encode each class as an integer or a name")
    values, codes = np.unique(numbers.astype(np.int64), return_inverse=True)
    return codes, [str(v) for v in values]


def _balanced_labels(n: int, classes: int) -> np.ndarray:
    """(n,) int64 labels, class k repeated n // classes times (the first n % classes classes once more)."""
    counts = [n // classes + (k < n % classes) for k in range(classes)]
    return np.repeat(np.arange(classes, dtype=np.int64), counts)


def _existing_file(path, kind: str, example: str) -> Path:
    if path is None or path == "":
        raise DatasetError(f"the {kind} dataset needs a file; pass path=FILE (--dataset-opt path={example})")
    path = Path(os.fspath(path))
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "no such file"
        raise _error(path, problem, f"pass path=FILE naming an existing .{kind} file")
    return path


def _integer(name: str, value, minimum: int) -> int:
    """An integer option >= minimum, from an int or a string like '600' or '1e3'."""
    number = _number(name, value, "an integer, e.g. 600")
    if number != int(number):
        raise DatasetError(f"dataset option {name}={value!r} is not a whole number; pass an integer")
    if number < minimum:
        raise DatasetError(f"dataset option {name}={value!r} is below {minimum}; pass {name} >= {minimum}")
    return int(number)


def _real(name: str, value, minimum: float) -> float:
    """A float option >= minimum, from a number or a string like '0.2'."""
    number = _number(name, value, "a number, e.g. 0.2")
    if number < minimum:
        raise DatasetError(f"dataset option {name}={value!r} is below {minimum}; pass a number >= {minimum}")
    return float(number)


def _fraction(value) -> float:
    number = _number("val_fraction", value, "a number, e.g. 0.2")
    if not 0.0 < number < 1.0:
        raise DatasetError(f"dataset option val_fraction={value!r} is outside (0, 1); pass e.g. 0.2")
    return float(number)


def _number(name: str, value, expected: str):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise DatasetError(f"dataset option {name}={value!r} is not a number; pass {expected}")
    return number


def _error(source, problem: str, fix: str) -> DatasetError:
    return DatasetError(f"{source}: {problem}; {fix}")


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

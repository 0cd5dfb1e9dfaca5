"""A trained model as one file, and the model it restores.

``research export-model`` writes the kept state of a trial's best epoch as a model file: the
model plugin's arrays, what rebuilds it (its name, options, input shape, classes, dtype) and
how raw inputs became the features it was trained on (the training split's mean and scale).
:func:`load_model` restores it, so predictions on raw inputs are right without the dataset or
the store. The file is an .npz without pickle, like a checkpoint (research.nn.checkpoint).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from research.errors import UsageError
from research.nn import checkpoint
from research.plugins import load_plugins

RECORD = "research_model"
"""The file's JSON record: model, options, input_shape, classes, dtype, and where it came from."""
MODEL_PREFIX = "model."
MEAN, SCALE = "feature_mean", "feature_scale"


def model_arrays(model: str, options: Mapping[str, Any], input_shape: tuple[int, ...], classes: Iterable[str],
                 dtype: str, state: Mapping[str, np.ndarray], feature_mean: np.ndarray | None,
                 feature_scale: np.ndarray | None, source: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """What a model file holds, as arrays (``checkpoint.save`` writes them)."""
    record = {"model": model, "options": dict(options), "input_shape": list(input_shape), "classes": list(classes),
              "dtype": dtype, "source": dict(source)}
    arrays = {RECORD: checkpoint.pack_json(record)}
    arrays |= {MODEL_PREFIX + name: np.asarray(value) for name, value in state.items()}
    if feature_mean is not None and feature_scale is not None:
        arrays[MEAN], arrays[SCALE] = np.asarray(feature_mean, np.float64), np.asarray(feature_scale, np.float64)
    return arrays


class ExportedModel:
    """A model restored from its file: ``predict`` takes raw inputs (standardized here the
    way its training data were) and gives class indices, ``classes[k]`` names class k."""

    def __init__(self, model: Any, record: Mapping[str, Any], mean: np.ndarray | None, scale: np.ndarray | None):
        self.model = model
        self.name: str = record["model"]
        self.classes: tuple[str, ...] = tuple(record["classes"])
        self.input_shape: tuple[int, ...] = tuple(record["input_shape"])
        self.source: dict[str, Any] = dict(record.get("source") or {})
        self.dtype = np.dtype(record["dtype"])
        self.mean, self.scale = mean, scale

    def __repr__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.source.items() if k in ("study", "trial", "epoch"))
        return f"ExportedModel({self.model!r}, classes={len(self.classes)}{', ' + where if where else ''})"

    def features(self, x: Any) -> np.ndarray:
        """Raw inputs, (N, *input_shape) or (N, n_features), as the model's rows of features."""
        x = np.asarray(x)
        n_features = int(np.prod(self.input_shape))
        if x.ndim < 2 or (x.shape[1:] != (n_features,) and _without_ones(x.shape[1:]) != _without_ones(self.input_shape)):
            sample_shapes = dict.fromkeys([(n_features,), tuple(self.input_shape), _without_ones(self.input_shape)])
            *head, last = [f"(N, {', '.join(map(str, shape))})" for shape in sample_shapes if shape]
            one = "; one sample is x[None]" if x.shape in sample_shapes else ""
            raise ValueError(f"inputs must be {', '.join(head) + ' or ' if head else ''}{last}, got shape {x.shape}"
                             f"{one}; pass raw samples like the training data")
        if x.dtype.kind not in "biuf":
            raise TypeError(f"inputs must be numbers, got dtype {x.dtype}")
        rows = x.reshape(len(x), n_features).astype(np.float64)
        unusable = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if unusable.size:
            shown = ", ".join(map(str, unusable[:5])) + (", ..." if unusable.size > 5 else "")
            raise ValueError(f"inputs hold NaN or infinity in {unusable.size} of {len(rows)} rows ({shown}); "
                             "the model has no answer for them: drop or fill them first")
        if self.mean is not None and self.scale is not None:
            rows = (rows - self.mean) / self.scale
        with np.errstate(over="ignore", invalid="ignore"):  # said below, by row
            converted = np.ascontiguousarray(rows, dtype=self.dtype)
        beyond = np.flatnonzero(~np.isfinite(converted).all(axis=1)) if converted.dtype != rows.dtype else []
        if len(beyond):
            raise ValueError(f"inputs in {len(beyond)} of {len(rows)} rows ({', '.join(map(str, beyond[:5]))}) are "
                             f"beyond what the model's {self.dtype} holds, once standardized: they would be "
                             "infinity; check their units against the training data")
        return converted

    def logits(self, x: Any) -> np.ndarray:
        """Eval-mode logits (N, n_classes) of raw inputs (none for none)."""
        if not callable(getattr(self.model, "logits", None)):
            raise UsageError(f"model '{self.name}' has no logits(x), so it cannot predict (it can evaluate); "
                             "add logits to the model plugin and export the model again")
        rows = self.features(x)
        if not len(rows):
            return np.empty((0, len(self.classes)), self.dtype)
        return self._checked(self.model.logits(rows), len(rows))

    def _checked(self, z: Any, n: int) -> np.ndarray:
        """The plugin's logits, refused unless one row of finite-or-infinite class scores per
        input: a transposed or clipped array, or NaN, gave predictions without a word."""
        want = (n, len(self.classes))
        if not isinstance(z, np.ndarray) or z.shape != want or z.dtype.kind != "f":
            got = f"shape {z.shape}, dtype {z.dtype}" if isinstance(z, np.ndarray) else type(z).__name__
            raise UsageError(f"model '{self.name}': logits(x) returned {got}, not {want} float class scores (a row "
                             "per input, a column per class); fix the model plugin's logits")
        nan = np.flatnonzero(np.isnan(z).any(axis=1))
        if nan.size:
            shown = ", ".join(map(str, nan[:5])) + (", ..." if nan.size > 5 else "")
            raise UsageError(f"model '{self.name}': logits(x) holds NaN in {nan.size} of {n} rows ({shown}), "
                             "which have no class; check the model plugin's logits")
        return z

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities (N, n_classes), the softmax of the logits."""
        z = self.logits(x).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, x: Any) -> np.ndarray:
        """The most likely class index (N,) of each raw input: ``classes[i]`` is its name."""
        return np.argmax(self.logits(x), axis=1)

    def evaluate(self, x: Any, y: Any) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on raw inputs with class indices ``y``, checked here:
        a cast would truncate 1.5 to class 1 and take True for class 1."""
        rows, y, k = self.features(x), np.asarray(y), len(self.classes)
        if y.dtype.kind not in "iu":
            raise TypeError(f"y must be class indices, integers in [0, {k}) (classes[i] names class i), "
                            f"got dtype {y.dtype}")
        if y.shape != (len(rows),):
            raise ValueError(f"y must have shape ({len(rows)},), one class index per input, got {y.shape}")
        if y.size and not (int(y.min()) >= 0 and int(y.max()) < k):
            raise ValueError(f"y must be class indices in [0, {k}), got values in [{int(y.min())}, {int(y.max())}]")
        return self.model.evaluate(rows, y.astype(np.int64))


def _without_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape without its axes of size 1: (8, 8) samples fit a (1, 8, 8) model."""
    return tuple(size for size in shape if size != 1)


def load_model(path: str | os.PathLike, *, plugins: Iterable[ModuleType | object] = ()) -> ExportedModel:
    """The model in the file at ``path`` (written by ``research export-model``), rebuilt with
    its model plugin (installed, or among ``plugins``) and its trained arrays."""
    try:
        arrays = checkpoint.load(path)
    except checkpoint.CheckpointProblem as problem:  # it speaks of a checkpoint
        raise checkpoint.CheckpointError(f"model file {checkpoint.shown(path)} {problem.reason}") from None
    if RECORD not in arrays:
        raise checkpoint.CheckpointError(f"{path} is not a model file (it has no '{RECORD}'); "
                                         "write one with `research export-model STUDY -o FILE`")
    record = checkpoint.unpack_json(arrays[RECORD])
    loaded = load_plugins(plugins)
    loaded.require({"model": record["model"]}, f"the model file {path}")
    model = loaded.build("models", record["model"], tuple(record["input_shape"]), len(record["classes"]),
                         dtype=np.dtype(record["dtype"]), rng=np.random.default_rng(0), **record["options"])
    try:
        model.load_state({k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)})
    except (KeyError, ValueError) as err:
        raise checkpoint.CheckpointError(f"{path} does not fit model '{record['model']}' as installed "
                                         f"({str(err).splitlines()[0]}); use the research and plugins that wrote it") from None
    return ExportedModel(model, record, arrays.get(MEAN), arrays.get(SCALE))


def write_model(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write a model file atomically; returns its path."""
    checkpoint.save(path, dict(arrays))
    return Path(path)

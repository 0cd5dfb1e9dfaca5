"""The user's own data: an .npz archive with arrays X and y, or a .csv file with a label column."""

from __future__ import annotations

import csv
import dataclasses
import decimal
import math
import os
import shlex
import zipfile
import zlib
from pathlib import Path
from typing import Annotated

import numpy as np

from research.data.dataset import (
    DEFAULT_TEST_FRACTION,
    Dataset,
    DatasetError,
    Seed,
    TestFraction,
    ValFraction,
    error,
    split_and_standardize,
)
from research.errors import unencodable_name, unreadable
from research.options import Option, checked
from research.words import joined

_SAVEZ = "save it with np.savez(path, X=X, y=y)"
_ENCODE_LABELS = "encode each class as an integer, e.g. np.unique(labels, return_inverse=True)[1]"
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


@checked("dataset", "npz")
def load_npz(path: Annotated[str | os.PathLike[str], Option("The .npz file", path=True)], *,
             seed: Seed = 0, val_fraction: ValFraction = 0.2,
             test_fraction: TestFraction = DEFAULT_TEST_FRACTION) -> Dataset:
    """A user's .npz archive with arrays X (samples, features) or (samples, C, H, W) (any
    sample shape: it is kept as ``sample_shape``) and y (samples,) of integer labels.

    Labels are renumbered 0..k-1 in sorted order; their original values become the class names.
    """
    path = _existing_file(path, "npz", "data.npz")
    x, y = _read_npz(path)
    if y.ndim != 1:
        raise error(path, f"y has shape {y.shape} but must be 1-D (samples,)",
                    "save y with one label per row of X")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise error(path, "y contains NaN or inf", "give every sample an integer label")
        if (y != np.round(y)).any():
            raise error(path, "labels are not integers (y has fractional values)", _ENCODE_LABELS)
    elif y.dtype.kind not in "iu":
        raise error(path, f"labels are not integers (y has dtype {y.dtype})", _ENCODE_LABELS)
    # Classes are the distinct values of y as stored: whole floats are never cast to int64 (which
    # wraps beyond 2**63 and would merge distinct labels); their names are their exact integers.
    values, codes = np.unique(y, return_inverse=True)
    names = [str(int(v)) for v in values.tolist()]
    if x.ndim >= 2 and math.prod(x.shape[1:]) == 0:
        raise error(path, f"X has shape {x.shape}: no features", "give every sample at least one feature")
    sample_shape = tuple(int(n) for n in x.shape[1:]) if x.ndim > 2 else None
    if sample_shape is not None:  # images (N, C, H, W) or any N-D samples: rows of values, shape kept
        x = x.reshape(len(x), math.prod(sample_shape))  # not -1: numpy cannot infer it for 0 samples
    data = split_and_standardize(x, codes.reshape(-1), val_fraction, np.random.default_rng(seed), str(path), names,
                                 test_fraction)
    return dataclasses.replace(data, sample_shape=sample_shape)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X and y of an .npz archive, without ever unpickling."""
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as err:
        if err.errno is not None:  # the system's refusal (no permission), not the archive's format
            raise DatasetError(f"{path}: {unreadable(err)}") from None
        raise _not_npz(path) from None
    except _READ_ERRORS:
        raise _not_npz(path) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise error(path, "is a single .npy array, not an .npz archive", _SAVEZ)
    with archive:
        missing = [key for key in ("X", "y") if key not in archive.files]
        if missing:
            have = ", ".join(archive.files) or "none"
            raise error(path, f"has no array {' or '.join(missing)} (it has: {have})", _SAVEZ)
        try:
            x, y = archive["X"], archive["y"]
        except _READ_ERRORS:
            raise error(path, "is corrupt or holds object arrays", _SAVEZ + " from numeric arrays") from None
    # numpy hands back the raw bytes of a member that is not an .npy array.
    raw = [key for key, value in (("X", x), ("y", y)) if not isinstance(value, np.ndarray)]
    if raw:
        what = "is not an .npy array" if len(raw) == 1 else "are not .npy arrays"
        raise error(path, f"is corrupt: its {' and '.join(raw)} {what}", _SAVEZ)
    return x, y


def _not_npz(path: Path) -> DatasetError:
    """The error for a file np.load cannot read; a .csv file is said to be one, with how to train on it."""
    if _csv_text(path):
        return error(path, "is csv text, not an .npz archive", f"load it as the csv dataset ({_flags('csv', path)})")
    return error(path, "is not a readable .npz archive", _SAVEZ)


@checked("dataset", "csv")
def load_csv(path: Annotated[str | os.PathLike[str], Option("The .csv file", path=True)], *,
             label: Annotated[str, Option("Name of the label column")] = "label", seed: Seed = 0,
             val_fraction: ValFraction = 0.2,
             test_fraction: TestFraction = DEFAULT_TEST_FRACTION) -> Dataset:
    """A user's .csv file: a header row, the `label` column, every other column a numeric feature.

    Labels that are all whole numbers sort numerically; otherwise they are names, sorted as text.
    Class k is the k-th label in that order. Blank lines are skipped.
    """
    path = _existing_file(path, "csv", "data.csv")
    header, rows = _read_csv(path)
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise error(path, f"the header names {joined(map(repr, twice))} more than once "
                          f"(columns: {', '.join(map(repr, header))})",
                    "give every column a distinct name")
    unnamed = [k + 1 for k, name in enumerate(header) if not name.strip()]
    if unnamed:
        raise error(path, f"header column {unnamed[0]} has no name (columns: {', '.join(map(repr, header))})",
                    "give every column its own name")
    if label not in header:
        other = next((mark for mark in (";", "\t", "|") if len(header) == 1 and mark in header[0]), None)
        if other is not None:
            raise error(path, f"separates its values with {other!r}, not commas (header: {header[0]!r})",
                        "save it with commas between values")
        raise error(path, f"has no label column {label!r} (columns: {', '.join(map(repr, header))})",
                    "pass label=NAME with one of those columns")
    if len(header) < 2:
        raise error(path, "has no feature columns", "add numeric feature columns beside the label")
    at = header.index(label)
    features, labels, lines = [], [], []
    for line, row in rows:
        if len(row) != len(header):
            raise error(path, f"line {line} has {len(row)} fields but the header has {len(header)}",
                        "give every row one value per column")
        for column, field in enumerate(row):
            if column != at:
                try:
                    value = float(field) if _written_number(field) else None
                except ValueError:
                    value = None
                if value is None or not math.isfinite(value):  # nan, inf, or 1e400 (inf once read)
                    what = "is not a number" if value is None else "is not a finite number"
                    raise error(path, f"line {line}, column {header[column]!r}: {field.strip()!r} {what}",
                                "features must be finite numbers; fill or remove that value")
                features.append(value)
        labels.append(row[at].strip())
        lines.append(line)
    x = np.array(features, dtype=np.float64).reshape(len(labels), len(header) - 1)
    codes, classes = _csv_labels(labels, lines, header[at], path)
    return split_and_standardize(x, codes, val_fraction, np.random.default_rng(seed), str(path), classes, test_fraction)


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The stripped header and the (line number, fields) of every non-blank row after it.

    Strict: a quote opened and never closed was one field holding every line after it (a
    label of all the rest of the file, trained on in silence). A line of only commas is a row
    of empty values, refused as such, not a blank line."""
    rows = []
    start = 1
    try:
        if _npz_archive(path):  # its bytes may even decode as UTF-8, and read as a header of garbage
            raise error(path, "is an .npz archive, not csv text", f"load it as the npz dataset ({_flags('npz', path)})")
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, strict=True)
            for row in reader:
                if len(row) > 1 or (row and row[0].strip()):
                    rows.append((reader.line_num, row))
                start = reader.line_num + 1
    except UnicodeDecodeError:
        hint = " (it is compressed with gzip: decompress it first)" if _gzipped(path) else ""
        raise error(path, f"is not UTF-8 text{hint}", "save it as a UTF-8 .csv file") from None
    except csv.Error as err:
        detail = _first_line(err) + (": a quote opened there is never closed" if "end of data" in str(err) else "")
        raise error(path, f"is not valid CSV (line {start}: {detail})", "save it as comma-separated values") from None
    except OSError as err:
        raise DatasetError(f"{path}: {unreadable(err)}") from None
    if not rows:
        raise error(path, "is empty", "the first row must name the columns, e.g. x1,x2,label")
    return [name.strip() for name in rows[0][1]], rows[1:]


def _csv_labels(labels: list[str], lines: list[int], column: str, path) -> tuple[np.ndarray, list[str]]:
    """Encode CSV labels exactly: if every label is a whole number (``3``, ``10.0``, ``1e3``,
    any number of digits) they are classes by integer value, sorted numerically; otherwise
    each distinct text is a class, sorted as text. Never through a float, so labels that a
    float would round together (``99999999999999999999`` and ``99999999999999999998``) stay
    apart. Errors name the line (``lines``: each label's) and the label ``column``."""
    empty = next((line for line, text in zip(lines, labels) if not text), None)
    if empty is not None:
        raise error(path, f"line {empty}, column {column!r}: the label is empty", "give every row a label")
    integers = _whole_numbers(labels, lines, column, path)
    keys: list = integers if integers is not None else labels
    values = sorted(set(keys))
    index = {value: k for k, value in enumerate(values)}
    codes = np.fromiter((index[key] for key in keys), dtype=np.int64, count=len(keys))
    return codes, [str(v) for v in values]


_MAX_LABEL_DIGITS = 1000  # a whole-number label with more digits is refused (int() of 1e999999999 never ends)


def _whole_numbers(labels: list[str], lines: list[int], column: str, path) -> list[int] | None:
    """The labels as exact integers, None when one is not a number (they are names then); a
    DatasetError when they are numbers but not all whole."""
    numbers = []
    for text in labels:
        if not _written_number(text):
            return None
        try:
            numbers.append(decimal.Decimal(text))
        except decimal.InvalidOperation:
            return None
    for line, text, n in zip(lines, labels, numbers):
        if not (n.is_finite() and n == n.to_integral_value()):
            raise error(path, f"line {line}, column {column!r}: label {text!r} is not an integer (numeric labels "
                        "must all be integers)", "encode each class as an integer or a name")
        if n.adjusted() >= _MAX_LABEL_DIGITS:
            raise error(path, f"line {line}, column {column!r}: the label has more than {_MAX_LABEL_DIGITS} digits",
                        "encode each class as a shorter integer or a name")
    return [int(n) for n in numbers]


def _written_number(text: str) -> bool:
    """Whether text may be a number as files write them: Python would also read ``1_000`` and
    other scripts' digits (``١``), which would merge the labels ``1_000`` and ``1000``."""
    return text.isascii() and "_" not in text



def _existing_file(path, kind: str, example: str) -> Path:
    """``path`` as an existing file, or a DatasetError saying what to pass."""
    if path is None or path == "":
        raise DatasetError(f"the {kind} dataset needs a file; pass path=FILE (--dataset-opt path={example})")
    path = Path(os.fspath(path))
    try:
        os.fsencode(path)  # else is_file() says False, and the file would be "no such file"
    except UnicodeEncodeError as err:
        raise DatasetError(unencodable_name(err, "read")) from None
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "no such file"
        raise error(path, problem, f"pass path=FILE naming an existing .{kind} file (a stored study reads the "
                                   "file it was created with: put it back there)")
    return path


def _flags(kind: str, path: Path) -> str:
    """The command line's flags that load ``path`` as the ``kind`` dataset."""
    return f"--dataset {kind} --dataset-opt {shlex.quote(f'path={path}')}"


def _npz_archive(path: Path) -> bool:
    """Whether ``path`` is a zip of .npy arrays, as np.savez writes (a zipped .csv is not)."""
    with open(path, "rb") as file:
        if file.read(4) != b"PK\x03\x04":
            return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except _READ_ERRORS:
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def _csv_text(path: Path) -> bool:
    """Whether ``path`` starts as a .csv file does: a first line of UTF-8 text with a comma."""
    with open(path, "rb") as file:
        first = file.read(65536).lstrip().split(b"\n", 1)[0]
    try:
        first.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"," in first


def _gzipped(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(2) == b"\x1f\x8b"


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

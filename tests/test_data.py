"""Datasets: the vendored digits, the synthetic sets, user files, and every one-line error."""

import gzip
import re
import shlex
import warnings
import zipfile

import numpy as np
import pytest

from research.data import (
    Dataset,
    DatasetError,
    load_csv,
    load_digits,
    load_npz,
    make_blobs,
    make_moons,
    make_spirals,
    split_and_standardize,
)
from research.errors import UsageError
from research.options import OptionError, declared

GENERATORS = [make_spirals, make_moons, make_blobs]
BUILT_INS = {"digits": load_digits, "spirals": make_spirals, "moons": make_moons, "blobs": make_blobs,
             "npz": load_npz, "csv": load_csv}


def raises_one_line(match, factory, *args, **options) -> str:
    """Call factory, expect a DatasetError matching `match`, and check its message is one line."""
    with pytest.raises(DatasetError, match=match) as info:
        factory(*args, **options)
    assert "\n" not in str(info.value)
    return str(info.value)


def refused(message, factory, **options):
    """Call factory with bad options, expect the one-line OptionError `message` exactly."""
    with pytest.raises(OptionError) as info:
        factory(**options)
    assert str(info.value) == message


def write_csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def write_npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def assert_standardized(data: Dataset):
    assert np.allclose(data.x_train.mean(axis=0), 0.0, atol=1e-9)
    std = data.x_train.std(axis=0)
    assert np.allclose(std[std > 0], 1.0)


def assert_same(a: Dataset, b: Dataset):
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert a.classes == b.classes


def test_plugin_registers_every_built_in():
    from research_plugins import datasets

    registered = {}
    datasets.register_datasets(registered.__setitem__)
    assert registered == BUILT_INS


# digits


def test_digits_shapes_labels_and_split():
    data = load_digits()
    assert data.name == "digits"
    assert data.x_train.shape == (1079, 64) and data.x_val.shape == (359, 64) and data.x_test.shape == (359, 64)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert data.n_features == 64 and data.n_classes == 10
    assert data.classes == tuple(str(d) for d in range(10))
    labels = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert np.array_equal(np.bincount(labels), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    assert set(np.unique(data.y_val)) == set(np.unique(data.y_test)) == set(range(10))


def test_digits_standardized_with_train_statistics():
    data = load_digits()
    assert_standardized(data)
    # Corner pixels are always 0: std 0 becomes 1, so they stay 0 rather than NaN.
    assert np.isfinite(data.x_val).all()
    assert (data.x_train[:, 0] == 0).all()


def test_digits_vendored_file_is_raw_pixels():
    from importlib import resources

    with resources.files("research").joinpath("data/digits.npz").open("rb") as file, np.load(file) as archive:
        x, y = archive["X"], archive["y"]
    assert x.dtype == np.uint8 and x.shape == (1797, 64) and x.max() == 16
    assert y.dtype == np.uint8 and y.shape == (1797,) and y.max() == 9
    assert x[0].reshape(8, 8)[0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_digits_seed_determines_split():
    assert_same(load_digits(seed=3), load_digits(seed=3))
    assert_same(load_digits(seed="3"), load_digits(seed=3))
    assert not np.array_equal(load_digits(seed=1).y_train, load_digits(seed=2).y_train)


@pytest.mark.parametrize("fraction, n_val", [(0.1, 180), ("0.5", 898), (0.25, 449)])
def test_digits_split_sizes(fraction, n_val):
    data = load_digits(val_fraction=fraction)
    assert len(data.y_val) == len(data.x_val) == n_val
    assert len(data.y_test) == len(data.x_test) == 359
    assert len(data.y_train) == len(data.x_train) == 1797 - n_val - 359


@pytest.mark.parametrize("fraction, n_test", [(0, 0), ("0.1", 180), (0.3, 539)])
def test_digits_test_split_sizes(fraction, n_test):
    data = load_digits(test_fraction=fraction)
    assert data.has_test == (n_test > 0)
    assert (len(data.y_test) if data.has_test else 0) == n_test
    assert len(data.y_train) == 1797 - 359 - n_test


def test_test_split_is_held_out_and_standardized_with_train_statistics():
    """No sample is in two splits, and the test features use the training mean and std."""
    from research.data.digits import _digits

    data = load_digits(seed=4)
    raw, _ = _digits()
    restored = data.x_test * data.feature_scale + data.feature_mean
    rows = {tuple(r) for r in np.rint(restored).astype(int)}
    assert rows <= {tuple(r) for r in raw.astype(int)}
    train_rows = {tuple(r) for r in np.rint(data.x_train * data.feature_scale + data.feature_mean).astype(int)}
    assert len(np.rint(restored)) == 359 and np.allclose(restored, np.rint(restored))
    # every raw row is in exactly one split: counts add up (digits has duplicate images, so compare counts)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == len(raw)
    assert train_rows  # the training rows are raw rows too
    assert_standardized(data)


def test_fractions_that_leave_too_few_training_samples_are_refused():
    raises_one_line("val_fraction=0.5 and test_fraction=0.5 leave no samples to train on; keep their sum below 1",
                    load_digits, val_fraction=0.5, test_fraction=0.5)  # not "1797 samples are too few"
    raises_one_line("too few to split", load_digits, val_fraction=0.6, test_fraction=0.3999)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32"])
def test_astype_converts_features_only(dtype):
    data = load_digits()
    converted = data.astype(dtype)
    assert converted.x_train.dtype == np.dtype(dtype) and converted.x_val.dtype == np.dtype(dtype)
    assert converted.y_train is data.y_train and converted.classes == data.classes
    assert data.x_train.dtype == np.float64
    assert np.allclose(converted.x_val, data.x_val, atol=1e-6)


def test_astype_rejects_non_float():
    raises_one_line("float32 or float64", load_digits().astype, np.int32)


# synthetic


@pytest.mark.parametrize("make", GENERATORS)
def test_generator_defaults(make):
    data = make()
    assert data.x_train.shape == (360, 2) and data.x_val.shape == (120, 2) and data.x_test.shape == (120, 2)
    assert data.n_features == 2
    assert np.array_equal(np.bincount(data.y_val), [120 // data.n_classes] * data.n_classes)
    assert_standardized(data)


@pytest.mark.parametrize("make", GENERATORS)
def test_generator_is_deterministic_by_seed(make):
    assert_same(make(seed=5), make(seed=5))
    assert not np.allclose(make(seed=5).x_train, make(seed=6).x_train)


@pytest.mark.parametrize("make", GENERATORS)
def test_generator_accepts_string_options(make):
    assert_same(make(n_samples="300", seed="2", val_fraction="0.3"), make(n_samples=300, seed=2, val_fraction=0.3))


def test_spirals_classes():
    data = make_spirals(n_samples=301, classes=4, noise=0.0)
    assert data.n_classes == 4 and data.classes == ("0", "1", "2", "3")
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 301


def test_moons_two_classes():
    data = make_moons(n_samples=101, noise=0.05)
    assert data.n_classes == 2
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 101


def test_blobs_features_and_spread():
    data = make_blobs(n_samples=200, classes=5, features=7, spread=0.5)
    assert data.n_features == 7 and data.n_classes == 5
    # Tight blobs: each class's validation points sit near its training points' mean.
    centers = np.stack([data.x_train[data.y_train == k].mean(axis=0) for k in range(5)])
    nearest = np.argmin(((data.x_val[:, None, :] - centers) ** 2).sum(axis=2), axis=1)
    assert (nearest == data.y_val).mean() > 0.95


# split_and_standardize


def test_split_uses_train_statistics_only():
    raw = np.arange(10.0) ** 2  # distinct, so each output row can be traced back by its rank
    data = split_and_standardize(raw[:, None], np.arange(10) % 2, 0.3, np.random.default_rng(0), "toy", "ab", 0.2)
    assert data.classes == ("a", "b") and len(data.x_val) == 3 and len(data.x_test) == 2
    ranks = np.argsort(np.argsort(np.concatenate([data.x_train, data.x_val, data.x_test])[:, 0]))
    raw_train, raw_held = raw[ranks[:5]], raw[ranks[5:]]
    held = np.concatenate([data.x_val, data.x_test])[:, 0]
    assert np.allclose(held, (raw_held - raw_train.mean()) / raw_train.std())
    assert np.allclose(data.feature_mean, raw_train.mean()) and np.allclose(data.feature_scale, raw_train.std())
    assert_standardized(data)


def test_split_constant_feature_keeps_std_one():
    x = np.column_stack([np.ones(10), np.arange(10.0)])
    data = split_and_standardize(x, np.arange(10) % 2, 0.3, np.random.default_rng(0), "toy", ["0", "1"])
    assert (data.x_train[:, 0] == 0).all() and (data.x_val[:, 0] == 0).all()


def test_split_is_a_stratified_partition():
    x = np.arange(60.0)[:, None]
    data = split_and_standardize(x, np.arange(60) % 3, 0.2, np.random.default_rng(1), "toy", "abc")
    assert len(data.x_val) == 12 and np.array_equal(np.bincount(data.y_val), [4, 4, 4])
    assert len(data.x_test) == 12 and np.array_equal(np.bincount(data.y_test), [4, 4, 4])
    # 60 consecutive integers in, 60 evenly spaced values out: nothing duplicated or lost.
    gaps = np.diff(np.sort(np.concatenate([data.x_train, data.x_val, data.x_test])[:, 0]))
    assert np.allclose(gaps, gaps[0]) and gaps[0] > 0


# user .npz


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.array([3, 7, 9, 7] * 10)
    path = write_npz(tmp_path, X=x, y=y)
    data = load_npz(path)
    assert data.name == str(path)
    assert data.classes == ("3", "7", "9")
    assert data.x_train.shape == (24, 3) and data.x_val.shape == (8, 3) and data.x_test.shape == (8, 3)
    assert data.x_train.dtype == np.float64
    assert np.array_equal(np.bincount(np.concatenate([data.y_train, data.y_val, data.y_test])), [10, 20, 10])
    assert_standardized(data)
    assert_same(load_npz(str(path), seed="4"), load_npz(path, seed=4))


def test_npz_integral_float_labels_are_accepted(tmp_path):
    path = write_npz(tmp_path, X=np.eye(10), y=np.arange(10.0) % 2)
    assert load_npz(path).classes == ("0", "1")


# user .csv


def test_csv_round_trip_string_labels(tmp_path):
    lines = ["x1,x2,label"] + [f"{i},{i * i % 7},{'cat' if i % 3 else 'ant'}" for i in range(30)]
    path = write_csv(tmp_path, "\n".join(lines) + "\n\n")
    data = load_csv(path)
    assert data.classes == ("ant", "cat")
    assert data.n_features == 2 and len(data.y_train) + len(data.y_val) + len(data.y_test) == 30
    assert len(data.y_val) == 6
    assert_standardized(data)
    assert_same(load_csv(path), load_csv(str(path)))


def test_csv_numeric_labels_sort_as_numbers_and_label_option(tmp_path):
    lines = ["target,a,b,c"] + [f"{[2, 10, 9][i % 3]}.0,{i},{-i},{i % 4}" for i in range(24)]
    path = write_csv(tmp_path, "\n".join(lines))
    data = load_csv(path, label="target", val_fraction="0.25")
    assert data.classes == ("2", "9", "10")
    assert data.n_features == 3 and len(data.y_val) == 6


def test_csv_reads_numbers_as_files_write_them(tmp_path):
    """Python's own reading takes 1_000 for 1000 and other scripts' digits for ours: the labels
    1_000 and 1000 would merge into one class, a feature 1_000 would pass."""
    labels = ["1_000", "1000", "\u0661", "1"] * 3
    data = load_csv(write_csv(tmp_path, "a,label\n" + "".join(f"{i},{t}\n" for i, t in enumerate(labels))))
    assert data.classes == ("1", "1000", "1_000", "\u0661")  # four names, none merged
    raises_one_line("line 3, column 'a': '1_000' is not a number", load_csv,
                    write_csv(tmp_path, "a,label\n1,0\n1_000,1\n" + "2,0\n3,1\n" * 3, name="f.csv"))


def test_csv_features_keep_column_order(tmp_path):
    lines = ["a,label,b"] + [f"{i},{i % 2},{100 * i}" for i in range(10)]
    data = load_csv(write_csv(tmp_path, "\n".join(lines)))
    # b = 100 a exactly, so after standardization the two columns are equal.
    assert np.allclose(data.x_train[:, 0], data.x_train[:, 1])


# errors


def test_error_missing_file(tmp_path):
    raises_one_line("no such file", load_npz, tmp_path / "absent.npz")
    raises_one_line("no such file", load_csv, tmp_path / "absent.csv")
    raises_one_line("is a directory", load_csv, tmp_path)
    raises_one_line("needs a file; pass path=", load_npz, "")


def test_error_corrupt_npz(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    raises_one_line("bad.npz: is not a readable .npz archive", load_npz, path)
    text = tmp_path / "text.npz"
    text.write_text("x y\n1 2\n")  # text, but not csv (that is said as such)
    raises_one_line("not a readable .npz", load_npz, text)


def test_error_corrupt_member_in_npz(tmp_path):
    path = tmp_path / "flipped.npz"
    np.savez_compressed(path, X=np.arange(4000.0).reshape(1000, 4), y=np.arange(1000) % 2)
    blob = bytearray(path.read_bytes())
    middle = len(blob) // 3
    blob[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(blob))
    raises_one_line("flipped.npz: is corrupt", load_npz, path)


def test_error_member_not_npy_in_npz(tmp_path):
    """numpy returns the raw bytes of a member that is not an .npy array: refused by name."""
    path = tmp_path / "junk.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", b"not an array")
        archive.writestr("y.npy", np.lib.format.magic(1, 0) + b"cut short")
    raises_one_line("junk.npz: is corrupt", load_npz, path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("y.npy", b"not an array")
        with archive.open("X.npy", "w") as member:
            np.save(member, np.zeros((4, 2)))
    raises_one_line("junk.npz: is corrupt: its y is not an .npy array", load_npz, path)


def test_error_npy_instead_of_npz(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.zeros((4, 2)))
    raises_one_line("single .npy array", load_npz, path)


def test_an_npz_given_as_csv_is_named_with_the_flags_to_load_it(tmp_path):
    """It said "is not UTF-8 text; save it as a UTF-8 .csv file": the fix is the npz dataset, whatever the name."""
    npz = write_npz(tmp_path, "data.npz", X=np.zeros((4, 2)), y=np.arange(4) % 2)
    renamed = tmp_path / "renamed file.csv"
    renamed.write_bytes(npz.read_bytes())
    for path in (npz, renamed):
        message = raises_one_line("is an .npz archive", load_csv, path)
        assert message == (f"{path}: is an .npz archive, not csv text; load it as the npz dataset "
                           f"(--dataset npz --dataset-opt {shlex.quote(f'path={path}')})")
    with zipfile.ZipFile(tmp_path / "stored.csv", "w") as archive:  # an .npz written without numpy
        with archive.open("X.npy", "w") as member:
            np.save(member, np.zeros((4, 2)))
    raises_one_line("stored.csv: is an .npz archive, not csv text", load_csv, tmp_path / "stored.csv")
    zipped = tmp_path / "zipped.csv"
    with zipfile.ZipFile(zipped, "w") as archive:  # a zipped csv is no .npz
        archive.writestr("data.csv", "a,label\n1,x\n")
    raises_one_line("zipped.csv: is not UTF-8 text", load_csv, zipped)


def test_a_csv_given_as_npz_is_named_with_the_flags_to_load_it(tmp_path):
    """It said "is not a readable .npz archive; save it with np.savez(...)": the fix is the csv dataset."""
    csv_file = write_csv(tmp_path, "\na,b,label\n1,2,x\n3,4,y\n", name="iris.csv")
    message = raises_one_line("is csv text", load_npz, csv_file)
    assert message == (f"{csv_file}: is csv text, not an .npz archive; load it as the csv dataset "
                       f"(--dataset csv --dataset-opt {shlex.quote(f'path={csv_file}')})")


def test_error_object_arrays_in_npz(tmp_path):
    path = write_npz(tmp_path, X=np.array([[1, "a"]], dtype=object), y=np.array([0]))
    raises_one_line("object arrays", load_npz, path)


def test_error_missing_arrays(tmp_path):
    message = raises_one_line(r"has no array y \(it has: X, labels\)", load_npz,
                              write_npz(tmp_path, X=np.zeros((4, 2)), labels=np.zeros(4)))
    assert "np.savez(path, X=X, y=y)" in message
    raises_one_line("has no array X or y", load_npz, write_npz(tmp_path, name="e.npz", a=np.zeros(3)))


def test_error_shapes(tmp_path):
    raises_one_line(r"X has shape \(6,\) but must be 2-D", load_npz,
                    write_npz(tmp_path, X=np.zeros(6), y=np.arange(6) % 2))
    raises_one_line(r"X has 6 samples but y has shape \(5,\)", load_npz,
                    write_npz(tmp_path, X=np.zeros((6, 2)), y=np.arange(5) % 2))
    raises_one_line(r"y has shape \(6, 1\) but must be 1-D", load_npz,
                    write_npz(tmp_path, X=np.zeros((6, 2)), y=(np.arange(6) % 2)[:, None]))


def test_images_keep_their_sample_shape(tmp_path):
    """x of shape (N, C, H, W) is standardized per value and comes back as rows, with the
    sample shape for models that want images; digits are 1x8x8 images."""
    x = np.random.default_rng(0).normal(size=(20, 2, 3, 4))
    data = load_npz(write_npz(tmp_path, X=x, y=np.arange(20) % 2))
    assert data.sample_shape == (2, 3, 4) and data.input_shape == (2, 3, 4)
    assert data.x_train.shape == (12, 24) and data.x_val.shape == (4, 24)
    flat = load_npz(write_npz(tmp_path, name="flat.npz", X=x.reshape(20, -1), y=np.arange(20) % 2))
    assert flat.sample_shape is None and flat.input_shape == (24,)
    np.testing.assert_array_equal(flat.x_train, data.x_train)
    assert load_digits().input_shape == (1, 8, 8)


def test_error_non_numeric_features(tmp_path):
    raises_one_line("X has dtype <U1; features must be numbers", load_npz,
                    write_npz(tmp_path, X=np.array([["a", "b"]] * 6), y=np.arange(6) % 2))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_error_nan_inf_in_features(tmp_path, bad):
    x = np.ones((10, 2))
    x[3, 1] = bad
    raises_one_line(r"data.npz: X holds NaN or infinity in 1 sample \(the first: sample 3, feature 1\)", load_npz,
                    write_npz(tmp_path, X=x, y=np.arange(10) % 2))
    lines = ["a,b,label"] + [f"{i},1,{i % 2}" for i in range(9)] + [f"1,{bad},1"]
    raises_one_line(f"data.csv: line 11, column 'b': '{bad}' is not a finite number", load_csv,
                    write_csv(tmp_path, "\n".join(lines)))
    lines[4] = "1e400,1,0"  # inf once read
    raises_one_line("data.csv: line 5, column 'a': '1e400' is not a finite number", load_csv,
                    write_csv(tmp_path, "\n".join(lines)))


def test_error_features_too_large_to_standardize(tmp_path):
    """Their spread overflows a double: every standardized feature would silently be 0."""
    x = np.random.default_rng(0).normal(size=(60, 3)) * 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raises_one_line(r"data.npz: X's values are too large to standardize \(their spread overflows a double\); "
                        "rescale X", load_npz, write_npz(tmp_path, X=x, y=np.arange(60) % 2))


def test_error_nan_in_labels(tmp_path):
    y = np.arange(10.0) % 2
    y[4] = np.nan
    raises_one_line("y contains NaN or inf", load_npz, write_npz(tmp_path, X=np.ones((10, 2)), y=y))


@pytest.mark.parametrize("y", [np.arange(10) / 4, np.array(["a", "b"] * 5), np.arange(10) % 2 == 0])
def test_error_labels_not_integers_npz(tmp_path, y):
    raises_one_line("labels are not integers", load_npz, write_npz(tmp_path, X=np.ones((10, 2)), y=y))


def test_error_labels_not_integers_csv(tmp_path):
    """The label errors said which problem but not where: in a file of thousands of rows the
    user had to search for it."""
    lines = ["a,label"] + [f"{i},{i % 3}" for i in range(10)] + ["10,0.25"]
    assert raises_one_line("not an integer", load_csv, write_csv(tmp_path, "\n".join(lines))).endswith(
        "line 12, column 'label': label '0.25' is not an integer (numeric labels must all be integers); encode each "
        "class as an integer or a name")
    lines = ["a,label"] + [f"{i},{i % 2}" for i in range(9)] + ["", "9, "]
    assert "line 12, column 'label': the label is empty; give every row a label" in raises_one_line(
        "empty", load_csv, write_csv(tmp_path, "\n".join(lines)))


def test_error_unknown_label_column_lists_columns(tmp_path):
    path = write_csv(tmp_path, "x1,x2,target\n1,2,0\n3,4,1\n")
    message = raises_one_line(r"has no label column 'label' \(columns: 'x1', 'x2', 'target'\)", load_csv, path)
    assert "pass label=NAME" in message


def test_error_csv_content(tmp_path):
    raises_one_line("is empty", load_csv, write_csv(tmp_path, "\n\n"))
    raises_one_line("has no feature columns", load_csv, write_csv(tmp_path, "label\n0\n1\n"))
    raises_one_line("line 3 has 2 fields but the header has 3", load_csv,
                    write_csv(tmp_path, "a,b,label\n1,2,0\n3,1\n"))
    raises_one_line(r"line 3, column 'b': 'abc' is not a number", load_csv,
                    write_csv(tmp_path, "a,b,label\n1,2,0\n3,abc,1\n"))
    raises_one_line(r"column 'a': '' is not a number", load_csv, write_csv(tmp_path, "a,b,label\n,2,0\n"))
    path = tmp_path / "latin.csv"
    path.write_bytes("a,label\n1,caf\u00e9\n".encode("latin-1"))
    raises_one_line("latin.csv: is not UTF-8", load_csv, path)
    # an unnamed column was a feature; ';' between values said "pass label=NAME", which cannot work
    raises_one_line(r"header column 2 has no name \(columns: 'a', '', 'label'\); give every column its own name",
                    load_csv, write_csv(tmp_path, "a,,label\n1,2,0\n3,4,1\n"))
    raises_one_line(r"separates its values with ';', not commas \(header: 'a;b;label'\); save it with commas",
                    load_csv, write_csv(tmp_path, "a;b;label\n1;2;0\n3;4;1\n"))
    # a quote never closed swallowed the rest of the file into one label; a row of commas was skipped
    raises_one_line(r"is not valid CSV \(line 3: unexpected end of data: a quote opened there is never closed\)",
                    load_csv, write_csv(tmp_path, 'a,label\n1,x\n2,"open\n3,y\n4,z\n'))
    raises_one_line(r"line 3, column 'a': '' is not a number", load_csv, write_csv(tmp_path, "a,label\n1,x\n,\n2,y\n"))
    gzipped = tmp_path / "packed.csv"
    gzipped.write_bytes(gzip.compress(b"a,label\n1,x\n2,y\n"))
    raises_one_line(r"packed.csv: is not UTF-8 text \(it is compressed with gzip: decompress it first\)", load_csv,
                    gzipped)


def test_an_unreadable_data_file_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    """A file without read permission was "plugin 'datasets' failed building dataset 'csv':
    PermissionError (a bug in that plugin)", exit 1; an npz one was "not a readable .npz archive;
    save it with np.savez", and export-model's digest a bare "[Errno 13]"."""
    from pathlib import Path

    from research.data import files
    from research.study.provenance import file_digest

    good_csv = write_csv(tmp_path, "a,label\n1,x\n2,y\n")
    good_npz = write_npz(tmp_path, X=np.ones((4, 2)), y=np.arange(4) % 2)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    fix = r"cannot be read \(Permission denied\); give this user read permission \(chmod \+r\)"
    monkeypatch.setattr(files, "open", refused, raising=False)
    raises_one_line("data.csv: " + fix, load_csv, good_csv)
    monkeypatch.setattr(files.np, "load", refused)
    raises_one_line(r"\.npz: " + fix, load_npz, good_npz)
    monkeypatch.setattr(Path, "read_bytes", refused)
    with pytest.raises(UsageError, match="data.csv: " + fix):
        file_digest(good_csv)


def test_a_structured_array_is_named_as_such(tmp_path):
    """It was "X has shape (20,) but must be 2-D": its fields were the features."""
    x = np.zeros(20, dtype=[("a", "f8"), ("b", "f8")])
    raises_one_line(r"X is a structured array \(fields a, b\); save X as a plain 2-D array", load_npz,
                    write_npz(tmp_path, X=x, y=np.arange(20) % 2))


def test_a_missing_data_file_says_where_a_stored_study_reads_it():
    """Its fix said to pass another path, which a stored study refuses."""
    raises_one_line(r"gone.csv: no such file; pass path=FILE naming an existing .csv file \(a stored study reads "
                    r"the file it was created with: put it back there\)", load_csv, "gone.csv")


def test_error_too_few_samples(tmp_path):
    # 2 + 2: validation and test took both samples of class 0, and training saw one class (val acc 0)
    raises_one_line(r"4 samples leave the training split 2, all of one class, once validation and test take theirs",
                    load_csv, write_csv(tmp_path, "a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n", name="four.csv"))
    raises_one_line("2 samples are too few to split with val_fraction=0.2", load_npz,
                    write_npz(tmp_path, X=np.ones((2, 2)), y=np.array([0, 1])))
    raises_one_line("too few to split", load_csv, write_csv(tmp_path, "a,label\n1,0\n2,1\n"), val_fraction=0.5)
    raises_one_line("too few", make_moons, n_samples=2)
    raises_one_line("0 samples are too few", load_csv, write_csv(tmp_path, "a,label\n", name="header.csv"))
    refused("dataset 'blobs': n_samples must be an integer >= classes (4), got 3", make_blobs, n_samples=3, classes=4)
    refused("dataset 'spirals': n_samples must be an integer >= classes (5), got 4", make_spirals, n_samples="4",
            classes="5")


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, "0", "1"])
def test_error_val_fraction_outside_unit_interval(fraction, tmp_path):
    for name, factory in BUILT_INS.items():
        files = {"path": tmp_path / f"data.{name}"} if name in ("npz", "csv") else {}
        refused(f"dataset '{name}': val_fraction must be a number in (0, 1), got {fraction!r}", factory,
                val_fraction=fraction, **files)
    with pytest.raises(OptionError, match=r"^toy: val_fraction must be a number in \(0, 1\), got "):
        split_and_standardize(np.ones((10, 2)), np.arange(10) % 2, fraction, np.random.default_rng(0), "toy", "ab")


def test_error_fewer_than_two_classes(tmp_path):
    raises_one_line("only 1 class", load_npz, write_npz(tmp_path, X=np.ones((10, 2)), y=np.full(10, 4)))
    raises_one_line("only 1 class", load_csv, write_csv(tmp_path, "a,label\n" + "1,x\n" * 10))
    refused("dataset 'blobs': classes must be an integer >= 2, got 1", make_blobs, classes=1)
    refused("dataset 'spirals': classes must be an integer >= 2, got '1'", make_spirals, classes="1")


@pytest.mark.parametrize(
    "make, options, message",
    [
        (make_spirals, {"noise": "abc"}, "dataset 'spirals': noise must be a number >= 0, got 'abc'"),
        (make_moons, {"noise": -1}, "dataset 'moons': noise must be a number >= 0, got -1"),
        (make_moons, {"noise": "nan"}, "dataset 'moons': noise must be a finite number >= 0, got 'nan'"),
        (make_blobs, {"spread": None}, "dataset 'blobs': spread must be a number >= 0, got None"),
        (make_blobs, {"features": "2.5"}, "dataset 'blobs': features must be an integer >= 1, got '2.5'"),
        (make_blobs, {"features": 0}, "dataset 'blobs': features must be an integer >= 1, got 0"),
        (make_spirals, {"n_samples": "many"}, "dataset 'spirals': n_samples must be an integer >= 2, got 'many'"),
        (make_moons, {"seed": -1}, "dataset 'moons': seed must be an integer >= 0, got -1"),
        (make_moons, {"seed": True}, "dataset 'moons': seed must be an integer >= 0, got True"),
        (load_digits, {"seed": "x"}, "dataset 'digits': seed must be an integer >= 0, got 'x'"),
        (load_digits, {"val_fraction": "half"}, "dataset 'digits': val_fraction must be a number in (0, 1), got 'half'"),
        (make_moons, {"classes": 3}, ("dataset 'moons': unknown option 'classes'; "
                                      "valid names: n_samples, noise, seed, val_fraction, test_fraction")),
        (load_npz, {"file": "x.npz"}, "dataset 'npz': unknown option 'file'; valid names: path, seed, val_fraction, "
                                                     "test_fraction"),
    ],
)
def test_error_bad_option_values(make, options, message):
    refused(message, make, **options)


def test_options_are_declared_in_the_signatures():
    # One declaration per option: the plugin manager and the command line read the same.
    assert {name: list(declared(factory)) for name, factory in BUILT_INS.items()} == {
        "digits": ["seed", "val_fraction", "test_fraction"],
        "spirals": ["n_samples", "classes", "noise", "seed", "val_fraction", "test_fraction"],
        "moons": ["n_samples", "noise", "seed", "val_fraction", "test_fraction"],
        "blobs": ["n_samples", "classes", "features", "spread", "seed", "val_fraction", "test_fraction"],
        "npz": ["path", "seed", "val_fraction", "test_fraction"],
        "csv": ["path", "label", "seed", "val_fraction", "test_fraction"],
    }
    assert {name: spec.describe() for name, spec in declared(make_blobs).items()} == {
        "n_samples": "an integer >= 2", "classes": "an integer >= 2", "features": "an integer >= 1",
        "spread": "a number >= 0", "seed": "an integer >= 0", "val_fraction": "a number in (0, 1)",
        "test_fraction": "a number in [0, 1)"}


def test_errors_are_usage_errors():
    assert issubclass(DatasetError, UsageError) and issubclass(DatasetError, ValueError)
    assert issubclass(OptionError, UsageError)


def test_path_option_from_a_string_or_a_path(tmp_path):
    path = write_npz(tmp_path, X=np.eye(10), y=np.arange(10) % 2)
    assert_same(load_npz(path=str(path)), load_npz(path))
    assert_same(load_npz(path=path), load_npz(str(path)))


def test_error_split_labels_out_of_range():
    rng = np.random.default_rng(0)
    raises_one_line("labels must be integers 0..1", split_and_standardize,
                    np.ones((10, 2)), np.arange(10) % 3, 0.2, rng, "toy", ["a", "b"])
    raises_one_line("labels must be integers", split_and_standardize,
                    np.ones((10, 2)), np.arange(10) / 10, 0.2, rng, "toy", ["a", "b"])


def _splits(**changed):
    rng = np.random.default_rng(0)
    parts = {"x_train": rng.standard_normal((6, 3)), "y_train": np.array([0, 1, 0, 1, 0, 1]),
             "x_val": rng.standard_normal((4, 3)), "y_val": np.array([0, 1, 1, 0]), "classes": ("a", "b")}
    return {**parts, **changed}


@pytest.mark.parametrize(("changed", "says"), [
    ({"x_val": np.zeros((4, 2))}, "mine: x_val has shape (4, 2), not (N, 3) as x_train; give every split the same"),
    ({"x_test": np.zeros((2, 3, 1)), "y_test": np.array([0, 1])}, "x_test has shape (2, 3, 1), not (N, 3)"),
    ({"y_val": np.array([0, 1, 1])}, "mine: y_val has shape (3,) and dtype int64, not (4,) integer labels"),
    ({"y_train": np.array([0, 1, 0, 1, 0, 1.0])}, "y_train has shape (6,) and dtype float64, not (6,) integer"),
    ({"y_val": np.array([0, 1, 5, 6])}, "mine: y_val holds labels in [0, 6], beyond its 2 classes; labels are 0..1"),
    ({"y_train": np.array([0, -1, 0, 1, 0, 1])}, "y_train holds labels in [-1, 1], beyond its 2 classes"),
    ({"x_train": np.zeros((0, 3)), "y_train": np.zeros(0, np.int64)}, "mine: the training split is empty"),
])
def test_a_dataset_whose_splits_do_not_fit_together_is_refused_naming_it(changed, says):
    """A plugin's narrower validation split failed in the model ("model 'mlp' failed in epoch 1
    ... (a bug in that plugin)"), labels beyond its classes failed naming no dataset."""
    with pytest.raises(DatasetError, match=re.escape(says)):
        Dataset("mine", **_splits(**changed))
    Dataset("mine", **_splits())  # the same splits, fitting, are taken

"""Datasets for classifiers: the vendored digits, synthetic 2-D sets and the user's .npz/.csv files.

Every loader returns a `Dataset` (research.data.dataset): a seeded train/validation/test split
(`val_fraction` 0.2 and `test_fraction` 0.2 by default, stratified by label, drawn from `seed`) whose
features are standardized with the training statistics only, so nothing about the validation or
test sets leaks into training. Loaders take keyword options declared in their signatures (research.options):
values may arrive as command-line strings (`--dataset-opt noise=0.3`) and are converted and
checked, a bad one being an `OptionError` (`dataset 'moons': noise must be a number >= 0, got -1`).
A source that cannot be used (a missing file, a wrong shape) is a `DatasetError`, a one-line
message naming the source, the problem and the fix.
"""

from research.data.dataset import Dataset, DatasetError, split_and_standardize
from research.data.digits import load_digits
from research.data.files import load_csv, load_npz
from research.data.synthetic import make_blobs, make_moons, make_spirals

__all__ = ["Dataset", "DatasetError", "load_csv", "load_digits", "load_npz", "make_blobs", "make_moons",
           "make_spirals", "split_and_standardize"]

"""Data: bundled datasets, synthetic generators, train/test split and partitioners.

Everything a strategy trains on comes from here, one module per concern:
``load`` (the bundled datasets, cached), ``files`` (your own CSV or npz file), ``synthetic`` (``make_classification``,
``make_regression``), ``split`` (``train_test_split``, ``standardize``), ``partition``
(the partitioners and their registry), ``apportion`` (largest-remainder shares) and
``permute`` (``permute_rows``, in place). Functions that draw take an explicit
``rng: np.random.Generator``; nothing here touches global random state.
"""
from .apportion import apportion
from .dataset import Dataset
from .files import check_dataset, describe_file, load_file, parse_source
from .load import DATASETS, describe, load
from .partition import (PARTITION_ALIASES, PARTITIONERS, Parts, by_label, concatenated, iid,
                        label_skew, partition, proportional, size_skew, sizes_of)
from .permute import permute_rows
from .split import scaling, standardize, train_test_indices, train_test_split
from .synthetic import make_classification, make_regression

__all__ = ["Dataset", "DATASETS", "describe", "load", "load_file", "describe_file", "parse_source",
           "check_dataset", "make_classification", "make_regression",
           "train_test_split", "train_test_indices", "scaling", "standardize",
           "PARTITIONERS", "PARTITION_ALIASES", "partition", "iid", "proportional",
           "label_skew", "size_skew", "by_label", "apportion", "permute_rows", "Parts",
           "sizes_of", "concatenated"]

"""Tests for simdml.data: bundled datasets, synthetic data, split, scaling, partitioners."""
import json
import math
import re
import warnings
from importlib import resources

import numpy as np
import pytest

from simdml.data import (DATASETS, PARTITIONERS, Dataset, by_label, iid, label_skew, load,
                         make_classification,
                         make_regression, partition, proportional, size_skew, apportion,
                         standardize,
                         train_test_split)

METADATA = json.loads(resources.files("simdml.datasets").joinpath("datasets.json").read_text())
SEEDS = (0, 1, 2)


def rng_of(seed):
    return np.random.default_rng(seed)


def nearest_centroid_accuracy(X, y):
    centroids = np.stack([X[y == k].mean(axis=0) for k in np.unique(y)])
    distances = ((X[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.mean(distances.argmin(axis=1) == y)


# --------------------------------------------------------------------- loading

@pytest.mark.parametrize("name", DATASETS)
def test_load_matches_metadata(name):
    """Each bundled dataset has the size, class names and class counts of datasets.json."""
    meta = METADATA[name]
    ds = load(name)
    assert ds.name == name
    assert (ds.n_samples, ds.n_features, ds.n_classes) == (meta["n_samples"], meta["n_features"],
                                                           len(meta["classes"]))
    assert ds.class_names == tuple(meta["classes"])
    assert len(ds.feature_names) == ds.n_features
    assert np.bincount(ds.y, minlength=ds.n_classes).tolist() == meta["class_counts"]


@pytest.mark.parametrize("name", DATASETS)
def test_load_dtypes_and_finite(name):
    """Loaded X is finite float64 of shape (n_samples, n_features) and y is int64."""
    ds = load(name)
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert ds.X.shape == (ds.n_samples, ds.n_features) and ds.y.shape == (ds.n_samples,)
    assert np.all(np.isfinite(ds.X))


def test_loaded_arrays_are_read_only():
    """Callers cannot write into the cached arrays, not even by flipping the WRITEABLE flag."""
    ds = load("iris")
    for array in (ds.X, ds.y):
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 99
        with pytest.raises(ValueError):
            array.flags.writeable = True
    assert load("iris").X[0, 0] == 5.1


def test_load_unknown_name_lists_known_datasets():
    """An unknown dataset name raises ValueError naming it and listing the known ones."""
    expected = ("unknown dataset 'foo'; known datasets: iris, wine, breast_cancer, digits, "
                "breast_cancer_rare, "
                "synthetic (made with make_classification)")
    with pytest.raises(ValueError, match=re.escape(expected)):
        load("foo")


def test_load_synthetic_points_to_make_classification():
    """Loading 'synthetic' raises ValueError that says to call make_classification."""
    with pytest.raises(ValueError, match=r"dataset 'synthetic' is generated.*make_classification"):
        load("synthetic")


def test_dataset_rejects_labels_out_of_range():
    """A Dataset whose labels exceed its class names raises ValueError at construction."""
    with pytest.raises(ValueError, match=r"Dataset.y must be int64 of shape \(2,\) with values in \[0, 1\)"):
        Dataset(name="x", X=np.zeros((2, 1)), y=np.array([0, 1]),
                feature_names=("a",), class_names=("only",))


# ------------------------------------------------------------------ synthetic

def test_make_classification_shapes_and_names():
    """make_classification returns a 'synthetic' Dataset of the requested shape and dtypes."""
    ds = make_classification(50, 3, 4, rng=rng_of(0))
    assert (ds.name, ds.n_samples, ds.n_features, ds.n_classes) == ("synthetic", 50, 3, 4)
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert ds.feature_names == ("x0", "x1", "x2") and ds.class_names[0] == "class_0"


@pytest.mark.parametrize("n_samples, n_classes, weights, expected", [
    (100, 3, [0.5, 0.3, 0.2], [50, 30, 20]),
    (10, 3, None, [4, 3, 3]),           # remainders tie: the lower class index wins
    (7, 2, [1, 1], [4, 3]),
    (11, 3, [1, 2, 3], [2, 4, 5]),      # shares 1.83, 3.67, 5.5 -> floors 1, 3, 5 + 1, 1, 0
    (10, 3, [0.96, 0.02, 0.02], [8, 1, 1]),  # tiny classes still get one sample
])
def test_make_classification_class_counts_follow_weights(n_samples, n_classes, weights, expected):
    """Class counts are the largest-remainder apportionment of n_samples by weights."""
    ds = make_classification(n_samples, 2, n_classes, weights=weights, rng=rng_of(0))
    assert np.bincount(ds.y, minlength=n_classes).tolist() == expected


def test_make_classification_same_seed_same_data_different_seed_differs():
    """The same seed gives identical arrays and another seed gives different ones."""
    a, b, c = (make_classification(rng=rng_of(s)) for s in (7, 7, 8))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_make_classification_class_sep_separates_classes():
    """With the same seed, a larger class_sep gives a higher nearest-centroid accuracy."""
    accuracies = [nearest_centroid_accuracy(*_xy(make_classification(
        400, 2, 3, class_sep=sep, rng=rng_of(3)))) for sep in (0.0, 0.5, 3.0)]
    assert accuracies[0] < accuracies[1] < accuracies[2]
    assert accuracies[2] > 0.95


def _xy(ds):
    return ds.X, ds.y


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 0}, "n_samples must be an integer >= 2; got 0"),
    ({"n_samples": 2.5}, "n_samples must be an integer >= 2; got 2.5"),
    ({"n_features": 0}, "n_features must be an integer >= 1; got 0"),
    ({"n_classes": 1}, "n_classes must be an integer >= 2; got 1"),
    ({"n_classes": True}, "n_classes must be an integer >= 2; got True"),
    ({"n_samples": 3, "n_classes": 4, "n_features": 3}, "n_classes must be <= n_samples=3; got 4"),
    ({"n_features": 1, "n_classes": 3}, "n_classes must be <= 2**n_features=2"),
    ({"n_classes": 3, "weights": [1, 2]}, "weights must have n_classes=3 entries; got 2"),
    ({"weights": [1.0, -1.0]}, "weights must be finite and > 0; got [1.0, -1.0]"),
    ({"weights": [1.0, math.inf]}, "weights must be finite and > 0; got [1.0, inf]"),
    ({"class_sep": math.nan}, "class_sep must be a finite number >= 0; got nan"),
    ({"class_sep": -1.0}, "class_sep must be a finite number >= 0; got -1.0"),
])
def test_make_classification_validation_messages(kwargs, message):
    """Each invalid argument raises ValueError naming the argument, the rule and the value."""
    with pytest.raises(ValueError, match=re.escape(message)):
        make_classification(**kwargs, rng=rng_of(0))


def test_make_classification_rejects_seed_as_rng():
    """Passing a seed instead of a Generator raises ValueError that says how to make one."""
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator.*got int"):
        make_classification(rng=0)


# ------------------------------------------------------------ regression data

def test_regression_dataset_has_no_classes_and_float_targets():
    """class_names=() makes a regression Dataset: float64 y, n_classes 0, is_regression."""
    ds = Dataset(name="x", X=np.zeros((3, 1)), y=np.array([0.5, -1.0, 2.0]),
                 feature_names=("a",), class_names=())
    assert ds.is_regression and ds.n_classes == 0
    assert repr(ds) == "Dataset(name='x', n_samples=3, n_features=1, is_regression=True)"
    assert not load("iris").is_regression


@pytest.mark.parametrize("y, dtype", [(np.array([0, 1]), "int64"),
                                      (np.array([0.5, math.nan]), "float64")])
def test_regression_dataset_rejects_integer_or_nonfinite_targets(y, dtype):
    """A regression Dataset needs finite float64 targets; the message names the rule."""
    expected = (f"Dataset.y of a regression dataset (class_names=()) must be finite float64 "
                f"of shape (2,); got {dtype} of shape (2,)")
    with pytest.raises(ValueError, match=re.escape(expected)):
        Dataset(name="x", X=np.zeros((2, 1)), y=y, feature_names=("a",), class_names=())


def test_make_regression_shapes_and_names():
    """make_regression returns a 'synthetic_regression' Dataset with float64 X and y."""
    ds = make_regression(50, 3, rng=rng_of(0))
    assert (ds.name, ds.n_samples, ds.n_features) == ("synthetic_regression", 50, 3)
    assert ds.is_regression and ds.class_names == ()
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.float64
    assert ds.feature_names == ("x0", "x1", "x2")


def test_make_regression_without_noise_is_exactly_linear():
    """With noise=0, y equals X @ w_true + b_true, the truth returned by coef=True."""
    ds, w_true, b_true = make_regression(40, 5, noise=0.0, coef=True, rng=rng_of(1))
    assert w_true.shape == (5,) and isinstance(b_true, float)
    np.testing.assert_allclose(ds.y, ds.X @ w_true + b_true, rtol=0, atol=1e-14)


def test_make_regression_noise_is_the_residual_standard_deviation():
    """The residual y - (X w_true + b_true) has standard deviation noise (to 5 standard errors)."""
    n_samples, noise = 4000, 0.5
    ds, w_true, b_true = make_regression(n_samples, 3, noise=noise, coef=True, rng=rng_of(2))
    residual = ds.y - (ds.X @ w_true + b_true)
    standard_error = noise / math.sqrt(2 * n_samples)   # of a sample std, Gaussian data
    assert abs(residual.std() - noise) < 5 * standard_error
    assert abs(residual.mean()) < 5 * noise / math.sqrt(n_samples)


def test_make_regression_same_seed_same_data_and_noise_changes_only_y():
    """Same seed, same data; another noise keeps X and the truth; another seed differs."""
    a, w_a, b_a = make_regression(noise=0.1, coef=True, rng=rng_of(7))
    b, w_b, b_b = make_regression(noise=0.1, coef=True, rng=rng_of(7))
    c, w_c, b_c = make_regression(noise=2.0, coef=True, rng=rng_of(7))
    d = make_regression(noise=0.1, rng=rng_of(8))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert np.array_equal(a.X, c.X) and np.array_equal(w_a, w_c) and b_a == b_c
    assert not np.array_equal(a.y, c.y)
    assert not np.array_equal(a.X, d.X)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 1}, "n_samples must be an integer >= 2; got 1"),
    ({"n_samples": 2.5}, "n_samples must be an integer >= 2; got 2.5"),
    ({"n_features": 0}, "n_features must be an integer >= 1; got 0"),
    ({"noise": -1.0}, "noise must be a finite number >= 0; got -1.0"),
    ({"noise": math.inf}, "noise must be a finite number >= 0; got inf"),
    ({"noise": True}, "noise must be a finite number >= 0; got True"),
])
def test_make_regression_validation_messages(kwargs, message):
    """Each invalid argument raises ValueError naming the argument, the rule and the value."""
    with pytest.raises(ValueError, match=re.escape(message)):
        make_regression(**kwargs, rng=rng_of(0))


def test_make_regression_rejects_seed_as_rng():
    """Passing a seed instead of a Generator raises ValueError that says how to make one."""
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator.*got int"):
        make_regression(rng=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_apportion_sum_and_stay_within_one_of_exact_shares(seed):
    """Largest-remainder sizes sum to n and each is within 1 of its exact share."""
    rng = rng_of(seed)
    weights = rng.uniform(0.1, 5.0, size=7)
    n = int(rng.integers(7, 1000))
    counts = apportion(n, weights)
    assert counts.sum() == n and counts.dtype == np.int64
    assert np.all(np.abs(counts - n * weights / weights.sum()) < 1)


def test_apportion_min_size_pins_small_parts():
    """Parts whose share is below min_size get exactly min_size; the rest share the remainder."""
    assert apportion(100, [1, 1, 98], min_size=5).tolist() == [5, 5, 90]
    with pytest.raises(ValueError, match=re.escape("n_samples must be >= min_size * n_parts = 6; got 5")):
        apportion(5, [1, 1, 1], min_size=2)
    with pytest.raises(ValueError, match="weights must be a non-empty 1-D sequence"):
        apportion(5, [])


# ------------------------------------------------------------ split and scale

def _split_ids(y, seed, test_size=0.25):
    ids = np.arange(len(y), dtype=float)[:, None]   # X holds each row's own index
    X_tr, X_te, y_tr, y_te = train_test_split(ids, y, test_size=test_size, rng=rng_of(seed))
    return X_tr[:, 0].astype(int), X_te[:, 0].astype(int), y_tr, y_te


@pytest.mark.parametrize("test_size", [0.2, 0.25, 0.5])
def test_train_test_split_is_stratified(test_size):
    """Each class's test count is within one sample of test_size times its size."""
    y = load("wine").y
    _, _, _, y_te = _split_ids(y, 0, test_size)
    n_c = np.bincount(y)
    assert np.all(np.abs(np.bincount(y_te, minlength=3) - test_size * n_c) <= 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_train_test_split_is_disjoint_and_complete(seed):
    """Train and test rows are disjoint, together are every row once, and keep their labels."""
    y = load("iris").y
    tr, te, y_tr, y_te = _split_ids(y, seed)
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(y)))
    assert np.array_equal(y_tr, y[tr]) and np.array_equal(y_te, y[te])


def test_train_test_split_deterministic_per_seed():
    """The same seed gives the same split and another seed a different one."""
    y = load("iris").y
    assert np.array_equal(_split_ids(y, 5)[1], _split_ids(y, 5)[1])
    assert not np.array_equal(_split_ids(y, 5)[1], _split_ids(y, 6)[1])


def test_train_test_split_small_classes():
    """A class of two samples puts one on each side; a singleton class stays in training."""
    y = np.array([0] * 10 + [1, 1] + [2])
    tr, te, _, y_te = _split_ids(y, 0, test_size=0.1)
    assert np.bincount(y_te, minlength=3).tolist() == [1, 1, 0]
    assert 12 in tr


@pytest.mark.parametrize("test_size", [0, 1, 1.5, -0.1, math.nan, True])
def test_train_test_split_rejects_bad_test_size(test_size):
    """test_size outside (0, 1) raises ValueError naming the value."""
    with pytest.raises(ValueError, match=re.escape(f"0 < test_size < 1; got {test_size!r}")):
        train_test_split(np.zeros((4, 1)), [0, 0, 1, 1], test_size=test_size, rng=rng_of(0))


def test_train_test_split_rejects_mismatched_lengths():
    """y of another length than X raises ValueError with both shapes."""
    with pytest.raises(ValueError, match=re.escape("y must be 1-D with len(X)=4 entries; got shape (3,)")):
        train_test_split(np.zeros((4, 1)), [0, 1, 1], rng=rng_of(0))


def _split_ids_plain(y, seed, test_size=0.25):
    ids = np.arange(len(y), dtype=float)[:, None]   # X holds each row's own index
    X_tr, X_te, y_tr, y_te = train_test_split(ids, y, test_size=test_size, stratify=False,
                                              rng=rng_of(seed))
    return X_tr[:, 0].astype(int), X_te[:, 0].astype(int), y_tr, y_te


@pytest.mark.parametrize("n_samples, test_size, n_test", [(300, 0.25, 75), (10, 0.25, 3),
                                                         (2, 0.1, 1), (2, 0.9, 1)])
def test_train_test_split_without_stratification_sizes(n_samples, test_size, n_test):
    """stratify=False sends round(test_size * n) rows to the test set, but 1 .. n - 1."""
    y = make_regression(n_samples, 2, rng=rng_of(0)).y
    _, te, _, y_te = _split_ids_plain(y, 0, test_size)
    assert len(te) == len(y_te) == n_test


@pytest.mark.parametrize("seed", SEEDS)
def test_train_test_split_of_a_regression_target(seed):
    """A regression split is disjoint and complete, keeps float targets, and is seeded."""
    y = make_regression(100, 2, rng=rng_of(seed)).y
    tr, te, y_tr, y_te = _split_ids_plain(y, seed)
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(y)))
    assert np.array_equal(y_tr, y[tr]) and np.array_equal(y_te, y[te])
    assert y_tr.dtype == np.float64
    assert np.array_equal(_split_ids_plain(y, seed)[1], te)
    assert not np.array_equal(_split_ids_plain(y, seed + 10)[1], te)


def test_train_test_split_float_labels_are_still_classes():
    """Whole-valued float labels (as read from a CSV) give the same stratified split as ints."""
    y = load("wine").y
    assert np.array_equal(_split_ids(y, 3)[1], _split_ids(y.astype(float), 3)[1])


def test_train_test_split_refuses_to_stratify_a_regression_target():
    """Stratifying real-valued y raises ValueError that says to pass stratify=False."""
    expected = ("y must hold class labels to stratify; got 0.5 at index 1. "
                "For a regression target pass stratify=False")
    with pytest.raises(ValueError, match=re.escape(expected)):
        train_test_split(np.zeros((3, 1)), [1.0, 0.5, 2.0], rng=rng_of(0))


@pytest.mark.parametrize("kwargs, message", [
    ({"stratify": "no"}, "stratify must be true or false; got 'no'"),
    ({"stratify": False, "X": np.zeros((1, 1)), "y": [0.5]},
     "need at least 2 samples to split without stratification; got 1"),
])
def test_train_test_split_rejects_bad_stratify_arguments(kwargs, message):
    """A non-bool stratify, or a single sample to split plainly, raises ValueError."""
    arrays = {"X": np.zeros((4, 1)), "y": [0, 0, 1, 1]}
    with pytest.raises(ValueError, match=re.escape(message)):
        train_test_split(**{**arrays, **kwargs}, rng=rng_of(0))


def test_standardize_train_has_zero_mean_unit_std():
    """Standardized training columns have mean 0 and standard deviation 1."""
    X = load("wine").X
    Z_train, _ = standardize(X[:100], X[100:])
    np.testing.assert_allclose(Z_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1, rtol=1e-12)


def test_standardize_uses_train_statistics_only():
    """The test set is scaled with the training mean and std (hand-computed example)."""
    X_train = [[1.0, 2.0], [3.0, 6.0]]          # mean (2, 4), std (1, 2)
    Z_train, Z_test = standardize(X_train, [[5.0, 0.0], [2.0, 4.0]])
    assert Z_train.tolist() == [[-1.0, -1.0], [1.0, 1.0]]
    assert Z_test.tolist() == [[3.0, -2.0], [0.0, 0.0]]


def test_standardize_constant_column_is_zero_without_warnings():
    """A constant training column gets scale 1 and maps to exactly 0, with no division warning."""
    X_train = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z_train, Z_test = standardize(X_train, [[1.1, 2.0]])
    assert np.all(Z_train[:, 0] == 0) and Z_test[0, 0] == pytest.approx(1.0)


def test_standardize_rejects_mismatched_columns():
    """X_test with another column count raises ValueError naming the expected count."""
    with pytest.raises(ValueError, match=re.escape("X_test must be 2-D with n_features=2 columns; got shape (1, 3)")):
        standardize(np.zeros((2, 2)), np.zeros((1, 3)))


# ---------------------------------------------------------------- partitioners

def _options(name, n_parts):
    return {"proportional": {"weights": np.arange(1, n_parts + 1)},
            "label_skew": {"alpha": 0.3}, "size_skew": {"exponent": 1.5},
            "by_label": {"classes_per_part": 2}}.get(name, {})


@pytest.mark.parametrize("name", list(PARTITIONERS))
@pytest.mark.parametrize("n_parts", [1, 3, 7, 150])
@pytest.mark.parametrize("seed", SEEDS)
def test_partition_covers_every_index_once(name, n_parts, seed):
    """Shards are n_parts int64 index arrays that together hold every index exactly once."""
    y = load("iris").y
    shards = partition(name, y, n_parts, rng=rng_of(seed), **_options(name, n_parts))
    assert len(shards) == n_parts and all(s.dtype == np.int64 for s in shards)
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(len(y)))


def _dominance(y, shards):
    """Mean over shards of the fraction of the shard's commonest class."""
    return np.mean([np.bincount(y[s]).max() / s.size for s in shards])


def test_label_skew_small_alpha_is_skewed_large_alpha_is_near_iid():
    """Dirichlet(alpha) shares: alpha=0.05 gives near one-class shards, alpha=1000 the
    class mix of the whole set (digits: 10 balanced classes, commonest ~0.1)."""
    y = load("digits").y
    skewed = [_dominance(y, label_skew(y, 10, rng=rng_of(s), alpha=0.05)) for s in SEEDS]
    mixed = [_dominance(y, label_skew(y, 10, rng=rng_of(s), alpha=1000.0)) for s in SEEDS]
    assert min(skewed) > 0.6 and max(mixed) < 0.16


def test_size_skew_follows_the_power_law():
    """Exponent 0: equal shards; exponent 1: sizes proportional to 1/rank (to within one
    sample), in a random order."""
    y = np.zeros(1000)
    equal = [s.size for s in size_skew(y, 4, rng=rng_of(0), exponent=0.0)]
    assert equal == [250] * 4
    zipf = sorted((s.size for s in size_skew(y, 4, rng=rng_of(0), exponent=1.0)), reverse=True)
    expected = 1000 * np.array([1, 1 / 2, 1 / 3, 1 / 4]) / (1 + 1 / 2 + 1 / 3 + 1 / 4)
    assert np.all(np.abs(np.array(zipf) - expected) < 1)
    with pytest.raises(ValueError, match=r"exponent must be a finite number >= 0; got -1"):
        size_skew(y, 4, rng=rng_of(0), exponent=-1)


def test_by_label_gives_each_shard_its_classes_only():
    """Each of 10 shards of digits holds exactly 2 classes, each class sits on 2 shards."""
    y = load("digits").y
    shards = by_label(y, 10, rng=rng_of(0), classes_per_part=2)
    assert all(np.unique(y[s]).size == 2 for s in shards)
    owners = [sum(c in set(y[s]) for s in shards) for c in range(10)]
    assert owners == [2] * 10
    with pytest.raises(ValueError, match=r"classes_per_part must be an integer from 1 to the "
                                         r"10 classes; got 11"):
        by_label(y, 10, rng=rng_of(0), classes_per_part=11)


def test_label_skew_leaves_no_shard_empty():
    """Even with one sample per shard and a tiny alpha, every shard has a sample."""
    y = np.repeat([0, 1, 2], 4)
    for seed in SEEDS:
        shards = label_skew(y, 12, rng=rng_of(seed), alpha=0.01)
        assert all(s.size == 1 for s in shards)
        assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(12))


@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf"), "1"])
def test_label_skew_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a finite number > 0; got"):
        label_skew(np.repeat([0, 1], 5), 2, rng=rng_of(0), alpha=alpha)


@pytest.mark.parametrize("n_samples, n_parts", [(10, 3), (150, 7), (11, 11)])
def test_iid_sizes_differ_by_at_most_one(n_samples, n_parts):
    """iid shard sizes differ by at most one sample."""
    lengths = [len(s) for s in iid(np.zeros(n_samples), n_parts, rng=rng_of(0))]
    assert max(lengths) - min(lengths) <= 1 and sum(lengths) == n_samples


@pytest.mark.parametrize("weights", [[1, 2, 3, 4], [3.5, 1.0], [1.0, 1.0, 1.0], [0.3, 7.1, 2.2]])
def test_proportional_sizes_within_one_of_weights(weights):
    """proportional shard sizes are within one sample of n_samples * w_i / sum(w)."""
    y = np.zeros(101)
    lengths = np.array([len(s) for s in proportional(y, len(weights), rng=rng_of(0), weights=weights)])
    exact = len(y) * np.asarray(weights) / np.sum(weights)
    assert np.all(np.abs(lengths - exact) < 1)


def test_proportional_never_leaves_a_shard_empty():
    """With n_samples >= n_parts every shard is non-empty, even with tiny weights."""
    shards = proportional(np.zeros(5), 3, rng=rng_of(0), weights=[1000, 1, 1])
    assert [len(s) for s in shards] == [3, 1, 1]


@pytest.mark.parametrize("name", list(PARTITIONERS))
def test_partition_deterministic_per_seed(name):
    """The same seed gives identical shards and another seed different ones."""
    y, opts = np.arange(60) % 3, _options(name, 4)
    a, b, c = (partition(name, y, 4, rng=rng_of(s), **opts) for s in (1, 1, 2))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_partition_by_name_equals_direct_call():
    """partition(name, ...) returns exactly what the registered function returns."""
    y = np.zeros(20)
    by_name = partition("proportional", y, 3, rng=rng_of(4), weights=[1, 2, 3])
    direct = proportional(y, 3, rng=rng_of(4), weights=[1, 2, 3])
    assert all(np.array_equal(u, v) for u, v in zip(by_name, direct))


@pytest.mark.parametrize("name", list(PARTITIONERS))
@pytest.mark.parametrize("n_parts, shown", [(0, "0"), (11, "11"), (2.5, "2.5"), (True, "True")])
def test_partition_rejects_bad_n_parts(name, n_parts, shown):
    """n_parts outside 1..len(y) raises ValueError with the bound and the value."""
    message = f"n_parts must be an integer with 1 <= n_parts <= len(y)=10; got {shown}"
    with pytest.raises(ValueError, match=re.escape(message)):
        partition(name, np.zeros(10), n_parts, rng=rng_of(0), **_options(name, 3))


@pytest.mark.parametrize("call, message", [
    (lambda: partition("dirichlet", np.zeros(4), 2, rng=rng_of(0)),
     "unknown partitioner 'dirichlet'; known partitioners: iid, proportional"),
    (lambda: partition("iid", np.zeros(4), 2, rng=rng_of(0), weights=[1, 1]),
     "partitioner 'iid' has no option 'weights'; its options: none"),
    (lambda: partition("proportional", np.zeros(4), 2, rng=rng_of(0)),
     "partitioner 'proportional' needs the option 'weights'"),
    (lambda: proportional(np.zeros(4), 2, rng=rng_of(0), weights=[1, 2, 3]),
     "weights must have n_parts=2 entries; got 3"),
    (lambda: proportional(np.zeros(4), 2, rng=rng_of(0), weights=[1, 0]),
     "weights must be finite and > 0; got [1.0, 0.0]"),
    (lambda: iid(np.zeros(4), 2, rng=42),
     "rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); got int"),
    (lambda: iid(np.zeros((4, 2)), 2, rng=rng_of(0)),
     "y must be 1-D; got shape (4, 2)"),
])
def test_partition_error_messages(call, message):
    """Bad partitioner names, options, weights, rng or labels raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_metrics_of_a_classifier_result():
    """balanced accuracy is the mean recall; a constant prediction scores 1/k whatever
    the proportions; per-class precision/recall/F1 with 0 for a class never predicted."""
    from simdml.metrics import balanced_accuracy, classification_report, confusion_matrix
    y = np.array([0] * 90 + [1] * 10)
    constant = np.zeros(100, dtype=int)
    assert balanced_accuracy(y, constant) == 0.5
    report = classification_report(y, constant)
    assert report["accuracy"] == 0.9 and report["recall"] == [1.0, 0.0]
    assert report["precision"] == [0.9, 0.0] and report["f1"][1] == 0.0
    assert report["macro_f1"] == pytest.approx((2 * 0.9 / 1.9 + 0) / 2)
    np.testing.assert_array_equal(confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], 3),
                                  [[1, 0, 0], [0, 0, 1], [0, 1, 1]])


def test_label_noise_flips_the_stated_fraction_and_keeps_the_features():
    """label_noise draws labels at random for that fraction of rows (a random label can
    equal the true one, so ~ fraction x (k-1)/k change), after the features are drawn."""
    clean = make_classification(4000, 3, 3, rng=rng_of(0))
    noisy = make_classification(4000, 3, 3, label_noise=0.3, rng=rng_of(0))
    np.testing.assert_array_equal(clean.X, noisy.X)
    changed = np.mean(clean.y != noisy.y)
    assert changed == pytest.approx(0.3 * 2 / 3, abs=0.03)
    with pytest.raises(ValueError, match=r"label_noise must be in \[0, 1\); got 1.0"):
        make_classification(10, label_noise=1.0, rng=rng_of(0))


def test_breast_cancer_rare_is_a_view_with_a_rare_class():
    rare, full = load("breast_cancer_rare"), load("breast_cancer")
    assert np.bincount(rare.y).tolist() == [20, 357]
    malignant = full.X[full.y == 0][:20]
    np.testing.assert_array_equal(rare.X[rare.y == 0], malignant)


def test_permute_rows_in_place_equals_fancy_indexing():
    """permute_rows(X, perm) leaves X[perm] in X, without a second copy of X: its
    scratch is at most an eighth of X's columns (one, for fewer than 9)."""
    import tracemalloc
    from simdml.data import permute_rows
    rng = rng_of(3)
    for n, d in ((1, 3), (2, 3), (7, 3), (1000, 3), (1000, 1), (500, 17), (300, 64)):
        X = rng.normal(size=(n, d))
        if d == 17:
            X = np.asfortranarray(X)
        perm = rng.permutation(n)
        expected = X[perm]
        permute_rows(X, perm)
        np.testing.assert_array_equal(X, expected)
    X = rng.normal(size=(20_000, 64))
    perm = rng.permutation(20_000)
    expected = X[perm]
    tracemalloc.start()
    permute_rows(X, perm)
    scratch = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(X, expected)
    assert scratch <= X.nbytes / 8 + 20_000 + 10_000     # a block, and a flag per row
    x = rng.normal(size=50)
    perm = rng.permutation(50)
    expected = x[perm]
    permute_rows(x, perm)
    np.testing.assert_array_equal(x, expected)
    with pytest.raises(ValueError, match=r"perm has 2 entries for 3 rows"):
        permute_rows(np.zeros((3, 1)), np.arange(2))
    with pytest.raises(ValueError, match=r"perm must hold every row index exactly once"):
        permute_rows(np.zeros((3, 1)), np.array([0, 0, 1]))


def test_iid_cuts_one_permutation_as_array_split_does_without_an_array_per_shard():
    """iid's shards are views of one permutation cut at np.array_split's sizes (the same
    indices, bit for bit), held as two arrays: a Parts, indexable like a list."""
    from simdml.data import Parts, concatenated, sizes_of
    y = np.zeros(103)
    parts = iid(y, 10, rng=rng_of(5))
    order = rng_of(5).permutation(103)
    expected = np.array_split(order, 10)
    assert isinstance(parts, Parts) and len(parts) == 10
    for got, want in zip(parts, expected):
        np.testing.assert_array_equal(got, want)
        assert got.base is parts.order or got.base is parts.order.base   # a view
    np.testing.assert_array_equal(parts[-1], expected[-1])
    assert [p.tolist() for p in parts[2:4]] == [e.tolist() for e in expected[2:4]]
    assert sizes_of(parts).tolist() == [len(e) for e in expected]
    np.testing.assert_array_equal(concatenated(parts), order)
    ranges = Parts(None, [2, 0, 3])
    assert [r.tolist() for r in ranges] == [[0, 1], [], [2, 3, 4]]
    with pytest.raises(IndexError):
        parts[10]
    with pytest.raises(ValueError, match="sizes sum to 3 for"):
        Parts(np.arange(4), [1, 2])


def _label_skew_reference(y, n_parts, rng, alpha):
    """label_skew as it was first written: per class, the shuffled members split by the
    apportioned Dirichlet shares; each shard sorted; each empty one, in order, takes the
    last sample of the (first) largest."""
    from simdml.data import apportion
    parts = [[] for _ in range(n_parts)]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        shares = np.maximum(rng.dirichlet(np.full(n_parts, float(alpha))), np.finfo(float).tiny)
        for part, chunk in zip(parts, np.split(members, np.cumsum(apportion(members.size, shares))[:-1])):
            part.append(chunk)
    shards = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
    for i in range(n_parts):
        if shards[i].size == 0:
            j = int(np.argmax([s.size for s in shards]))
            shards[i], shards[j] = shards[j][-1:], shards[j][:-1]
    return shards


@pytest.mark.parametrize("n, n_parts, alpha, k", [(200, 7, 0.5, 3), (300, 150, 0.05, 4),
                                                   (1000, 900, 0.1, 10), (50, 50, 0.01, 2)])
def test_label_skew_is_its_per_shard_construction(n, n_parts, alpha, k):
    """The vectorized label_skew (one sort by shard, a heap for the empty shards) gives
    exactly the shards of the per-shard construction, many empty ones included."""
    y = rng_of(n).integers(0, k, n)
    got = label_skew(y, n_parts, rng=rng_of(1), alpha=alpha)
    want = _label_skew_reference(y, n_parts, rng_of(1), alpha)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("shape", [(1600, 2000), (37, 5), (1000, 513), (70_000, 3)])
def test_scaling_by_blocks_has_the_bits_of_column_by_column(shape, monkeypatch):
    """``scaling``'s blocks of columns (a copy of at most SCRATCH bytes, reduced along
    its rows) give each column's ``std`` bit for bit, at any block width."""
    import simdml.data.split as split
    rng = np.random.default_rng(3)
    X = rng.standard_normal(shape) * rng.uniform(0.1, 100, shape[1]) + rng.uniform(-50, 50, shape[1])
    want = np.array([X[:, j].std() for j in range(shape[1])])
    for scratch in (1, 8 * shape[0] * 3 + 5, split.SCRATCH):
        monkeypatch.setattr(split, "SCRATCH", scratch)
        mean, scale = split.scaling(X)
        assert np.array_equal(scale, want) and np.array_equal(mean, X.mean(axis=0))
    X[shape[0] // 2, shape[1] - 1] = np.nan                 # in the last block
    with pytest.raises(ValueError, match="must be finite"):
        split.scaling(X)

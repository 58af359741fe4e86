"""Data: bundled datasets, a synthetic generator, train/test split and partitioners.

Everything a strategy trains on comes from here. The four bundled datasets are small
UCI classics (see ``simdml/datasets/README.md`` for their sources and licence);
``make_classification`` draws Gaussian blobs and ``make_regression`` a noisy linear
target; ``train_test_split`` holds out a stratified (for regression, plain) test set;
``standardize`` z-scores with training statistics only; and the partitioners cut a
training set into one shard per node. Functions that draw take an
explicit ``rng: np.random.Generator``; nothing here touches global random state.
"""
from __future__ import annotations

import functools
import gzip
import inspect
import io
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

# breast_cancer_rare is a view of breast_cancer.csv that keeps only the first 20
# malignant tumours (datasets.json: "keep"): a real dataset where one class is rare.
DATASETS: tuple[str, ...] = ("iris", "wine", "breast_cancer", "digits", "breast_cancer_rare")


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A labelled dataset; construction checks shapes, dtypes and labels.

    A classification dataset names its classes; a regression dataset has
    ``class_names=()`` and a real-valued ``y`` (see :attr:`is_regression`).

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`, ``"synthetic"`` (:func:`make_classification`) or
        ``"synthetic_regression"`` (:func:`make_regression`).
    X : ndarray of shape (n_samples, n_features), float64
        Features; read-only when it comes from :func:`load`.
    y : ndarray of shape (n_samples,), int64 or float64
        Classification: int64 class indices ``0 .. n_classes - 1``; ``y[i]`` names
        ``class_names[y[i]]``. Regression: finite float64 targets.
    feature_names, class_names : tuple of str
        ``class_names=()`` makes a regression dataset.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        X, y, k = self.X, self.y, len(self.class_names)
        if X.ndim != 2 or X.dtype != np.float64 or len(self.feature_names) != X.shape[1]:
            raise ValueError(f"Dataset.X must be 2-D float64 with one column per feature name "
                             f"({len(self.feature_names)}); got {X.dtype} of shape {X.shape}")
        bad = ~np.isfinite(X)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise ValueError(f"Dataset.X holds {X[row, col]} in column "
                             f"{self.feature_names[col]!r} (row {row}); features must be finite "
                             f"numbers: drop or impute the missing values first")
        if k == 0:  # regression
            if y.shape != (X.shape[0],) or y.dtype != np.float64 or not np.isfinite(y).all():
                raise ValueError(f"Dataset.y of a regression dataset (class_names=()) must be "
                                 f"finite float64 of shape ({X.shape[0]},); "
                                 f"got {y.dtype} of shape {y.shape}")
        elif y.shape != (X.shape[0],) or y.dtype != np.int64 or (y.size and not 0 <= y.min() <= y.max() < k):
            raise ValueError(f"Dataset.y must be int64 of shape ({X.shape[0]},) with values in "
                             f"[0, {k}); got {y.dtype} of shape {y.shape}")

    @property
    def n_samples(self) -> int:
        """Number of rows of ``X``."""
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """Number of columns of ``X``."""
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        """Number of classes (``len(class_names)``), present in ``y`` or not; 0 for regression."""
        return len(self.class_names)

    @property
    def is_regression(self) -> bool:
        """True when ``y`` is a real-valued target (``class_names=()``), not class indices."""
        return len(self.class_names) == 0

    def __repr__(self) -> str:
        # The arrays would drown the interesting part; show the sizes instead.
        target = "is_regression=True" if self.is_regression else f"n_classes={self.n_classes}"
        return (f"Dataset(name={self.name!r}, n_samples={self.n_samples}, "
                f"n_features={self.n_features}, {target})")


# --------------------------------------------------------------------- loading

@functools.lru_cache(maxsize=None)
def _metadata() -> dict:
    text = resources.files("simdml.datasets").joinpath("datasets.json").read_text("utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=None)
def _read_csv(filename: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    # Parsed once per process; the arrays are frozen so that no caller can corrupt
    # the cache, and load() hands out views, whose WRITEABLE flag cannot be turned back on.
    raw = resources.files("simdml.datasets").joinpath(filename).read_bytes()
    if filename.endswith(".gz"):
        raw = gzip.decompress(raw)
    header, _, body = raw.decode("utf-8").partition("\n")
    columns = tuple(header.strip().split(","))
    assert columns[-1] == "target", f"{filename}: last column is {columns[-1]!r}, not 'target'"
    table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    X = np.ascontiguousarray(table[:, :-1])
    y = table[:, -1].astype(np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y, columns[:-1]


def load(name: str) -> Dataset:
    """Load one of the bundled datasets (parsed once per process, then cached).

    Parameters
    ----------
    name : {"iris", "wine", "breast_cancer", "digits", "breast_cancer_rare"}
        ``breast_cancer_rare`` is breast_cancer with only its first 20 malignant rows
        (of 212) kept: 20 malignant, 357 benign.
        Anything else raises ValueError; ``"synthetic"`` is made by :func:`make_classification`.

    Returns
    -------
    Dataset
        With read-only ``X`` (float64) and ``y`` (int64); copy them to modify.

    Examples
    --------
    >>> load("iris")
    Dataset(name='iris', n_samples=150, n_features=4, n_classes=3)
    """
    if name == "synthetic":
        raise ValueError("dataset 'synthetic' is generated, not loaded; "
                         "call make_classification(..., rng=rng)")
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, "
                         "synthetic (made with make_classification)")
    meta = _metadata()[name]
    X, y, feature_names = _read_csv(meta["file"])
    if "keep" in meta:  # a derived view: only the first rows of one class
        rare, first = meta["keep"]["class"], meta["keep"]["first"]
        rows = np.sort(np.concatenate([np.flatnonzero(y == rare)[:first], np.flatnonzero(y != rare)]))
        X, y = X[rows], y[rows]
        X.flags.writeable = y.flags.writeable = False
    class_names = tuple(meta["classes"])
    return Dataset(name=name, X=X.view(), y=y.view(),
                   feature_names=feature_names, class_names=class_names)


# ----------------------------------------------------------------- validation

def _check_int(name: str, value, *, low: int, high: int | None = None, high_name: str = "") -> int:
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < low or (high is not None and value > high):
        rule = f">= {low}" if high is None else f"with {low} <= {name} <= {high_name}={high}"
        raise ValueError(f"{name} must be an integer {rule}; got {value!r}")
    return int(value)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_non_negative(name: str, value) -> None:
    if not (_is_real(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator, e.g. "
                         f"np.random.default_rng(seed); got {type(rng).__name__}")


def _check_weights(name: str, weights, *, n: int, n_name: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have {n_name}={n} entries; got {w.size}")
    if not (np.all(np.isfinite(w)) and np.all(w > 0)):
        raise ValueError(f"{name} must be finite and > 0; got {w.tolist()}")
    return w


def _check_X_y(X, y) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must be 1-D with len(X)={X.shape[0]} entries; got shape {y.shape}")
    return X, y


# ------------------------------------------------------------------ synthetic

def sizes(n_samples: int, weights, *, min_size: int = 0) -> np.ndarray:
    """Split `n_samples` into integer parts proportional to `weights`.

    Largest-remainder (Hamilton) rounding: each part gets the floor of its exact
    share ``n_samples * w_i / sum(w)``, and the parts with the largest remainders
    get one more (ties go to the lower index), so ``|size_i - share_i| < 1`` and the
    sizes sum to `n_samples`. A part whose share is below `min_size` gets exactly
    `min_size`, and the rest is shared among the other parts in the same way.

    Parameters
    ----------
    n_samples, min_size : int
        ``n_samples >= min_size * n_parts``, else ValueError.
    weights : array-like of shape (n_parts,)
        Positive and finite, else ValueError; normalised here.

    Returns
    -------
    ndarray of shape (n_parts,), int64

    References
    ----------
    M. L. Balinski and H. P. Young, *Fair Representation*, Yale University Press, 1982.

    Examples
    --------
    >>> sizes(10, [1, 1, 1]).tolist()
    [4, 3, 3]
    """
    n_samples = _check_int("n_samples", n_samples, low=0)
    if np.ndim(weights) != 1 or np.size(weights) == 0:
        raise ValueError(f"weights must be a non-empty 1-D sequence; got {weights!r}")
    w = _check_weights("weights", weights, n=np.size(weights), n_name="len(weights)")
    if n_samples < min_size * w.size:
        raise ValueError(f"n_samples must be >= min_size * n_parts = {min_size * w.size}; got {n_samples}")
    counts = np.full(w.size, min_size, dtype=np.int64)
    free = np.ones(w.size, dtype=bool)
    while True:
        n_free = n_samples - counts[~free].sum()
        share = n_free * w[free] / w[free].sum()
        is_small = share < min_size
        if not is_small.any():
            break
        free[np.flatnonzero(free)[is_small]] = False   # pinned at min_size
    floor = np.floor(share).astype(np.int64)
    n_left = n_free - floor.sum()
    floor[np.argsort(floor - share, kind="stable")[:n_left]] += 1
    counts[free] = floor
    assert counts.sum() == n_samples, (counts, n_samples)
    return counts


def make_classification(n_samples: int = 300, n_features: int = 4, n_classes: int = 2, *,
                        weights=None, class_sep: float = 1.0, label_noise: float = 0.0,
                        rng: np.random.Generator) -> Dataset:
    """Draw Gaussian blobs, one per class, around distinct hypercube vertices.

    Each class centre is a distinct random vertex of the hypercube
    ``{-class_sep, +class_sep} ** n_features`` (so centres are at least
    ``2 * class_sep`` apart); each sample is its centre plus standard normal noise.
    Class sizes follow `weights` by :func:`sizes` (every class gets at least one
    sample); rows are shuffled. Draws: centres, then noise, then the shuffle, so the
    same seed with a larger `class_sep` moves the same points further apart.

    Parameters
    ----------
    n_samples, n_features, n_classes : int, default 300, 4, 2
        ``n_samples >= max(2, n_classes)``; ``2 ** n_features >= n_classes >= 2``.
    weights : array-like of shape (n_classes,) or None, default None
        Positive class proportions, normalised here; None means balanced.
    class_sep : float, default 1.0
        Half the side of the hypercube, in units of the noise standard deviation.
    label_noise : float, default 0.0
        Fraction of the rows, in [0, 1), whose label is replaced by a class drawn
        uniformly at random (drawn last: the features do not change with it).
    rng : numpy.random.Generator

    Returns
    -------
    Dataset
        Named ``"synthetic"``, features ``x0, x1, ...``, classes ``class_0, ...``.

    Raises
    ------
    ValueError
        For any argument breaking its rule; the message names both.

    References
    ----------
    I. Guyon, "Design of experiments of the NIPS 2003 variable selection benchmark",
    2003 (the generator behind scikit-learn's ``make_classification``).

    Examples
    --------
    >>> ds = make_classification(10, n_classes=3, weights=[5, 3, 2], rng=np.random.default_rng(0))
    >>> np.bincount(ds.y).tolist()
    [5, 3, 2]
    """
    n_samples = _check_int("n_samples", n_samples, low=2)
    n_features = _check_int("n_features", n_features, low=1)
    n_classes = _check_int("n_classes", n_classes, low=2)
    if n_classes > n_samples:
        raise ValueError(f"n_classes must be <= n_samples={n_samples}; got {n_classes}")
    if n_classes > 2 ** n_features:
        raise ValueError(f"n_classes must be <= 2**n_features={2 ** n_features} so that each "
                         f"class has its own hypercube vertex; got {n_classes}")
    w = np.ones(n_classes) if weights is None else _check_weights(
        "weights", weights, n=n_classes, n_name="n_classes")
    _check_non_negative("class_sep", class_sep)
    if not (_is_real(label_noise) and 0 <= label_noise < 1):
        raise ValueError(f"label_noise must be in [0, 1); got {label_noise!r}")
    _check_rng(rng)

    centres = class_sep * _distinct_signs(n_classes, n_features, rng=rng)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), sizes(n_samples, w, min_size=1))
    X = rng.standard_normal((n_samples, n_features))
    y = y[rng.permutation(n_samples)]
    for j in range(n_features):  # in place, a column at a time: no second copy of X
        X[:, j] += centres[y, j]
    if label_noise > 0:
        flipped = rng.random(n_samples) < label_noise
        y[flipped] = rng.integers(n_classes, size=int(flipped.sum()))
    return Dataset(name="synthetic", X=X, y=y,
                   feature_names=tuple(f"x{j}" for j in range(n_features)),
                   class_names=tuple(f"class_{k}" for k in range(n_classes)))


def _distinct_signs(n_rows: int, n_cols: int, *, rng: np.random.Generator) -> np.ndarray:
    # Redraw duplicated rows until all differ; the caller ensures 2**n_cols >= n_rows.
    signs = rng.integers(0, 2, size=(n_rows, n_cols)) * 2.0 - 1.0
    while True:
        _, first = np.unique(signs, axis=0, return_index=True)
        if first.size == n_rows:
            return signs
        duplicates = np.setdiff1d(np.arange(n_rows), first)
        signs[duplicates] = rng.integers(0, 2, size=(duplicates.size, n_cols)) * 2.0 - 1.0


def make_regression(n_samples: int = 300, n_features: int = 4, *, noise: float = 0.1,
                    coef: bool = False, rng: np.random.Generator):
    """Draw a linear regression problem: ``y = X @ w_true + b_true + noise * e``.

    ``X``, ``w_true``, ``b_true`` and ``e`` are all standard normal, so each feature
    carries signal of the same order and ``noise`` is the standard deviation of the
    irreducible error: the best possible test R^2 is about
    ``||w_true||^2 / (||w_true||^2 + noise^2)``. Draws: ``w_true``, ``b_true``, then
    ``X``, then ``e``, so the same seed with another `noise` gives the same ``X`` and
    the same truth.

    Parameters
    ----------
    n_samples, n_features : int, default 300, 4
        ``n_samples >= 2`` (so that it can be split), ``n_features >= 1``.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise added to ``y``, finite and >= 0.
    coef : bool, default False
        Also return the true parameters, like scikit-learn's ``coef=True``.
    rng : numpy.random.Generator

    Returns
    -------
    Dataset
        Named ``"synthetic_regression"``, features ``x0, x1, ...``, ``class_names=()``
        and float64 ``y`` (:attr:`Dataset.is_regression` is True).
    w_true : ndarray of shape (n_features,)
        Only when `coef` is True.
    b_true : float
        Only when `coef` is True.

    Raises
    ------
    ValueError
        For any argument breaking its rule; the message names both.

    References
    ----------
    T. Hastie, R. Tibshirani and J. Friedman, *The Elements of Statistical
    Learning*, 2nd ed., Springer, 2009, Sec. 3.2, eq. (3.9): the additive Gaussian
    error model ``Y = X beta + eps``.

    Examples
    --------
    >>> make_regression(5, 2, rng=np.random.default_rng(0))
    Dataset(name='synthetic_regression', n_samples=5, n_features=2, is_regression=True)
    """
    n_samples = _check_int("n_samples", n_samples, low=2)
    n_features = _check_int("n_features", n_features, low=1)
    _check_non_negative("noise", noise)
    _check_rng(rng)

    w_true = rng.standard_normal(n_features)
    b_true = float(rng.standard_normal())
    X = rng.standard_normal((n_samples, n_features))
    y = X @ w_true + b_true + noise * rng.standard_normal(n_samples)
    ds = Dataset(name="synthetic_regression", X=X, y=y,
                 feature_names=tuple(f"x{j}" for j in range(n_features)), class_names=())
    return (ds, w_true, b_true) if coef else ds


# ------------------------------------------------------------ split and scale

def train_test_split(X, y, *, test_size: float = 0.25, stratify: bool = True,
                     rng: np.random.Generator):
    """Hold out a shuffled test set, stratified by class unless ``stratify=False``.

    Stratified: each class of ``n_c`` samples sends ``round(test_size * n_c)`` of
    them (rounding half up) to the test set, but at least one and at most
    ``n_c - 1``, so a class with two or more samples appears on both sides; a class
    with a single sample stays in the training set. Not stratified (a regression
    target): the same rule applied to all ``n`` samples as one group. Both sides are
    then shuffled.

    Parameters
    ----------
    X, y : array-like of shape (n_samples, n_features) and (n_samples,)
        With ``stratify=True``, `y` holds class labels: integers, or floats with
        whole values; other floats raise ValueError (a regression target cannot be
        stratified: every value would be a class of its own).
    test_size : float in (0, 1), default 0.25
    stratify : bool, default True
        False for a regression target, e.g. ``stratify=not dataset.is_regression``.
        The flag is explicit rather than guessed from ``y.dtype``: float labels
        read from a CSV are still classes.
    rng : numpy.random.Generator

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        New (writeable) arrays.

    Examples
    --------
    >>> X_tr, X_te, y_tr, y_te = train_test_split(
    ...     np.zeros((8, 1)), [0, 0, 0, 0, 1, 1, 1, 1], rng=np.random.default_rng(0))
    >>> np.bincount(y_te).tolist()
    [1, 1]
    """
    X, y = _check_X_y(X, y)
    train, test = train_test_indices(y, test_size=test_size, stratify=stratify, rng=rng)
    return X[train], X[test], y[train], y[test]


def train_test_indices(y, *, test_size: float = 0.25, stratify: bool = True,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The row indices of :func:`train_test_split` (``train``, ``test``), without copying
    any features: for large data, index once, in the order you need."""
    y = np.asarray(y)
    if not (_is_real(test_size) and 0 < test_size < 1):
        raise ValueError(f"test_size must be a float with 0 < test_size < 1; got {test_size!r}")
    if not isinstance(stratify, bool):
        raise ValueError(f"stratify must be True or False; got {stratify!r}")
    if stratify:
        _check_class_labels(y)
    elif y.size < 2:
        raise ValueError(f"need at least 2 samples to split without stratification; got {y.size}")
    _check_rng(rng)
    if stratify:
        groups = [np.flatnonzero(y == label) for label in np.unique(y)]
    else:
        groups = [np.arange(y.size)]
    train_parts, test_parts = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for group in groups:
        members = rng.permutation(group)
        n_test = min(max(math.floor(test_size * members.size + 0.5), 1), members.size - 1)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test


def _check_class_labels(y: np.ndarray) -> None:
    if y.dtype.kind == "f":
        is_whole = np.isfinite(y) & (y == np.round(y))
        if not is_whole.all():
            i = int(np.argmin(is_whole))
            raise ValueError(f"y must hold class labels to stratify; got {float(y[i])!r} at "
                             f"index {i}. For a regression target pass stratify=False")


def scaling(X_train) -> tuple[np.ndarray, np.ndarray]:
    """The ``(mean, scale)`` per column that :func:`standardize` uses: the training
    mean and population standard deviation, scale 1 for a constant column."""
    X_train = np.asarray(X_train, dtype=np.float64)
    if X_train.ndim != 2 or X_train.shape[0] == 0:
        raise ValueError(f"X_train must be 2-D with at least one row; got shape {X_train.shape}")
    # column by column: the statistics of large data need no full-size temporaries
    if not all(np.isfinite(X_train[:, j]).all() for j in range(X_train.shape[1])):
        raise ValueError("X_train must be finite; got NaN or infinity")
    mean = X_train.mean(axis=0)
    scale = np.array([X_train[:, j].std() for j in range(X_train.shape[1])])
    # A computed mean of equal values can be off by an ulp; use the value itself.
    is_constant = np.ptp(X_train, axis=0) == 0
    mean[is_constant] = X_train[0, is_constant]
    scale[is_constant] = 1.0
    return mean, scale


def standardize(X_train, X_test, *, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Z-score both sets with the mean and standard deviation of the training set.

    ``z = (x - mean_train) / std_train`` per column (population std, ``ddof=0``).
    The test set never influences the statistics: that would leak it into training.
    A constant training column gets scale 1 and becomes exactly 0.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n_train, n_features) and (n_test, n_features)
        `X_train` non-empty and finite, else ValueError.
    copy : bool, default True
        False scales float64 arrays in place (and returns them): no second copy of
        large data.

    Returns
    -------
    Z_train, Z_test : ndarray, float64

    References
    ----------
    T. Hastie, R. Tibshirani and J. Friedman, *The Elements of Statistical
    Learning*, 2nd ed., Springer, 2009, Sec. 3.4.

    Examples
    --------
    >>> Z_train, Z_test = standardize([[1.0], [3.0]], [[5.0]])
    >>> Z_train.ravel().tolist(), Z_test.ravel().tolist()
    ([-1.0, 1.0], [3.0])
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    if X_train.ndim != 2 or X_train.shape[0] == 0:
        raise ValueError(f"X_train must be 2-D with at least one row; got shape {X_train.shape}")
    if X_test.ndim != 2 or X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_test must be 2-D with n_features={X_train.shape[1]} columns; "
                         f"got shape {X_test.shape}")
    mean, scale = scaling(X_train)
    if copy:
        return (X_train - mean) / scale, (X_test - mean) / scale
    for X in (X_train, X_test):  # in place: large data is not copied twice
        X -= mean
        X /= scale
    return X_train, X_test


# ---------------------------------------------------------------- partitioners

def _check_partition(y, n_parts, rng) -> int:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D; got shape {y.shape}")
    _check_int("n_parts", n_parts, low=1, high=y.size, high_name="len(y)")
    _check_rng(rng)
    return y.size


def iid(y, n_parts: int, *, rng: np.random.Generator) -> list[np.ndarray]:
    """Deal a random permutation of the samples into near-equal shards.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels; only their number matters here.
    n_parts : int
        Number of shards, ``1 <= n_parts <= n_samples``, else ValueError.
    rng : numpy.random.Generator

    Returns
    -------
    list of ndarray, int64
        Disjoint index arrays into `y` covering every index once; sizes differ by
        at most one (the first shards are the larger).

    Examples
    --------
    >>> [len(s) for s in iid(np.zeros(10), 3, rng=np.random.default_rng(0))]
    [4, 3, 3]
    """
    n_samples = _check_partition(y, n_parts, rng)
    order = rng.permutation(n_samples).astype(np.int64)
    return np.array_split(order, n_parts)


def proportional(y, n_parts: int, *, rng: np.random.Generator, weights) -> list[np.ndarray]:
    """Deal a random permutation into shards sized in proportion to `weights`.

    With node speeds as weights, every node needs about the same time per pass.
    Sizes come from :func:`sizes` with ``min_size=1``: no shard is empty.

    Parameters
    ----------
    y, n_parts, rng
        As for :func:`iid`.
    weights : array-like of shape (n_parts,)
        Positive and finite, e.g. node speeds in flop/s.

    Returns
    -------
    list of ndarray, int64
        Disjoint index arrays into `y` covering every index once.

    Examples
    --------
    >>> shards = proportional(np.zeros(10), 2, rng=np.random.default_rng(0), weights=[1, 4])
    >>> [len(s) for s in shards]
    [2, 8]
    """
    n_samples = _check_partition(y, n_parts, rng)
    w = _check_weights("weights", weights, n=n_parts, n_name="n_parts")
    counts = sizes(n_samples, w, min_size=1)
    order = rng.permutation(n_samples).astype(np.int64)
    return np.split(order, np.cumsum(counts)[:-1])


def label_skew(y, n_parts: int, *, rng: np.random.Generator, alpha: float) -> list[np.ndarray]:
    """Non-iid shards: each class is spread over the shards in Dirichlet(alpha) shares.

    For every class ``c`` a share vector ``p_c ~ Dirichlet(alpha, ..., alpha)`` is drawn
    and the class's (shuffled) samples are dealt in those proportions (``sizes``). Large
    ``alpha`` approaches iid shards; small ``alpha`` (0.1) gives shards dominated by one
    or two classes. A shard left empty takes one sample from the largest shard, so that
    every worker has data (``n_parts <= n_samples``).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    n_parts, rng
        As for :func:`iid`.
    alpha : float
        Concentration, > 0.

    Returns
    -------
    list of ndarray, int64
        Disjoint index arrays into `y` covering every index once, each sorted.

    References
    ----------
    T.-M. H. Hsu, H. Qi and M. Brown, "Measuring the Effects of Non-Identical Data
    Distribution for Federated Visual Classification", arXiv:1909.06335, 2019, Sec. 3.

    Examples
    --------
    >>> y = np.repeat([0, 1], 50)
    >>> shards = label_skew(y, 2, rng=np.random.default_rng(0), alpha=0.1)
    >>> sorted(len(s) for s in shards), sum(len(s) for s in shards)   # doctest: +SKIP
    """
    n_samples = _check_partition(y, n_parts, rng)
    if not (_is_real(alpha) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}")
    y = np.asarray(y)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_parts)]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        shares = rng.dirichlet(np.full(n_parts, float(alpha)))
        shares = np.maximum(shares, np.finfo(float).tiny)  # small alpha can underflow to 0
        for part, chunk in zip(parts, np.split(members, np.cumsum(sizes(members.size, shares))[:-1])):
            part.append(chunk)
    shards = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
    return _fill_empty(shards, n_samples)


def size_skew(y, n_parts: int, *, rng: np.random.Generator, exponent: float) -> list[np.ndarray]:
    """iid shards of power-law sizes: shard ``i`` (in a random order) gets a share
    proportional to ``(i + 1) ** -exponent``; 0 gives equal shards, 1 a Zipf law.
    Every shard keeps at least one sample.

    Parameters
    ----------
    y, n_parts, rng
        As for :func:`iid`.
    exponent : float
        >= 0.
    """
    n_samples = _check_partition(y, n_parts, rng)
    if not (_is_real(exponent) and np.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"exponent must be a finite number >= 0; got {exponent!r}")
    shares = (np.arange(1, n_parts + 1, dtype=float) ** -float(exponent))[rng.permutation(n_parts)]
    counts = sizes(n_samples, shares, min_size=1)
    order = rng.permutation(n_samples).astype(np.int64)
    return np.split(order, np.cumsum(counts)[:-1])


def by_label(y, n_parts: int, *, rng: np.random.Generator, classes_per_part: int) -> list[np.ndarray]:
    """Pathological non-iid shards: each shard holds ``classes_per_part`` classes only.

    Shard ``i`` gets classes ``(i + j) mod k`` for ``j < classes_per_part`` (a
    rotation, so each class goes to about the same number of shards), and each class's
    (shuffled) samples are split evenly among the shards that hold it. A shard that
    would be empty takes one sample from the largest (``n_parts <= n_samples``).

    Parameters
    ----------
    y, n_parts, rng
        As for :func:`iid`; ``y`` holds class labels.
    classes_per_part : int
        1 to the number of classes.

    References
    ----------
    H. B. McMahan et al., "Communication-Efficient Learning of Deep Networks from
    Decentralized Data", AISTATS 2017, Sec. 3 (the pathological non-IID split).
    """
    n_samples = _check_partition(y, n_parts, rng)
    y = np.asarray(y)
    classes = np.unique(y)
    k = classes.size
    if isinstance(classes_per_part, bool) or not isinstance(classes_per_part, (int, np.integer)) \
            or not 1 <= classes_per_part <= k:
        raise ValueError(f"classes_per_part must be an integer from 1 to the {k} classes; "
                         f"got {classes_per_part!r}")
    holders = {c: [i for i in range(n_parts) if (c - i) % k < classes_per_part] for c in range(k)}
    parts: list[list[np.ndarray]] = [[] for _ in range(n_parts)]
    for c in range(k):
        members = rng.permutation(np.flatnonzero(y == classes[c]))
        owners = holders[c] or [c % n_parts]  # more classes than shards x classes_per_part
        for owner, chunk in zip(owners, np.array_split(members, len(owners))):
            parts[owner].append(chunk)
    shards = [np.sort(np.concatenate(p)).astype(np.int64) if p else np.empty(0, np.int64)
              for p in parts]
    return _fill_empty(shards, n_samples)


def permute_rows(X: np.ndarray, perm: np.ndarray) -> None:
    """Reorder the rows of ``X`` in place so that row i becomes the old row ``perm[i]``:
    ``X[:] = X[perm]`` without a second copy of ``X`` (one row of scratch and a flag per
    row). Follows each cycle of the permutation (the cycle-leader algorithm).

    >>> X = np.arange(6.0).reshape(3, 2); permute_rows(X, np.array([2, 0, 1])); X.tolist()
    [[4.0, 5.0], [0.0, 1.0], [2.0, 3.0]]
    """
    n = perm.size
    if X.shape[0] != n:
        raise ValueError(f"perm has {n} entries for {X.shape[0]} rows")
    if n and (perm.min() < 0 or perm.max() >= n or not (np.bincount(perm, minlength=n) == 1).all()):
        raise ValueError("perm must hold every row index exactly once")  # else: a cycle
        # that never closes
    visited = np.zeros(n, dtype=bool)
    # perf: a memoryview yields Python ints, fast to index, at 8 bytes an entry (a list
    # would take 36): 0.6 s for 1e6 rows
    to = memoryview(np.ascontiguousarray(perm, dtype=np.int64))
    for start in range(n):
        if visited[start]:
            continue
        visited[start] = True
        k = to[start]
        if k == start:
            continue
        saved = X[start].copy()
        j = start
        while k != start:
            X[j] = X[k]
            visited[k] = True
            j, k = k, to[k]
        X[j] = saved


def _fill_empty(shards: list[np.ndarray], n_samples: int) -> list[np.ndarray]:
    """No empty shard: each borrows one sample from the largest."""
    for i in range(len(shards)):
        if shards[i].size == 0:
            j = int(np.argmax([s.size for s in shards]))
            shards[i], shards[j] = shards[j][-1:], shards[j][:-1]
    assert sum(s.size for s in shards) == n_samples
    return shards


PARTITIONERS: dict[str, Callable[..., list[np.ndarray]]] = {
    "iid": iid,
    "proportional": proportional,   # to node speed (the data pipeline passes the speeds)
    "label_skew": label_skew,
    "size_skew": size_skew,
    "by_label": by_label,
}

# Other names a scenario may use for a partitioner; ``DataConfig`` resolves them.
PARTITION_ALIASES: dict[str, str] = {
    "speed": "proportional",        # by the name the imbalance lessons use
}


def partition(name: str, y, n_parts: int, *, rng: np.random.Generator,
              **options) -> list[np.ndarray]:
    """Cut the samples into `n_parts` shards with the partitioner registered as `name`.

    Parameters
    ----------
    name : str
        A key of :data:`PARTITIONERS`.
    y, n_parts, rng
        As for :func:`iid`.
    **options
        The partitioner's own keyword arguments, e.g. ``weights`` for "proportional".

    Returns
    -------
    list of ndarray, int64
        Disjoint index arrays into `y` covering every index exactly once.

    Raises
    ------
    ValueError
        For an unknown name, a missing or unknown option, or a bad argument.

    Examples
    --------
    >>> [len(s) for s in partition("iid", np.zeros(7), 2, rng=np.random.default_rng(0))]
    [4, 3]
    """
    if name not in PARTITIONERS:
        raise ValueError(f"unknown partitioner {name!r}; known partitioners: {', '.join(PARTITIONERS)}")
    partitioner = PARTITIONERS[name]
    params = inspect.signature(partitioner).parameters
    allowed = [p for p, v in params.items() if v.kind is v.KEYWORD_ONLY and p != "rng"]
    for option in options:
        if option not in allowed:
            raise ValueError(f"partitioner {name!r} has no option {option!r}; "
                             f"its options: {', '.join(allowed) or 'none'}")
    for option in allowed:
        if params[option].default is params[option].empty and option not in options:
            raise ValueError(f"partitioner {name!r} needs the option {option!r}")
    return partitioner(y, n_parts, rng=rng, **options)

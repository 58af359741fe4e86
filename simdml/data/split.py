"""Train/test split (stratified by class, or plain for a regression target) and
z-scoring with the training statistics only."""
from __future__ import annotations

import math

import numpy as np

from .. import _checks
from .dataset import _check_rng, _check_X_y


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
    if not (_checks.is_real(test_size) and 0 < test_size < 1):
        raise ValueError(f"test_size must be a float with 0 < test_size < 1; got {test_size!r}")
    _checks.flag("stratify", stratify)
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
    # by blocks of columns: the statistics of large data need no full-size temporaries
    scale = []
    for block in _column_blocks(X_train):
        if not np.isfinite(block).all():
            raise ValueError("X_train must be finite; got NaN or infinity")
        with np.errstate(over="ignore"):  # an overflow is the error below, not a warning
            scale.append(block.std(axis=1))
    scale = np.concatenate(scale)
    mean = X_train.mean(axis=0)
    if not np.isfinite(scale).all():  # |x| beyond ~1e154: the squares of the std overflow
        j = int(np.argmin(np.isfinite(scale)))
        raise ValueError(f"X_train's column {j} has no finite standard deviation (its values "
                         f"are too large to square); rescale it")
    # A computed mean of equal values can be off by an ulp; use the value itself.
    is_constant = np.ptp(X_train, axis=0) == 0
    mean[is_constant] = X_train[0, is_constant]
    scale[is_constant] = 1.0
    return mean, scale


SCRATCH = 1 << 22  # bytes of one block of columns


def _column_blocks(X):
    """``X``'s columns, a few at a time, each block a C-contiguous copy of shape
    (columns, rows) of at most ``SCRATCH`` bytes (one column if a column is larger).
    perf: a row of the copy is reduced as numpy reduces a 1-D column (pairwise, over
    its own entries), so ``block.std(axis=1)`` has the bits of ``X[:, j].std()``
    column by column, without a Python call per column (tests/test_data.py)."""
    n, d = X.shape
    width = max(1, SCRATCH // (8 * n))
    for j in range(0, d, width):
        yield np.ascontiguousarray(X[:, j:j + width].T)


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

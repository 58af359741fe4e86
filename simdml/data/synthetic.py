"""Synthetic data: Gaussian blobs for classification, a noisy linear target for
regression. Both draw from an explicit ``rng``; nothing touches global random state."""
from __future__ import annotations

import numpy as np

from .. import _checks
from .apportion import apportion
from .dataset import Dataset, _check_rng, _check_weights


def make_classification(n_samples: int = 300, n_features: int = 4, n_classes: int = 2, *,
                        weights=None, class_sep: float = 1.0, label_noise: float = 0.0,
                        rng: np.random.Generator) -> Dataset:
    """Draw Gaussian blobs, one per class, around distinct hypercube vertices.

    Each class centre is a distinct random vertex of the hypercube
    ``{-class_sep, +class_sep} ** n_features`` (so centres are at least
    ``2 * class_sep`` apart); each sample is its centre plus standard normal noise.
    Class sizes follow `weights` by :func:`apportion` (every class gets at least one
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
    n_samples = _checks.integer("n_samples", n_samples, low=2)
    n_features = _checks.integer("n_features", n_features, low=1)
    n_classes = _checks.integer("n_classes", n_classes, low=2)
    if n_classes > n_samples:
        raise ValueError(f"n_classes must be <= n_samples={n_samples}; got {n_classes}")
    if n_classes > 2 ** n_features:
        raise ValueError(f"n_classes must be <= 2**n_features={2 ** n_features} so that each "
                         f"class has its own hypercube vertex; got {n_classes}")
    w = np.ones(n_classes) if weights is None else _check_weights(
        "weights", weights, n=n_classes, n_name="n_classes")
    _checks.finite_number("class_sep", class_sep, low=0)
    if not (_checks.is_real(label_noise) and 0 <= label_noise < 1):
        raise ValueError(f"label_noise must be in [0, 1); got {label_noise!r}")
    _check_rng(rng)

    centres = class_sep * _distinct_signs(n_classes, n_features, rng=rng)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), apportion(n_samples, w, min_size=1))
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
    n_samples = _checks.integer("n_samples", n_samples, low=2)
    n_features = _checks.integer("n_features", n_features, low=1)
    _checks.finite_number("noise", noise, low=0)
    _check_rng(rng)

    w_true = rng.standard_normal(n_features)
    b_true = float(rng.standard_normal())
    X = rng.standard_normal((n_samples, n_features))
    y = X @ w_true + b_true + noise * rng.standard_normal(n_samples)
    ds = Dataset(name="synthetic_regression", X=X, y=y,
                 feature_names=tuple(f"x{j}" for j in range(n_features)), class_names=())
    return (ds, w_true, b_true) if coef else ds

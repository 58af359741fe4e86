"""The labelled dataset every loader and generator returns, and the checks of arrays
that the data functions share."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    with np.errstate(over="ignore"):  # the overflow is the error below
        total = w.sum()
    if not np.isfinite(total):  # they are normalized by their sum
        raise ValueError(f"{name} must have a finite sum; got {w.tolist()}")
    return w


def _check_X_y(X, y) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must be 1-D with len(X)={X.shape[0]} entries; got shape {y.shape}")
    return X, y

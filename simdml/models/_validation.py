"""The learners' checks of their hyper-parameters and of their input arrays.

The parameter checks speak scikit-learn's words (``The 'lr' parameter of ...``) over the
rules of :mod:`simdml._checks` (``is_real``, ``is_integer``: a bool is no number).
Every learner validates its hyper-parameters in ``fit`` (never in ``__init__``, which
only stores its arguments) with the same messages, so that the common tests can assert
them. The strategy-facing methods (``loss_grad``, ``grad_flops``) skip these checks:
they are on the hot path and receive arrays the strategy already validated.
"""

from __future__ import annotations

import numpy as np

import math

from simdml._checks import MAX_SHOWN, as_float, is_integer, is_real, shown


def class_weights(spec, counts) -> np.ndarray:
    """Per-class weights from a ``class_weight`` setting and the class counts.

    ``None``: all 1; ``"balanced"``: ``n / (k n_c)`` for the k classes present (0 for an
    absent class), so that every class carries the same total weight (scikit-learn's
    rule); a dict: class index -> weight (keys may be strings of digits, as TOML writes
    them), 1 for the others.

    Raises ValueError for a dict that names a class beyond ``len(counts)`` (a weight
    that would weigh nothing) or that gives every class present weight 0.

    >>> class_weights("balanced", [90, 10]).tolist()
    [0.5555555555555556, 5.0]
    """
    counts = np.asarray(counts, dtype=np.float64)
    if spec is None:
        return np.ones(counts.size)
    if isinstance(spec, str):
        present = counts > 0
        w = np.zeros(counts.size)
        w[present] = counts.sum() / (present.sum() * counts[present])
        return w
    by_index = {int(k): float(v) for k, v in spec.items()}
    unknown = sorted(c for c in by_index if c >= counts.size)
    if unknown:  # a weight that weighs nothing is a typo, not a setting
        raise ValueError(f"class_weight names class {unknown[0]}, but the classes are "
                         f"0..{counts.size - 1}; got {_show(spec)}")
    w = np.array([by_index.get(c, 1.0) for c in range(counts.size)])
    if not (w[counts > 0] > 0).any():  # every row would weigh 0: a loss of 0 / 0
        raise ValueError(f"class_weight gives every class present weight 0; got {_show(spec)}")
    return w


def _is_weight(value) -> bool:
    x = as_float(value) if is_real(value) else None
    return x is not None and math.isfinite(x) and x >= 0


def _check_class_weight(owner, value) -> None:
    if not (value is None or value == "balanced" or (isinstance(value, dict) and all(
            _is_weight(v) and str(k).isdigit() for k, v in value.items()))):
        raise ValueError(f"The 'class_weight' parameter of {_owner_name(owner)} must be None, "
                         f"'balanced' or a dict of class index -> finite weight >= 0. "
                         f"Got {_show(value)} instead.")


def _check_fitted_X(model, X, fitted: str) -> np.ndarray:
    """``X`` validated for a fitted learner (``fitted`` names an attribute that ``fit``
    sets), with the number of features it was fitted on."""
    if not hasattr(model, fitted):
        raise NotFittedError(f"{type(model).__name__} is not fitted yet; call fit(X, y) first.")
    X = _check_X(X)
    if X.shape[1] != model.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(model).__name__} "
                         f"is expecting {model.n_features_in_} features.")
    return X


class NotFittedError(ValueError, AttributeError):
    """Raised when a learner is asked to predict before it has parameters.

    Inherits from both ``ValueError`` and ``AttributeError``, like scikit-learn's.
    """


def _owner_name(owner) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


def _show(value) -> str:
    # str() of a number reads like the user typed it (-1, nan); repr() quotes strings;
    # either is cut when long (an int of 400 digits, a 10 MB string)
    text = shown(value)
    return str(value) if is_real(value) and len(text) <= MAX_SHOWN else text


def _check_real(owner, name: str, value, *, low: float, strict: bool) -> None:
    rule = f"> {low}" if strict else f">= {low}"
    prefix = f"The {name!r} parameter of {_owner_name(owner)}"
    if not is_real(value):
        raise ValueError(f"{prefix} must be a real number {rule}. Got {_show(value)} instead.")
    x = as_float(value)  # math, not numpy: a Fraction or a 400-digit int is a real number too
    if x is None or not math.isfinite(x):
        raise ValueError(f"{prefix} must be finite. Got {_show(value)} instead.")
    if value < low or (strict and value == low):
        raise ValueError(f"{prefix} must be {rule}. Got {_show(value)} instead.")


def _check_positive(owner, name: str, value) -> None:
    """Raise unless ``value`` is a finite real number > 0.

    ``owner`` is the learner (or its class name), used in the message:
    ``The 'lr' parameter of LogisticRegression must be > 0. Got -1 instead.``
    """
    _check_real(owner, name, value, low=0, strict=True)


def _check_non_negative(owner, name: str, value) -> None:
    """Raise unless ``value`` is a finite real number >= 0."""
    _check_real(owner, name, value, low=0, strict=False)


MAX_INT = 2**31 - 1  # no count is larger (a scenario's rule too): n_iter = 1e20 never ends


def _check_int(owner, name: str, value, *, low: int) -> None:
    """Raise unless ``value`` is an int in ``[low, MAX_INT]`` (``bool`` is not an int here)."""
    if not is_integer(value) or value < low:
        raise ValueError(
            f"The {name!r} parameter of {_owner_name(owner)} must be an int >= {low}. "
            f"Got {_show(value)} instead."
        )
    if value > MAX_INT:
        raise ValueError(f"The {name!r} parameter of {_owner_name(owner)} must be at most "
                         f"{MAX_INT:,}. Got {_show(value)} instead.")


def _check_X(X, dtype=np.float64) -> np.ndarray:
    """Return ``X`` as a 2-D finite array of ``dtype`` (float64 unless a float32 learner
    asks; no copy when it already is one). A value beyond float32's range is infinite
    there, and refused as such.

    Raises
    ------
    ValueError
        If ``X`` is not numeric, not 2-D, has no rows, or holds NaN/inf; the message
        names the first offending column and row.
    """
    try:
        with np.errstate(over="ignore"):  # an overflow to float32's inf is the error below
            X = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must hold numbers; {exc}") from None
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D of shape (n_samples, n_features); got an array of shape {X.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError(f"X has 0 rows; need at least 1. Got shape {X.shape}.")
    is_finite = np.isfinite(X)
    if not is_finite.all():
        row, col = np.argwhere(~is_finite)[0]
        raise ValueError(
            f"X contains NaN or infinity in column {col} (first at row {row}: {X[row, col]})."
        )
    return X


def _check_X_1d_y(X, y) -> tuple[np.ndarray, np.ndarray]:
    """``X`` checked by ``_check_X``, and ``y`` as a 1-D array with one entry per row."""
    X = _check_X(X)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (n_samples,); got an array of shape {y.shape}.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} entries.")
    return X, y


def _check_X_y(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training set and return ``(X, y)`` as float64 and int64 arrays.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite numbers.
    y : array-like of shape (n_samples,)
        Integer class labels. Floats are accepted when every value is a whole
        number (``numpy.loadtxt`` reads a CSV target column as floats).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int64

    Raises
    ------
    ValueError
        With a message naming what is wrong, e.g. ``X has 3 rows but y has 4 entries``.
    """
    X, y = _check_X_1d_y(X, y)
    if y.dtype.kind == "f":
        is_whole = np.isfinite(y) & (y == np.round(y))
        if not is_whole.all():
            i = int(np.argmin(is_whole))
            raise ValueError(
                f"y must hold integer class labels; got {y[i]} at index {i}."
            )
    elif y.dtype.kind not in "iub":
        raise ValueError(f"y must hold integer class labels; got dtype {y.dtype}.")
    return X, y.astype(np.int64)


def _check_X_y_real(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Validate a regression set and return ``(X, y)`` as float64 arrays.

    As ``_check_X_y``, but ``y`` holds finite real-valued targets (integers are
    accepted and converted), e.g. ``y contains NaN or infinity at index 2``.
    """
    X, y = _check_X_1d_y(X, y)
    if y.dtype.kind not in "iuf":
        raise ValueError(f"y must hold real numbers; got dtype {y.dtype}.")
    y = y.astype(np.float64)
    is_finite = np.isfinite(y)
    if not is_finite.all():
        i = int(np.argmin(is_finite))
        raise ValueError(f"y contains NaN or infinity at index {i} ({y[i]}).")
    return X, y


def _check_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    """Return weights as a 1-D float64 array of length ``n_samples``, >= 0, summing > 0."""
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},); got {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be finite and >= 0, with a positive sum.")
    return w

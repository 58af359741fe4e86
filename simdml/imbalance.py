"""Class imbalance: resampling the training rows so that every class is as common as
the commonest (oversampling, SMOTE) or as rare as the rarest (undersampling).

Applied globally (to the whole training set, before it is partitioned: a central step
that needs all the data in one place) or locally (each worker balances its own shard:
no data moves, but a worker can only balance the classes it has). The other remedy,
class weights, is a learner setting (``model.class_weight``): no rows change at all.

Costs, reported in a run's summary (``rows_added``, ``rows_removed``, ``resample_flops``):
oversampling copies rows (memory grows with the majority class); undersampling throws
rows away (less data, less to learn from); SMOTE also searches neighbours, about
``2 d n_c^2`` flop for a class of ``n_c`` rows in ``d`` features (brute force). The
resampling happens before the simulated clock starts.

References
----------
N. V. Chawla, K. W. Bowyer, L. O. Hall and W. P. Kegelmeyer, "SMOTE: Synthetic
Minority Over-sampling Technique", JAIR 16, 2002; H. He and E. A. Garcia, "Learning
from Imbalanced Data", IEEE TKDE 21(9), 2009.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RESAMPLERS", "random_oversample", "random_undersample", "smote", "resample"]


def random_oversample(X, y, rng: np.random.Generator, **_):
    """Every class up to the commonest class's count, by drawing its rows again at
    random (with replacement). Returns ``(X, y, flops)``; the original rows come first."""
    classes, counts = np.unique(y, return_counts=True)
    extra = [rng.choice(np.flatnonzero(y == c), counts.max() - n, replace=True)
             for c, n in zip(classes, counts) if n < counts.max()]
    rows = np.concatenate([np.arange(y.size)] + extra)
    return X[rows], y[rows], 0.0


def random_undersample(X, y, rng: np.random.Generator, **_):
    """Every class down to the rarest class's count, keeping a random subset of its rows
    (in their original order). Returns ``(X, y, flops)``."""
    classes, counts = np.unique(y, return_counts=True)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), counts.min(), replace=False)
                                   for c in classes]))
    return X[keep], y[keep], 0.0


def smote(X, y, rng: np.random.Generator, k_neighbors: int = 5):
    """SMOTE: every class up to the commonest class's count with synthetic rows, each on
    the segment between a row of the class and one of its ``k_neighbors`` nearest
    neighbours in the class, ``x + u (x_nn - x)``, ``u ~ U(0, 1)`` (Chawla et al.,
    Sec. 4.2). A class of one row can only be copied. Returns ``(X, y, flops)``."""
    classes, counts = np.unique(y, return_counts=True)
    new_X, new_y, flops = [X], [y], 0.0
    for c, n in zip(classes, counts):
        need = counts.max() - n
        if need == 0:
            continue
        members = X[y == c]
        base = rng.integers(n, size=need)
        if n == 1:
            new_X.append(members[base])
        else:
            k = min(k_neighbors, n - 1)
            sq = np.einsum("ij,ij->i", members, members)
            dist = sq[:, None] + sq[None, :] - 2.0 * members @ members.T
            np.fill_diagonal(dist, np.inf)
            neighbours = np.argsort(dist, axis=1, kind="stable")[:, :k]
            flops += 2.0 * members.shape[1] * n * n
            partner = neighbours[base, rng.integers(k, size=need)]
            u = rng.random((need, 1))
            new_X.append(members[base] + u * (members[partner] - members[base]))
        new_y.append(np.full(need, c, dtype=y.dtype))
    return np.concatenate(new_X), np.concatenate(new_y), flops


RESAMPLERS = {"oversample": random_oversample, "undersample": random_undersample,
              "smote": smote}


def resample(method: str, X, y, rng: np.random.Generator, **options):
    """Apply a resampler by name; returns ``(X, y, flops)``."""
    if method not in RESAMPLERS:
        raise ValueError(f"unknown resampling method {method!r}; known: {', '.join(RESAMPLERS)}")
    return RESAMPLERS[method](np.asarray(X, dtype=np.float64), np.asarray(y), rng, **options)

"""The pieces of histogram trees, shared by the centralized ``DecisionTree`` and the
distributed strategies: quantile bins, class histograms per node, impurity, the best
split of a node from its histogram.

Histograms hold integer class counts (``int64``), so that adding the shards' histograms
gives exactly the histogram of the union, in any order: a distributed tree built from
summed histograms is the centralized tree, split for split. Class weights are applied
only when a split is scored.

References
----------
L. Breiman, J. Friedman, R. Olshen and C. Stone, *Classification and Regression Trees*,
Wadsworth, 1984 (CART: gini, the impurity decrease); T. Chen and C. Guestrin,
"XGBoost: A Scalable Tree Boosting System", KDD 2016, Sec. 3.3 (quantile bins and
histograms); G. Ke et al., "LightGBM", NeurIPS 2017 (histogram subtraction).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

CRITERIA = ("gini", "entropy")


def bin_edges(X: np.ndarray, max_bins: int) -> list[np.ndarray]:
    """Per feature, the thresholds between bins: midpoints between consecutive distinct
    values when there are at most ``max_bins``, else between consecutive distinct
    quantiles at ``max_bins`` equal steps. A feature gets at most ``max_bins`` bins
    (``len(edges) + 1``)."""
    edges = []
    for column in X.T:
        values = np.unique(column)
        if values.size > max_bins:
            values = np.unique(np.quantile(column, np.linspace(0, 1, max_bins + 1)[1:-1]))
            edges.append(values)
        else:
            edges.append((values[:-1] + values[1:]) / 2.0)
    return edges


def apply_bins(X: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Bin codes of shape (n, d), uint8: ``code <= b`` iff ``x <= edges[b]``."""
    codes = np.empty(X.shape, dtype=np.uint8)
    for j, e in enumerate(edges):
        codes[:, j] = np.searchsorted(e, X[:, j], side="left")
    return codes


def histograms(codes: np.ndarray, y: np.ndarray, node: np.ndarray, nodes: np.ndarray,
               n_bins: int, n_classes: int, features: np.ndarray | None = None) -> np.ndarray:
    """Class counts per (node, feature, bin, class) of the rows whose ``node`` is in
    ``nodes``, shape (len(nodes), n_features, n_bins, n_classes), int64.

    ``features`` restricts the histogram to those columns (in that order)."""
    cols = np.arange(codes.shape[1]) if features is None else np.asarray(features)
    slot = np.full(int(node.max(initial=0)) + 1, -1, dtype=np.int64)
    slot[nodes[nodes < slot.size]] = np.arange(nodes.size)[nodes < slot.size]
    where = slot[node]
    keep = where >= 0
    d = cols.size
    flat = ((where[keep, None] * d + np.arange(d)) * n_bins + codes[keep][:, cols]) * n_classes \
        + y[keep, None]
    counts = np.bincount(flat.ravel(), minlength=nodes.size * d * n_bins * n_classes)
    return counts.reshape(nodes.size, d, n_bins, n_classes)


def binning_flops(n_values: int, max_bins: int) -> float:
    """A binary search among at most ``max_bins`` edges per value."""
    return float(n_values * np.log2(max_bins))


def histogram_flops(n_rows: int, n_features: int) -> float:
    """One index computation and one increment per row and feature."""
    return float(2 * n_rows * n_features)


def impurity(counts: np.ndarray, criterion: str) -> np.ndarray:
    """Impurity of class-count vectors (last axis): gini ``1 - sum p^2`` or entropy
    ``-sum p log2 p``; 0 for an empty vector."""
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, counts / np.where(total > 0, total, 1), 0.0)
        if criterion == "gini":
            return 1.0 - np.sum(p * p, axis=-1)
        logs = np.where(p > 0, np.log2(np.where(p > 0, p, 1)), 0.0)
        return -np.sum(p * logs, axis=-1)


class Split(NamedTuple):
    feature: int      # -1: no valid split
    bin: int          # rows with code <= bin go left
    decrease: float   # weighted impurity decrease, normalized by the whole training weight
    n_left: int
    n_right: int


def split_scores(hist: np.ndarray, class_weight: np.ndarray, criterion: str,
                 min_samples_leaf: int, total_weight: float) -> np.ndarray:
    """The weighted impurity decrease of every candidate split of one node, shape
    (n_features, n_bins); ``-inf`` where a side would hold fewer than
    ``min_samples_leaf`` rows.

    ``decrease = N_t / N * (i(t) - N_L / N_t i(L) - N_R / N_t i(R))`` with weighted
    counts N (scikit-learn's ``min_impurity_decrease`` definition).
    """
    weighted = hist * class_weight                          # (d, B, K)
    left = np.cumsum(weighted, axis=1)
    n_left = np.cumsum(hist.sum(axis=2), axis=1)
    # every feature sees every row -- except features left empty (not asked for): take
    # the node's totals from a full one
    parent = left[int(np.argmax(n_left[:, -1])), -1]
    right = parent - left
    n_right = n_left[:, -1:] - n_left
    w_t, w_l, w_r = parent.sum(), left.sum(axis=2), right.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        children = (w_l * impurity(left, criterion) + w_r * impurity(right, criterion))
        decrease = (w_t * impurity(parent, criterion) - children) / total_weight
    ok = (n_left >= min_samples_leaf) & (n_right >= min_samples_leaf)
    return np.where(ok, decrease, -np.inf)


def best_split(hist: np.ndarray, class_weight: np.ndarray, criterion: str,
               min_samples_leaf: int, total_weight: float,
               allowed: np.ndarray | None = None) -> Split:
    """The candidate with the largest decrease (ties: lowest feature, then lowest bin),
    among the ``allowed`` features (a boolean mask; all by default)."""
    scores = split_scores(hist, class_weight, criterion, min_samples_leaf, total_weight)
    if allowed is not None:
        scores[~allowed] = -np.inf
    flat = int(np.argmax(scores))
    j, b = divmod(flat, scores.shape[1])
    if not np.isfinite(scores[j, b]):
        return Split(-1, -1, -np.inf, 0, 0)
    n_left = int(hist[j, :b + 1].sum())
    return Split(j, b, float(scores[j, b]), n_left, int(hist[j].sum()) - n_left)


def split_flops(n_features: int, n_bins: int, n_classes: int) -> float:
    """Scoring every candidate of one node: cumulative sums, two impurities, the
    decrease, ~12 flop per (feature, bin, class)."""
    return float(12 * n_features * n_bins * n_classes)

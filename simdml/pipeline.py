"""A scenario's data as a run sees it: load, split, partition, standardize, rebalance,
resample -- all before the clock starts (rebalancing's messages are sent by ``build``)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import data as _data
from ._rng import Streams
from .imbalance import resample
from .phantom import Phantom
from .scenario import Scenario, ScenarioError
from .strategies.federated import uses_devices

__all__ = ["DataSplit", "prepare_data", "split_data"]


@dataclass(frozen=True)
class DataSplit:
    """A scenario's data as the run sees it: standardized train/test arrays, with the
    training rows laid out in shard order, and ``parts[i]``, the (contiguous) indices of
    the training rows worker i holds."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    parts: Sequence          # of index arrays: a ``simdml.data.Parts``
    scaling: tuple | None = None  # (mean, scale) per column applied to both; None: raw
    resampling: dict | None = None  # rows_added, rows_removed, resample_flops (imbalance)
    moves: tuple = ()  # rebalancing: (from worker, to worker, rows) sent before training


def prepare_data(scenario: Scenario) -> DataSplit:
    """Load, split, partition and standardize a scenario's data, as ``run`` does."""
    return split_data(scenario, Streams(scenario.seed))


def split_data(s: Scenario, streams: Streams) -> DataSplit:
    """The data of scenario ``s``, drawn from its ``data`` stream of ``streams``."""
    rng = streams.rng("data")
    d = s.data
    if not s.math:
        return _shapes_only(s, rng)
    if d.dataset == "synthetic":
        ds = _data.make_classification(d.n_samples, d.n_features, d.n_classes,
                                       weights=d.weights, class_sep=d.class_sep,
                                       label_noise=d.label_noise, rng=rng)
    elif d.dataset == "synthetic_regression":
        ds = _data.make_regression(d.n_samples, d.n_features, noise=d.noise, rng=rng)
    elif _data.parse_source(d.dataset):
        try:  # read when the scenario was built; again only if the file changed since
            ds = _data.load_file(d.dataset, d.label, prefix="data.")
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
    else:
        ds = _data.load(d.dataset)
    train, test = _data.train_test_indices(ds.y, test_size=d.test_size,
                                           stratify=not ds.is_regression, rng=rng)
    _no_empty_split(s, ds.y, test)
    parts = _partition(s, ds.y[train], rng)
    # Index the features once, in shard order, so that every shard is a view (no copies)
    order = train[_data.concatenated(parts)]
    sizes = _data.sizes_of(parts)
    del train, parts                 # index arrays of the rows' size: freed before the rows move
    X, y_train, y_test = ds.X, ds.y[order], ds.y[test]
    del ds                           # ... and a generated dataset's labels
    if X.flags.writeable:  # a generated dataset: reorder its rows in place (no 2nd copy)
        _data.permute_rows(X, np.concatenate([order, test]))
        X_train, X_test = X[:order.size], X[order.size:]  # views, in shard order
    else:  # a bundled dataset or a data file is shared (read-only, cached): copy the rows
        X_train, X_test = X[order], X[test]
    del X, order, test
    scaling = None
    if d.standardize:
        scaling = _data.scaling(X_train)
        _data.standardize(X_train, X_test, copy=False)
    split = DataSplit(X_train, X_test, y_train, y_test, _data.Parts(None, sizes), scaling)
    if d.rebalance:
        split = _rebalance(split)
        n_empty = sum(len(p) == 0 for p in split.parts)
        if n_empty:  # each class's fair share rounds to 0 rows on the last workers
            raise ScenarioError(f"data.rebalance leaves {n_empty} of cluster.workers="
                                f"{s.cluster.workers} without rows (no class has a row for "
                                f"each); use fewer workers or data.rebalance = false")
    if s.imbalance.method is not None:
        split = _resample(s, split, rng, _partition_options(s))
    return split


def _no_empty_split(s: Scenario, y, test) -> None:
    d = s.data
    if test.size == 0:  # every class has one row: all stay in training (see train_test_indices)
        raise ScenarioError(f"data.test_size={d.test_size} leaves no test rows: each class of "
                            f"the {y.size} rows needs 2 or more to appear on both sides "
                            + ("(raise data.n_samples or lower data.n_classes)"
                               if d.dataset == "synthetic" else f"(data.dataset={d.dataset!r})"))
    parts, key = n_parts(s)
    if parts > y.size - test.size:
        raise ScenarioError(f"{key}={parts} is more than the {y.size - test.size} training "
                            f"samples of data.dataset={d.dataset!r}")


def _partition_options(s: Scenario) -> dict:
    d = s.data
    # proportional to the effective speed (finite: a rule): a slowed-down node gets less
    effective = [v / d for v, d in zip(s.cluster.speed, s.cluster.slowdown)]
    return {"proportional": {"weights": np.asarray(effective)},
            "label_skew": {"alpha": d.alpha},
            "size_skew": {"exponent": d.exponent},
            "by_label": {"classes_per_part": d.classes_per_part}}.get(d.partition, {})


def n_parts(s: Scenario) -> tuple[int, str]:
    """How many shards the training rows are cut into, and the key that says so: one
    per worker, or per client of a federated population."""
    if uses_devices(s):
        return s.clients.population, "clients.population"
    return s.cluster.workers, "cluster.workers"


def _partition(s: Scenario, y_train, rng) -> list:
    """The training rows of each worker (indices into ``y_train``)."""
    d = s.data
    try:
        return _data.partition(d.partition, y_train, n_parts(s)[0], rng=rng,
                               **_partition_options(s))
    except ValueError as exc:  # an option that does not fit the data (classes_per_part)
        raise ScenarioError(f"data.partition={d.partition!r}: {exc}") from None


def _shapes_only(s: Scenario, rng) -> DataSplit:
    """A timing-only run's data (``math = false``): features that are only their shape
    (``Phantom``), and labels that decide the split and the shards as the run with math
    would -- a bundled dataset's or a file's own labels (read: they are small; the split
    and the partition draw what they draw with math, so every shard is the same), or
    synthetic data's class counts (``apportion``, as ``make_classification`` deals them;
    a regressor's targets are zeros), which give the same train/test sizes and, under
    the partitions that count rows (``iid``, ``proportional``: a rule), the same shard
    sizes. Which rows a shard holds may differ; nothing reads them."""
    d = s.data
    if d.dataset == "synthetic":
        w = np.ones(d.n_classes) if d.weights is None else np.asarray(d.weights, float)
        y = np.repeat(np.arange(d.n_classes, dtype=np.int64),
                      _data.apportion(d.n_samples, w / w.sum(), min_size=1))
        shape, is_regression = (d.n_samples, d.n_features), False
    elif d.dataset == "synthetic_regression":
        y, shape, is_regression = np.zeros(d.n_samples), (d.n_samples, d.n_features), True
    else:
        ds = (_data.load_file(d.dataset, d.label, prefix="data.") if _data.parse_source(d.dataset)
              else _data.load(d.dataset))
        y, shape, is_regression = ds.y, ds.X.shape, ds.is_regression
    train, test = _data.train_test_indices(y, test_size=d.test_size,
                                           stratify=not is_regression, rng=rng)
    _no_empty_split(s, y, test)
    parts = _partition(s, y[train], rng)
    order = train[_data.concatenated(parts)]
    return DataSplit(Phantom((order.size, shape[1])), Phantom((test.size, shape[1])),
                     y[order], y[test], _data.Parts(None, _data.sizes_of(parts)), None)


def _rebalance(split: DataSplit) -> DataSplit:
    """Move rows between shards so that every shard holds each class's fair share
    (``apportion(n_c, ones)``): a worker keeps its first rows of a class up to its share,
    its surplus goes to the workers short of that class, lowest index first. The rows
    moved are the fewest that make the shards alike; ``moves`` says who sends how many
    rows to whom (the run sends them as messages before training starts)."""
    k = len(split.parts)
    y = split.y_train
    keep, receive = [[] for _ in range(k)], [[] for _ in range(k)]
    moves: dict[tuple[int, int], int] = {}
    for c in np.unique(y):
        rows = [p[y[p] == c] for p in split.parts]
        share = _data.apportion(sum(r.size for r in rows), np.ones(k))
        surplus = []
        for i in range(k):
            keep[i].append(rows[i][:share[i]])
            surplus += [(i, r) for r in rows[i][share[i]:]]
        for i in range(k):
            need = share[i] - min(rows[i].size, share[i])
            for src, r in surplus[:need]:
                receive[i].append(np.array([r]))
                moves[(src, i)] = moves.get((src, i), 0) + 1
            surplus = surplus[need:]
    order = [np.concatenate(keep[i] + receive[i]) for i in range(k)]
    X, y2 = split.X_train[np.concatenate(order)], y[np.concatenate(order)]
    ranges = _data.Parts(None, [o.size for o in order])
    return DataSplit(X, split.X_test, y2, split.y_test, ranges, split.scaling,
                     split.resampling, tuple((a, b, n) for (a, b), n in sorted(moves.items())))


def _resample(s: Scenario, split: DataSplit, rng, options: dict) -> DataSplit:
    """Balance the classes of the (standardized) training rows: globally, then partition
    the result again; or locally, shard by shard (``simdml.imbalance``)."""
    im = s.imbalance
    kwargs = {"k_neighbors": im.k_neighbors}
    if im.where == "global":
        X, y, flops = resample(im.method, split.X_train, split.y_train, rng, **kwargs)
        if y.size < s.cluster.workers:  # the partitioner would say so, without the keys
            raise ScenarioError(f"imbalance.method={im.method!r} leaves {y.size} training "
                                f"rows for cluster.workers={s.cluster.workers}; use fewer "
                                f"workers or another method")
        parts = _data.partition(s.data.partition, y, s.cluster.workers, rng=rng, **options)
        order = _data.concatenated(parts)
        X, y = X[order], y[order]
        sizes = _data.sizes_of(parts)
    else:
        pieces = [resample(im.method, split.X_train[p], split.y_train[p], rng, **kwargs)
                  for p in split.parts]
        X = np.concatenate([piece[0] for piece in pieces])
        y = np.concatenate([piece[1] for piece in pieces])
        flops = sum(piece[2] for piece in pieces)
        sizes = [piece[1].size for piece in pieces]
    if min(sizes) == 0:
        raise ScenarioError(f"imbalance.method={im.method!r} left a worker without rows; "
                            f"use fewer cluster.workers or another method")
    n_before = split.y_train.size
    counts = {"rows_added": int(max(0, y.size - n_before)),
              "rows_removed": int(max(0, n_before - y.size)), "resample_flops": float(flops)}
    if im.where == "local":  # a shard can both gain and lose rows: count per shard
        before = [len(p) for p in split.parts]
        counts["rows_added"] = int(sum(max(0, a - b) for a, b in zip(sizes, before)))
        counts["rows_removed"] = int(sum(max(0, b - a) for a, b in zip(sizes, before)))
    return DataSplit(X, split.X_test, y, split.y_test, _data.Parts(None, sizes),
                     split.scaling, counts)

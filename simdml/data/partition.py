"""Partitioners: cut a training set into one shard per node (iid, proportional to
speed, label skew, size skew, by label), registered by name."""
from __future__ import annotations

import heapq
import inspect
from collections.abc import Callable, Sequence

import numpy as np

from .. import _checks
from .apportion import apportion
from .dataset import _check_rng, _check_weights


def _check_partition(y, n_parts, rng) -> int:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D; got shape {y.shape}")
    _checks.integer("n_parts", n_parts, low=1, high=y.size, high_name="len(y)")
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
    q, r = divmod(n_samples, n_parts)               # np.array_split's sizes
    sizes = np.full(n_parts, q, dtype=np.int64)
    sizes[:r] += 1
    return Parts(order, sizes)


class Parts(Sequence):
    """Shards as one index array cut at bounds: ``parts[i]`` is a view of ``order``
    (or, with ``order = None``, the range of rows it stands for), made when asked for.
    A million shards cost two arrays, not a million objects.

    >>> p = Parts(np.array([4, 2, 0, 1, 3]), [2, 0, 3]); [q.tolist() for q in p], p.sizes.tolist()
    ([[4, 2], [], [0, 1, 3]], [2, 0, 3])
    """

    def __init__(self, order, sizes):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.bounds = np.zeros(self.sizes.size + 1, dtype=np.int64)
        np.cumsum(self.sizes, out=self.bounds[1:])
        self.order = None if order is None else np.asarray(order)
        if self.order is not None and self.order.shape != (self.bounds[-1],):
            raise ValueError(f"Parts: sizes sum to {self.bounds[-1]} for "
                             f"{self.order.shape} indices")

    def __len__(self) -> int:
        return self.sizes.size

    def span(self, i: int) -> tuple[int, int]:
        """Where part ``i`` starts and ends in ``order`` (negative ``i`` from the end)."""
        i = range(len(self))[i]                        # negative indices, IndexError
        return int(self.bounds[i]), int(self.bounds[i + 1])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        a, b = self.span(i)
        return np.arange(a, b) if self.order is None else self.order[a:b]

    def concatenated(self) -> np.ndarray:
        """Every shard's indices, one after another."""
        return np.arange(self.bounds[-1]) if self.order is None else self.order


def sizes_of(parts) -> np.ndarray:
    """The number of indices of each part (of a ``Parts`` or a list of arrays)."""
    if isinstance(parts, Parts):
        return parts.sizes
    return np.array([len(p) for p in parts], dtype=np.int64)


def concatenated(parts) -> np.ndarray:
    """Every part's indices, one after another (of a ``Parts`` or a list of arrays)."""
    return parts.concatenated() if isinstance(parts, Parts) else np.concatenate(parts)


def proportional(y, n_parts: int, *, rng: np.random.Generator, weights) -> list[np.ndarray]:
    """Deal a random permutation into shards sized in proportion to `weights`.

    With node speeds as weights, every node needs about the same time per pass.
    Sizes come from :func:`apportion` with ``min_size=1``: no shard is empty.

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
    counts = apportion(n_samples, w, min_size=1)
    order = rng.permutation(n_samples).astype(np.int64)
    return np.split(order, np.cumsum(counts)[:-1])


def label_skew(y, n_parts: int, *, rng: np.random.Generator, alpha: float) -> list[np.ndarray]:
    """Non-iid shards: each class is spread over the shards in Dirichlet(alpha) shares.

    For every class ``c`` a share vector ``p_c ~ Dirichlet(alpha, ..., alpha)`` is drawn
    and the class's (shuffled) samples are dealt in those proportions (``apportion``). Large
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
    if not (_checks.is_real(alpha) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}")
    y = np.asarray(y)
    part_of = np.empty(n_samples, dtype=np.int64)   # each sample's shard
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        shares = rng.dirichlet(np.full(n_parts, float(alpha)))
        shares = np.maximum(shares, np.finfo(float).tiny)  # small alpha can underflow to 0
        part_of[members] = np.repeat(np.arange(n_parts), apportion(members.size, shares))
    # perf: one stable sort by shard, not a concatenation and a sort per shard: each
    # shard's samples in increasing order, as before
    order = np.argsort(part_of, kind="stable")
    sizes = np.bincount(part_of, minlength=n_parts)
    shards = np.split(order, np.cumsum(sizes)[:-1])
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
    if not (_checks.is_real(exponent) and np.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"exponent must be a finite number >= 0; got {exponent!r}")
    shares = (np.arange(1, n_parts + 1, dtype=float) ** -float(exponent))[rng.permutation(n_parts)]
    counts = apportion(n_samples, shares, min_size=1)
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
    if not _checks.is_integer(classes_per_part) or not 1 <= classes_per_part <= k:
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


def _fill_empty(shards: list[np.ndarray], n_samples: int) -> list[np.ndarray]:
    """No empty shard: each, in order, borrows the last sample of the largest shard then
    (the first of the largest, as ``argmax``). perf: the largest from a heap of (size,
    index) with stale entries skipped, not a scan of every shard per empty one."""
    sizes = [s.size for s in shards]
    heap = [(-n, j) for j, n in enumerate(sizes)]
    heapq.heapify(heap)
    for i in range(len(shards)):
        if sizes[i]:
            continue
        while -heap[0][0] != sizes[heap[0][1]]:      # an entry from before a change
            heapq.heappop(heap)
        j = heap[0][1]
        shards[i], shards[j] = shards[j][-1:], shards[j][:-1]
        sizes[i], sizes[j] = 1, sizes[j] - 1
        heapq.heappush(heap, (-sizes[j], j))
        heapq.heappush(heap, (-1, i))
    assert sum(sizes) == n_samples
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
    "dirichlet": "label_skew",      # by the name federated learning uses (Hsu et al. 2019)
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

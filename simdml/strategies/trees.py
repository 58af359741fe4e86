"""Distributed decision trees: data-parallel histograms (``hist_tree``) and
voting-parallel histograms (``voting_tree``).

Both grow one ``DecisionTree`` level by level at the server, from class histograms of
the frontier nodes that the workers build on their own rows:

``hist_tree`` (PLANET / XGBoost-hist style), per level:
1. the server broadcasts the splits it made and the nodes whose histograms it needs;
2. each worker routes its rows down those splits, builds the class histograms of
   those nodes on its shard (counts per feature, bin and class) and sends them;
3. the server sums them -- integer counts, so the sum is the histogram of all the rows,
   in any order -- and splits every frontier node where the impurity drops most.
The tree is therefore the centralized tree on the same bins, split for split, for any
partition. With ``subtraction`` (LightGBM's trick) the workers build only the smaller
child of each split; the server gets its sibling as parent minus child.

``voting_tree`` (PV-Tree, Meng et al. 2016), per level: each worker ranks the features
by the best split of its *local* histogram and sends its ``top_k`` per node; the server
counts the votes and asks for the histograms of the ``2 top_k`` most-voted features only;
the best split is chosen among them. Bytes drop from ``d`` features' histograms to
``2 top_k``; the tree can differ from the exact one where local and global rankings
disagree (with ``2 top_k >= d`` it is the exact tree).

The bins are computed once, on the whole training set, and broadcast (a simplification:
a real system merges quantile sketches of the shards). Histograms travel as int32.

References
----------
B. Panda, J. S. Herbach, S. Basu and R. J. Bayardo, "PLANET: Massively Parallel
Learning of Tree Ensembles with MapReduce", VLDB 2009; T. Chen and C. Guestrin,
"XGBoost", KDD 2016; G. Ke et al., "LightGBM", NeurIPS 2017 (histogram subtraction);
Q. Meng et al., "A Communication-Efficient Parallel Algorithm for Decision Tree",
NeurIPS 2016 (PV-Tree).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..models._base import clone
from ..models._hist import apply_bins, bin_edges, binning_flops, histogram_flops, histograms, \
    split_flops, split_scores
from ._job import Job

__all__ = ["HistTreeOptions", "VotingTreeOptions", "start"]


@dataclass(frozen=True, kw_only=True)
class HistTreeOptions:
    subtraction: bool = True  # build the smaller child only; the sibling is parent - child

    def __post_init__(self):
        _checks.flag("subtraction", self.subtraction)


@dataclass(frozen=True, kw_only=True)
class VotingTreeOptions:
    top_k: int = 4  # features each worker votes for per node; 2 top_k histograms travel

    def __post_init__(self):
        _checks.integer("top_k", self.top_k, low=1)


def start(job: Job):
    for i, node in enumerate(job.workers):
        node.start(worker, job, i)
    program = hist_server if isinstance(job.options, HistTreeOptions) else voting_server
    return job.server.start(program, job)


# --------------------------------------------------------------------------- server


def _setup(job: Job):
    """Bins from the training set, a tree and its builder; the bins go to every worker
    with the workers' first instruction."""
    tree = clone(job.model)
    edges = bin_edges(job.monitor.X_train, tree.max_bins)
    tree.classes_, tree.n_features_in_ = job.classes, len(edges)
    return tree, tree.builder(edges, job.classes.size), edges


def _gather(job: Job, node):
    """The workers' answers of this step, summed in worker order."""
    parts = {}
    while len(parts) < len(job.workers):
        i, part = yield node.recv()
        parts[i] = part
    return [parts[i] for i in sorted(parts)]


def _record(job: Job, tree, builder, level: int) -> bool:
    """The tree so far to the monitor; True means stop."""
    builder.to_tree()
    if job.monitor.update(tree, level):
        return True
    if not builder.frontier:
        job.monitor.stop_reason = (f"tree complete: depth {tree.depth_}, {tree.n_leaves_} "
                                   f"leaves, {tree.feature_.size} nodes")
        return True
    return False


def hist_server(job: Job):
    node = job.server
    tree, builder, edges = _setup(job)
    made, known, level = [], {}, 0   # known: node -> summed histogram
    while builder.frontier:
        frontier = list(builder.frontier)
        build = _to_build(frontier, made, builder, known) if job.options.subtraction else frontier
        node.broadcast(job.workers, ("level", edges if level == 0 else None,  # 1. splits, asks
                                     _splits(made, builder), build))
        parts = yield from _gather(job, node)                    # 2. the shards' histograms
        summed = np.sum([p.astype(np.int64) for p in parts], axis=0)
        known = {n: summed[j] for j, n in enumerate(build)} | {
            n: known[p] - summed[build.index(s)] for n, p, s in _siblings(frontier, build, made, builder)}
        hists = np.array([known[n] for n in frontier])
        yield node.compute(_server_flops(builder, len(parts), summed, len(frontier)))
        made = builder.grow(frontier, hists)                     # 3. split every node
        level += 1
        if _record(job, tree, builder, level):
            return


def _to_build(frontier, made, builder, known) -> list[int]:
    """The nodes whose histograms the workers must build: the root, and of two siblings
    both on the frontier the smaller (its counts are known from the parent's split)."""
    if not made:
        return list(frontier)
    on = set(frontier)
    build = []
    for parent, _ in made:
        left, right = builder.left[parent], builder.right[parent]
        if left in on and right in on:
            smaller = left if builder.counts[left].sum() <= builder.counts[right].sum() else right
            build.append(smaller)
        else:
            build += [c for c in (left, right) if c in on]
    return build


def _siblings(frontier, build, made, builder):
    """``(node, parent, built sibling)`` for each frontier node derived by subtraction."""
    built = set(build)
    for parent, _ in made:
        left, right = builder.left[parent], builder.right[parent]
        for n, s in ((left, right), (right, left)):
            if n in frontier and n not in built:
                yield n, parent, s


def _server_flops(builder, n_parts: int, summed: np.ndarray, n_nodes: int) -> float:
    """Summing the workers' histograms and searching the splits of the frontier."""
    return n_parts * summed.size + n_nodes * split_flops(builder.n_features, builder.n_bins,
                                                          builder.n_classes)


def _splits(made, builder) -> list[tuple]:
    """What a worker needs to route its rows: (parent, feature, bin, left, right)."""
    return [(p, s.feature, s.bin, builder.left[p], builder.right[p]) for p, s in made]


def voting_server(job: Job):
    node, k = job.server, job.options.top_k
    tree, builder, edges = _setup(job)
    node.broadcast(job.workers, ("counts", edges))
    counts = yield from _gather(job, node)                       # 0. class counts, for weights
    builder._start(np.sum(counts, axis=0))
    d, made, level = builder.n_features, [], 0
    while builder.frontier:
        frontier = list(builder.frontier)
        node.broadcast(job.workers, ("vote", _splits(made, builder), frontier,
                                     builder.class_weight))
        votes = yield from _gather(job, node)                    # 1. every worker's top_k
        tally = np.zeros((len(frontier), d), dtype=np.int64)
        for v in votes:
            np.add.at(tally, (np.arange(len(frontier))[:, None], v), 1)
        # 2. the 2 top_k most-voted features per node (ties: the lower feature)
        chosen = np.sort(np.argsort(-tally, axis=1, kind="stable")[:, :min(2 * k, d)], axis=1)
        node.broadcast(job.workers, ("send", chosen))
        parts = yield from _gather(job, node)                    # 3. their histograms
        summed = np.sum([p.astype(np.int64) for p in parts], axis=0)
        hists = np.zeros((len(frontier), d, builder.n_bins, builder.n_classes), dtype=np.int64)
        allowed = np.zeros((len(frontier), d), dtype=bool)
        for j in range(len(frontier)):
            hists[j, chosen[j]] = summed[j]
            allowed[j, chosen[j]] = True
        yield node.compute(_server_flops(builder, len(parts), summed, len(frontier)))
        made = builder.grow(frontier, hists, allowed=list(allowed))
        level += 1
        if _record(job, tree, builder, level):
            return


# --------------------------------------------------------------------------- worker


def worker(job: Job, i: int):
    """Route my rows, build the histograms I am asked for, send them (and votes)."""
    node, shard = job.workers[i], job.shards[i]
    y, n_classes = shard.y, job.classes.size
    codes = where = local = None
    while True:
        msg = yield node.recv()
        kind = msg[0]
        if kind in ("counts", "level") and msg[1] is not None:  # the bins, once
            edges = msg[1]
            codes = apply_bins(shard.X, edges)
            n_bins = max(len(e) for e in edges) + 1
            where = np.zeros(y.size, dtype=np.int64)
            yield node.compute(binning_flops(codes.size, job.model.max_bins))
        if kind == "counts":                                     # voting: my class counts
            yield node.send(job.server, (i, np.bincount(y, minlength=n_classes)))
        elif kind == "vote":                                     # voting: my top_k per node
            _, splits, frontier, class_weight = msg
            where = _route(codes, where, splits)
            local = histograms(codes, y, where, np.asarray(frontier), n_bins, n_classes)
            yield node.compute(histogram_flops(int(np.isin(where, frontier).sum()),
                                               codes.shape[1]))
            top = [_top_features(h, class_weight, job.model.criterion, job.options.top_k)
                   for h in local]
            yield node.send(job.server, (i, np.array(top, dtype=np.int32)))
        elif kind == "send":                                     # voting: the chosen features
            hist = np.stack([local[j][f] for j, f in enumerate(msg[1])])
            yield node.send(job.server, (i, hist.astype(np.int32)))
        else:                                                    # hist_tree: a level
            _, _, splits, build = msg
            where = _route(codes, where, splits)
            hist = histograms(codes, y, where, np.asarray(build), n_bins, n_classes)
            yield node.compute(histogram_flops(int(np.isin(where, build).sum()), codes.shape[1]))
            yield node.send(job.server, (i, hist.astype(np.int32)))


def _route(codes, where, splits) -> np.ndarray:
    where = where.copy()
    for parent, feature, b, left, right in splits:
        rows = np.flatnonzero(where == parent)
        where[rows] = np.where(codes[rows, feature] <= b, left, right)
    return where


def _top_features(hist, class_weight, criterion: str, k: int) -> np.ndarray:
    """The k features whose best local split lowers the impurity most (ties: lower)."""
    best = split_scores(hist, class_weight, criterion, 1, 1.0).max(axis=1)
    return np.argsort(-best, kind="stable")[:k]

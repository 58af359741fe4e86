"""Data-parallel histogram tree (``hist_tree``, PLANET / XGBoost-hist style): the server
grows one ``DecisionTree`` level by level from the workers' class histograms.

Per level:
1. the server broadcasts the splits it made and the nodes whose histograms it needs;
2. each worker routes its rows down those splits, builds the class histograms of
   those nodes on its shard (counts per feature, bin and class) and sends them;
3. the server sums them -- integer counts, so the sum is the histogram of all the rows,
   in any order -- and splits every frontier node where the impurity drops most.
The tree is therefore the centralized tree on the same bins, split for split, for any
partition. With ``subtraction`` (LightGBM's trick) the workers build only the smaller
child of each split; the server gets its sibling as parent minus child. What it shares
with ``voting_tree`` (bins, routing, gathering) is in ``trees.py``.

References
----------
B. Panda, J. S. Herbach, S. Basu and R. J. Bayardo, "PLANET: Massively Parallel
Learning of Tree Ensembles with MapReduce", VLDB 2009; T. Chen and C. Guestrin,
"XGBoost", KDD 2016; G. Ke et al., "LightGBM", NeurIPS 2017 (histogram subtraction).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks

from ..messages import Level
from ..models._hist import histogram_flops, histograms
from .job import Job
from .trees import bin_rows, gather, record, route, send_part, server_flops, setup, splits_made

__all__ = ["HistTreeOptions", "start", "server", "worker"]


@dataclass(frozen=True, kw_only=True)
class HistTreeOptions:
    subtraction: bool = True  # build the smaller child only; the sibling is parent - child

    def __post_init__(self):
        _checks.flag("subtraction", self.subtraction)


def start(job: Job):
    return job.start(server, worker)


def server(job: Job):
    node = job.server
    tree, builder, edges = setup(job)
    made, known, level = [], {}, 0   # known: node -> summed histogram
    while builder.frontier:
        frontier = list(builder.frontier)
        build = _to_build(frontier, made, builder, known) if job.options.subtraction else frontier
        ask = Level(edges if level == 0 else None, splits_made(made, builder), build)
        node.broadcast(job.workers, ask)     # 1. splits, asks
        parts = yield from gather(job, node)                     # 2. the shards' histograms
        summed = np.sum([p.astype(np.int64) for p in parts], axis=0)
        known = {n: summed[j] for j, n in enumerate(build)} | {
            n: known[p] - summed[build.index(s)]
            for n, p, s in _siblings(frontier, build, made, builder)}
        hists = np.array([known[n] for n in frontier])
        yield node.compute(server_flops(builder, len(parts), summed, len(frontier)))
        made = builder.grow(frontier, hists)                     # 3. split every node
        level += 1
        if record(job, tree, builder, level):
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


def worker(job: Job, i: int):
    """Route my rows down the new splits, build the histograms I am asked for, send them."""
    node, y, n_classes = job.workers[i], job.shards[i].y, job.classes.size
    codes = where = None
    while True:
        ask = yield node.recv()                        # 1. the level's splits
        if ask.edges is not None:                                #    (the bins, once)
            codes, n_bins, where = yield from bin_rows(job, i, ask.edges)
        where = route(codes, where, ask.splits)
        hist = histograms(codes, y, where, np.asarray(ask.build), n_bins, n_classes)  # 2. mine
        yield node.compute(histogram_flops(int(np.isin(where, ask.build).sum()), codes.shape[1]))
        yield send_part(job, i, hist.astype(np.int32))           # 3. to the server

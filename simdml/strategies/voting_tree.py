"""Voting-parallel histogram tree (``voting_tree``, PV-Tree, Meng et al. 2016): the server
grows one ``DecisionTree`` level by level, asking for few features' histograms only.

Per level: 1. each worker ranks the features by the best split of its *local* histogram
and sends its ``top_k`` per frontier node (only features whose local split lowers the
impurity: a worker with no rows, or one class, at a node does not vote there); 2. the
server counts the votes and asks for the histograms of the ``2 top_k`` most-voted
features only; 3. the best split is chosen among them. Bytes drop from ``d`` features'
histograms to ``2 top_k``; the tree can differ from the exact one (``hist_tree``) where
local and global rankings disagree (with ``2 top_k >= d`` it is the exact tree). What the
two share (bins, routing, gathering) is in ``trees.py``.

References
----------
Q. Meng et al., "A Communication-Efficient Parallel Algorithm for Decision Tree",
NeurIPS 2016 (PV-Tree).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks

from ..messages import CountClasses, SendChosen, Vote
from ..models._hist import histogram_flops, histograms, split_scores
from .job import Job
from .trees import bin_rows, gather, record, route, send_part, server_flops, setup, splits_made

__all__ = ["VotingTreeOptions", "start", "server", "worker"]


@dataclass(frozen=True, kw_only=True)
class VotingTreeOptions:
    top_k: int = 4  # features each worker votes for per node; 2 top_k histograms travel

    def __post_init__(self):
        _checks.integer("top_k", self.top_k, low=1)


def start(job: Job):
    return job.start(server, worker)


def server(job: Job):
    node, k = job.server, job.options.top_k
    tree, builder, edges = setup(job)
    _broadcast(job, CountClasses(edges))
    counts = yield from gather(job, node)                        # 0. class counts, for weights
    builder.set_root(np.sum(counts, axis=0))
    d, made, level = builder.n_features, [], 0
    while builder.frontier:
        frontier = list(builder.frontier)
        _broadcast(job, Vote(splits_made(made, builder), frontier, builder.class_weight))
        votes = yield from gather(job, node)                     # 1. every worker's top_k
        tally = np.zeros((len(frontier), d), dtype=np.int64)
        for v in votes:                                          # (-1: no vote)
            rows, cols = np.nonzero(v >= 0)
            np.add.at(tally, (rows, v[rows, cols]), 1)
        # 2. the 2 top_k most-voted features per node (ties: the lower feature)
        chosen = np.sort(np.argsort(-tally, axis=1, kind="stable")[:, :min(2 * k, d)], axis=1)
        _broadcast(job, SendChosen(chosen))
        parts = yield from gather(job, node)                     # 3. their histograms
        summed = np.sum([p.astype(np.int64) for p in parts], axis=0)
        hists = np.zeros((len(frontier), d, builder.n_bins, builder.n_classes), dtype=np.int64)
        allowed = np.zeros((len(frontier), d), dtype=bool)
        for j in range(len(frontier)):
            hists[j, chosen[j]] = summed[j]
            allowed[j, chosen[j]] = True
        yield node.compute(server_flops(builder, len(parts), summed, len(frontier)))
        made = builder.grow(frontier, hists, allowed=list(allowed))
        level += 1
        if record(job, tree, builder, level):
            return


def _broadcast(job: Job, msg) -> None:
    job.server.broadcast(job.workers, msg)


def worker(job: Job, i: int):
    """Count my classes, vote for my best features per node, send the chosen histograms."""
    node, y, n_classes = job.workers[i], job.shards[i].y, job.classes.size
    codes = where = local = None
    while True:
        match (yield node.recv()):
            case CountClasses(edges):                            # 0. the bins; my class counts
                codes, n_bins, where = yield from bin_rows(job, i, edges)
                yield send_part(job, i, np.bincount(y, minlength=n_classes))
            case Vote(splits, frontier, class_weight):           # 1. my top_k per node
                where = route(codes, where, splits)
                local = histograms(codes, y, where, np.asarray(frontier), n_bins, n_classes)
                yield node.compute(histogram_flops(int(np.isin(where, frontier).sum()),
                                                   codes.shape[1]))
                top = [_top_features(h, class_weight, job.model.criterion, job.options.top_k)
                       for h in local]
                yield send_part(job, i, np.array(top, dtype=np.int32))
            case SendChosen(chosen):                             # 2. the chosen ones' histograms
                hist = np.stack([local[j][f] for j, f in enumerate(chosen)])
                yield send_part(job, i, hist.astype(np.int32))


def _top_features(hist, class_weight, criterion: str, k: int) -> np.ndarray:
    """The k features whose best local split lowers the impurity most (ties: lower); -1
    in place of a feature whose best local split lowers nothing (no rows at the node,
    one row, one class): such a vote would go to features 0, 1, ... by the tie rule."""
    best = split_scores(hist, class_weight, criterion, 1, 1.0).max(axis=1)
    top = np.argsort(-best, kind="stable")[:k]
    return np.where(best[top] > 0, top, -1)

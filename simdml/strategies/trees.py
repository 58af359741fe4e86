"""What the two distributed trees share -- ``hist_tree`` (data-parallel histograms, in
``hist_tree.py``) and ``voting_tree`` (voting-parallel histograms, in ``voting_tree.py``):
the bins, routing rows down the splits, gathering the workers' parts, recording a level.

Both grow one ``DecisionTree`` level by level at the server, from class histograms of
the frontier nodes that the workers build on their own rows. The bins are computed once,
on the whole training set, and broadcast (a simplification: a real system merges
quantile sketches of the shards). Histograms travel as int32.
"""
from __future__ import annotations


import numpy as np

from ..messages import Part
from ..models._base import clone
from ..models._hist import apply_bins, bin_edges, binning_flops, split_flops
from .job import Job

__all__ = ["setup", "gather", "record", "splits_made",
           "server_flops", "bin_rows", "route", "send_part"]


# --------------------------------------------------------------------------- server


def setup(job: Job):
    """Bins from the training set, a tree and its builder; the bins go to every worker
    with the workers' first instruction."""
    tree = clone(job.model)
    edges = bin_edges(job.monitor.X_train, tree.max_bins)
    tree.classes_, tree.n_features_in_ = job.classes, len(edges)
    return tree, tree.builder(edges, job.classes.size), edges


def gather(job: Job, node):
    """Process: every worker's part of this step (a ``Part``); returns them in worker order."""
    parts = {}
    while len(parts) < len(job.workers):
        msg = yield node.recv()
        parts[msg.worker] = msg.data
    return [parts[i] for i in sorted(parts)]


def record(job: Job, tree, builder, level: int) -> bool:
    """The tree so far to the monitor; True means stop."""
    builder.to_tree()
    if job.monitor.update(tree, level):
        return True
    if not builder.frontier:
        job.monitor.stop_reason = (f"tree complete: depth {tree.depth_}, {tree.n_leaves_} "
                                   f"leaves, {tree.feature_.size} nodes")
        return True
    return False


def splits_made(made, builder) -> list[tuple]:
    """What a worker needs to route its rows: (parent, feature, bin, left, right)."""
    return [(p, s.feature, s.bin, builder.left[p], builder.right[p]) for p, s in made]


def server_flops(builder, n_parts: int, summed: np.ndarray, n_nodes: int) -> float:
    """Summing the workers' histograms and searching the splits of the frontier."""
    return n_parts * summed.size + n_nodes * split_flops(builder.n_features, builder.n_bins,
                                                          builder.n_classes)


# --------------------------------------------------------------------------- worker


def bin_rows(job: Job, i: int, edges: list):
    """Process: worker i's rows as bin codes (its flops in simulated time); returns the
    codes, the number of bins and where each row is in the tree (all at the root)."""
    codes = apply_bins(job.shards[i].X, edges)
    n_bins = max(len(e) for e in edges) + 1
    where = np.zeros(job.shards[i].y.size, dtype=np.int64)
    yield job.workers[i].compute(binning_flops(codes.size, job.model.max_bins))
    return codes, n_bins, where


def route(codes, where, splits) -> np.ndarray:
    """Where each row is after ``splits``: down to the left or right child of its node."""
    where = where.copy()
    for parent, feature, b, left, right in splits:
        rows = np.flatnonzero(where == parent)
        where[rows] = np.where(codes[rows, feature] <= b, left, right)
    return where


def send_part(job: Job, i: int, data: np.ndarray):
    """Worker i's part of the server's sum, to the server (an event to yield)."""
    part = Part(i, data)
    return job.workers[i].send(job.server, part)

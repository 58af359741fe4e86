"""Cascade SVM: support vectors flow up a binary tree of merges, the top is fed back.

Pass ``p`` (Graf et al. 2005, Fig. 1): every worker trains a kernel SVM on its shard
(plus, after the first pass, the support vectors of the previous top); worker ``i``
then merges up a binomial tree -- at level ``l`` a worker with ``i % 2^l == 0``
receives the support vectors of worker ``i + 2^(l-1)``, trains on the union of both
sets and keeps the new support vectors; the others send theirs to their parent and
are done for the pass. Worker 0 ends up with the top SVM. When its support-vector set
is the one of the previous pass, the cascade has converged (Graf et al. prove that the
fed-back cascade reaches the global optimum); otherwise the top set is broadcast back
to every worker for the next pass.

Only support vectors travel, as real messages (``SupportVectors``): global row ids,
features and labels, ``n_SV * (8 d + 16)`` bytes, plus their alphas, sparse, behind a
16-byte header, pass and sender (``SupportSet``). As in Graf et al., every fit is
warm-started from the alphas that came with its rows: a merge from its two children's
(summed; they are feasible on disjoint sets), a fed-back pass from the top's. The solution is the same;
the work shrinks, most in the passes after the first. A subset of one class has no margin to find:
all its rows go up. The cascade needs no server (its top is worker 0). A
``gamma = "scale"`` kernel is resolved once on the whole training set, so every layer
fits one kernel.

References
----------
H. P. Graf, E. Cosatto, L. Bottou, I. Durdanovic and V. Vapnik, "Parallel Support
Vector Machines: The Cascade SVM", NeurIPS 17, 2005.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks
from ..models._base import clone
from ..messages import SupportSet
from .job import Job

__all__ = ["CascadeOptions", "start"]

TOP = -1  # the sender of the top's feedback (SupportSet.sender)


@dataclass(frozen=True, kw_only=True)
class CascadeOptions:
    feedback: bool = True  # feed the top's support vectors back until they stop changing

    def __post_init__(self):
        _checks.flag("feedback", self.feedback)


def start(job: Job):
    """Start one cascade process per worker; returns worker 0's (the top: ends training)."""
    model = job.model
    if model.gamma == "scale":  # one kernel for every subset (see the module docstring)
        X = job.monitor.X_train
        variance = X.var()
        model = clone(model, gamma=1.0 / (X.shape[1] * variance) if variance > 0 else 1.0)
    offsets = np.cumsum([0] + [s.n_rows for s in job.shards])
    procs = [node.start(worker, job, i, model, int(offsets[i]))
             for i, node in enumerate(job.workers)]
    return procs[0]


@dataclass(frozen=True, eq=False)
class SupportVectors:
    """Rows on the move up the cascade: global row ids, features, labels and, per binary
    problem (``KernelSVM.problem_keys_``), the alphas of the last fit on them (a warm
    start for the next) and its dual objective."""

    ids: np.ndarray                  # (n,) int64, sorted
    X: np.ndarray                    # (n, d)
    y: np.ndarray                    # (n,)
    alpha: dict = field(default_factory=dict)      # key -> (n,) alphas, 0 off the problem
    objective: dict = field(default_factory=dict)  # key -> W(alpha) of the fit

    @property
    def nbytes(self) -> int:
        """Ids, rows and labels as float64 / int64; alphas sparse (a row index and a
        value per non-zero, 16 bytes) with a 24-byte key and objective per problem."""
        n_alpha = sum(int(np.count_nonzero(a)) for a in self.alpha.values())
        return int(self.ids.nbytes + self.X.nbytes + self.y.nbytes + 16 * n_alpha
                   + 24 * len(self.alpha))


def worker(job: Job, i: int, model, offset: int):
    node, k = job.workers[i], len(job.workers)
    shard = job.shards[i]
    own = SupportVectors(offset + np.arange(shard.n_rows), shard.X, shard.y)
    inbox: dict = {}
    top_ids, fed_back = None, None
    for p in range(1, job.monitor.max_updates + 1):
        rows = own if fed_back is None else _union(own, fed_back)
        fitted, svs = yield from _train(job, node, model, rows)      # 1. my subset
        step = 1
        while step < k and i % (2 * step) == 0:                      # 2. merge up the tree
            if i + step < k:
                child = yield from _expect(node, inbox, (p, i + step))
                fitted, svs = yield from _train(job, node, model, _union(svs, child))
            step *= 2
        if i != 0:
            up = SupportSet(p, i, svs)
            yield node.send(job.workers[i - step], up)  # to my parent
            if not job.options.feedback:
                return
            fed_back = yield from _expect(node, inbox, (p, TOP))   # 3. the top, fed back
            continue
        is_same = top_ids is not None and np.array_equal(top_ids, svs.ids)
        top_ids = svs.ids
        if job.monitor.update(fitted, p):                            # 4. the top: record; stop?
            return
        if is_same or not job.options.feedback:
            job.monitor.stop_reason = (f"converged: the support vectors did not change in "
                                       f"pass {p}" if is_same else "one pass (feedback = false)")
            return
        fed_back = svs
        down = SupportSet(p, TOP, svs)
        node.broadcast(job.workers[1:], down)


def _train(job: Job, node, model, rows: SupportVectors):
    """Fit ``model`` on ``rows``, warm-started from their alphas, taking its flops;
    returns the fitted SVM (None for a one-class subset) and its support vectors."""
    job.monitor.rows += rows.ids.size
    if np.unique(rows.y).size < 2:
        return None, rows  # nothing to separate: every row goes up
    fitted = clone(model).fit(rows.X, rows.y, alpha_init=rows.alpha)
    yield node.compute(fitted.flops_)
    sv = fitted.support_
    return fitted, SupportVectors(rows.ids[sv], rows.X[sv], rows.y[sv],
                                  fitted.support_alpha(),
                                  dict(zip(fitted.problem_keys_, fitted.dual_objective_)))


def _union(a: SupportVectors, b: SupportVectors) -> SupportVectors:
    """The rows of two sets, each id once, sorted by id, with a feasible warm start per
    problem: the sum of both alphas when the sets are disjoint (each satisfies
    ``sum t alpha = 0`` on its own, so the sum does), else the alphas of the set with the
    higher dual objective."""
    ids, first = np.unique(np.concatenate([a.ids, b.ids]), return_index=True)
    X, y = np.concatenate([a.X, b.X])[first], np.concatenate([a.y, b.y])[first]
    is_disjoint = ids.size == a.ids.size + b.ids.size
    alpha, objective = {}, {}
    for key in a.alpha.keys() | b.alpha.keys():
        sides = [s for s in (a, b) if key in s.alpha]
        if not is_disjoint:
            sides = [max(sides, key=lambda s: s.objective[key])]
        dense = np.zeros(ids.size)
        for side in sides:
            dense[np.searchsorted(ids, side.ids)] += side.alpha[key]
        alpha[key], objective[key] = dense, max(s.objective[key] for s in sides)
    return SupportVectors(ids, X, y, alpha, objective)


def _expect(node, inbox: dict, key: tuple[int, int]):
    """Wait for the support vectors of ``key = (pass, sender)``, keeping others that
    arrive first; returns them."""
    while key not in inbox:
        msg = yield node.recv()
        inbox[msg.pass_no, msg.sender] = msg.svs
    return inbox.pop(key)

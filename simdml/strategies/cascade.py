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

Only support vectors travel, as real messages: global row ids (int64), features and
labels, ``n_SV * (8 d + 16)`` bytes, behind a 16-byte tag (pass, sender). A subset of one class has no margin to find:
all its rows go up. The cascade needs no server (its top is worker 0), and each SMO
starts from zero (Graf et al. warm-start the merged problems from the children's
alphas; that saves time, not accuracy). A ``gamma = "scale"`` kernel is resolved once
on the whole training set, so every layer fits one kernel.

References
----------
H. P. Graf, E. Cosatto, L. Bottou, I. Durdanovic and V. Vapnik, "Parallel Support
Vector Machines: The Cascade SVM", NeurIPS 17, 2005.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models._base import clone
from ._job import Job

__all__ = ["CascadeOptions", "start"]

TOP = -1  # the sender in the tag (pass, sender) of the top's feedback


@dataclass(frozen=True, kw_only=True)
class CascadeOptions:
    feedback: bool = True  # feed the top's support vectors back until they stop changing

    def __post_init__(self):
        if not isinstance(self.feedback, bool):
            raise ValueError(f"feedback must be true or false; got {self.feedback!r}")


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


def worker(job: Job, i: int, model, offset: int):
    node, k = job.workers[i], len(job.workers)
    shard = job.shards[i]
    own = (offset + np.arange(shard.n_rows), shard.X, shard.y)  # (global row ids, X, y)
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
            yield node.send(job.workers[i - step], ((p, i), svs))  # to my parent
            if not job.options.feedback:
                return
            fed_back = yield from _expect(node, inbox, (p, TOP))   # 3. the top, fed back
            continue
        is_same = top_ids is not None and np.array_equal(top_ids, svs[0])
        top_ids = svs[0]
        if job.monitor.update(fitted, p):                            # 4. the top: record; stop?
            return
        if is_same or not job.options.feedback:
            job.monitor.stop_reason = (f"converged: the support vectors did not change in "
                                       f"pass {p}" if is_same else "one pass (feedback = false)")
            return
        fed_back = svs
        node.broadcast(job.workers[1:], ((p, TOP), svs))


def _train(job: Job, node, model, rows):
    """Fit ``model`` on ``rows`` (ids, X, y), taking its flops; returns the fitted SVM
    (None for a one-class subset) and the support vectors as (ids, X, y)."""
    ids, X, y = rows
    job.monitor.rows += ids.size
    if np.unique(y).size < 2:
        return None, rows  # nothing to separate: every row goes up
    fitted = clone(model).fit(X, y)
    yield node.compute(fitted.flops_)
    sv = fitted.support_
    return fitted, (ids[sv], X[sv], y[sv])


def _union(a, b):
    """The rows of two (ids, X, y) sets, each id once, sorted by id."""
    ids = np.concatenate([a[0], b[0]])
    ids, first = np.unique(ids, return_index=True)
    return ids, np.concatenate([a[1], b[1]])[first], np.concatenate([a[2], b[2]])[first]


def _expect(node, inbox: dict, tag):
    """Wait for the message tagged ``tag``, keeping others that arrive first."""
    while tag not in inbox:
        key, payload = yield node.recv()
        inbox[key] = payload
    return inbox.pop(tag)

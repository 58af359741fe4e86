"""Consensus ADMM for the linear SVM: local proximal solves, a global average.

The linear SVM objective (``LinearSVM``) is split over the shards,
``sum_i f_i(x) + g(z)`` subject to ``x_i = z``, with ``f_i`` the hinge terms of shard
``i`` (each row weighted ``1 / n``) and ``g(z) = l2 / 2 ||z_w||^2`` (the intercepts are
not penalized). Scaled-form ADMM (Boyd et al. 2011, eq. 7.6), iteration ``k``:

1. worker i:  ``x_i = argmin f_i(x) + rho/2 ||x - z + u_i||^2``  (``LinearSVM.prox_hinge``,
   dual coordinate descent, warm-started from its previous duals); push ``x_i``;
2. server:    ``z = argmin g(z) + N rho/2 ||z - mean(x_i + u_i)||^2``, i.e. the weight rows
   shrunk by ``N rho / (l2 + N rho)``, the intercept row unchanged; broadcast ``z``;
3. both:      ``u_i += x_i - z``: each worker keeps its own ``u_i``, the server a copy
   (it knows every ``x_i`` and ``z``), so only ``x_i`` and ``z`` travel.

The server records the primal residual ``r = sqrt(sum_i ||x_i - z||^2)`` and the dual
residual ``s = rho sqrt(N) ||z - z_prev||`` per iteration (as ``primal_residual``,
``dual_residual`` in the history) and stops when both are below Boyd's tolerances
(Sec. 3.3.1: ``eps_pri = sqrt(N p) eps_abs + eps_rel max(||x||, sqrt(N) ||z||)``,
``eps_dual = sqrt(N p) eps_abs + eps_rel rho ||u||``), or after ``stop.rounds``.
The objective converges to the centralized linear SVM's minimum, whatever the partition.

References
----------
S. Boyd, N. Parikh, E. Chu, B. Peleato and J. Eckstein, "Distributed Optimization and
Statistical Learning via the Alternating Direction Method of Multipliers", *Foundations
and Trends in Machine Learning* 3(1), 2011: Sec. 3.3 (residuals, stopping), 7.1
(consensus), 8.2 (splitting across examples: the SVM).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..messages import LocalSolution
from .job import Job

__all__ = ["ADMMOptions", "start"]


@dataclass(frozen=True, kw_only=True)
class ADMMOptions:
    rho: float = 0.1          # consensus penalty; on the bundled data (l2 = 0.01, rows
                              # weighted 1/n) 0.01-0.1 converge in ~100 iterations, 1 in >300
    eps_abs: float = 1e-4     # absolute tolerance of the residuals (per coordinate)
    eps_rel: float = 1e-3     # relative tolerance of the residuals
    local_tol: float = 1e-3   # margin tolerance of each worker's proximal solve
    local_epochs: int = 100   # passes over the shard per proximal solve, at most

    def __post_init__(self):
        for name in ("rho", "eps_abs", "eps_rel", "local_tol"):
            _checks.finite_number(name, getattr(self, name), low=0, strict_low=True)
        _checks.integer("local_epochs", self.local_epochs, low=1)


def start(job: Job):
    return job.start(server, worker)


def server(job: Job):
    node, opts, n_workers = job.server, job.options, len(job.workers)
    z = job.params
    d1 = job.monitor.X_train.shape[1] + 1
    shrink = n_workers * opts.rho / (job.model.l2 + n_workers * opts.rho)
    u = np.zeros((n_workers, z.size))
    if job.monitor.update(z, 0):
        return
    node.broadcast(job.workers, z)
    for k in range(1, job.monitor.max_updates + 1):
        x = np.zeros_like(u)
        for _ in range(n_workers):                           # 1. gather every x_i
            msg = yield node.recv()
            x[msg.worker] = msg.x
        z_prev = z                                           # 2. z-update
        v = (x + u).mean(axis=0).reshape(d1, -1)
        v[:-1] *= shrink
        z = v.reshape(-1)
        yield node.compute(4 * x.size)
        u += x - z                                           # 3. the scaled duals
        node.broadcast(job.workers, z)
        r = float(np.sqrt(((x - z) ** 2).sum()))
        s = opts.rho * math.sqrt(n_workers) * float(np.linalg.norm(z - z_prev))
        p = x.size
        eps_pri = math.sqrt(p) * opts.eps_abs + opts.eps_rel * max(
            float(np.linalg.norm(x)), math.sqrt(n_workers) * float(np.linalg.norm(z)))
        eps_dual = math.sqrt(p) * opts.eps_abs + opts.eps_rel * opts.rho * float(np.linalg.norm(u))
        if job.monitor.update(z, k, primal_residual=r, dual_residual=s):
            return
        if r <= eps_pri and s <= eps_dual:
            job.monitor.stop_reason = (f"converged: residuals r={r:.3g} <= {eps_pri:.3g} and "
                                       f"s={s:.3g} <= {eps_dual:.3g} at iteration {k}")
            return


def worker(job: Job, i: int):
    node, opts, model = job.workers[i], job.options, job.model
    shard = job.shards[i]
    z = yield node.recv()
    u = np.zeros_like(z)
    alpha = None
    while True:
        x, alpha, flops = model.prox_hinge(z - u, shard.X, shard.y, rho=opts.rho,  # 1. local
                                           row_weight=1.0 / job.n_train, alpha=alpha,
                                           tol=opts.local_tol, max_epochs=opts.local_epochs)
        job.monitor.rows += shard.n_rows
        yield node.compute(flops)
        mine = LocalSolution(i, x)
        yield node.send(job.server, mine)
        z = yield node.recv()                                # 2. the new consensus
        u += x - z                                           # 3. my scaled dual

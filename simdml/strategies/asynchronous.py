"""Asynchronous and stale-synchronous parameter servers.

``async``: every push updates the model at once, and the pushing worker gets the fresh
model back; nobody waits for anybody. The price is *staleness*: a gradient computed on
version ``v`` is applied to version ``V >= v``; ``V - v`` is recorded for every gradient.

``ssp`` (stale-synchronous parallel): the same, except that a worker may run at most
``staleness = s`` clock ticks (pushes) ahead of the slowest worker; a worker too far
ahead gets its next model only when the slowest catches up. ``s = 0`` is bulk-
synchronous (every worker's round-t gradient is computed on the same model), and a
large ``s`` never holds anyone back: asynchronous.

Each push moves the model by ``lr * (n_i / n) * g_i``, so one push from every worker on
the same model is exactly one synchronous step: ``ssp`` with ``s = 0`` computes the
same parameters as ``sync``, and the strategies differ only in where they wait.

References
----------
Recht et al. (2011), "Hogwild!", NeurIPS; Dean et al. (2012), "Large Scale Distributed
Deep Networks", NeurIPS; Ho et al. (2013), "More Effective Distributed ML via a Stale
Synchronous Parallel Parameter Server", NeurIPS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ._job import Job
from .sync import worker

__all__ = ["AsyncOptions", "SSPOptions", "start", "server"]


@dataclass(frozen=True, kw_only=True)
class AsyncOptions:
    pass


@dataclass(frozen=True, kw_only=True)
class SSPOptions:
    staleness: int = 2  # s: how many pushes a worker may run ahead of the slowest

    def __post_init__(self):
        if isinstance(self.staleness, bool) or not isinstance(self.staleness, int) \
                or self.staleness < 0:
            raise ValueError(f"staleness must be an integer >= 0; got {self.staleness!r}")


def start(job: Job):
    """Start the server and the workers; returns the server process (ends training)."""
    for i, node in enumerate(job.workers):
        node.start(worker, job, i)
    bound = getattr(job.options, "staleness", math.inf)
    return job.server.start(server, job, bound)


def server(job: Job, bound: float = math.inf):
    node, workers = job.server, job.workers
    params, version = job.params, 0
    if job.monitor.update(params, version):
        return
    clocks = [0] * len(workers)                     # pushes received from each worker
    held = set()                                    # workers too far ahead of the slowest
    node.broadcast(workers, (version, params))      # 1. everyone starts from w_0
    while True:
        i, v, grad = yield node.recv()              # 2. any worker's gradient
        job.record_staleness(version - v)
        yield node.compute(2 * params.size)
        params = params - (job.lr * job.weights[i]) * grad   # 3. apply it at once
        version += 1
        clocks[i] += 1
        if job.monitor.update(params, version):
            return
        slowest = min(clocks)                       # 4. reply to whoever may go on
        held.add(i)
        for j in sorted(held):
            if clocks[j] - slowest <= bound:
                held.discard(j)
                node.send(workers[j], (version, params))

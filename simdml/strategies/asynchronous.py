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

from .. import _checks
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
        _checks.integer("staleness", self.staleness, low=0)


def start(job: Job):
    """Start the server and the workers; returns the server process (ends training)."""
    for i, node in enumerate(job.workers):
        node.start(worker, job, i, False, True)  # workers pull: a restarted one rejoins
    bound = getattr(job.options, "staleness", math.inf)
    return job.server.start(server, job, bound)


def server(job: Job, bound: float = math.inf):
    node, workers = job.server, job.workers
    params, version = job.params, 0
    if job.monitor.update(params, version):
        return
    clock = _Clocks(len(workers))                   # pushes received from each worker
    held = []                                       # workers too far ahead of the slowest
    while True:
        i, v, grad = yield node.recv()              # 1. any worker's message:
        if grad is None:                            #    a pull (at its start or restart)
            node.send(workers[i], (version, params))
            continue
        job.record_staleness(version - v)           # 2. a gradient, computed on version v
        yield node.compute(2 * params.size)
        params = params - (job.lr * job.weights[i]) * grad   # 3. apply it at once
        version += 1
        slowest_moved = clock.tick(i)
        if job.monitor.update(params, version):
            return
        if clock[i] - clock.slowest <= bound:       # 4. reply to whoever may go on
            node.send(workers[i], (version, params))
        else:
            held.append(i)
        if slowest_moved and held:
            go = sorted(j for j in held if clock[j] - clock.slowest <= bound)
            held = [j for j in held if clock[j] - clock.slowest > bound]
            node.broadcast([workers[j] for j in go], (version, params))


class _Clocks:
    """Each worker's clock (its pushes so far) and the slowest clock, kept up to date in
    O(1) per tick (a count of workers per clock value), so 10,000 workers cost no scan."""

    def __init__(self, n: int):
        self.clocks = [0] * n
        self.count = {0: n}     # clock value -> number of workers at it
        self.slowest = 0

    def __getitem__(self, i: int) -> int:
        return self.clocks[i]

    def tick(self, i: int) -> bool:
        """Worker i pushed once more; returns whether the slowest clock moved."""
        c = self.clocks[i]
        self.clocks[i] = c + 1
        self.count[c] -= 1
        self.count[c + 1] = self.count.get(c + 1, 0) + 1
        if c != self.slowest or self.count[c]:
            return False
        del self.count[c]
        self.slowest = c + 1
        return True

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
With an ``[optimizer]``, the server holds its one state and steps it on every push, as
``n_i / n`` of a step (``Optimizer.step(..., scale=n_i / n)``); the schedule counts the
pushes (the updates). (For momentum and Adam, ``s = 0`` is then no longer sync: n pushes
are n steps of the optimizer, not one.)

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
from ..messages import Gradient, Model, Pull
from .job import Job

__all__ = ["AsyncOptions", "SSPOptions", "start", "server", "worker"]


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
    bound = getattr(job.options, "staleness", math.inf)  # async: no bound
    return job.start(server, worker, bound)


def server(job: Job, bound: float = math.inf):
    node, workers = job.server, job.workers
    params, version = job.params, 0
    opt = job.optimizer
    state = opt.init_state(params)                  # the optimizer's state lives here
    memory = node.memory
    memory.set("params", params.nbytes)
    memory.set("optimizer", state.nbytes)
    if job.monitor.update(params, version):
        return
    clock = _Clocks(len(workers), bound)            # pushes received from each worker
    held = []                                       # workers too far ahead of the slowest
    while True:
        match (yield node.recv()):                  # 1. any worker's message:
            case Gradient(i, v, grad):              #    a gradient, computed on version v
                job.stats.record_staleness(version - v)
                if job.compression is not None:     #    compressed: what it stands for
                    grad = job.compression.decode(grad)
                memory.set("grads", grad.nbytes)
                yield node.compute(opt.flops(params.size))  # 2. apply it now, as n_i / n
                params, state = opt.step(params, grad, state, version,  # of a step
                                         scale=job.shard_weights[i])
                memory.free("grads")
                memory.set("optimizer", state.nbytes)
                version += 1
                slowest_moved = clock.tick(i)
                if job.monitor.update(params, version):
                    return
                model = Model(version, params)      # 3. reply to whoever may go on
                if clock.may_go(i):
                    node.post(workers[i], model)
                else:
                    held.append(i)
                if slowest_moved and held:          #    ... and to those it held back
                    go = sorted(j for j in held if clock.may_go(j))
                    held = [j for j in held if not clock.may_go(j)]
                    node.broadcast([workers[j] for j in go], model)
            case Pull(i):                           #    a pull (at its start or restart)
                node.post(workers[i], Model(version, params))


def worker(job: Job, i: int):
    """An asynchronous worker: ask for the model, then compute and push for ever; each push
    is answered with a fresher model (under ssp, once the slowest worker is near)."""
    node, server_node = job.workers[i], job.server
    job.begin_worker(i)
    node.post(server_node, Pull(i))                 # 0. ask for the model: at my start,
                                                    #    and so again after a restart
    while True:
        model = node.skip_to_newest((yield node.recv()))  # 1. the freshest model I have
        node.memory.set("params", model.params.nbytes)
        grad, flops = job.gradient(i, model.params)     # 2. real gradient on my shard
        yield node.compute(flops)                   #    ... which takes simulated time
        node.memory.free("activations")
        yield node.send(server_node, Gradient(i, model.version, job.payload(i, grad)))  # 3. push
        node.memory.free("grads")


class _Clocks:
    """Each worker's clock (its pushes so far) and the slowest clock, kept up to date in
    O(1) per tick (a count of workers per clock value), so 10,000 workers cost no scan."""

    def __init__(self, n: int, bound: float):
        self.clocks = [0] * n
        self.count = {0: n}     # clock value -> number of workers at it
        self.slowest = 0
        self.bound = bound      # s: how far ahead of the slowest a worker may run

    def may_go(self, i: int) -> bool:
        """SSP's condition: worker i is at most ``bound`` pushes ahead of the slowest."""
        return self.clocks[i] - self.slowest <= self.bound

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

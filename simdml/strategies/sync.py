"""Synchronous parameter server: every round waits for every worker's gradient.

Round ``t``: the server broadcasts the model ``w_t``; each worker computes the gradient
of the loss on its shard; the server averages the gradients weighted by shard size and
steps, ``w_{t+1} = w_t - lr * sum_i (n_i / n) g_i``. Because the loss is a mean over
rows, that weighted average *is* the full-batch gradient, so this strategy computes
exactly full-batch gradient descent -- only the clock tells it ran on a cluster.

``round_timeout`` (s) closes a round early with the gradients that arrived (weighted
by their shards' sizes), so that a crashed worker does not hang training; late
gradients of past rounds are dropped and counted.

References
----------
Dean et al. (2012), "Large Scale Distributed Deep Networks", NeurIPS; Li et al. (2014),
"Scaling Distributed Machine Learning with the Parameter Server", OSDI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ._job import Job

__all__ = ["SyncOptions", "start"]


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    round_timeout: float = math.inf  # s; inf waits for every worker, however long


def start(job: Job):
    """Start the server and the workers; returns the server process (ends training)."""
    for worker_node, shard in zip(job.workers, job.shards):
        worker_node.start(worker, job, worker_node, shard)
    return job.server.start(server, job)


def server(job: Job):
    node, n_workers = job.server, len(job.workers)
    params, version = job.params, 0
    if job.monitor.update(params, version):
        return
    while True:
        for w in job.workers:                               # 1. broadcast the model
            node.send(w, (version, params))
        grads = {}                                          # 2. gather this round's gradients
        deadline = node.sim.now + job.options.round_timeout
        while len(grads) < n_workers:
            msg = yield from _recv_before(node, deadline)
            if msg is None:
                break                                       #    round timed out
            i, v, grad = msg
            if v == version:
                grads[i] = grad
            else:
                job.count("stale_gradients_dropped")
        if len(grads) < n_workers:
            job.count("incomplete_rounds")
        if not grads:
            continue                                        #    nobody answered: try again
        rows = {i: job.shards[i].n_rows for i in grads}     # 3. average, weighted by samples,
        total = sum(rows.values())                          #    in worker order (deterministic)
        g = sum((rows[i] / total) * grads[i] for i in sorted(grads))
        yield node.compute((len(grads) + 2) * params.size)  # 4. step, on the server's CPU
        params = params - job.lr * g
        version += 1
        if job.monitor.update(params, version):             # 5. record; stop?
            return


def worker(job: Job, node, shard):
    model, server_node = job.model, job.server
    while True:
        version, params = yield node.recv()                 # 1. get the current model
        _, grad = model.loss_grad(params, shard.X, shard.y) # 2. real gradient on my shard
        yield node.compute(model.grad_flops(shard.n_rows))  #    ... which takes simulated time
        yield node.send(server_node, (node.index - 1, version, grad))  # 3. push it


def _recv_before(node, deadline: float):
    """Wait for the next message until ``deadline``; returns it, or None on timeout."""
    if deadline == math.inf:
        return (yield node.recv())
    remaining = deadline - node.sim.now
    if remaining <= 0:
        return None
    get = node.recv()
    fired = yield node.sim.any_of([get, node.sim.timeout(remaining)])
    return get.value if fired[0] is get else None

"""Decentralized synchronous training with a ring all-reduce: no parameter server.

Each round every worker computes its gradient, scaled by its shard's share ``n_i / n``;
the ring all-reduce sums the scaled gradients so that every worker ends with the
full-batch gradient, and every worker takes the same step on its own copy of the model
-- and of the optimizer's state: with momentum or Adam every worker holds the whole
state and steps it identically (a replicated optimizer, as in data parallelism), so the
run equals ``sync`` with the same optimizer.

The ring (worker i sends to worker i+1 mod n) runs in two phases over ``n`` chunks of
the gradient: ``n - 1`` reduce-scatter steps (each worker passes on a partial sum of one
chunk and adds the one it receives) and ``n - 1`` all-gather steps (the finished chunks
travel round). Each step moves ``1/n`` of the vector over every link at once, so a round
costs ``2 (n - 1) (alpha + (b / n) beta)``: the bandwidth term does not grow with n.

References
----------
Patarasuk & Yuan (2009), "Bandwidth optimal all-reduce algorithms for clusters of
workstations", JPDC 69(2); Sergeev & Del Balso (2018), "Horovod", arXiv:1802.05799.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .job import Job

__all__ = ["AllReduceOptions", "start", "worker", "ring_allreduce", "ring_reduce_scatter",
           "ring_allgather", "owned_chunk"]


@dataclass(frozen=True, kw_only=True)
class AllReduceOptions:
    pass


def start(job: Job):
    """Start one process per worker; worker 0's process (which records) ends training."""
    procs = [node.start(worker, job, i) for i, node in enumerate(job.workers)]
    return procs[0]


def worker(job: Job, i: int):
    node = job.workers[i]
    params, version = job.params.copy(), 0
    opt = job.optimizer
    state = opt.init_state(params)                            # my replica of the state
    node.memory.set("params", params.nbytes)
    node.memory.set("optimizer", state.nbytes)
    if i == 0 and job.monitor.update(params, version):
        return
    while True:
        grad, flops = job.gradient(i, params)                 # 1. real gradient on my shard
        yield node.compute(flops)                             #    ... in simulated time
        node.memory.free("activations")
        mine = job.shard_weights[i] * grad                    #    my share of the average
        total = yield from ring_allreduce(job, i, mine)       # 2. sum over the ring
        yield node.compute(opt.flops(params.size))            # 3. the same step everywhere
        params, state = opt.step(params, total, state, version)
        node.memory.free("grads")
        node.memory.set("optimizer", state.nbytes)
        version += 1
        if i == 0 and job.monitor.update(params, version):    # 4. worker 0 records
            return


def ring_allreduce(job: Job, i: int, vector: np.ndarray):
    """Process: sum ``vector`` over all workers along the ring; returns the sum.

    Messages between neighbours arrive in the order they were sent, so each step's
    chunk is simply the next message from the left neighbour. The reduce-scatter, then
    the all-gather: each half is a process of its own (ZeRO uses them apart).
    """
    if len(job.workers) == 1:
        return vector
    chunks = [c.copy() for c in np.array_split(vector, len(job.workers))]
    yield from ring_reduce_scatter(job, i, chunks)
    yield from ring_allgather(job, i, chunks)
    return np.concatenate(chunks)


def owned_chunk(i: int, n: int) -> int:
    """The chunk worker ``i`` of ``n`` holds summed after the ring's reduce-scatter (and
    sends first in its all-gather): ``(i + 1) mod n``."""
    return (i + 1) % n


def ring_reduce_scatter(job: Job, i: int, chunks: list[np.ndarray]):
    """Process: ``n - 1`` steps that leave, in place, ``chunks[owned_chunk(i, n)]`` summed
    over all workers (the other chunks hold partial sums). ``chunks`` are worker ``i``'s
    own ``n`` arrays (its copies: they are added to)."""
    n = len(job.workers)
    node, right = job.workers[i], job.workers[(i + 1) % n]
    for step in range(n - 1):
        send, recv = (i - step) % n, (i - step - 1) % n
        node.send(right, chunks[send])
        partial = yield node.recv()
        if partial.shape != chunks[recv].shape:   # a broken order would broadcast silently
            raise RuntimeError(f"worker {i}'s ring received a chunk of shape {partial.shape} "
                               f"for its chunk {recv} of shape {chunks[recv].shape}")
        chunks[recv] += partial


def ring_allgather(job: Job, i: int, chunks: list[np.ndarray]):
    """Process: ``n - 1`` steps from ``chunks[owned_chunk(i, n)]`` (each worker's own) to
    every worker holding every worker's chunk, in place of the others in ``chunks``."""
    n = len(job.workers)
    node, right = job.workers[i], job.workers[(i + 1) % n]
    for step in range(n - 1):
        send, recv = (i + 1 - step) % n, (i - step) % n
        node.send(right, chunks[send])
        chunks[recv] = yield node.recv()

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
from typing import NamedTuple

import numpy as np

from .job import Job

__all__ = ["AllReduceOptions", "Ring", "start", "worker", "ring_allreduce",
           "ring_reduce_scatter", "ring_allgather", "owned_chunk"]


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


class Ring(NamedTuple):
    """A group of nodes that all-reduce together, in ring order (node ``k`` sends to
    ``k + 1``). Untagged (the default, every worker): chunks travel as bare arrays and
    are taken from the mailbox, the ring being a node's only traffic. Tagged: a chunk
    travels as ``(tag, array)`` at the array's bytes and is taken from the member's
    ``inboxes[k]``, a store its demultiplexer fills (for nodes in several groups)."""

    nodes: list
    tag: str | None = None
    inboxes: list | None = None


def ring_allreduce(job: Job, i: int, vector: np.ndarray, ring: Ring | None = None):
    """Process: sum ``vector`` over the ring (default: all workers; ``i`` is the node's
    place in it); returns the sum.

    Messages between neighbours arrive in the order they were sent, so each step's
    chunk is simply the next message from the left neighbour. The reduce-scatter, then
    the all-gather: each half is a process of its own (ZeRO uses them apart).
    """
    n = len(job.workers if ring is None else ring.nodes)
    if n == 1:
        return vector
    chunks = [c.copy() for c in np.array_split(vector, n)]
    yield from ring_reduce_scatter(job, i, chunks, ring)
    yield from ring_allgather(job, i, chunks, ring)
    return np.concatenate(chunks)


def owned_chunk(i: int, n: int) -> int:
    """The chunk worker ``i`` of ``n`` holds summed after the ring's reduce-scatter (and
    sends first in its all-gather): ``(i + 1) mod n``."""
    return (i + 1) % n


def _link(job: Job, i: int, ring: Ring | None):
    """``(n, send(array), recv())`` for node ``i`` of the ring."""
    if ring is None or ring.tag is None:
        nodes = job.workers if ring is None else ring.nodes
        n = len(nodes)
        node, right = nodes[i], nodes[(i + 1) % n]
        return n, lambda array: node.send(right, array), node.recv
    n, tag, inbox = len(ring.nodes), ring.tag, ring.inboxes[i]
    node, right = ring.nodes[i], ring.nodes[(i + 1) % n]
    return n, lambda array: node.send(right, (tag, array), array.nbytes), inbox.get


def ring_reduce_scatter(job: Job, i: int, chunks: list[np.ndarray], ring: Ring | None = None):
    """Process: ``n - 1`` steps that leave, in place, ``chunks[owned_chunk(i, n)]`` summed
    over the ring (the other chunks hold partial sums). ``chunks`` are node ``i``'s own
    ``n`` arrays (its copies: they are added to)."""
    n, send, recv = _link(job, i, ring)
    for step in range(n - 1):
        out, into = (i - step) % n, (i - step - 1) % n
        send(chunks[out])
        partial = yield recv()
        if partial.shape != chunks[into].shape:   # a broken order would broadcast silently
            raise RuntimeError(f"worker {i}'s ring received a chunk of shape {partial.shape} "
                               f"for its chunk {into} of shape {chunks[into].shape}")
        chunks[into] += partial


def ring_allgather(job: Job, i: int, chunks: list[np.ndarray], ring: Ring | None = None):
    """Process: ``n - 1`` steps from ``chunks[owned_chunk(i, n)]`` (each node's own) to
    every node holding every node's chunk, in place of the others in ``chunks``."""
    n, send, recv = _link(job, i, ring)
    for step in range(n - 1):
        out, into = (i + 1 - step) % n, (i - step) % n
        send(chunks[out])
        chunks[into] = yield recv()

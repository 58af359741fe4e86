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

``collective`` picks the all-reduce algorithm (``simdml.collectives``: ``ring``, the
default, ``tree``, ``recursive_doubling``, ``rabenseifner`` / ``halving_doubling``); every
one gives every worker the same sum, so the run is ``sync``'s whatever it is, to the
rounding of the order it adds in; only the time and the messages differ.

With ``[compression]`` the payloads cannot be summed on the way (each worker's top-k
has its own indices; signs are voted, not added), so each worker's compressed gradient
travels the ring whole: an all-gather of ``p - 1`` steps of ``c`` bytes (the payload's),
``(p - 1)(alpha + c beta)`` (``collectives.allgather_time``), after which every worker
decodes all ``p`` payloads and aggregates them in worker order as the ``sync`` server
does -- the run is ``sync``'s with the same compression, bit for bit. It beats the dense
ring's ``2 (p - 1) / p n beta`` only while ``c < 2 n / p``: the all-gather's bytes grow
with the workers (Agarwal et al. 2022 measure this limit of sparsification in practice).
The all-gather is always a ring (``collective`` must be ``ring``).

References
----------
Patarasuk & Yuan (2009), "Bandwidth optimal all-reduce algorithms for clusters of
workstations", JPDC 69(2); Sergeev & Del Balso (2018), "Horovod", arXiv:1802.05799;
Agarwal et al. (2022), "On the Utility of Gradient Compression in Distributed Training
Systems", MLSys.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import _checks
from ..collectives import allreduce, check_collective
from .job import Job

__all__ = ["AllReduceOptions", "start", "worker", "group_size_divides_the_workers"]


def group_size_divides_the_workers(s) -> None:
    """A scenario rule: the hierarchical all-reduce's groups tile the workers."""
    g = s.strategy.options.get("group_size", 1)
    if _checks.is_integer(g) and g >= 1 and s.cluster.workers % g:
        raise ValueError(f"strategy.group_size={g} must divide cluster.workers="
                         f"{s.cluster.workers}: the hierarchical all-reduce's groups tile "
                         f"the workers")


@dataclass(frozen=True, kw_only=True)
class AllReduceOptions:
    collective: str = "ring"    # the all-reduce algorithm (simdml.collectives.ALLREDUCE)
    group_size: int = 1         # hierarchical: workers per inner group (a rack's hosts)

    def __post_init__(self):
        check_collective(self.collective, self.group_size)


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
        if job.compression is None:
            mine = job.shard_weights[i] * grad                #    my share of the average
            total = yield from allreduce(job.options.collective, job.group, i, mine,  # 2. sum
                                         job.options.group_size)
        else:                                                 #    compressed: all-gathered
            total = yield from job.all_gather_sum(i, grad, job.shard_weights,
                                                  state_nbytes=state.nbytes)
        yield node.compute(opt.flops(params.size))            # 3. the same step everywhere
        params, state = opt.step(params, total, state, version)
        node.memory.free("grads")
        job.book_optimizer(i, state.nbytes)
        version += 1
        if i == 0 and job.monitor.update(params, version):    # 4. worker 0 records
            return

"""FedBuff (Nguyen et al. 2022), fedavg's ``strategy.mode = "buffered"``: buffered
asynchronous aggregation over the clients of ``simdml.strategies.federated`` (its
messages, its federation, its clients' program), with staleness-weighted updates.

References
----------
J. Nguyen et al. (2022), "Federated Learning with Buffered Asynchronous Aggregation",
AISTATS.
"""
from __future__ import annotations

import math

import numpy as np

from ._costs import aggregate_flops
from . import federated
from .federated import Federation, Task
from .job import Job, weighted_sum

__all__ = ["buffered_change", "buffered_server", "start"]


def start(job: Job):
    """fedavg's start: its sync rounds, or with ``mode = "buffered"`` FedBuff's server."""
    if job.options.mode == "buffered":
        return federated.start(job, buffered_server)
    return federated.start(job)


def buffered_server(job: Job, fed: Federation):
    """FedBuff (Nguyen et al. 2022): ``m`` clients train at once, each from the model of
    when it started; each report's change ``y_c - x_{t_c}`` joins a buffer, weighted by
    its staleness ``s = t - t_c`` (``1 / sqrt(1 + s)``, or 1); when ``K`` changes are in,
    the server steps by their average (by rows, times the weights) and a new version
    begins. A freed place is filled at once by a newly sampled client, one that has not
    reported on the current version yet (so that a client never trains twice on the same
    model): with ``K = m`` = every client, no update is ever stale, and each version is a
    synchronous FedAvg round."""
    node, opt, cfg = job.server, job.optimizer, fed.config
    params, version = job.params, 0
    state = opt.init_state(params)
    node.memory.set("params", params.nbytes)
    node.memory.set("optimizer", state.nbytes)
    if job.monitor.update(params, version, sampled=0, participants=0, dropped=0):
        return
    k_round, m = fed.per_round()
    k = job.options.buffer_size or k_round
    training: dict[int, int] = {}                   # client -> the version it started on
    models: dict[int, np.ndarray] = {}              # version -> its model, while in use
    reported: set[int] = set()                      # ... and reported on, this version
    buffer, rows, stalenesses, sampled = [], [], [], 0
    while True:
        missing = m - len(training)                 # fill the free places
        if missing:
            chosen = fed.population.sample(missing, node.sim.now, fed.rng,
                                           cfg.sampling == "by_size",
                                           exclude=training.keys() | reported)
            for c in chosen:
                training[c] = version
                node.post(fed.device_for(job, c), Task(version, c, params, None, -1))
            if chosen:
                models[version] = params            # kept while a client trains from it
            sampled += len(chosen)
            if not training:                        # nobody available: wait
                job.stats.count("rounds_without_clients")
                yield node.sim.timeout(cfg.retry)
                continue
        msg = yield node.recv()
        began = training.pop(msg.worker)
        reported.add(msg.worker)
        stale = version - began
        job.stats.count("stale_updates", stale > 0)
        buffer.append(msg.params - models[began])
        if began != version and began not in training.values():
            del models[began]                       # no client trains from it any more
        rows.append(job.shard_weights[msg.worker])
        stalenesses.append(stale)
        node.memory.hold("params", msg.params.nbytes)
        if len(buffer) < k:
            continue
        change = buffered_change(buffer, rows, stalenesses, fed.weight)
        yield node.compute(aggregate_flops(len(buffer), params.size, average=True,
                                           step=opt.flops(params.size)))
        params, state = opt.step(params, -change, state, version)
        node.memory.set("params", params.nbytes)
        node.memory.set("optimizer", state.nbytes)
        version += 1
        job.stats.count("participants", len(buffer))
        if job.monitor.update(params, version, sampled=sampled, participants=len(buffer),
                              dropped=0):
            return
        buffer, rows, stalenesses, sampled = [], [], [], 0
        reported = set()


def buffered_change(changes, rows, stalenesses, weight) -> np.ndarray:
    """FedBuff's step from a full buffer: ``sum_i (n_i / sum_j n_j) weight(s_i) Delta_i``,
    each change ``Delta_i`` weighted by its client's share of the buffer's rows and by its
    staleness ``s_i`` (Nguyen et al. 2022, eq. 2 with rows as in FedAvg); in the order the
    changes arrived. ``weight``: one of ``federated.STALENESS_WEIGHTS`` or your own (exercise 12.1)."""
    factors = [float(weight(s)) for s in stalenesses]
    for s, f in zip(stalenesses, factors):
        if not 0 <= f < math.inf:                   # a weight of your own, exercise 12.1
            raise ValueError(f"FedBuff's staleness weight of an update {s} versions old is "
                             f"{f}; a weight is finite and >= 0")
    share = sum(rows)
    return weighted_sum([n / share * f for n, f in zip(rows, factors)], changes)

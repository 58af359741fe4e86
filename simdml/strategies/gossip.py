"""Decentralized training by gossip (``strategy.kind = "gossip"``): D-PSGD, no server.

Every worker ``i`` holds its own model ``x_i``. A round (Lian et al. 2017, in the
adapt-then-combine form of Sayed 2014):

1. **adapt**: a gradient step on its own shard, ``x_i <- x_i - lr p (n_i / n) g_i(x_i)``
   (its share ``n_i / n`` of the full-batch gradient, times the ``p`` workers);
2. send ``x_i`` to each neighbour on the graph (``simdml.graphs``), one copy after the
   other on its NIC;
3. **combine**: ``x_i <- sum_j W_ij x_j`` over itself and its neighbours, ``W`` the
   graph's mixing matrix (``weights``: Metropolis or uniform).

On the complete graph with uniform weights (``W = 11' / p``) every worker ends each round
with ``mean_j (x - lr p (n_j/n) g_j(x)) = x - lr sum_j (n_j / n) g_j(x)``: the full-batch
gradient step of ``sync`` (to rounding; also with momentum, which is linear). On a sparser
graph the models disagree; the history records the average model ``x_bar`` (its loss and
score) and the **consensus distance** ``(1/p) sum_i ||x_i - x_bar||^2``. With no
gradient (``lr = 0``) the disagreement is multiplied by ``W`` every round, so the
distance decays at least as fast as ``lambda^(2t)``, ``lambda`` the second-largest
eigenvalue modulus of ``W`` (``graphs.second_eigenvalue``; spectral gap ``1 - lambda``).

``mode = "sync"``: a round waits for every neighbour's model of that round (messages name
their round; one that comes early waits). A round costs the gradient, the step, and then
``alpha + d b beta`` for ``d`` neighbours (each NIC sends its ``d`` copies one after the
other, and receives ``d``: exactly so on a ring). ``mode = "async"``: no waiting for
neighbours; after its step, and once its copies have left its NIC, a worker combines with the newest model it has received from each neighbour (its initial
model for one not yet heard from), so fast workers take more steps on older neighbours.

Observation: the average model and the consensus distance are computed from every
worker's model when the last worker finishes a round (sync), or after each of worker 0's
rounds from every worker's current model (async); observing costs no simulated time.
A stop rule counts rounds (worker 0's, in async mode).

References
----------
X. Lian et al. (2017), "Can Decentralized Algorithms Outperform Centralized Algorithms? A
Case Study for Decentralized Parallel Stochastic Gradient Descent", NeurIPS; A. H. Sayed
(2014), "Adaptation, Learning, and Optimization over Networks" (adapt-then-combine);
A. Koloskova et al. (2020), "A Unified Theory of Decentralized SGD with Changing Topology
and Local Updates", ICML (consensus distance).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..graphs import (GRAPHS, WEIGHTS, edges_problem, mixing_matrix, neighbours,
                      second_eigenvalue)
from .job import Job

__all__ = ["GossipOptions", "start", "graph_fits_the_workers"]

MODES = ("sync", "async")


@dataclass(frozen=True, kw_only=True)
class GossipOptions:
    graph: str = "ring"          # ring | torus | complete | exponential | random_regular | edges
    edges: tuple = ()            # edges: the graph's [a, b] pairs of worker indices
    weights: str = "metropolis"  # metropolis | uniform (1 / (1 + max degree) per edge)
    degree: int = 3              # random_regular: neighbours per worker
    graph_seed: int = 0          # random_regular: its draw (not the scenario's streams)
    mode: str = "sync"           # sync: wait for every neighbour's round; async: never wait

    def __post_init__(self):
        _checks.choice("graph", self.graph, GRAPHS)
        _checks.choice("weights", self.weights, WEIGHTS)
        _checks.choice("mode", self.mode, MODES)
        _checks.integer("degree", self.degree, low=1)
        _checks.integer("graph_seed", self.graph_seed, low=0)
        if (self.graph == "edges") != bool(self.edges):
            raise ValueError("graph='edges' needs edges = [[a, b], ...]; got none" if
                             self.graph == "edges" else f"edges are the graph of graph="
                             f"'edges'; graph={self.graph!r} makes its own (drop edges)")


def graph_fits_the_workers(s) -> None:
    """A scenario rule: a random regular graph exists on the workers; given edges are
    a connected graph on them."""
    o, n = s.strategy.options, s.cluster.workers
    if o.get("graph") == "edges":
        problem = edges_problem(o.get("edges", ()), n)
        if problem:
            raise ValueError(f"strategy.edges: {problem}")
    if o.get("graph") == "random_regular":
        d = o.get("degree", 3)
        if _checks.is_integer(d) and (d >= n or n * d % 2):
            raise ValueError(f"strategy.degree={d} on cluster.workers={n}: a random regular "
                             f"graph needs degree < workers and workers x degree even")


class _Board:
    """What the observer sees: every worker's model, per round (sync) or now (async)."""

    def __init__(self, job: Job, p: int):
        self.job, self.p = job, p
        self.rounds: dict[int, dict[int, np.ndarray]] = {}
        self.now = [job.params] * p
        self.done = job.sim.event()

    def record(self, version: int, models) -> None:
        x = np.mean(np.stack(models), axis=0)
        spread = float(np.mean([np.sum((m - x) ** 2) for m in models]))
        if self.job.monitor.update(x, version, consensus=spread) and not self.done.triggered:
            self.done.succeed()

    def finished(self, i: int, version: int, params: np.ndarray) -> None:
        """Sync: worker ``i`` ends round ``version``; the last one records it."""
        models = self.rounds.setdefault(version, {})
        models[i] = params
        if len(models) == self.p:
            del self.rounds[version]
            self.record(version, [models[j] for j in range(self.p)])


def start(job: Job):
    """One process per worker; the returned process ends when the monitor stops."""
    p, o = len(job.workers), job.options
    nbrs = neighbours(o.graph, p, degree=o.degree, seed=o.graph_seed, edges=o.edges)
    W = mixing_matrix(nbrs, o.weights)
    job.stats.counters["spectral_lambda"] = second_eigenvalue(W)
    board = _Board(job, p)
    program = sync_worker if o.mode == "sync" else async_worker
    for i, node in enumerate(job.workers):
        node.start(program, job, i, nbrs[i], W[i], board)
    board.record(0, [job.params] * p)
    return job.sim.process(_until(board.done), name="gossip recorder")


def _until(event):
    yield event


def _adapt(job: Job, i: int, params, state, version):
    """Process: the gradient step on my shard (scaled to my share); returns the model."""
    node, opt = job.workers[i], job.optimizer
    grad, flops = job.gradient(i, params)
    yield node.compute(flops)
    node.memory.free("activations")
    yield node.compute(opt.flops(params.size))
    scale = len(job.workers) * job.shard_weights[i]
    return opt.step(params, scale * grad, state, version)


def _combine(row, mine: int, models: dict) -> np.ndarray:
    """``sum_j W_ij x_j`` in the order of j (the same bits wherever it is computed)."""
    return sum(row[j] * models[j] for j in sorted(models)) if len(models) > 1 else models[mine]


def sync_worker(job: Job, i: int, nbrs, row, board: _Board):
    node = job.workers[i]
    params, version = job.params.copy(), 0
    state = job.optimizer.init_state(params)
    node.memory.set("params", params.nbytes)
    early: dict[tuple[int, int], np.ndarray] = {}       # (round, sender) -> model
    peers = [job.workers[j] for j in nbrs]
    while True:
        params, state = yield from _adapt(job, i, params, state, version)
        node.broadcast(peers, (version, i, params), nbytes=params.nbytes)
        models = {i: params}
        for j in nbrs:
            while (version, j) not in early:
                v, sender, x = yield node.recv()
                early[(v, sender)] = x
            models[j] = early.pop((version, j))
        params = _combine(row, i, models)
        version += 1
        board.finished(i, version, params)


def async_worker(job: Job, i: int, nbrs, row, board: _Board):
    node = job.workers[i]
    params, version = job.params.copy(), 0
    state = job.optimizer.init_state(params)
    node.memory.set("params", params.nbytes)
    newest = {j: job.params for j in nbrs}               # nothing heard yet: the start
    peers = [job.workers[j] for j in nbrs]
    while True:
        params, state = yield from _adapt(job, i, params, state, version)
        yield node.broadcast(peers, (version, i, params), nbytes=params.nbytes)  # sent
        while node.mailbox.items:                        # take what has come, no waiting
            v, sender, x = yield node.recv()
            newest[sender] = x
        params = _combine(row, i, {**newest, i: params})
        version += 1
        board.now[i] = params
        if i == 0:
            board.record(version, board.now)

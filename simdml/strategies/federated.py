"""Federated averaging over a population of clients (``strategy.kind = "fedavg"``).

A round (McMahan et al. 2017; the system of Bonawitz et al. 2019):

1. the server samples ``m = min(n, ceil(K (1 + over_select)))`` of the clients available
   now (``clients.per_round = K``; ``simdml.clients.Population.sample``) and sends each
   the model ``w_t``, one copy after the other on its NIC;
2. each client takes ``local_epochs = E`` passes over its shard, in mini-batches of
   ``strategy.batch_size = B`` rows (each epoch a new order, from the client's stream of
   that round; no batch size: one full-shard step an epoch), each step ``w <- w - lr
   (g + mu (w - w_t))`` (``mu > 0``: FedProx, Li et al. 2020), and sends its model back
   -- unless it drops out (probability ``clients.dropout``: it leaves after a uniformly
   drawn number of its steps and never reports);
3. the round closes when ``K`` reports of this round are in, or at ``clients.deadline``
   after it began; the server averages the models it kept, weighted by their rows,
   ``w_bar = sum_c (n_c / sum n) w_c``, and its optimizer (``[optimizer]``, at
   ``server_lr``) steps by the pseudo-gradient ``w_t - w_bar`` (Reddi et al. 2021:
   ``sgd`` at ``server_lr = 1`` is FedAvg, ``momentum`` FedAvgM, ``adam`` FedAdam).
   Reports that come after the round closed are counted (``late_reports``) and dropped.

With ``E = 1``, no batch size, every client every round and ``sgd`` at ``server_lr = 1``
each round is ``w_t - lr sum_c (n_c / n) g_c(w_t)``: ``sync``'s full-batch step (FedSGD),
to rounding.

Clients and devices. With ``clients.population = 0`` the cluster's workers are the
clients (worker ``c`` is client ``c``: its speed, link and shard). With a population, the
clients are arrays (``simdml.clients``) and a client takes part on a **device**, a node
made when a round needs one more than are free and reused after (its speed and link are
the client's while it trains): the nodes of a run are as many as ever trained at once,
not the population. The history records each round's ``sampled``, ``participants`` (the
reports aggregated) and ``dropped``.

References
----------
H. B. McMahan et al. (2017), "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS; K. Bonawitz et al. (2019), "Towards Federated Learning at
Scale: System Design", MLSys; T. Li et al. (2020), "Federated Optimization in
Heterogeneous Networks", MLSys; S. J. Reddi et al. (2021), "Adaptive Federated
Optimization", ICLR.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _checks
from ..messages import INT_NBYTES, LocalModel
from ..optim import Optimizer
from ._costs import aggregate_flops
from .job import Job, weighted_sum
from .sync import recv_before

__all__ = ["FedAvgOptions", "Federation", "Task", "start", "uses_devices"]


@dataclass(frozen=True, kw_only=True)
class FedAvgOptions:
    local_epochs: int = 1   # E: passes over its shard a client takes each round
    mu: float = 0.0         # FedProx proximal strength; 0 is FedAvg
    server_lr: float = 1.0  # the server optimizer's step on the pseudo-gradient

    def __post_init__(self):
        _checks.integer("local_epochs", self.local_epochs, low=1)
        _checks.finite_number("mu", self.mu, low=0)
        _checks.finite_number("server_lr", self.server_lr, low=0, strict_low=True)


def server_lr(options: FedAvgOptions) -> float:
    """The ``[optimizer]`` steps at ``server_lr`` (the clients at ``strategy.lr``)."""
    return options.server_lr


def clients_fit(s) -> None:
    """A scenario rule: the clients fit the cluster and the round can close."""
    c, n = s.clients, s.cluster.workers
    if not c.population:
        drawn = [k for k in ("speed", "speed_sigma", "bandwidth", "bandwidth_sigma")
                 if getattr(c, k) != getattr(type(c)(), k)]
        if drawn:
            raise ValueError(f"clients.{drawn[0]} draws the profiles of a population; with "
                             f"clients.population = 0 the clients are the cluster's "
                             f"{n} workers (set cluster.speed, network.links), or set "
                             f"clients.population")
        if c.per_round > n:
            raise ValueError(f"clients.per_round={c.per_round} is more than the "
                             f"cluster.workers={n} clients (clients.population = 0: each "
                             f"worker is one)")
    if c.dropout and c.deadline == math.inf:
        raise ValueError(f"clients.dropout={c.dropout} needs a finite clients.deadline: a "
                         f"round waits for reports until then, and a client that left "
                         f"never sends one")
    if s.network.topology != "switch":
        raise ValueError(f"strategy.kind='fedavg' runs its clients on one switch; got "
                         f"network.topology={s.network.topology!r}")


def uses_devices(s) -> bool:
    """Whether a run's clients are a population on devices (not the cluster's workers)."""
    return s.strategy.kind == "fedavg" and s.clients.population > 0


class Task(NamedTuple):
    """Server -> client: train from the model ``params`` of round ``version``. ``leave``
    is the client's fate, drawn by the simulator (the steps after which it drops out, or
    -1): not on the wire."""

    version: int
    client: int
    params: np.ndarray
    leave: int

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + self.params.nbytes


class Federation:
    """A run's clients: the population, its streams, and the devices they train on."""

    def __init__(self, config, population, rng: np.random.Generator, round_rng,
                 latency: float):
        self.config, self.population, self.rng = config, population, rng
        self.round_rng = round_rng            # (client, round) -> that client's stream
        self.latency = latency
        self.free: list = []                  # devices with no client
        self.devices: list = []

    def per_round(self) -> tuple[int, int]:
        """``(K, m)``: the reports a round keeps and the clients it samples."""
        n = self.population.n
        k = self.config.per_round or n
        return k, min(n, math.ceil(k * (1 + self.config.over_select)))

    def device_for(self, job: Job, c: int):
        """The node client ``c`` trains on: its worker, or a free device (made if none
        is), given the client's speed and link."""
        if not self.config.population:
            return job.workers[c]
        if self.free:
            node = self.free.pop()
        else:
            node = job.cluster.add_node(f"device{len(self.devices)}")
            self.devices.append(node)
            node.start(device, job, node, self)
        node.speed = float(self.population.speeds[c])
        link = (self.latency, float(self.population.bandwidths[c]))
        links = job.cluster.network.links
        links[(node.index, job.server.index)] = links[(job.server.index, node.index)] = link
        return node

    def release(self, node) -> None:
        """A device is free again (its client reported or left)."""
        if self.config.population:
            node.memory.set("shard", 0)
            self.free.append(node)


def start(job: Job):
    """Start the clients' programs (on the workers; devices start when made) and the
    server, whose process ends training."""
    fed = job.federation
    if not fed.config.population:
        for node in job.workers:
            node.start(device, job, node, fed)
    return job.server.start(server, job, fed)


def server(job: Job, fed: Federation):
    node, opt, cfg = job.server, job.optimizer, fed.config
    params, version = job.params, 0
    state = opt.init_state(params)
    node.memory.set("params", params.nbytes)
    node.memory.set("optimizer", state.nbytes)
    if job.monitor.update(params, version, sampled=0, participants=0, dropped=0):
        return
    k, m = fed.per_round()
    steps = _Steps(job)
    while True:
        began = node.sim.now
        chosen = fed.population.sample(m, began, fed.rng, cfg.sampling == "by_size")
        if not chosen:                                      # nobody available: wait
            job.stats.count("rounds_without_clients")
            yield node.sim.timeout(cfg.retry)
            continue
        dropped = 0
        for c in chosen:                                    # 1. the model to each
            leave = -1
            if cfg.dropout and fed.rng.random() < cfg.dropout:
                leave = int(fed.rng.integers(0, steps[c]))  #    ... its fate, drawn
                dropped += 1
            node.send(fed.device_for(job, c), Task(version, c, params, leave))
        reports = {}                                        # 3. the first K reports
        deadline = began + cfg.deadline
        while len(reports) < k:
            msg = yield from recv_before(node, deadline)
            if msg is None:
                break
            if msg.version != version:
                job.stats.count("late_reports")
                continue
            reports[msg.worker] = msg.params
            node.memory.hold("params", msg.params.nbytes)   #    kept until averaged
        job.stats.count("dropouts", dropped)
        if not reports:
            job.stats.count("rounds_without_reports")
            continue
        kept = sorted(reports)
        share = sum(job.shard_weights[c] for c in kept)
        average = weighted_sum([job.shard_weights[c] / share for c in kept],
                               [reports[c] for c in kept])
        yield node.compute(aggregate_flops(len(kept), params.size, average=True,
                                           step=opt.flops(params.size)))
        params, state = opt.step(params, params - average, state, version)
        node.memory.set("params", params.nbytes)
        node.memory.set("optimizer", state.nbytes)
        version += 1
        job.stats.count("participants", len(kept))
        if job.monitor.update(params, version, sampled=len(chosen), participants=len(kept),
                              dropped=dropped):
            return


class _Steps:
    """Client ``c``'s local steps in a round: ``E ceil(n_c / B)`` (``E`` without B)."""

    def __init__(self, job: Job):
        self.job = job

    def __getitem__(self, c: int) -> int:
        b, rows = self.job.batch_size, self.job.shards[c].n_rows
        per_epoch = 1 if b is None or b >= rows else math.ceil(rows / b)
        return self.job.options.local_epochs * per_epoch


def device(job: Job, node, fed: Federation):
    """A client's program on its node: train from each task's model, report, free."""
    model, memory = job.model, node.memory
    sgd = Optimizer(kind="sgd", lr=job.lr)
    while True:
        task = yield node.recv()
        c, anchor = task.client, task.params
        shard = job.shards[c]
        if fed.config.population:
            memory.set("shard", shard.nbytes)
        memory.set("params", 2 * anchor.nbytes)             # my model and the anchor
        params, state, done = anchor, sgd.init_state(anchor), 0
        rng = fed.round_rng(c, task.version)
        b, n = job.batch_size, shard.n_rows
        for _ in range(job.options.local_epochs):           # 2. E epochs on my shard
            order = None if b is None or b >= n else rng.permutation(n)
            for a in (range(0, n, b) if order is not None else (0,)):
                if done == task.leave:
                    break
                rows = None if order is None else order[a:a + b]
                X, y = (shard.X, shard.y) if rows is None else (shard.X[rows], shard.y[rows])
                _, grad = job.loss_grad(params, X, y)
                job.monitor.rows += y.shape[0]
                if job.options.mu:
                    grad = grad + job.options.mu * (params - anchor)
                yield node.compute(model.grad_flops(y.shape[0]) + sgd.flops(params.size))
                params, state = sgd.step(params, grad, state, done)
                done += 1
        if done != task.leave:
            yield node.send(job.server, LocalModel(c, task.version, params))
        memory.set("params", 0)
        fed.release(node)

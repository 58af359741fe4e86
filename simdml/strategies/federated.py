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

``algorithm = "scaffold"`` (Karimireddy et al. 2020, option II) adds control variates:
the server's ``c`` goes with the model, each client keeps its own ``c_i`` (real state,
0 at first) and steps by ``g - c_i + c``; after its ``K`` steps ``c_i+ = c_i - c + (x -
y) / (K lr)``, and it reports its model and ``c_i+ - c_i``; the server adds ``sum (n_c /
n)(c_i+ - c_i)`` to ``c`` (the paper's ``|S| / N`` mean, weighted by rows as the
average is), so that ``c = sum_c (n_c / n) c_c`` stays the clients' weighted mean.
``mode = "buffered"`` is FedBuff (``simdml.strategies.fedbuff``).

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
Optimization", ICLR; S. P. Karimireddy et al. (2020), "SCAFFOLD: Stochastic Controlled
Averaging for Federated Learning", ICML; J. Nguyen et al. (2022), "Federated Learning with
Buffered Asynchronous Aggregation", AISTATS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _checks
from ..aggregation import aggregate
from ..messages import INT_NBYTES
from ..optim import Optimizer
from ._costs import aggregate_flops
from . import secure_aggregation as secure
from .job import Job, weighted_sum
from .sync import recv_before

__all__ = ["ALGORITHMS", "FedAvgOptions", "Federation", "Report", "Task", "start",
           "uses_devices"]


ALGORITHMS = ("fedavg", "scaffold")
MODES = ("sync", "buffered")
#: FedBuff's staleness weights by ``strategy.staleness``: an update ``s`` versions old
STALENESS_WEIGHTS = {"sqrt": lambda s: 1 / math.sqrt(1 + s), "none": lambda s: 1.0}
STALENESS = tuple(STALENESS_WEIGHTS)


@dataclass(frozen=True, kw_only=True)
class FedAvgOptions:
    algorithm: str = "fedavg"  # fedavg | scaffold (control variates)
    local_epochs: int = 1   # E: passes over its shard a client takes each round
    mu: float = 0.0         # FedProx proximal strength; 0 is FedAvg
    server_lr: float = 1.0  # the server optimizer's step on the pseudo-gradient
    mode: str = "sync"      # sync rounds | buffered: FedBuff's asynchronous buffer
    buffer_size: int = 0    # buffered: updates per server step; 0: clients.per_round
    staleness: str = "sqrt"  # buffered: an update s steps old weighs 1/sqrt(1 + s), or 1
    secure_aggregation: bool = False  # Bonawitz et al. (2017): the server sees only the sum

    def __post_init__(self):
        _checks.choice("algorithm", self.algorithm, ALGORITHMS)
        _checks.choice("mode", self.mode, MODES)
        _checks.integer("buffer_size", self.buffer_size, low=0)
        _checks.choice("staleness", self.staleness, STALENESS)
        _checks.flag("secure_aggregation", self.secure_aggregation)
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
    o = s.strategy.options
    if c.unmask_dropout and not o.get("secure_aggregation"):
        raise ValueError(f"clients.unmask_dropout={c.unmask_dropout} is a client leaving "
                         f"secure aggregation's unmasking; set strategy.secure_aggregation "
                         f"= true (or clients.dropout for a client leaving while it trains)")
    if c.unmask_dropout and c.deadline == math.inf:
        raise ValueError(f"clients.unmask_dropout={c.unmask_dropout} needs a finite "
                         f"clients.deadline: the unmasking waits for shares until then")
    if o.get("secure_aggregation"):
        for key, bad in (("strategy.mode", o.get("mode", "sync") != "sync"),
                         ("strategy.algorithm", o.get("algorithm", "fedavg") != "fedavg"),
                         ("aggregation.rule", s.aggregation.rule != "mean"),
                         ("[privacy]", s.privacy.is_active)):
            if bad:
                raise ValueError(f"strategy.secure_aggregation gives the server only the sum "
                                 f"of FedAvg's sync rounds; {key} is not at its default (a "
                                 f"robust rule needs every input, SCAFFOLD and DP a second "
                                 f"sum)")
    if o.get("mode", "sync") == "buffered":
        for key, bad in (("clients.dropout", c.dropout != 0),
                         ("clients.deadline", c.deadline != math.inf),
                         ("strategy.algorithm", o.get("algorithm", "fedavg") != "fedavg")):
            if bad:
                raise ValueError(f"{key} is not modelled in strategy.mode='buffered' (FedBuff "
                                 f"keeps every place filled and waits for each report); "
                                 f"leave it at its default or use mode = 'sync'")
    else:
        for key in ("buffer_size", "staleness"):
            if key in o:
                raise ValueError(f"strategy.{key} is FedBuff's (strategy.mode = 'buffered'); "
                                 f"strategy.mode={o.get('mode', 'sync')!r} has rounds")
    if s.network.topology != "switch":
        raise ValueError(f"strategy.kind='fedavg' runs its clients on one switch; got "
                         f"network.topology={s.network.topology!r}")


def uses_devices(s) -> bool:
    """Whether a run's clients are a population on devices (not the cluster's workers)."""
    return s.strategy.kind == "fedavg" and s.clients.population > 0


class Task(NamedTuple):
    """Server -> client: train from the model ``params`` of round ``version`` (SCAFFOLD:
    and the server's control variate ``control``). ``leave`` is the client's fate, drawn
    by the simulator (the steps after which it drops out, or -1): not on the wire; so is
    ``unmask_leave``, whether it leaves secure aggregation before revealing its shares."""

    version: int
    client: int
    params: np.ndarray
    control: np.ndarray | None
    leave: int
    unmask_leave: bool = False

    @property
    def nbytes(self) -> int:
        extra = 0 if self.control is None else self.control.nbytes
        return 2 * INT_NBYTES + self.params.nbytes + extra


class Report(NamedTuple):
    """Client -> server: its model after the round of ``version`` (SCAFFOLD: and the
    change of its control variate, ``control``)."""

    worker: int
    version: int
    params: np.ndarray
    control: np.ndarray | None

    @property
    def nbytes(self) -> int:
        extra = 0 if self.control is None else self.control.nbytes
        return 2 * INT_NBYTES + self.params.nbytes + extra


class Federation:
    """A run's clients: the population, its streams, and the devices they train on."""

    def __init__(self, config, population, rng: np.random.Generator, round_rng,
                 latency: float, key_rng=None, weight=STALENESS_WEIGHTS["sqrt"]):
        self.config, self.population, self.rng = config, population, rng
        self.round_rng = round_rng            # (client, round) -> that client's stream
        self.key_rng = key_rng                # ... of its secure-aggregation secrets
        self.latency = latency
        self.free: list = []                  # devices with no client
        self.devices: list = []
        self.controls: dict[int, np.ndarray] = {}  # SCAFFOLD: each client's c_i, kept
        self.device_of: dict = {}             # client -> the node it trains on now
        self.last_received: dict = {}         # secure aggregation: the last round's inputs
        self.weight = weight                  # FedBuff: an update's staleness -> its weight

    def per_round(self) -> tuple[int, int]:
        """``(K, m)``: the reports a round keeps and the clients it samples."""
        n = self.population.n
        k = self.config.per_round or n
        # rounded first: 100 * (1 + 0.1) is 110.00000000000001 in floating point
        return k, min(n, math.ceil(round(k * (1 + self.config.over_select), 9)))

    def device_for(self, job: Job, c: int):
        """The node client ``c`` trains on: its worker, or a free device (made if none
        is), given the client's speed and link."""
        if not self.config.population:
            self.device_of[c] = job.workers[c]
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
        self.device_of[c] = node
        return node

    def release(self, node) -> None:
        """A device is free again (its client reported or left)."""
        if self.config.population:
            node.memory.set("shard", 0)
            self.free.append(node)


def start(job: Job, program=None):
    """Start the clients' programs (on the workers; devices start when made) and the
    server's ``program`` (default: the sync rounds, ``server``; FedBuff's is
    ``fedbuff.buffered_server``), whose process ends training."""
    fed = job.federation
    if not fed.config.population:
        for node in job.workers:
            node.start(device, job, node, fed)
    return job.server.start(program or server, job, fed)


def server(job: Job, fed: Federation):
    node, opt, cfg = job.server, job.optimizer, fed.config
    params, version = job.params, 0
    state = opt.init_state(params)
    node.memory.set("params", params.nbytes)
    node.memory.set("optimizer", state.nbytes)
    scaffold = job.options.algorithm == "scaffold"
    control = np.zeros_like(params) if scaffold else None       # SCAFFOLD's c
    if scaffold:
        node.memory.set("optimizer", state.nbytes + control.nbytes)
    extra = {} if job.privacy is None else job.privacy.history()
    if job.monitor.update(params, version, sampled=0, participants=0, dropped=0, **extra):
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
            gone = bool(cfg.unmask_dropout) and fed.rng.random() < cfg.unmask_dropout
            node.post(fed.device_for(job, c), Task(version, c, params, control, leave, gone))
        deadline = began + cfg.deadline
        if job.options.secure_aggregation:                  # 3. only the sum, masked
            summed = yield from secure.server_round(job, fed, version, chosen, k, deadline,
                                                    params.size)
            job.stats.count("dropouts", dropped)
            if summed is None:
                continue
            kept, weighted, rows = summed
            average = weighted / rows
            yield node.compute(aggregate_flops(len(kept), params.size, average=True,
                                               step=opt.flops(params.size)))
            params, state = opt.step(params, params - average, state, version)
            node.memory.set("params", params.nbytes)
            version += 1
            job.stats.count("participants", len(kept))
            if job.monitor.update(params, version, sampled=len(chosen),
                                  participants=len(kept), dropped=dropped):
                return
            continue
        reports = {}                                        # 3. the first K reports
        while len(reports) < k:
            msg = yield from recv_before(node, deadline)
            if msg is None:
                break
            if msg.version != version:
                job.stats.count("late_reports")
                continue
            reports[msg.worker] = msg
            node.memory.hold("params", msg.nbytes)          #    kept until averaged
        job.stats.count("dropouts", dropped)
        if not reports:
            job.stats.count("rounds_without_reports")
            continue
        kept = sorted(reports)
        if job.privacy is not None:                         #    DP-FedAvg: noise on the
            changes = [reports[c].params - params for c in kept]  # sum of clipped changes,
            total = job.privacy.noised(weighted_sum([1.0] * len(kept), changes))  # over K
            average = params + total / k
        elif job.robust is not None:                        #    robust: every client alike
            r = job.robust
            average = aggregate(r.rule, [reports[c].params for c in kept], r.f, r.selected)
        else:
            share = sum(job.shard_weights[c] for c in kept)
            average = weighted_sum([job.shard_weights[c] / share for c in kept],
                                   [reports[c].params for c in kept])
        yield node.compute(aggregate_flops(len(kept), params.size, average=True,
                                           step=opt.flops(params.size)))
        params, state = opt.step(params, params - average, state, version)
        if scaffold:                                        #    c += sum (n_c / n) dc_c
            control = control + weighted_sum([job.shard_weights[c] for c in kept],
                                             [reports[c].control for c in kept])
        node.memory.set("params", params.nbytes)
        node.memory.set("optimizer", state.nbytes)
        version += 1
        job.stats.count("participants", len(kept))
        extra = {} if job.privacy is None else job.privacy.history()
        if job.monitor.update(params, version, sampled=len(chosen), participants=len(kept),
                              dropped=dropped, **extra):
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
    pending = None
    while True:
        task = pending if pending is not None else (yield node.recv())
        pending = None
        if not isinstance(task, Task):
            continue                                        # a protocol message, too late
        if job.options.secure_aggregation:
            pending = yield from secure.client_round(
                job, node, fed, task, lambda task=task: _train(job, node, fed, task))
        else:
            report = yield from _train(job, node, fed, task)
            if report is not None:
                yield node.send(job.server, report)
        node.memory.set("params", 0)
        fed.release(node)


def _train(job: Job, node, fed: Federation, task: Task):
    """Process: client ``task.client``'s local epochs from the task's model; returns its
    report, or None if it drops out (its ``leave``)."""
    model, memory = job.model, node.memory
    sgd = Optimizer(kind="sgd", lr=job.lr)
    c, anchor = task.client, task.params
    shard = job.shards[c]
    if fed.config.population:
        memory.set("shard", shard.nbytes)
    memory.set("params", 2 * anchor.nbytes)                 # my model and the anchor
    params, state, done = anchor, sgd.init_state(anchor), 0
    scaffold = task.control is not None
    if scaffold:                                            # my c_i (0 at first), kept
        mine = fed.controls.get(c)
        mine = np.zeros_like(anchor) if mine is None else mine
        correction = task.control - mine                    # g - c_i + c
        memory.set("optimizer", mine.nbytes)
    b, n = job.batch_size, shard.n_rows
    # my stream this round orders my mini-batches; whole-shard steps draw nothing (perf:
    # a generator costs 30 us to make)
    rng = None if b is None or b >= n else fed.round_rng(c, task.version)
    for _ in range(job.options.local_epochs):               # 2. E epochs on my shard
        order = None if rng is None else rng.permutation(n)
        for a in (range(0, n, b) if order is not None else (0,)):
            if done == task.leave:
                return None                                 #    I leave: no report
            rows = None if order is None else order[a:a + b]
            X, y = (shard.X, shard.y) if rows is None else (shard.X[rows], shard.y[rows])
            grad = job.grad(params, X, y)
            job.monitor.rows += y.shape[0]
            if job.options.mu:
                grad = grad + job.options.mu * (params - anchor)
            if scaffold:
                grad = grad + correction
            yield node.compute(model.grad_flops(y.shape[0]) + sgd.flops(params.size))
            params, state = sgd.step(params, grad, state, done)
            done += 1
    if job.adversary is not None:                           # an attacker's change instead
        params = anchor + job.adversary.craft(c, params - anchor)
    if job.privacy is not None:                             # DP-FedAvg: my change clipped
        params = anchor + job.privacy.clip_vector(params - anchor)
    change = None
    if scaffold:                                            # option II: c_i+ = c_i - c +
        new = mine - task.control + (anchor - params) / (done * job.lr)  # (x - y)/(K lr)
        fed.controls[c], change = new, new - mine
    if job.options.secure_aggregation:
        return params
    return Report(c, task.version, params, change)

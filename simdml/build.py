"""Build a run from its scenario: the virtual cluster and its faults, the learner and
the job a strategy is handed, and the processes that train."""
from __future__ import annotations

import math

import numpy as np

from ._rng import Streams
from .aggregation import Adversary
from .privacy import Mechanism
from .clients import Population
from .cluster import Cluster
from .compression import Compression
from .network import Network
from .phantom import is_phantom
from .engine import Simulator
from .faults import crash_at, partition_at, random_failures
from .messages import Rows
from .models import GRADIENT_MODELS
from .models._validation import class_weights
from ._rules import optimizer_horizon
from .data import sizes_of
from .pipeline import DataSplit
from .scenario import Scenario, ScenarioError, build_model
from .strategies import STRATEGIES, Checkpoints, Job, Monitor, Shards, Stats, smaller_lr, tasks
from .strategies.federated import STALENESS_WEIGHTS, Federation, uses_devices

__all__ = ["build_cluster", "start_faults", "build_job", "start_training"]

def build_cluster(s: Scenario, streams: Streams) -> Cluster:
    """A simulator, the network and the nodes: the server (node 0), then the workers."""
    sim = Simulator()
    topology = s.network.graph(s.cluster.workers)
    network = Network(latency=s.network.latency, bandwidth=s.network.bandwidth,
                      loss=s.network.loss, links={} if topology else _links(s.network),
                      rng=streams.rng("network"), topology=topology)
    cluster = Cluster(sim, network, record_spans=s.trace_spans)
    cluster.add_node("server", speed=s.cluster.server_speed, memory=s.cluster.server_memory)
    is_random = s.cluster.compute_time != "deterministic"  # else no stream to draw from
    workers = 0 if uses_devices(s) else s.cluster.workers  # a population: devices, as needed
    for i in range(workers):
        cluster.add_node(f"worker{i}", speed=s.cluster.speed[i],
                         compute_time=s.cluster.compute_time, jitter=s.cluster.jitter,
                         slowdown=s.cluster.slowdown[i], memory=s.cluster.memory[i],
                         rng=streams.node_rng("compute", i) if is_random else None)
    return cluster


def _links(net) -> dict:
    """Per-link overrides by node index (the server is node 0, worker i is node i + 1)."""
    out = {}
    for link in net.links:
        a, b = (0 if end == "server" else end + 1 for end in (link.a, link.b))
        cost = (net.latency if link.latency is None else link.latency,
                net.bandwidth if link.bandwidth is None else link.bandwidth)
        out[(a, b)] = out[(b, a)] = cost
    return out


def start_faults(s: Scenario, cluster: Cluster, streams: Streams) -> None:
    """Start the scenario's failure processes: scheduled crashes and partitions, random
    failures of the server and of each worker (daemons: they never keep a run alive)."""
    sim, server, workers = cluster.sim, cluster.nodes[0], cluster.nodes[1:]
    for c in s.faults.crash:
        for ref in (c.node if isinstance(c.node, tuple) else (c.node,)):  # a rack: all at once
            node = server if ref == "server" else workers[ref]
            sim.process(crash_at(node, c.at, c.recover_after), name=f"crash@{node.name}",
                        daemon=True)
    for c in s.faults.partition:
        nodes = [server if ref == "server" else workers[ref] for ref in c.nodes]
        sim.process(partition_at(cluster, nodes, c.at, c.heal_after), name="partition",
                    daemon=True)
    if math.isfinite(s.faults.server_mtbf):
        sim.process(random_failures(server, s.faults.server_mtbf, s.faults.mttr,
                                    streams.rng("faults")), name="failures@server", daemon=True)
    if math.isfinite(s.faults.mtbf):
        for i, node in enumerate(workers):
            sim.process(random_failures(node, s.faults.mtbf, s.faults.mttr,
                                        streams.node_rng("faults", i)),
                        name=f"failures@{node.name}", daemon=True)


def build_job(s: Scenario, cluster: Cluster, split: DataSplit, streams: Streams) -> Job:
    """The learner, the shards (views of the training rows, in the learner's dtype), the
    monitor and the job the strategy is handed."""
    sim = cluster.sim
    model = build_model(s.model)
    is_gradient = s.model.kind in GRADIENT_MODELS
    X_train, y_train, X_test = _in_dtype(s, model, split) if is_gradient else (
        split.X_train, split.y_train, split.X_test)
    shards = Shards(X_train, y_train, sizes_of(split.parts))  # parts: contiguous ranges
    _check_model_for_data(model, y_train.size)
    n_outputs = (int(max(y_train.max(), split.y_test.max())) + 1 if model.is_classifier
                 else 1)
    params = None
    if is_gradient:                         # timing only: the parameters' shape
        bind = model.init_params if s.math else model.init_shape
        params = bind(X_train.shape[1], n_outputs)
    class_weight = None
    if is_gradient and getattr(model, "class_weight", None) is not None:  # from all the rows
        class_weight = class_weights(model.class_weight, np.bincount(y_train, minlength=n_outputs))
        model.class_weight_ = class_weight
    monitor = Monitor(sim, model, X_train, y_train, X_test, split.y_test,
                      eval_every=s.eval_every, max_updates=s.stop.rounds,
                      target_accuracy=s.stop.target_accuracy, with_math=s.math)
    monitor.divergence_hint = _divergence_hint(s)
    is_tasks = s.scheduling.policy is not None  # task-based sync rounds
    stats = Stats()
    job = Job(sim=sim, cluster=cluster, server=cluster.nodes[0], workers=cluster.nodes[1:],
              shards=shards, model=model, params=params, lr=s.strategy.lr, monitor=monitor,
              options=s.scheduling.build() if is_tasks else s.strategy.build_options(),
              batch_size=s.strategy.batch_size, policy_rng=streams.rng("policy"),
              batch_rngs=streams.node_rngs("data", s.cluster.workers),
              classes=np.arange(n_outputs) if model.is_classifier else None,
              class_weight=class_weight, stats=stats, done=sim.event(),
              optimizer=s.optimizer.build(lr=_optimizer_lr(s), horizon=optimizer_horizon(s)),
              checkpoints=Checkpoints(every=s.faults.checkpoint_every,
                                      seconds=s.faults.checkpoint_time, initial=params,
                                      monitor=monitor, stats=stats))
    if class_weight is not None:
        monitor.train_weight = class_weight[y_train]
    if s.strategy.kind == "fedavg":
        job.federation = _federation(s, job, streams)
    if s.faults.byzantine:
        f = s.faults
        job.adversary = Adversary(f.byzantine, f.attack, f.attack_scale, streams.rng("attack"))
    if s.aggregation.rule != "mean":
        job.robust = s.aggregation
    if s.privacy.is_active:
        p = s.privacy
        if s.strategy.kind == "fedavg":      # DP-FedAvg: a client is in a round w.p. K / N
            k, _ = job.federation.per_round()
            q = k / job.federation.population.n
        else:
            q = p.sample_rate
        job.privacy = Mechanism(clip=p.clip, sigma=p.noise_multiplier, q=q, delta=p.delta,
                                rng=streams.rng("privacy"))
    c = s.compression
    if c.kind != "none":
        job.compression = Compression(c.kind, ratio=c.ratio, levels=c.levels,
                                      error_feedback=c.error_feedback,
                                      rngs=streams.node_rngs("compression", s.cluster.workers))
    return job


def _optimizer_lr(s: Scenario) -> float:
    """The ``[optimizer]``'s step size: ``strategy.lr``, or the strategy's own (fedavg's
    server_lr)."""
    of = STRATEGIES[s.strategy.kind].optimizer_lr
    return s.strategy.lr if of is None else of(s.strategy.build_options())


def _federation(s: Scenario, job: Job, streams: Streams) -> Federation:
    """The clients of a federated run: a drawn population, or the cluster's workers."""
    c = s.clients
    sizes = job.shard_sizes
    rng = streams.rng("clients")
    population = Population(sizes, speed=c.speed, speed_sigma=c.speed_sigma,
                            bandwidth=s.network.bandwidth if c.bandwidth is None else c.bandwidth,
                            bandwidth_sigma=c.bandwidth_sigma, availability=c.availability,
                            on_time=c.on_time, off_time=c.off_time, rng=rng)
    if c.population:
        job.own_data = True                 # a device holds its client's shard while bound
    return Federation(c, population, rng, lambda client, version: streams.child(
        "clients", 1, client, version), s.network.latency,
        key_rng=lambda client, version: streams.child("clients", 2, client, version),
        weight=STALENESS_WEIGHTS[job.options.staleness])


def _in_dtype(s: Scenario, model, split: DataSplit) -> tuple:
    """The training rows, their targets and the test rows in the learner's dtype
    (``model.dtype = "float32"``): cast once, here, so that every shard, block and
    evaluation reads them as the learner computes and a float32 shard books half the
    bytes of its features (class labels stay integers; a regressor's targets are cast).
    float64 data is passed on as it is, no copy."""
    dtype = model.float_dtype
    if dtype == split.X_train.dtype:
        return split.X_train, split.y_train, split.X_test
    with np.errstate(over="ignore"):  # an overflow is the error below, not a warning
        X_train, X_test = split.X_train.astype(dtype), split.X_test.astype(dtype)
        y_train = split.y_train if model.is_classifier else split.y_train.astype(dtype)
    for name, a in (("training rows", X_train), ("test rows", X_test),
                    ("training targets", y_train)):
        if a.dtype == dtype and not is_phantom(a) and not np.isfinite(a).all():
            raise ScenarioError(f"model.dtype={model.dtype!r}: the {name} hold values "
                                f"beyond {dtype.name}'s range (+-{np.finfo(dtype).max:.4g}); "
                                f"standardize them (data.standardize = true) or use "
                                f"model.dtype='float64'")
    return X_train, y_train, X_test


def _divergence_hint(s: Scenario) -> str:
    """What a diverged run should change, as its strategy says (task rounds step by
    strategy.lr); a strategy that names nothing does not step by strategy.lr."""
    if s.scheduling.policy is not None:
        return smaller_lr(s)
    hint = STRATEGIES[s.strategy.kind].divergence_hint
    if hint is not None and (text := hint(s)) is not None:
        return text
    return (f"strategy.lr is unused by {s.strategy.kind} with model.kind={s.model.kind!r}: "
            f"look at the data's scale (data.standardize) and the model's settings")


def _check_model_for_data(model, n_train: int) -> None:
    """The learner's settings that depend on the data size (a kernel SVM's cache must
    hold one kernel row of the largest subset it may fit: the training set)."""
    if hasattr(model, "cache_bytes"):
        try:
            model.validate_params(n_train)
        except ValueError as exc:
            raise ScenarioError(f"model.cache_bytes: {exc}") from None


def start_training(s: Scenario, job: Job, split: DataSplit):
    """Start the strategy's processes (after rebalancing's, if any); returns the process
    whose end ends training."""
    start = tasks.start if s.scheduling.policy is not None else STRATEGIES[s.strategy.kind].start
    try:
        if not split.moves:
            return start(job)
        job.stats.count("rows_moved", sum(n for *_, n in split.moves))
        return job.sim.process(_rebalance_then(job, split.moves, start), name="rebalance")
    except ValueError as exc:  # what a strategy can only check against the data
        raise ScenarioError(str(exc)) from None


def _exchange(job: Job, w: int, moves: tuple):
    """Worker w's part of rebalancing: send its surplus rows, receive what it is owed."""
    node = job.workers[w]
    X, y = job.monitor.X_train, job.monitor.y_train  # in the learner's dtype
    row_nbytes = X.shape[1] * X.itemsize + y.itemsize  # features and label
    for src, dst, rows in moves:
        if src == w:
            msg = Rows(rows, row_nbytes)
            node.post(job.workers[dst], msg)
    for _ in range(sum(1 for _, dst, _ in moves if dst == w)):
        yield node.recv()


def _rebalance_then(job: Job, moves: tuple, start):
    """Rebalance the shards (real messages, their bytes and time), then train."""
    exchanges = [job.sim.process(_exchange(job, w, moves), name=f"rebalance@worker{w}")
                 for w in range(len(job.workers))]
    yield job.sim.all_of(exchanges)
    return (yield start(job))

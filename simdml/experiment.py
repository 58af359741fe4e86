"""``run(scenario) -> Result``: build the cluster, the data and the learner, train, report.

A run is a pure function of its scenario (and so of its seed): the random streams are
derived from ``scenario.seed`` only (see ``simdml._rng``).
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data as _data
from ._rng import Streams
from .cluster import Cluster, Network
from .engine import Deadlock, Interrupt, Simulator
from .faults import crash_at, partition_at, random_failures
from .metrics import classification_report, summarize
from .imbalance import resample
from .scenario import Scenario, ScenarioError, build_model, load_scenario
from .models import GRADIENT_MODELS
from .models._base import class_weights
from .strategies import STRATEGIES, Job, Monitor, Shard, tasks
from .trace import Trace

__all__ = ["run", "Result", "prepare_data", "DataSplit"]


@dataclass
class Result:
    """What a run produced.

    Attributes
    ----------
    scenario : Scenario
    history : list of dict
        One row per evaluation: simulated ``time`` (s), ``update`` count, training
        ``loss``, test ``score`` (also as ``accuracy`` for classifiers, ``r2`` for
        regressors), ``epoch`` (gradient work in passes over the training set).
    trace : Trace
        Spans, instants and counters of every node.
    summary : dict
        ``sim_time``, ``updates``, ``final_loss``, ``final_accuracy``, ``time_to_target``,
        ``bytes_sent``, ``messages_sent``, ``stop_reason``, ...
    model : learner
        The trained learner (``predict``, ``score``; ``params`` for gradient strategies).
        It works on the run's features, standardized with the training statistics:
        use ``result.predict`` / ``result.score`` for raw features.
    scaling : (mean, scale) or None
        The standardization the run applied (``data.standardize``).
    """

    scenario: Scenario
    history: list[dict]
    trace: Trace
    summary: dict
    model: object
    scaling: tuple | None = None

    def _features(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.scaling is None:
            return X
        mean, scale = self.scaling
        return (X - mean) / scale

    def predict(self, X) -> np.ndarray:
        """The trained model's predictions for raw features ``X`` (standardized first,
        with the training statistics, as in the run)."""
        return self.model.predict(self._features(X))

    def score(self, X, y) -> float:
        """The trained model's score (accuracy or R²) on raw features ``X``."""
        return self.model.score(self._features(X), y)

    @property
    def nodes(self) -> dict[str, dict[str, float]]:
        """Per node, seconds of compute / send / recv / wait / down / idle, and utilization."""
        return self.trace.totals()

    def to_dict(self) -> dict:
        """The summary's fields at top level, plus ``scenario``, ``history`` and ``nodes``."""
        return {**self.summary, "scenario": self.scenario.name, "seed": self.scenario.seed,
                "history": self.history, "nodes": self.nodes}

    def to_json(self) -> str:
        return json.dumps(_jsonable(self.to_dict()), indent=1)

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON, atomically (a temporary file, then a rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path


def _jsonable(x):
    """JSON has no inf/nan: write them as strings, not as invalid tokens."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def run(scenario: Scenario | str | Path, *, seed: int | None = None) -> Result:
    """Run a scenario (an object, a TOML path or a bundled name) and return its Result.

    ``seed`` overrides ``scenario.seed``.

    Examples
    --------
    >>> r = run(Scenario(stop=StopConfig(rounds=5)))        # doctest: +SKIP
    >>> r.summary["updates"]                                # doctest: +SKIP
    5
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if seed is not None:
        scenario = scenario.replace(seed=seed)
    s = scenario
    streams = Streams(s.seed)
    split = _prepare_data(s, streams)
    X_train, X_test, y_train, y_test = split.X_train, split.X_test, split.y_train, split.y_test

    sim = Simulator(seed=s.seed)
    network = Network(latency=s.network.latency, bandwidth=s.network.bandwidth,
                      loss=s.network.loss, links=_links(s.network), rng=streams.rng("network"))
    cluster = Cluster(sim, network, record_spans=s.trace_spans)
    server = cluster.add_node("server", speed=s.cluster.server_speed)
    is_random = s.cluster.compute_time != "deterministic"  # else no stream to draw from
    workers = [cluster.add_node(f"worker{i}", speed=s.cluster.speed[i],
                                compute_time=s.cluster.compute_time, jitter=s.cluster.jitter,
                                slowdown=s.cluster.slowdown[i],
                                rng=streams.node_rng("compute", i) if is_random else None)
               for i in range(s.cluster.workers)]
    _start_faults(s, sim, server, workers, streams, cluster)

    bounds = np.cumsum([0] + [len(p) for p in split.parts])  # parts are contiguous ranges
    shards = [Shard(X_train[a:b], y_train[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    model = build_model(s.model)
    _check_model_for_data(model, y_train.size)
    n_outputs = int(max(y_train.max(), y_test.max())) + 1 if model.is_classifier else 1
    is_gradient = s.model.kind in GRADIENT_MODELS
    params = model.init_params(X_train.shape[1], n_outputs) if is_gradient else None
    class_weight = None
    if is_gradient and getattr(model, "class_weight", None) is not None:  # from all the rows
        class_weight = class_weights(model.class_weight, np.bincount(y_train, minlength=n_outputs))
        model.class_weight_ = class_weight
    monitor = Monitor(sim, model, X_train, y_train, X_test, y_test, eval_every=s.eval_every,
                      max_updates=s.stop.rounds, target_accuracy=s.stop.target_accuracy)
    is_tasks = s.scheduling.policy is not None  # task-based sync rounds
    start = tasks.start if is_tasks else STRATEGIES[s.strategy.kind].start
    job = Job(sim=sim, cluster=cluster, server=server, workers=workers, shards=shards,
              model=model, params=params, lr=s.strategy.lr, monitor=monitor,
              options=s.scheduling.build() if is_tasks else s.strategy.build_options(),
              batch_size=s.strategy.batch_size, policy_rng=streams.rng("policy"),
              batch_rngs=streams.node_rngs("data", s.cluster.workers),
              classes=np.arange(n_outputs) if model.is_classifier else None,
              checkpoint_every=s.faults.checkpoint_every,
              checkpoint_time=s.faults.checkpoint_time, done=sim.event(),
              class_weight=class_weight)
    if class_weight is not None:
        monitor.train_weight = class_weight[y_train]
    sim.on_idle = _stall_judge(cluster, monitor)
    try:
        if split.moves:
            training = sim.process(_rebalance_then(job, split.moves, start), name="rebalance")
            job.count("rows_moved", sum(n for *_, n in split.moves))
        else:
            training = start(job)
    except ValueError as exc:  # what a strategy can only check against the data
        raise ScenarioError(str(exc)) from None
    stop_reason = _simulate(sim, training, s, job)
    monitor.finish()

    if isinstance(monitor.params, np.ndarray):
        model.params_ = monitor.params
    elif monitor.params is not None:
        model = monitor.params  # the global model is a fitted learner (or an ensemble)
    else:  # stopped before the first model was built
        model = None
        stop_reason = f"{monitor.stop_reason or stop_reason}; no model yet: nothing to evaluate"
        monitor.stop_reason = None
    trace = Trace.from_cluster(cluster, sim.now, counters={
        "loss": [(h["time"], h["loss"]) for h in monitor.history],
        monitor.model.score_name: [(h["time"], h["score"]) for h in monitor.history]})
    if model is not None and model.is_classifier:  # the test set, class by class
        with np.errstate(all="ignore"):  # a diverged model predicts too; its stop reason says so
            report = classification_report(y_test, model.predict(X_test), n_outputs)
        counters = {**job.counters, "balanced_accuracy": report["balanced_accuracy"],
                    "macro_f1": report["macro_f1"], "recall": report["recall"],
                    "precision": report["precision"], "f1": report["f1"],
                    "confusion_matrix": report["confusion_matrix"]}
    else:
        counters = job.counters
    counters = {**counters, **(split.resampling or {})}
    summary = summarize(monitor.history, trace, updates=monitor.updates,
                        score_name=monitor.model.score_name,
                        stop_reason=monitor.stop_reason or stop_reason,
                        target_accuracy=s.stop.target_accuracy, bytes_sent=cluster.bytes_sent,
                        messages_sent=cluster.messages_sent, messages_lost=cluster.messages_lost,
                        messages_skipped=cluster.messages_skipped,
                        counters=counters, staleness=job.staleness)
    return Result(scenario=s, history=monitor.history, trace=trace, summary=summary, model=model,
                  scaling=split.scaling)


@dataclass(frozen=True)
class DataSplit:
    """A scenario's data as the run sees it: standardized train/test arrays, with the
    training rows laid out in shard order, and ``parts[i]``, the (contiguous) indices of
    the training rows worker i holds."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    parts: list
    scaling: tuple | None = None  # (mean, scale) per column applied to both; None: raw
    resampling: dict | None = None  # rows_added, rows_removed, resample_flops (imbalance)
    moves: tuple = ()  # rebalancing: (from worker, to worker, rows) sent before training


def prepare_data(scenario: Scenario) -> DataSplit:
    """Load, split, partition and standardize a scenario's data, as ``run`` does."""
    return _prepare_data(scenario, Streams(scenario.seed))


def _prepare_data(s: Scenario, streams: Streams) -> DataSplit:
    rng = streams.rng("data")
    d = s.data
    if d.dataset == "synthetic":
        ds = _data.make_classification(d.n_samples, d.n_features, d.n_classes,
                                       weights=d.weights, class_sep=d.class_sep,
                                       label_noise=d.label_noise, rng=rng)
    elif d.dataset == "synthetic_regression":
        ds = _data.make_regression(d.n_samples, d.n_features, noise=d.noise, rng=rng)
    else:
        ds = _data.load(d.dataset)
    train, test = _data.train_test_indices(ds.y, test_size=d.test_size,
                                           stratify=not ds.is_regression, rng=rng)
    if s.cluster.workers > len(train):
        raise ScenarioError(f"cluster.workers={s.cluster.workers} is more than the "
                            f"{len(train)} training samples of data.dataset={d.dataset!r}")
    # proportional to the effective speed: a slowed-down node gets less
    effective = np.asarray(s.cluster.speed) / np.asarray(s.cluster.slowdown)
    options = {"proportional": {"weights": effective}, "speed": {"weights": effective},
               "label_skew": {"alpha": d.alpha},
               "size_skew": {"exponent": d.exponent},
               "by_label": {"classes_per_part": d.classes_per_part}}.get(d.partition, {})
    try:
        parts = _data.partition(d.partition, ds.y[train], s.cluster.workers, rng=rng, **options)
    except ValueError as exc:  # an option that does not fit the data (classes_per_part)
        raise ScenarioError(f"data.partition={d.partition!r}: {exc}") from None
    # Index the features once, in shard order, so that every shard is a view (no copies)
    order = train[np.concatenate(parts)]
    if ds.X.flags.writeable:  # a generated dataset: reorder its rows in place (no 2nd copy)
        y_train, y_test = ds.y[order], ds.y[test]
        _data.permute_rows(ds.X, np.concatenate([order, test]))
        X_train, X_test = ds.X[:order.size], ds.X[order.size:]  # views, in shard order
    else:  # a bundled dataset is shared (read-only): copy the rows
        X_train, y_train, X_test, y_test = ds.X[order], ds.y[order], ds.X[test], ds.y[test]
    del ds  # a generated dataset is not kept twice
    scaling = None
    if d.standardize:
        scaling = _data.scaling(X_train)
        _data.standardize(X_train, X_test, copy=False)
    bounds = np.cumsum([0] + [len(p) for p in parts])
    ranges = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    split = DataSplit(X_train, X_test, y_train, y_test, ranges, scaling)
    if d.rebalance:
        split = _rebalance(split)
    if s.imbalance.method is not None:
        split = _resample(s, split, rng, options)
    return split


def _rebalance(split: DataSplit) -> DataSplit:
    """Move rows between shards so that every shard holds each class's fair share
    (``sizes(n_c, ones)``): a worker keeps its first rows of a class up to its share,
    its surplus goes to the workers short of that class, lowest index first. The rows
    moved are the fewest that make the shards alike; ``moves`` says who sends how many
    rows to whom (the run sends them as messages before training starts)."""
    k = len(split.parts)
    y = split.y_train
    keep, receive = [[] for _ in range(k)], [[] for _ in range(k)]
    moves: dict[tuple[int, int], int] = {}
    for c in np.unique(y):
        rows = [p[y[p] == c] for p in split.parts]
        share = _data.sizes(sum(r.size for r in rows), np.ones(k))
        surplus = []
        for i in range(k):
            keep[i].append(rows[i][:share[i]])
            surplus += [(i, r) for r in rows[i][share[i]:]]
        for i in range(k):
            need = share[i] - min(rows[i].size, share[i])
            for src, r in surplus[:need]:
                receive[i].append(np.array([r]))
                moves[(src, i)] = moves.get((src, i), 0) + 1
            surplus = surplus[need:]
    order = [np.concatenate(keep[i] + receive[i]) for i in range(k)]
    X, y2 = split.X_train[np.concatenate(order)], y[np.concatenate(order)]
    bounds = np.cumsum([0] + [o.size for o in order])
    ranges = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return DataSplit(X, split.X_test, y2, split.y_test, ranges, split.scaling,
                     split.resampling, tuple((a, b, n) for (a, b), n in sorted(moves.items())))


def _exchange(job: Job, w: int, moves: tuple):
    """Worker w's part of rebalancing: send its surplus rows, receive what it is owed."""
    node = job.workers[w]
    row_nbytes = 8 * (job.monitor.X_train.shape[1] + 1)  # features and label
    for src, dst, rows in moves:
        if src == w:
            node.send(job.workers[dst], ("rows", rows), nbytes=rows * row_nbytes)
    for _ in range(sum(1 for _, dst, _ in moves if dst == w)):
        yield node.recv()


def _rebalance_then(job: Job, moves: tuple, start):
    """Rebalance the shards (real messages, their bytes and time), then train."""
    exchanges = [job.sim.process(_exchange(job, w, moves), name=f"rebalance@worker{w}")
                 for w in range(len(job.workers))]
    yield job.sim.all_of(exchanges)
    return (yield start(job))


def _resample(s: Scenario, split: DataSplit, rng, options: dict) -> DataSplit:
    """Balance the classes of the (standardized) training rows: globally, then partition
    the result again; or locally, shard by shard (``simdml.imbalance``)."""
    im = s.imbalance
    kwargs = {"k_neighbors": im.k_neighbors}
    if im.where == "global":
        X, y, flops = resample(im.method, split.X_train, split.y_train, rng, **kwargs)
        parts = _data.partition(s.data.partition, y, s.cluster.workers, rng=rng, **options)
        order = np.concatenate(parts)
        X, y = X[order], y[order]
        sizes = [len(p) for p in parts]
    else:
        pieces = [resample(im.method, split.X_train[p], split.y_train[p], rng, **kwargs)
                  for p in split.parts]
        X = np.concatenate([piece[0] for piece in pieces])
        y = np.concatenate([piece[1] for piece in pieces])
        flops = sum(piece[2] for piece in pieces)
        sizes = [piece[1].size for piece in pieces]
    if min(sizes) == 0:
        raise ScenarioError(f"imbalance.method={im.method!r} left a worker without rows; "
                            f"use fewer cluster.workers or another method")
    n_before = split.y_train.size
    counts = {"rows_added": int(max(0, y.size - n_before)),
              "rows_removed": int(max(0, n_before - y.size)), "resample_flops": float(flops)}
    if im.where == "local":  # a shard can both gain and lose rows: count per shard
        before = [len(p) for p in split.parts]
        counts["rows_added"] = int(sum(max(0, a - b) for a, b in zip(sizes, before)))
        counts["rows_removed"] = int(sum(max(0, b - a) for a, b in zip(sizes, before)))
    bounds = np.cumsum([0] + sizes)
    ranges = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return DataSplit(X, split.X_test, y, split.y_test, ranges, split.scaling, counts)


def _check_model_for_data(model, n_train: int) -> None:
    """The learner's settings that depend on the data size (a kernel SVM's cache must
    hold one kernel row of the largest subset it may fit: the training set)."""
    if hasattr(model, "cache_bytes"):
        try:
            model._validate_params(n_train)
        except ValueError as exc:
            raise ScenarioError(f"model.cache_bytes: {exc}") from None


def _links(net) -> dict:
    """Per-link overrides by node index (the server is node 0, worker i is node i + 1)."""
    out = {}
    for link in net.links:
        a, b = (0 if end == "server" else end + 1 for end in (link.a, link.b))
        cost = (net.latency if link.latency is None else link.latency,
                net.bandwidth if link.bandwidth is None else link.bandwidth)
        out[(a, b)] = out[(b, a)] = cost
    return out


def _start_faults(s: Scenario, sim, server, workers, streams, cluster=None) -> None:
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


def _stall_judge(cluster: Cluster, monitor: Monitor):
    """When only failure processes are busy, is training stuck for good? Not while a
    crashed node is due back that has not yet had its chance: its restart may un-stall
    it. A node seen up at an idle moment since the last update has had it (failures
    alone never end, so the judgement must)."""
    seen = {"updates": -1}
    spent: set[str] = set()  # nodes seen up at an idle moment since the last update

    def is_stuck() -> bool:
        if monitor.updates != seen["updates"]:
            seen["updates"] = monitor.updates
            spent.clear()
        # keyed by life (epoch): a node that crashed again since it was seen up has a
        # new chance coming
        spent.update((n.name, n.epoch) for n in cluster.nodes if n.is_up)
        return all((n.name, n.epoch) in spent for n in cluster.nodes
                   if n.recovery_due is not None)
    return is_stuck


class _WallClock(BaseException):  # not Exception: no process may catch it
    """The run took longer in real time than stop.wall_time."""


@contextlib.contextmanager
def _wall_clock_guard(seconds: float):
    """Raise _WallClock inside the run after ``seconds`` of real time (main thread only:
    signals cannot reach others; there the guard is off)."""
    if (not seconds < 1e8  # inf, or beyond what a timer can hold (3 years): no guard
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def expire(signum, frame):
        raise _WallClock()
    previous = signal.signal(signal.SIGALRM, expire)
    began = time.monotonic()
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:  # a timer of the caller's: give it back, minus the time spent
            left = max(old_delay - (time.monotonic() - began), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def _simulate(sim: Simulator, training, s: Scenario, job: Job) -> str | None:
    """Run until training ends, the time limit passes, or nothing can happen any more."""
    limit = s.stop.time if math.isfinite(s.stop.time) else None
    try:
        with _wall_clock_guard(s.stop.wall_time):
            sim.run(until=training, limit=limit)
    except _WallClock:
        return (f"wall-clock guard: stopped after stop.wall_time={s.stop.wall_time:g} s of real "
                f"time, at simulated t={sim.now:.4g} s; bound the run with stop.rounds or "
                f"stop.time, or raise stop.wall_time")
    except Interrupt as exc:
        return (f"{exc.cause.node} crashed at t={exc.cause.at:.4g} s, and {s.strategy.kind} "
                f"cannot go on without it (no checkpoint to restart from)")
    except Deadlock:
        if job.workers_lost() or job.cut_off():
            return job.monitor.stop_reason
        if not job.server.is_up and job.server.recovery_due is None:
            return (f"the server crashed at t={job.server._crash_times[-1]:.4g} s and does "
                    f"not come back (faults.crash[...].recover_after)")
        last = job.monitor.history[-1]["time"] if job.monitor.history else 0.0
        hint = ("set scheduling.block_timeout so that a lost block is sent again"
                if s.scheduling.policy is not None else
                "set strategy.round_timeout so that a round can close without it"
                if s.strategy.kind == "sync" else
                f"{s.strategy.kind} has no timeout to retry a lost push or pull")
        return (f"stalled at t={sim.now:.4g} s (last update at t={last:.4g} s): every "
                f"process waits for a message that will never come (a crashed worker or "
                f"a lost message?); {hint}")
    if training.triggered:
        return None
    return f"time limit stop.time={s.stop.time:g} s reached"
